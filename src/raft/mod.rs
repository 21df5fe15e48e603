//! openraft wiring: the type configuration, the log store and state machine adapters (on top of
//! [`crate::store::Store`]) and the tonic network client.

// openraft's trait signatures fix `StorageError` (large) as the error type; boxing it here would
// only add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

mod codec;
pub mod fresh_gate;
mod handle;
mod integrity;
mod join_check;
mod log_store;
mod membership;
mod network;
pub mod peer_health;
pub mod removal_rule;
mod snapshot_codec;
mod state_machine;

pub use handle::{acting_leader, leader_of, NodeError, RaftHandle, LAPSE_GRACE};
pub use log_store::LogStore;
pub use membership::{AddMember, MemberChange, DEFAULT_CATCH_UP_TIMEOUT};
#[cfg(test)]
pub(crate) use network::decode_reply;
pub use network::{Network, PeerStats};
pub use state_machine::{SharedState, StateMachine};

use std::io::Cursor;

use crate::state::{CmdResult, Proposal};

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Raft types of an mha-raft manager cluster.
    pub TypeConfig:
        D = Proposal,
        R = CmdResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Metrics = openraft::RaftMetrics<NodeId, openraft::BasicNode>;
pub type StorageError = openraft::StorageError<NodeId>;

/// Opens the log store and state machine over one store handle, after checking that the
/// store is whole and not behind its integrity record (`store.promised_nothing()` then says
/// whether this node ever promised anything). Whatever fails names the store and what to do.
pub fn open_storage(
    store: crate::store::Store,
) -> Result<(LogStore, StateMachine), crate::store::StoreError> {
    let sm = StateMachine::open(store.clone()).map_err(|e| crate::store::StoreError::Damaged {
        path: store.path().to_path_buf(),
        detail: e.to_string(),
    })?;
    let log = LogStore::new(store);
    integrity::verify(&log, &sm)?;
    Ok((log, sm))
}

fn io_err<E: std::error::Error + 'static>(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    e: &E,
) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(e)).into()
}
