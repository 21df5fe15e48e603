//! The last attempt of a leader's periodic job per (group, server) — relay-log purges,
//! automatic rejoins — kept on this node only (routine traffic stays out of Raft) and shown by
//! `cluster status` from the leader.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct AttemptBook<T> {
    last: Mutex<BTreeMap<(String, String), (Instant, T)>>,
}

impl<T> Default for AttemptBook<T> {
    fn default() -> Self {
        AttemptBook {
            last: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<T: Clone> AttemptBook<T> {
    /// Every server's last attempt in `group`.
    pub fn of_group(&self, group: &str) -> Vec<T> {
        self.last
            .lock()
            .expect("attempt book")
            .iter()
            .filter(|((g, _), _)| g == group)
            .map(|(_, (_, t))| t.clone())
            .collect()
    }

    /// When the last attempt on `server` of `group` was made, and what it did.
    pub fn last(&self, group: &str, server: &str) -> Option<(Instant, T)> {
        self.last
            .lock()
            .expect("attempt book")
            .get(&(group.to_string(), server.to_string()))
            .cloned()
    }

    pub fn record(&self, group: &str, server: &str, t: T) {
        self.last
            .lock()
            .expect("attempt book")
            .insert((group.to_string(), server.to_string()), (Instant::now(), t));
    }
}
