//! What this node sees of the manager cluster, logged once per change: who the leader is (INFO,
//! with the term), and which peers answer (peer_health.rs; WARN once when one goes, once when
//! it is back). Every node does both, so each manager's log tells the story on its own.
//!
//! The leader calls every peer many times a second anyway (heartbeats); a follower calls no
//! one, so a follower pings each peer it has not called lately, cheaply (NodeStatus over the
//! cached channel), to know whether its peers are there when it must campaign or lead.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::watch;
use tonic::Code;

use super::peers;
use super::Runtime;
use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::proto::admin::NodeStatusRequest;
use crate::raft::{acting_leader, Metrics, NodeId};

/// How often a peer not otherwise called is pinged, and how long its answer may take. Twice
/// per DOWN_AFTER, so a dead peer is seen down about one second after it went.
const PING_EVERY: Duration = Duration::from_millis(500);

/// The leader as this node knows it: (leader, term), or none during an election.
type Known = Option<(NodeId, u64)>;

/// The line to log when the known leader changed from `before` to `now` (`None`: nothing to
/// say). A new term with the same leader is a new election, so it is logged too; terms that pass
/// without a leader (a campaign that cannot win) are logged once, not once per term.
pub fn leader_change(me: NodeId, before: Option<Known>, now: Known) -> Option<String> {
    match (before, now) {
        (Some(b), n) if b == n => None,
        (_, Some((l, term))) if l == me => Some(format!("this node is now the leader (term {term})")),
        (_, Some((l, term))) => Some(format!("leader is now node {l} (term {term})")),
        (Some(Some((l, term))), None) if l == me => Some(format!(
            "this node is no longer the leader of term {term} (no quorum acknowledgement, or a \
             newer term)"
        )),
        (Some(Some((l, term))), None) => Some(format!(
            "no leader: node {l} (term {term}) is no longer known as leader; an election is under way"
        )),
        // No leader at start, or still none: nothing new.
        (None | Some(None), None) => None,
    }
}

/// The leader as `me` knows it. This node counts as leader only while it is the acting leader
/// (a quorum acknowledged it within the lease): openraft names a restarted node's remembered
/// vote, and a leader that lost its quorum, as leader too.
fn known(m: &Metrics, me: NodeId, lease: Duration) -> Known {
    let l = m.current_leader?;
    if l == me && !acting_leader(m, lease) {
        return None;
    }
    Some((l, m.current_term))
}

/// Logs every change of the known leader until `stop`.
pub async fn log_leader_changes(node: Arc<Runtime>, mut stop: watch::Receiver<bool>) {
    let (me, lease) = (node.id(), node.raft.lease());
    let mut rx = node.raft.watch_metrics();
    let mut before: Option<Known> = None;
    loop {
        let now = known(&rx.borrow_and_update(), me, lease);
        if let Some(line) = leader_change(me, before, now) {
            node.metrics.leader_changed();
            tracing::info!(leader = now.map(|k| k.0), term = now.map(|k| k.1), "{line}");
        }
        before = Some(now);
        // Metrics change with every heartbeat round while a quorum answers; the tick notices a
        // lease that lapsed because nothing answers any more.
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(lease / 2) => {}
        }
    }
}

/// Pings every member this node has not called within [`PING_EVERY`], until `stop`; the
/// answers feed the peer health that the Raft RPCs feed too.
pub async fn watch_peers(node: Arc<Runtime>, mut stop: watch::Receiver<bool>) {
    let me = node.id();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(PING_EVERY) => {}
        }
        let members: Vec<(NodeId, String)> = peers::members(&node)
            .into_iter()
            .filter(|(id, _)| *id != me)
            .collect();
        let stats = node.raft.network().stats();
        stats.retain_peers(|id| members.iter().any(|(m, _)| *m == id));
        let due = members
            .into_iter()
            .filter(|(id, _)| !stats.contacted_within(*id, PING_EVERY));
        join_all(due.map(|(id, addr)| {
            let node = node.clone();
            async move {
                let outcome = ping(&node, id, &addr).await;
                node.raft.network().stats().record(
                    id,
                    &addr,
                    outcome.as_ref().map(|_| ()).map_err(String::as_str),
                );
            }
        }))
        .await;
    }
}

/// One NodeStatus call: Ok when the peer answered anything at all (a refusal proves it is up).
async fn ping(node: &Runtime, id: NodeId, addr: &str) -> Result<(), String> {
    let stats = node.raft.network().stats();
    if stats.is_blocked(id) {
        return Err(format!("peer {id} blocked by fault injection"));
    }
    let channel = node
        .raft
        .network()
        .channel(id, addr)
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    let mut client = AdminServiceClient::new(channel);
    match tokio::time::timeout(PING_EVERY, client.node_status(NodeStatusRequest {})).await {
        Err(_) => Err(format!("no answer within {PING_EVERY:?}")),
        Ok(Ok(reply)) => {
            // A peer that lists this node as a voter does not refuse it any more (a vote it
            // refused while the membership that adds this node was still on its way).
            let me = node.id();
            if reply
                .into_inner()
                .members
                .iter()
                .any(|m| m.id == me && m.kind == "voter")
            {
                stats.counts_me(id);
            }
            Ok(())
        }
        Ok(Err(s)) => match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled => {
                Err(format!("{addr}: {}", crate::errors::status_text(&s)))
            }
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per change of (leader, term), none for repeats, one (not one per term) when
    /// the leader is lost; "this node" when the new leader is us.
    #[test]
    fn leader_changes_are_logged_once_with_the_term() {
        let me = 1;
        let cases: &[(Option<Known>, Known, Option<&str>)] = &[
            (None, None, None),
            (None, Some((2, 1)), Some("leader is now node 2 (term 1)")),
            (Some(Some((2, 1))), Some((2, 1)), None),
            (
                Some(Some((2, 1))),
                None,
                Some("no leader: node 2 (term 1) is no longer known as leader; an election is under way"),
            ),
            (Some(None), None, None),
            (Some(None), Some((1, 7)), Some("this node is now the leader (term 7)")),
            (Some(Some((1, 7))), Some((1, 8)), Some("this node is now the leader (term 8)")),
            (
                Some(Some((1, 8))),
                None,
                Some("this node is no longer the leader of term 8 (no quorum acknowledgement, or a newer term)"),
            ),
            (Some(Some((1, 8))), Some((3, 9)), Some("leader is now node 3 (term 9)")),
        ];
        for (before, now, want) in cases {
            assert_eq!(
                leader_change(me, *before, *now).as_deref(),
                *want,
                "{before:?} -> {now:?}"
            );
        }
    }
}
