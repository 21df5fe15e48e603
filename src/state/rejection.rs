//! Why the replicated state refused a command. Each variant is one rule of the state machine;
//! the admin API maps each to exactly one gRPC code (server/status.rs), and the texts are what
//! an operator reads.

use serde::{Deserialize, Serialize};

use super::step::{RunKind, StepName};

/// A command the state's rules refused; nothing changed (except an automatic failover's
/// refusal, which is itself recorded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "rejection", rename_all = "snake_case")]
pub enum Rejection {
    #[error("group {group} does not exist")]
    NoSuchGroup { group: String },
    #[error("group {group} already exists (use update)")]
    GroupExists { group: String },
    #[error("group {group}: a failover run is active; update it when the run ended")]
    GroupBusy { group: String },
    #[error("failover run {run} of group {group} is still active")]
    RunActive { group: String, run: u64 },
    /// The anti-flap window or an unacknowledged failed run (`reason` says which).
    #[error("{reason}")]
    FailoverRefused { kind: RunKind, reason: String },
    #[error("no failover run {run}")]
    NoSuchRun { run: u64 },
    #[error("run {run} cannot complete: {step:?} is unfinished")]
    RunUnfinished { run: u64, step: StepName },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cluster is already named {name:?}")]
    ClusterNamed { name: String },
    #[error("round {round} already has a verdict")]
    VerdictExists { round: u64 },
    /// One server, one group (state/ownership.rs): `server` is the address as the refused spec
    /// gives it, `name` the server's name in `group`.
    #[error("server {server} ({name}) already belongs to group {group}")]
    ServerInOtherGroup {
        server: String,
        name: String,
        group: String,
    },
    /// `RejoinReplica`: the group is no longer as the rejoin read it (`server` replicates but
    /// stays out of the topology).
    #[error("group {group} changed while {server} was being rejoined (master, definition or topology): it replicates, but is not in the topology; rejoin it again")]
    RejoinStale { group: String, server: String },
}

/// The journal's own rules: steps in order, in the current term, decisions and recovery facts
/// set once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "journal_rule", rename_all = "snake_case")]
pub enum JournalError {
    #[error("run {run} is not running")]
    RunNotRunning { run: u64 },
    #[error("stale term {term}: run {run} already reached term {reached}")]
    StaleTerm { run: u64, term: u64, reached: u64 },
    #[error("{step:?} is not the next step of run {run} (next: {next:?})")]
    OutOfOrder {
        run: u64,
        step: StepName,
        next: Option<StepName>,
    },
    /// The step is over (done, failed, skipped) and cannot begin again.
    #[error("{step:?} cannot begin from {state}")]
    CannotBegin { step: StepName, state: String },
    #[error("{step:?} runs in term {running}, not {term}")]
    WrongTerm {
        step: StepName,
        running: u64,
        term: u64,
    },
    #[error("{step:?} is not running ({state})")]
    NotRunning { step: StepName, state: String },
    /// A failover's step named in a switchover run, or the other way round.
    #[error("run {run} has no step {step:?}")]
    NoSuchStep { run: u64, step: StepName },
    #[error("run {run} has no step after {step:?}")]
    NoNextStep { run: u64, step: StepName },
    #[error("run {run} already decided: new master {new_master} ({rule})")]
    AlreadyDecided {
        run: u64,
        new_master: String,
        rule: String,
    },
    #[error("{what} already recorded as {was}")]
    AlreadyRecorded { what: String, was: String },
    /// A journal batch (state/batch.rs) holds only journal entries of its own run.
    #[error("a journal batch of run {run} cannot hold: {what}")]
    NotInBatch { run: u64, what: String },
}
