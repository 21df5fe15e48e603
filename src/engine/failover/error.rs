//! Why the planner says a failover step must stop. Each variant is one rule; its text is what
//! the journal and the operator read (MHA's wording where MHA has one).

use crate::engine::gtid::GtidError;
use crate::engine::selection::Excluded;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Phase 1: a binlog file/position group without SSH (relay-log diffs travel over it).
    #[error(
        "binlog file/position recovery needs SSH to every server (relay-log diffs): {0}; \
         nothing was changed"
    )]
    SshNeeded(String),
    /// Phase 1: the old master accepted a connection.
    #[error("master {name} ({endpoint}) answers again: it is not dead, nothing to fail over")]
    MasterAnswers { name: String, endpoint: String },
    /// Phase 1: the old master refused with an error only a running server gives.
    #[error(
        "master {name} ({endpoint}) answers (with an error that proves it is up: {error}): not dead"
    )]
    MasterProvesAlive {
        name: String,
        endpoint: String,
        error: String,
    },
    /// The survivors could not be read at all (the reason).
    #[error("{0}")]
    NotObserved(String),
    /// Phase 1: some survivor is unreachable or does not replicate from the old master.
    #[error("{}; nothing was changed", .0.join("; "))]
    SurvivorsNotReady(Vec<String>),
    /// Phases 3.1 / 3.2: no survivor answered as a replica.
    #[error("no replica answered")]
    NoReplicaAnswered,
    /// Phase 3.3, file/position: no survivor said how far it read.
    #[error("no replica reported how far it read the old master's binlog")]
    NoReadPosition,
    /// Phase 3.3: MHA's selection found no server to promote (each exclusion with why).
    #[error("{reason}; {}", excluded.iter().map(|e| format!("{}: {}", e.server, e.reason)).collect::<Vec<_>>().join("; "))]
    NoNewMaster {
        reason: String,
        excluded: Vec<Excluded>,
    },
    /// Phase 3.4: not one latest replica's relay logs could be read (each one's error).
    #[error("no latest replica's relay logs could be read: {}", .0.join("; "))]
    NoRelayLogs(Vec<String>),
    /// Phase 3.5, GTID: the new master lacks part of the target and no survivor has it.
    #[error("{new_master} lacks part of {target} and no survivor has it in its binlog")]
    NoDonor { new_master: String, target: String },
    /// Phase 4, file/position: phase 3.5 did not journal the new master's coordinates.
    #[error("no binlog coordinates of {0} were recorded in phase 3.5")]
    NoNewMasterCoords(String),
    /// Phase 2: MHA's shutdown_script neither powered the host off (0) nor stopped mysqld (10).
    #[error("shutdown_script exited {code:?} ({tail}): the old master may still accept writes")]
    ShutdownScript { code: Option<i32>, tail: String },
    #[error(transparent)]
    Gtid(#[from] GtidError),
}
