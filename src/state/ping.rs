//! A group's health-check settings (`[ping]` in the group file): how the leader's monitor
//! pings the master and how the evidence weighs in a verdict.

use serde::{Deserialize, Serialize};

use crate::model::ReplicaPolicy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PingType {
    Connect,
    #[default]
    Select,
    Insert,
}

/// Health-check settings of the leader's monitor. Defaults follow MHA's (1 s ping interval, 3 failures).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PingSpec {
    pub ping_type: PingType,
    pub interval_ms: u64,
    pub failure_threshold: u32,
    pub suspect_interval_ms: u64,
    /// How replicas' IO threads weigh in a Dead verdict (default: none may still be connected).
    pub replica_policy: ReplicaPolicy,
    /// MASTER_HEARTBEAT_PERIOD (ms) the manager sets when it points a replica at a master. A
    /// replica whose IO thread says connected but has received nothing for twice its period
    /// counts as disconnected, so this bounds how long a hung master (no socket closed) keeps
    /// its replicas' veto. 0: the manager leaves each replica's period as it is. Default 500.
    pub replica_heartbeat_ms: u64,
}

impl Default for PingSpec {
    fn default() -> Self {
        PingSpec {
            ping_type: PingType::Select,
            interval_ms: 1000,
            failure_threshold: 3,
            suspect_interval_ms: 200,
            replica_policy: ReplicaPolicy::NoneConnected,
            replica_heartbeat_ms: 500,
        }
    }
}
