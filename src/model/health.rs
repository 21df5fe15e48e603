//! A master's health as the detector sees it, and the evidence of a verdict (who voted what, what
//! the replicas' IO threads said). Decided by `engine::detector`, committed in `state`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::server::IoThread;

/// How replica reports weigh in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaPolicy {
    /// Dead only if no reachable replica still has a connected IO thread (default, safe).
    #[default]
    NoneConnected,
    /// Dead only if every replica answered and none is connected.
    AllMustReport,
    /// Replicas are not consulted (managers' majority alone decides).
    Ignore,
}

/// A follower manager's view of the master, from its own zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerVote {
    pub manager: u64,
    pub zone: String,
    pub reachable: bool,
    pub detail: String,
    pub at_ms: u64,
}

/// A replica's IO thread towards the master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReplicaIo {
    /// IO thread running and connected to the master.
    Connected { detail: String },
    /// IO thread not connected (connecting, stopped, error).
    Disconnected { detail: String },
    /// The replica itself could not be asked.
    Unreachable { detail: String },
}

/// What a replica says about its link to its master at one moment: its IO thread's word plus
/// what tells, between two readings, whether anything arrived from the master (an event or a
/// heartbeat). A hung master keeps its sockets open, so the IO thread goes on saying "Yes" until
/// `slave_net_timeout`; the counters stop at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaPulse {
    pub io_thread: IoThread,
    /// Changes with every event the IO thread queues (read coordinates, received GTIDs).
    pub received: String,
    /// Heartbeats received from the master so far (None: this server does not tell).
    pub heartbeats: Option<u64>,
    /// The heartbeat period in effect, in ms (None: unknown; Some(0): heartbeats off).
    pub heartbeat_period_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Dead,
    UnreachableButAlive,
}

/// The committed outcome of a suspicion round, with every piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub kind: VerdictKind,
    pub round: u64,
    pub suspected_at_ms: u64,
    pub at_ms: u64,
    /// Consecutive failed pings of the leader.
    pub failures: u32,
    /// The leader's own vote first, then the followers'.
    pub votes: Vec<ManagerVote>,
    pub replicas: BTreeMap<String, ReplicaIo>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    #[default]
    Alive,
    Suspect {
        round: u64,
        since_ms: u64,
    },
    UnreachableButAlive {
        round: u64,
        since_ms: u64,
    },
    Dead {
        round: u64,
        at_ms: u64,
    },
}
