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

/// Micro benchmark, run by hand (`cargo test --release --test storage_suite append_cost --
/// --ignored --nocapture`): what one append costs the log store, the entry written and made
/// durable, without and with the integrity record (one more small write and fdatasync per
/// append). Prints; asserts nothing about time.
#[test]
#[ignore = "benchmark; run by hand"]
fn append_cost() {
    use mha_raft::store::{LogMark, Marks};
    const N: u64 = 500;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let value = vec![b'x'; 400];
    for armed in [false, true, false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open store");
        if armed {
            store.arm(Marks::default(), |_| None).expect("arm");
        }
        let mut took = Vec::with_capacity(N as usize);
        rt.block_on(async {
            for i in 1..=N {
                let t = std::time::Instant::now();
                store.put_log(i, &value).unwrap();
                store.stage(|m| {
                    m.last_log = Some(LogMark {
                        term: 1,
                        node: 1,
                        index: i,
                    })
                });
                store.flush().await.unwrap();
                took.push(t.elapsed());
            }
        });
        took.sort();
        let mean = took.iter().sum::<std::time::Duration>() / N as u32;
        println!(
            "append + flush, record {}: mean {:?}, p50 {:?}, p99 {:?} ({N} appends)",
            if armed { "on " } else { "off" },
            mean,
            took[N as usize / 2],
            took[N as usize * 99 / 100]
        );
    }
}
