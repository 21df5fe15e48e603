//! A node whose store has promised nothing (an empty or wiped data dir) must not be counted as
//! a voter that already ran: Raft's safety rests on a voter keeping its vote and its log, and
//! this one lost both. It cannot tell from its own disk whether it ran before; the leader can.
//!
//! A manager registers itself (`ManagerInfo::ran`) only after it saved a leader's term. Every
//! Raft call to a voter of the sender's membership that ran carries [`VOTER_THAT_RAN`]. A node
//! whose store still promised nothing refuses such a call, says why and how to bring it back,
//! and stops (`mhad` exits non-zero): being replicated to would make it a voter with a gap in
//! its memory, granting a vote would let it vote twice in a term.
//!
//! Calls without the header go on as before — a learner being added (`member add`), an
//! initial member or a `cluster init` member that never ran — and so does everything once the
//! node's store holds a vote or a log entry. `peer_check.rs` catches the same loss at start-up
//! for nodes with `initial_members`; this gate also catches nodes joined with `member add`,
//! which start without any peer to ask.
//!
//! What it cannot see: a node wiped in the moment between saving a leader's term and its
//! registration being applied on the sender (well under a second after it first joins), and
//! a sender of an older build (it sends no header).

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tonic::Status;

use super::NodeId;
use crate::store::Store;

/// gRPC metadata on a Raft call: the sender counts the target as a voter that ran.
pub const VOTER_THAT_RAN: &str = "mha-voter-that-ran";

/// Which peers are voters that ran, as the sender knows it (membership and replicated state),
/// set once the node's Raft exists. Shared by every clone of the network.
#[derive(Clone, Default)]
pub struct RanVoters(Arc<OnceLock<Box<PeerTest>>>);

type PeerTest = dyn Fn(NodeId) -> bool + Send + Sync;

impl RanVoters {
    pub fn set(&self, f: impl Fn(NodeId) -> bool + Send + Sync + 'static) {
        let _ = self.0.set(Box::new(f));
    }

    pub fn contains(&self, peer: NodeId) -> bool {
        self.0.get().is_some_and(|f| f(peer))
    }
}

impl std::fmt::Debug for RanVoters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RanVoters")
    }
}

/// The receiving side: refuses to be a voter that ran while the store promised nothing.
pub struct FreshGate {
    store: Store,
    /// How to bring the node back (the same words as `peer_check.rs`).
    advice: String,
    data_dir: String,
    me: NodeId,
    /// Why the node must stop, once it refused.
    lost: watch::Sender<Option<String>>,
}

impl FreshGate {
    pub fn new(store: Store, me: NodeId, data_dir: String, advice: String) -> Arc<Self> {
        Arc::new(FreshGate {
            store,
            advice,
            data_dir,
            me,
            lost: watch::channel(None).0,
        })
    }

    /// Whether a `rpc` call from `from` may reach Raft: refused when the sender counts this
    /// node as a voter that ran (`voter_that_ran`) and the store has promised nothing.
    pub fn admit(&self, rpc: &str, from: NodeId, voter_that_ran: bool) -> Result<(), Status> {
        if !voter_that_ran || !self.store.promised_nothing() {
            return Ok(());
        }
        let me = self.me;
        let why = format!(
            "node {me} has no Raft state in {}, but manager {from} counts it as a voter that \
             ran before (its {rpc} call says so): its vote and log were lost (data dir wiped or \
             replaced). Taking part as if nothing happened would break Raft's safety, so it \
             refuses and stops. {}",
            self.data_dir, self.advice
        );
        if self.lost.borrow().is_none() {
            tracing::error!(peer = from, rpc, "{why}");
        }
        self.lost.send_replace(Some(why.clone()));
        Err(Status::failed_precondition(why))
    }

    /// Becomes `Some(why)` when the node refused to be a voter that ran.
    pub fn lost(&self) -> watch::Receiver<Option<String>> {
        self.lost.subscribe()
    }
}

/// Whether a Raft call's metadata says the sender counts this node as a voter that ran.
pub fn marked(meta: &tonic::metadata::MetadataMap) -> bool {
    meta.get(VOTER_THAT_RAN).is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(dir: &std::path::Path) -> (Store, Arc<FreshGate>) {
        let store = Store::open(dir).unwrap();
        let g = FreshGate::new(store.clone(), 4, dir.display().to_string(), "advice".into());
        (store, g)
    }

    #[test]
    fn empty_store_refuses_only_marked_calls() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, g) = gate(dir.path());
        let lost = g.lost();
        g.admit("append_entries", 1, false).unwrap();
        assert!(lost.borrow().is_none(), "a learner being added is let in");
        let err = g.admit("vote", 2, true).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        for needle in [
            "node 4 has no Raft state",
            "manager 2",
            "vote call",
            "advice",
        ] {
            assert!(err.message().contains(needle), "{needle}: {err}");
        }
        assert!(lost.borrow().as_deref() == Some(err.message()));
    }

    #[test]
    fn a_store_that_promised_something_is_let_in() {
        let dir = tempfile::tempdir().unwrap();
        let (store, g) = gate(dir.path());
        store.stage(|m| {
            m.vote = Some(crate::store::VoteMark {
                term: 3,
                node: 1,
                committed: true,
            })
        });
        g.admit("append_entries", 1, true).unwrap();
        assert!(g.lost().borrow().is_none());
    }

    #[test]
    fn the_header_is_read_exactly() {
        let mut m = tonic::metadata::MetadataMap::new();
        assert!(!marked(&m));
        m.insert(VOTER_THAT_RAN, "0".parse().unwrap());
        assert!(!marked(&m));
        m.insert(VOTER_THAT_RAN, "1".parse().unwrap());
        assert!(marked(&m));
    }
}
