//! Membership changes of the manager cluster: add (checked, learner, caught up, then voter),
//! remove (confirmed when it costs the cluster its fault tolerance), and the one-time bootstrap.
//! The operator's steps come back as text for mhactl to print, and they say what really
//! happened: issue #14 had "caught up in 3.9 ms / promoted 7 to voter" for an address where
//! nothing listened (openraft's blocking add_learner calls a learner up to date while it lags by
//! fewer than `replication_lag_threshold` entries, 5000 by default, even one never reached).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use super::handle::{write_error, NodeError, RaftHandle};
use super::join_check::check_joiner;
use super::removal_rule::removal_risk;
use super::NodeId;
use crate::errors::human_duration;
use crate::state::Cmd;

/// How long a new learner may take to catch up when the request does not say.
pub const DEFAULT_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(20);

/// How often the leader logs a learner's progress while it catches up.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What `member add` is asked to do.
#[derive(Clone, Debug)]
pub struct AddMember {
    pub id: NodeId,
    /// The new manager's peer address (host:port).
    pub addr: String,
    pub zone: String,
    /// Leave it a learner.
    pub learner_only: bool,
    /// How long it may take to catch up before it would be promoted.
    pub catch_up_timeout: Duration,
}

/// What a membership change did, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberChange {
    pub steps: Vec<String>,
    /// It stopped short of what was asked (a learner not caught up in time stays a learner).
    pub incomplete: bool,
}

/// Where a learner stood when the wait for it ended.
enum CatchUp {
    Done { matched: u64 },
    Behind { matched: Option<u64>, last: u64 },
}

impl RaftHandle {
    /// Adds a manager: checks that the manager at `addr` is node `id` of this cluster and has no
    /// membership of its own, adds it as a learner, waits (bounded) until its log matches this
    /// leader's, then promotes it to voter unless `learner_only`; records its address and zone.
    /// A learner that did not catch up in time stays a learner (`incomplete`).
    #[tracing::instrument(skip_all, fields(node = self.id(), member = req.id))]
    pub async fn add_member(&self, req: AddMember) -> Result<MemberChange, NodeError> {
        let AddMember { id, addr, zone, .. } = req.clone();
        crate::config::check_host_port(&addr).map_err(NodeError::InvalidArgument)?;
        if id == 0 {
            return Err(NodeError::InvalidArgument(
                "id must be a positive integer".into(),
            ));
        }
        self.require_leader()?;
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if let Some(n) = membership.get_node(&id) {
            if n.addr != addr {
                return Err(NodeError::InvalidArgument(format!(
                    "id {id} is already a member at {}",
                    n.addr
                )));
            }
        }
        if let Some((other, _)) = membership
            .nodes()
            .find(|(nid, n)| n.addr == addr && **nid != id)
        {
            return Err(NodeError::InvalidArgument(format!(
                "address {addr} already belongs to member {other}"
            )));
        }
        let ours = membership.get_node(&id).is_some();
        if membership.voter_ids().any(|v| v == id) {
            return Ok(MemberChange {
                steps: vec![format!("{id} ({addr}) is already a voter; nothing to do")],
                incomplete: false,
            });
        }
        let cluster = self.raft().config().cluster_name.clone();
        let mut steps = vec![check_joiner(self.network(), id, &addr, &cluster, ours).await?];
        if ours {
            steps.push(format!("{id} ({addr}) is already a learner"));
        } else {
            // A record left from an earlier member with this id (its forget failed) says it
            // ran: the new, empty node would be told it is a voter that lost its state once
            // promoted. Forgotten before anything is replicated to the new one.
            if self.read(|c| c.managers.contains_key(&id)) {
                self.propose(Cmd::ForgetManager { id }).await?;
                steps.push(format!("forgot an earlier manager {id}'s metadata"));
            }
            // Not blocking: openraft's own wait counts a learner within 5000 entries as caught
            // up; ours below waits for the real thing.
            self.raft()
                .add_learner(id, BasicNode { addr: addr.clone() }, false)
                .await
                .map_err(write_error)?;
            steps.push(format!("added {id} ({addr}) as learner"));
        }
        // The features and the admin address are the node's to declare (it registers itself);
        // keep what it already declared from this address.
        let (features, admin_addr) = self.read(|c| {
            c.managers
                .get(&id)
                .filter(|m| m.addr == addr)
                .map(|m| (m.features.clone(), m.admin_addr.clone()))
                .unwrap_or_default()
        });
        self.propose(Cmd::RegisterManager {
            id,
            addr: addr.clone(),
            zone: zone.clone(),
            admin_addr,
            features,
            by_self: false,
        })
        .await?;
        if req.learner_only {
            return Ok(MemberChange {
                steps,
                incomplete: false,
            });
        }
        let t = Instant::now();
        match self.wait_caught_up(id, req.catch_up_timeout).await? {
            CatchUp::Done { matched } => steps.push(format!(
                "caught up: matched index {matched} of {matched} in {}",
                human_duration(t.elapsed())
            )),
            CatchUp::Behind { matched, last } => {
                let matched =
                    matched.map_or_else(|| "nothing".to_string(), |i| format!("index {i}"));
                steps.push(format!(
                    "not caught up within {}: matched {matched} of {last}",
                    human_duration(req.catch_up_timeout)
                ));
                steps.push(format!(
                    "{id} stays a learner (the voters, and so the cluster's fault tolerance, are \
                     unchanged): once `mhactl cluster status` shows its LAG 0, promote it with \
                     `mhactl member add --id {id} --addr {addr} --zone {zone}`, or remove it \
                     with `mhactl member remove --id {id}`"
                ));
                return Ok(MemberChange {
                    steps,
                    incomplete: true,
                });
            }
        }
        let t = Instant::now();
        self.raft()
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(write_error)?;
        steps.push(format!(
            "promoted {id} to voter in {}",
            human_duration(t.elapsed())
        ));
        Ok(MemberChange {
            steps,
            incomplete: false,
        })
    }

