//! The leader's latest reading of each replica — its threads, its lag, whom it replicates from
//! — per group: what the metrics and the load balancers' replica checks answer from, so no
//! request reads a server. Fed by the pulse reader (pulses.rs), once per ping interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{IoThread, ReplicaStatus};

#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub io_thread: IoThread,
    pub sql_thread: bool,
    pub seconds_behind: Option<u64>,
    /// Master_Host, Master_Port.
    pub source: (String, u16),
}

impl Seen {
    pub fn of(status: &ReplicaStatus) -> Seen {
        Seen {
            at: Instant::now(),
            io_thread: status.io_thread,
            sql_thread: status.sql_thread,
            seconds_behind: status.seconds_behind,
            source: (status.source_host.clone(), status.source_port),
        }
    }
}

/// (group, replica) → its latest reading, on this node.
#[derive(Clone, Default)]
pub struct SeenBook(Arc<Mutex<BTreeMap<(String, String), Seen>>>);

impl SeenBook {
    pub fn record(&self, group: &str, replica: &str, seen: Seen) {
        self.0
            .lock()
            .expect("seen book")
            .insert((group.to_string(), replica.to_string()), seen);
    }

    /// It could not be read (or is no replica): nothing is known of it now.
    pub fn forget(&self, group: &str, replica: &str) {
        self.0
            .lock()
            .expect("seen book")
            .remove(&(group.to_string(), replica.to_string()));
    }

    /// Its reading, if taken within `fresh` (an older one — a monitor that stopped, this
    /// node no longer the leader — says nothing about now).
    pub fn get(&self, group: &str, replica: &str, fresh: Duration) -> Option<Seen> {
        self.0
            .lock()
            .expect("seen book")
            .get(&(group.to_string(), replica.to_string()))
            .filter(|s| s.at.elapsed() < fresh)
            .cloned()
    }

    /// Every reading taken within `fresh`: (group, replica, reading).
    pub fn all(&self, fresh: Duration) -> Vec<(String, String, Seen)> {
        self.0
            .lock()
            .expect("seen book")
            .iter()
            .filter(|(_, s)| s.at.elapsed() < fresh)
            .map(|((g, r), s)| (g.clone(), r.clone(), s.clone()))
            .collect()
    }
}
