//! The narrow handle every layer above Raft uses: read the applied state through a closure,
//! propose a command, and know whether (and in which term) this node may act as the leader.
//! Invariant 3's term guard lives here once: [`RaftHandle::acting_term`] for loops that start
//! leader-only work, [`RaftHandle::guard`] before a side effect, [`RaftHandle::propose_in`] for a
//! journal entry that must be written in the term its work began in.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState};
use tokio::sync::watch;

use super::{Metrics, Network, NodeId, Raft, SharedState};
use crate::clock::now_ms;
use crate::state::{ClusterState, Cmd, CmdResult, Proposal, Rejection};

/// How often a lapsed lease is looked at again while it is waited out (sooner when the
/// metrics change).
const LAPSE_POLL: Duration = Duration::from_millis(25);
/// How long an action of leader-only work waits for a lapsed lease to hold again (in the same
/// term) before it gives up: nothing is acted while it waits.
pub const LAPSE_GRACE: Duration = Duration::from_secs(1);

/// Errors of operations on a running node. `is_retryable` decides whether a caller may retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    #[error("not the leader{}", leader_hint(.leader))]
    NotLeader { leader: Option<(NodeId, String)> },
    /// The term the caller's work began in is over, or this node's lease lapsed: whatever it was
    /// doing belongs to the next leader now.
    #[error("no longer the acting leader of term {term}: {why}")]
    LeadershipLost { term: u64, why: String },
    #[error("not committed within {0:?} (no quorum?)")]
    Timeout(Duration),
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `member add` checked the manager at the address and refused it; nothing changed.
    #[error("{0}")]
    JoinRefused(String),
    /// The change would leave the cluster unable to survive one more failure and the operator
    /// did not confirm it (mhactl --yes); nothing changed.
    #[error("{0}")]
    NeedsConfirmation(String),
    /// The replicated state's rules refused the command; nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// What the operator asked for cannot be done as things are (the text says why and what
    /// was left as it was).
    #[error("{0}")]
    Refused(String),
    #[error("already initialized: this node already belongs to a cluster")]
    AlreadyInitialized,
    #[error("node is shutting down or failed: {0}")]
    Fatal(String),
}

fn leader_hint(leader: &Option<(NodeId, String)>) -> String {
    match leader {
        Some((id, addr)) => format!(" (leader is {id} at {addr})"),
        None => " (no leader known)".to_string(),
    }
}

impl NodeError {
    pub fn is_retryable(&self) -> bool {
        match self {
            NodeError::NotLeader { .. } => true,
            NodeError::LeadershipLost { .. } => true,
            NodeError::Timeout(_) => true,
            NodeError::Membership(_) => false,
            NodeError::InvalidArgument(_) => false,
            NodeError::JoinRefused(_) => false,
            NodeError::NeedsConfirmation(_) => false,
            NodeError::Rejected(_) => false,
            NodeError::Refused(_) => false,
            NodeError::AlreadyInitialized => false,
            NodeError::Fatal(_) => false,
        }
    }
}

/// A cheap, cloneable handle on this node's Raft instance and applied state.
#[derive(Clone)]
pub struct RaftHandle {
    id: NodeId,
    raft: Raft,
    state: SharedState,
    network: Network,
    /// How long a quorum acknowledgement keeps this node the acting leader.
    lease: Duration,
    propose_timeout: Duration,
    /// How long past the lease the term's leader-only tasks are kept through a lapse
    /// (`RaftTimings::lapse_keep`; zero until set).
    lapse_keep: Duration,
    /// The highest log index a proposal of this node came back with (applied here by then):
    /// the metrics' applied index may trail it for a moment.
    written: Arc<AtomicU64>,
}

