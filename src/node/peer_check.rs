//! Before a node that has promised nothing (an empty or wiped data dir) serves Raft with
//! `initial_members` configured, it asks the other initial members what they know of it.
//!
//! A wiped node that is still a member would otherwise be replicated to at once and rejoin
//! with its vote and log gone, or bootstrap; either way it may vote twice in a term or help
//! commit over entries it acknowledged — what Raft's safety rests on. An empty node cannot tell
//! from its own disk whether it ran before, but the cluster can: every manager registers
//! itself (its zone) in the replicated state as soon as it knows a leader, which it only does
//! after it saved that leader's term. So:
//!
//! - a member that answers with an initialised cluster in which this node is registered: this
//!   node ran before and lost its state → refuse;
//! - a member that answers with a cluster that does not count this node (or refuses its
//!   certificate as a non-member): it was removed, or never added → refuse (join with
//!   `member add`, without `initial_members`);
//! - a cluster that counts this node but never heard from it: an initial member starting for
//!   the first time after the others bootstrapped → do not bootstrap, wait to be replicated to;
//! - nobody answers with a cluster (all down, or a new cluster): today's ranked bootstrap.
//!
//! Only "registered" separates a wiped member from a first start; "any peer has a term" would
//! refuse an initial member started a few seconds after the others, the normal first deploy.
//! What it cannot see: a node wiped in the moment between saving a leader's term and its
//! registration committing (well under a second after it first joins).

use std::time::Duration;

use futures::future::join_all;

use crate::config::NodeConfig;
use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::proto::admin::{NodeStatusReply, NodeStatusRequest};
use crate::raft::{Network, NodeId};

/// How long one member may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the other initial members' answers mean for this node.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody answered with a cluster: bootstrap as ranked.
    Bootstrap,
    /// A cluster counts this node as a member it never heard from: join it, never bootstrap.
    Join,
    /// This node must not start: why, and what to do.
    Refuse(String),
}

/// One member's answer: its status, refused as a non-member (the message), or nothing.
#[derive(Debug)]
pub enum Answer {
    Status(Box<NodeStatusReply>),
    NotMember(String),
    Silent,
}

/// What to do to bring this node back, with the exact commands.
pub(super) fn rejoin_advice(config: &NodeConfig) -> String {
    format!(
        "To bring it back: on a working manager run `mhactl member remove --id {id}` (add \
         --yes if it asks: this node is out either way); start \
         this node with an empty data dir and WITHOUT initial_members; then `mhactl member add \
         --id {id} --addr {addr} --zone {zone}` (it joins as a learner, catches up, then \
         becomes a voter). See docs/operations.md \"Replacing a manager whose disk died\"",
        id = config.id,
        addr = config.advertise,
        zone = config.zone,
    )
}

/// The verdict for node `me` (data dir `data_dir`) from the members' answers (id, address,
/// answer). Pure, so the rules are tested without a network.
pub fn judge(config: &NodeConfig, answers: &[(NodeId, String, Answer)]) -> Verdict {
    let me = config.id;
    let data_dir = config.data_dir.display();
    let mut join = false;
    for (id, addr, a) in answers {
        match a {
            Answer::NotMember(why) => {
                return Verdict::Refuse(format!(
                    "node {me} has no Raft state in {data_dir}, and manager {id} at {addr} does \
                     not count it as a member ({why}): it was removed from the cluster or never \
                     added, so it must not bootstrap from initial_members. {}",
                    rejoin_advice(config)
                ))
            }
            Answer::Status(s) if s.initialized => {
                let mine = s.members.iter().find(|m| m.id == me);
                match mine {
                    None => {
                        let ids: Vec<String> = s.members.iter().map(|m| m.id.to_string()).collect();
                        return Verdict::Refuse(format!(
                            "node {me} has no Raft state in {data_dir}, and the cluster that \
                             manager {id} at {addr} belongs to (term {}, members {}) does not \
                             count it: it must not bootstrap a cluster of its own. {}",
                            s.term,
                            ids.join(","),
                            rejoin_advice(config)
                        ));
                    }
                    Some(m) if !m.zone.is_empty() => {
                        return Verdict::Refuse(format!(
                            "node {me} has no Raft state in {data_dir}, but the cluster knows it \
                             ran before (manager {id} at {addr}: term {}, node {me} registered \
                             in zone {}): its vote and log were lost (data dir wiped or \
                             replaced). Rejoining as if nothing happened would break Raft's \
                             safety, so it refuses to start. {}",
                            s.term,
                            m.zone,
                            rejoin_advice(config)
                        ));
                    }
                    Some(_) => join = true,
                }
            }
            Answer::Status(_) | Answer::Silent => {}
        }
    }
    if join {
        Verdict::Join
    } else {
        Verdict::Bootstrap
    }
}

