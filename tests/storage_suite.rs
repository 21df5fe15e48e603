//! Proves the sled-backed log store and state machine against openraft's own storage test suite
//! (every case in `openraft::testing::Suite::test_all`).

use mha_raft::raft::{open_storage, LogStore, StateMachine, StorageError, TypeConfig};
use mha_raft::store::Store;
use openraft::testing::{StoreBuilder, Suite};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SledBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open store");
        let (log, sm) = open_storage(store).expect("open storage");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(SledBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