    /// Waits until learner `id`'s matched log id reaches this leader's last log id, at most
    /// `timeout`, logging its progress.
    async fn wait_caught_up(&self, id: NodeId, timeout: Duration) -> Result<CatchUp, NodeError> {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next_report = tokio::time::Instant::now() + PROGRESS_EVERY;
        let mut rx = self.watch_metrics();
        loop {
            // Copied out: the watch borrow must not be held across an await.
            let (repl, last) = {
                let m = rx.borrow_and_update();
                let repl = m
                    .replication
                    .as_ref()
                    .map(|r| r.get(&id).cloned().flatten().map(|l| l.index));
                (repl, m.last_log_index.unwrap_or(0))
            };
            let Some(matched) = repl else {
                return Err(NodeError::LeadershipLost {
                    term: self.metrics().current_term,
                    why: format!("stopped leading while {id} was catching up; it is a learner"),
                });
            };
            if matched.is_some_and(|i| i >= last) {
                tracing::info!(member = id, matched = last, took = ?start.elapsed(), "learner caught up");
                return Ok(CatchUp::Done { matched: last });
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                tracing::warn!(
                    member = id,
                    ?matched,
                    last,
                    "learner did not catch up in time; not promoted"
                );
                return Ok(CatchUp::Behind { matched, last });
            }
            if now >= next_report {
                tracing::info!(member = id, ?matched, last, "learner catching up");
                next_report = now + PROGRESS_EVERY;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() {
                    return Err(NodeError::Fatal("raft metrics closed".into()));
                },
                _ = tokio::time::sleep_until(deadline.min(next_report)) => {}
            }
        }
    }

    /// Removes a manager (voter or learner) from the cluster and forgets its metadata. Removing
    /// a voter that leaves a cluster one more failure would stop needs `confirmed` (mhactl
    /// --yes); without it nothing changes and the answer says why.
    #[tracing::instrument(skip_all, fields(node = self.id(), member = id))]
    pub async fn remove_member(
        &self,
        id: NodeId,
        confirmed: bool,
    ) -> Result<MemberChange, NodeError> {
        self.require_leader()?;
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&id).is_none() {
            return Err(NodeError::InvalidArgument(format!("{id} is not a member")));
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let is_voter = voters.contains(&id);
        if is_voter && voters.len() == 1 {
            return Err(NodeError::InvalidArgument(format!(
                "{id} is the last voter; refusing to remove it"
            )));
        }
        let mut steps = Vec::new();
        if is_voter {
            let after: BTreeSet<NodeId> = voters.iter().copied().filter(|v| *v != id).collect();
            let reachable = self.answering(&after).await;
            if let Some(risk) = removal_risk(id, &after, &reachable) {
                if !confirmed {
                    return Err(NodeError::NeedsConfirmation(format!(
                        "{risk}; nothing was changed: to remove {id} anyway, repeat with --yes"
                    )));
                }
                tracing::warn!(member = id, "removal confirmed by the operator: {risk}");
                steps.push(format!("confirmed (--yes): {risk}"));
            }
        }
        let t = Instant::now();
        let (changes, what) = if is_voter {
            (ChangeMembers::RemoveVoters(BTreeSet::from([id])), "voter")
        } else {
            (ChangeMembers::RemoveNodes(BTreeSet::from([id])), "learner")
        };
        self.raft()
            .change_membership(changes, false)
            .await
            .map_err(write_error)?;
        steps.push(format!(
            "removed {what} {id} in {}",
            human_duration(t.elapsed())
        ));
        // The leader may have removed itself and stepped down; then the next leader's
        // registration loop is not needed for this record and it stays until forgotten later.
        match self.propose(Cmd::ForgetManager { id }).await {
            Ok(_) => steps.push(format!("forgot manager {id}'s metadata")),
            Err(e) => steps.push(format!("metadata of {id} kept: {e}")),
        }
        Ok(MemberChange {
            steps,
            incomplete: false,
        })
    }

    /// Those of `voters` that answer this leader now (itself included): heard within two
    /// leases (heartbeats go every fraction of one). A leader elected a moment ago may not
    /// have heard from everyone yet, so the silent ones get those two leases to answer.
    async fn answering(&self, voters: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        let window = self.lease() * 2;
        let deadline = Instant::now() + window;
        loop {
            let heard: BTreeSet<NodeId> = voters
                .iter()
                .copied()
                .filter(|v| {
                    *v == self.id()
                        || self
                            .network()
                            .stats()
                            .since_last_heard(*v)
                            .is_some_and(|d| d < window)
                })
                .collect();
            if heard.len() == voters.len() || Instant::now() >= deadline {
                return heard;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Bootstraps an uninitialised cluster with `members` (this node alone at `own_addr` when
    /// empty).
    pub async fn init_cluster(
        &self,
        own_addr: &str,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), NodeError> {
        let members = if members.is_empty() {
            BTreeMap::from([(self.id(), own_addr.to_string())])
        } else {
            members
        };
        if !members.contains_key(&self.id()) {
            return Err(NodeError::InvalidArgument(format!(
                "members must include this node ({})",
                self.id()
            )));
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft().initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(NodeError::AlreadyInitialized)
            }
            Err(RaftError::APIError(e)) => Err(NodeError::InvalidArgument(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(NodeError::Fatal(f.to_string())),
        }
    }
}
