//! Leader-only work, supervised by term: the master monitors and the failover executors run
//! only while this node is the acting leader of the term they were started in, and are aborted
//! the moment it is not (a deposed leader keeps no monitor and no executor) — or, for those
//! that tolerate it, once a lapse of its lease in that term outlasts a grace. One loop shape and
//! one task table serve both.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::raft::{Metrics, RaftHandle};

/// Whether a supervisor also wakes on every change of the Raft metrics (each applied entry),
/// so a committed command is acted on at once rather than at the next tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Tick,
    TickOrApply,
}

/// The heartbeat of a supervisor loop.
pub struct Ticker {
    raft: RaftHandle,
    stop: watch::Receiver<bool>,
    every: Duration,
    applied: Option<watch::Receiver<Metrics>>,
    /// Whether a lapse of the lease keeps the term's tasks (`RaftHandle::leading_term`).
    tolerate_lapses: bool,
}

impl Ticker {
    pub fn new(
        raft: &RaftHandle,
        stop: watch::Receiver<bool>,
        every: Duration,
        wake: Wake,
    ) -> Self {
        Ticker {
            raft: raft.clone(),
            stop,
            every,
            applied: (wake == Wake::TickOrApply).then(|| raft.watch_metrics()),
            tolerate_lapses: false,
        }
    }

    /// The term's tasks are kept through a short lapse of the lease (each of
    /// their actions waits for the lease: `RaftHandle::guard_within`), instead of being
    /// aborted and started again when the next acknowledgement comes: under load that restart
    /// is what makes a slow cluster slower.
    pub fn tolerating_lapses(mut self) -> Self {
        self.tolerate_lapses = true;
        self
    }

    /// Waits for the next round. `None`: stop. `Some(lead)`: the term this node is the acting
    /// leader of now (or leads with its lease briefly lapsed: keep the term's tasks, start
    /// none), if it is one.
    pub async fn next(&mut self) -> Option<Option<u64>> {
        let applied = async {
            match &mut self.applied {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.stop.wait_for(|s| *s) => return None,
            _ = applied => {}
            _ = tokio::time::sleep(self.every) => {}
        }
        Some(if self.tolerate_lapses {
            self.raft.leading_term()
        } else {
            self.raft.acting_term()
        })
    }
}

/// Tasks keyed by `K`, each bound to the term it was started in.
pub struct TermTasks<K: Ord + Debug> {
    what: &'static str,
    tasks: BTreeMap<K, (u64, JoinHandle<()>)>,
}

impl<K: Ord + Debug> TermTasks<K> {
    pub fn new(what: &'static str) -> Self {
        TermTasks {
            what,
            tasks: BTreeMap::new(),
        }
    }

    /// Keeps the tasks that are still running, belong to `lead` (the term this node is acting
    /// leader of now, if any) and pass `keep`; aborts every other one.
    pub fn retain(&mut self, lead: Option<u64>, mut keep: impl FnMut(&K) -> bool) {
        let what = self.what;
        self.tasks.retain(|key, (term, h)| {
            if h.is_finished() {
                return false;
            }
            let ok = lead == Some(*term) && keep(key);
            if !ok {
                h.abort();
                tracing::warn!(
                    ?key,
                    term = *term,
                    "{what} stopped: no longer the acting leader of its term, or no longer needed"
                );
            }
            ok
        });
    }

    /// Starts `task` for `key` in `term` unless one is running for it already.
    pub fn ensure<F>(&mut self, key: K, term: u64, task: impl FnOnce() -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks
            .entry(key)
            .or_insert_with(|| (term, tokio::spawn(task())));
    }
}

impl<K: Ord + Debug> Drop for TermTasks<K> {
    fn drop(&mut self) {
        for (_, (_, h)) in std::mem::take(&mut self.tasks) {
            h.abort();
        }
    }
}