/// Asks every other initial member for its status, in parallel, over the node's transport
/// (with TLS the member must prove its node identity, and sees ours).
pub async fn ask(config: &NodeConfig, network: &Network) -> Vec<(NodeId, String, Answer)> {
    let asks = config
        .initial_members
        .iter()
        .filter(|(id, _)| **id != config.id)
        .map(|(id, addr)| async move {
            let answer = match network.channel(*id, addr) {
                Err(_) => Answer::Silent,
                Ok(ch) => {
                    let mut client = AdminServiceClient::new(ch);
                    let call = client.node_status(NodeStatusRequest {});
                    match tokio::time::timeout(ASK_TIMEOUT, call).await {
                        Ok(Ok(r)) => Answer::Status(Box::new(r.into_inner())),
                        Ok(Err(s)) if s.code() == tonic::Code::PermissionDenied => {
                            Answer::NotMember(s.message().to_string())
                        }
                        Ok(Err(_)) | Err(_) => Answer::Silent,
                    }
                }
            };
            (*id, addr.clone(), answer)
        });
    join_all(asks).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::admin::MemberInfo;

    fn config() -> NodeConfig {
        let raw = crate::config::RawConfig::from_toml(
            "id = 3\ndata_dir = \"/var/lib/mhad\"\ninsecure = true\nlisten = \"10.0.0.3:7101\"\n\
             initial_members = [\"1=10.0.0.1:7101\", \"2=10.0.0.2:7101\", \"3=10.0.0.3:7101\"]\n",
        )
        .unwrap();
        NodeConfig::try_from(raw).unwrap()
    }

    fn status(initialized: bool, members: &[(u64, &str)]) -> Answer {
        Answer::Status(Box::new(NodeStatusReply {
            initialized,
            term: 7,
            members: members
                .iter()
                .map(|(id, zone)| MemberInfo {
                    id: *id,
                    zone: zone.to_string(),
                    kind: "voter".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }))
    }

    fn answers(a: Vec<Answer>) -> Vec<(NodeId, String, Answer)> {
        a.into_iter()
            .enumerate()
            .map(|(i, a)| (i as u64 + 1, format!("10.0.0.{}:7101", i + 1), a))
            .collect()
    }

    /// Every rule of the module doc, one case each.
    #[test]
    fn verdicts() {
        let c = config();
        assert_eq!(
            judge(&c, &answers(vec![Answer::Silent, Answer::Silent])),
            Verdict::Bootstrap
        );
        assert_eq!(
            judge(&c, &answers(vec![status(false, &[]), Answer::Silent])),
            Verdict::Bootstrap
        );
        // Bootstrapped by node 1 while this node was not yet running.
        let first_start = status(true, &[(1, "a"), (2, ""), (3, "")]);
        assert_eq!(
            judge(&c, &answers(vec![first_start, Answer::Silent])),
            Verdict::Join
        );
        // This node had registered: it ran before and lost its state.
        let ran = status(true, &[(1, "a"), (2, "b"), (3, "zone-3")]);
        let Verdict::Refuse(why) = judge(&c, &answers(vec![Answer::Silent, ran])) else {
            panic!("not refused");
        };
        for needle in [
            "/var/lib/mhad",
            "registered in zone zone-3",
            "mhactl member remove --id 3",
            "mhactl member add --id 3 --addr 10.0.0.3:7101 --zone zone-3",
            "WITHOUT initial_members",
            "Replacing a manager whose disk died",
        ] {
            assert!(why.contains(needle), "{needle}: {why}");
        }
        // Removed (not in the members), or refused as a non-member.
        let removed = status(true, &[(1, "a"), (2, "b")]);
        assert!(matches!(
            judge(&c, &answers(vec![removed])),
            Verdict::Refuse(w) if w.contains("members 1,2")
        ));
        let refused = Answer::NotMember("node 3 is not a member".into());
        assert!(matches!(
            judge(&c, &answers(vec![Answer::Silent, refused])),
            Verdict::Refuse(w) if w.contains("not a member")
        ));
    }
}
