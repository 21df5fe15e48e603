//! The monitor's counters per group, kept on this node (the status API shows them).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Metrics-ready counters per group, kept on the node (exported by the status API).
#[derive(Debug, Default)]
pub struct Counters {
    pub pings: AtomicU64,
    pub ping_failures: AtomicU64,
    pub probes: AtomicU64,
    pub probe_latency_ms_total: AtomicU64,
    pub verdicts: AtomicU64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CountersSnapshot {
    pub pings: u64,
    pub ping_failures: u64,
    pub probes: u64,
    pub probe_latency_ms_avg: u64,
    pub verdicts: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CountersSnapshot {
        let probes = self.probes.load(Ordering::Relaxed);
        CountersSnapshot {
            pings: self.pings.load(Ordering::Relaxed),
            ping_failures: self.ping_failures.load(Ordering::Relaxed),
            probes,
            probe_latency_ms_avg: self
                .probe_latency_ms_total
                .load(Ordering::Relaxed)
                .checked_div(probes)
                .unwrap_or(0),
            verdicts: self.verdicts.load(Ordering::Relaxed),
        }
    }
}

/// Counters of every group monitored on this node.
#[derive(Debug, Default)]
pub struct MonitorStats {
    groups: Mutex<BTreeMap<String, Arc<Counters>>>,
}

impl MonitorStats {
    pub fn counters(&self, group: &str) -> Arc<Counters> {
        self.groups
            .lock()
            .expect("stats lock")
            .entry(group.to_string())
            .or_default()
            .clone()
    }

    pub fn snapshot(&self, group: &str) -> Option<CountersSnapshot> {
        self.groups
            .lock()
            .expect("stats lock")
            .get(group)
            .map(|c| c.snapshot())
    }
}
