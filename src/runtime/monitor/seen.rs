//! The leader's latest reading of each replica — its threads, its lag, whom it replicates from
//! — per group: what the metrics and the load balancers' replica checks answer from, so no
//! request reads a server. Fed by the pulse reader (pulses.rs), once per ping interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{IoThread, ReplicaStatus};

#[derive(Clone, Debug)]
pub struct Seen {
    pub io_thread: IoThread,
    pub sql_thread: bool,
    pub seconds_behind: Option<u64>,
    /// Master_Host, Master_Port.
    pub source: (String, u16),
}

impl Seen {
    pub fn of(status: &ReplicaStatus) -> Seen {
        Seen {
            io_thread: status.io_thread,
            sql_thread: status.sql_thread,
            seconds_behind: status.seconds_behind,
            source: (status.source_host.clone(), status.source_port),
        }
    }
}

/// When a replica was read, and what it said (or why it could not be read).
type Reading = (Instant, Result<Seen, String>);

/// (group, replica) → its latest reading.
#[derive(Clone, Default)]
pub struct SeenBook(Arc<Mutex<BTreeMap<(String, String), Reading>>>);

impl SeenBook {
    pub fn record(&self, group: &str, replica: &str, seen: Seen) {
        self.put(group, replica, Ok(seen));
    }

    /// It could not be read, or is no replica: remembered too, so a check within the window
    /// does not try again.
    pub fn failed(&self, group: &str, replica: &str, why: String) {
        self.put(group, replica, Err(why));
    }

    fn put(&self, group: &str, replica: &str, r: Result<Seen, String>) {
        self.0.lock().expect("seen book").insert(
            (group.to_string(), replica.to_string()),
            (Instant::now(), r),
        );
    }

    /// Its reading (or failure), if within `fresh` (an older one — a monitor that stopped,
    /// this node no longer the leader — says nothing about now).
    pub fn get(&self, group: &str, replica: &str, fresh: Duration) -> Option<Result<Seen, String>> {
        self.0
            .lock()
            .expect("seen book")
            .get(&(group.to_string(), replica.to_string()))
            .filter(|(at, _)| at.elapsed() < fresh)
            .map(|(_, r)| r.clone())
    }

    /// Every reading within `fresh`: (group, replica, reading or failure).
    pub fn all(&self, fresh: Duration) -> Vec<(String, String, Result<Seen, String>)> {
        self.0
            .lock()
            .expect("seen book")
            .iter()
            .filter(|(_, (at, _))| at.elapsed() < fresh)
            .map(|((g, r), (_, s))| (g.clone(), r.clone(), s.clone()))
            .collect()
    }
}