impl RaftHandle {
    pub fn new(
        id: NodeId,
        raft: Raft,
        state: SharedState,
        network: Network,
        lease: Duration,
        propose_timeout: Duration,
    ) -> Self {
        RaftHandle {
            id,
            raft,
            state,
            network,
            lease,
            propose_timeout,
            lapse_keep: Duration::ZERO,
            written: Arc::default(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The openraft instance (the peer service and shutdown need it whole).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Reads the applied replicated state. `f` runs under the state's read lock: keep it short
    /// and never await in it (clone what must outlive it).
    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.state.read().expect("state lock poisoned").cluster)
    }

    /// A copy of the current Raft metrics (never hold the watch borrow across an await).
    pub fn metrics(&self) -> Metrics {
        self.raft.metrics().borrow().clone()
    }

    /// Changes with every applied entry, election and heartbeat round: a loop that waits on it
    /// reacts to a committed command at once instead of at its next tick.
    pub fn watch_metrics(&self) -> watch::Receiver<Metrics> {
        self.raft.metrics()
    }

    /// The term this node is the acting leader of: leader AND acknowledged by a quorum within
    /// the lease. A leader cut off into a minority stops acting before a new one can be elected.
    pub fn acting_term(&self) -> Option<u64> {
        let m = self.metrics();
        acting_leader(&m, self.lease).then_some(m.current_term)
    }

    /// How much longer this node stays the acting leader without a new quorum
    /// acknowledgement (None: it is not the acting leader).
    pub fn lease_left(&self) -> Option<Duration> {
        let m = self.metrics();
        if !acting_leader(&m, self.lease) {
            return None;
        }
        let since = Duration::from_millis(m.millis_since_quorum_ack.unwrap_or(u64::MAX));
        self.lease.checked_sub(since)
    }

    pub fn is_acting_leader(&self) -> bool {
        self.acting_term().is_some()
    }

    /// Ok only while this node is still the acting leader of `term` (invariant 3): checked
    /// before every side effect of leader-only work that began in `term`.
    pub fn guard(&self, term: u64) -> Result<(), NodeError> {
        let m = self.metrics();
        if !acting_leader(&m, self.lease) {
            return Err(NodeError::LeadershipLost {
                term,
                why: "not the acting leader".into(),
            });
        }
        if m.current_term != term {
            return Err(NodeError::LeadershipLost {
                term,
                why: format!("term moved to {}", m.current_term),
            });
        }
        Ok(())
    }

    /// Keeps the term's leader-only tasks through a lapse of the lease of at most `keep`.
    pub fn with_lapse_keep(mut self, keep: Duration) -> Self {
        self.lapse_keep = keep;
        self
    }

    /// As [`Self::guard`], but a lapse of the lease while this node is still the Raft leader of
    /// `term` is waited out, up to `grace`: under load a quorum acknowledgement can come a
    /// little late, and giving up leader-only work for it would restart that work (every
    /// failover step in progress begun again) at the worst moment. Nothing is done while the
    /// lease is lapsed; Ok only once it holds again.
    pub async fn guard_within(&self, term: u64, grace: Duration) -> Result<(), NodeError> {
        let deadline = tokio::time::Instant::now() + grace;
        let mut changes = self.watch_metrics();
        loop {
            let err = match self.guard(term) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let leads_term = {
                let m = changes.borrow_and_update();
                m.state == ServerState::Leader && m.current_term == term
            };
            if !leads_term || tokio::time::Instant::now() >= deadline {
                return Err(err);
            }
            // The next metrics (a quorum acknowledgement publishes them), or a look again
            // shortly: the acknowledgement's age is read, not pushed.
            let _ = tokio::time::timeout(LAPSE_POLL, changes.changed()).await;
        }
    }

    /// The term this node leads: acting leader, or its lease lapsed less than the lapse keep
    /// ago (leader-only tasks of the term are kept through such a lapse, none is started;
    /// each action still waits for the lease, [`Self::guard_within`]).
    pub fn leading_term(&self) -> Option<u64> {
        let m = self.metrics();
        acting_leader(&m, self.lease + self.lapse_keep).then_some(m.current_term)
    }

    /// "Not leader", pointing at the leader this node knows of (mhactl follows it). A leader
    /// whose quorum lease lapsed still names itself; it points nowhere, since a redirect to
    /// itself would only send mhactl round in a circle.
    pub fn not_leader(&self) -> NodeError {
        NodeError::NotLeader {
            leader: self.leader().filter(|(id, _)| *id != self.id),
        }
    }

    /// Ok while this node is the acting leader; else "not leader" with the leader's address.
    pub fn require_leader(&self) -> Result<(), NodeError> {
        if self.is_acting_leader() {
            Ok(())
        } else {
            Err(self.not_leader())
        }
    }

    /// The leader this node knows of, with its address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        leader_of(&self.metrics())
    }

    /// This node's applied log index.
    pub fn applied_index(&self) -> u64 {
        self.metrics().last_applied.map(|l| l.index).unwrap_or(0)
    }

    /// The index a follower must have applied to see everything this node proposed so far
    /// (for a delegate acting a step this leader just began).
    pub fn written_index(&self) -> u64 {
        self.applied_index()
            .max(self.written.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Waits (at most `timeout`) until this node has applied at least `index`, so a follower
    /// answering for the leader sees what the leader saw. Returns whether it got there.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        if index == 0 {
            return true;
        }
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "catch up with the leader")
            .await
            .is_ok()
    }

    /// Proposes a command and waits until it is committed and applied on this (leader) node.
    #[tracing::instrument(skip_all, fields(node = self.id, cmd = %cmd))]
    pub async fn propose(&self, cmd: Cmd) -> Result<CmdResult, NodeError> {
        let proposal = Proposal {
            at_ms: now_ms(),
            cmd,
        };
        let timeout = self.propose_timeout;
        match tokio::time::timeout(timeout, self.raft.client_write(proposal)).await {
            Err(_) => Err(NodeError::Timeout(timeout)),
            Ok(Ok(resp)) => {
                self.written
                    .fetch_max(resp.log_id.index, std::sync::atomic::Ordering::AcqRel);
                Ok(resp.data)
            }
            Ok(Err(e)) => Err(write_error(e)),
        }
    }

    /// Proposes and turns a refusal into an error: Ok(true) changed the state, Ok(false) was
    /// already in effect.
    pub async fn submit(&self, cmd: Cmd) -> Result<bool, NodeError> {
        match self.propose(cmd).await? {
            CmdResult::Ok => Ok(true),
            CmdResult::Unchanged => Ok(false),
            CmdResult::Rejected(r) => Err(NodeError::Rejected(r)),
        }
    }

    /// Proposes only while still the acting leader of `term` (work begun in `term` journals
    /// its progress in `term`, or not at all); a short lapse of the lease in `term` is waited
    /// out ([`Self::guard_within`], [`LAPSE_GRACE`]) rather than failing the work.
    pub async fn propose_in(&self, term: u64, cmd: Cmd) -> Result<CmdResult, NodeError> {
        self.guard_within(term, LAPSE_GRACE).await?;
        self.propose(cmd).await
    }
}

pub(super) fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> NodeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => NodeError::NotLeader {
            leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            NodeError::Membership(c.to_string())
        }
        RaftError::Fatal(f) => NodeError::Fatal(f.to_string()),
    }
}

/// Leader with a quorum acknowledgement younger than `lease`.
pub fn acting_leader(m: &Metrics, lease: Duration) -> bool {
    m.state == ServerState::Leader
        && m.millis_since_quorum_ack
            .is_some_and(|ms| ms < lease.as_millis() as u64)
}

/// The leader `m` knows of, with its address from the membership.
pub fn leader_of(m: &Metrics) -> Option<(NodeId, String)> {
    let id = m.current_leader?;
    let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
    Some((id, addr))
}
