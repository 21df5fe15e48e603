//! Replicated commands: the one way to change [`super::ClusterState`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::audit::AuditEntry;
use super::group::{GroupSpec, Topology};
use super::journal::{Decided, RunKind, StepName, StepOutcome};
use super::recovery::RecoveryNote;
use super::rejection::Rejection;
use crate::model::Verdict;

/// A change to the replicated state. New capabilities add variants; existing variants keep their
/// serde shape (the log and snapshots on disk hold them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Cmd {
    /// Name the cluster (once).
    SetClusterName { name: String },
    /// A manager declares (or updates) its address, zone, the address of its separate admin
    /// listener if it has one, and the features its build knows (an older build's registration
    /// has neither; one added by `member add` has none until the manager registers itself).
    RegisterManager {
        id: u64,
        addr: String,
        zone: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admin_addr: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        features: Vec<String>,
        /// Sent by the manager itself (registration.rs), which it does only after it saved a
        /// leader's term: from then on it has promised something (ManagerInfo::ran).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_self: bool,
    },
    /// A removed manager's metadata is dropped.
    ForgetManager { id: u64 },
    /// Add (or, with `replace`, update) a replication group with the topology the leader
    /// discovered for it.
    PutGroup {
        spec: Box<GroupSpec>,
        topology: Box<Topology>,
        replace: bool,
        /// Refuse a server another group manages (one server, one group: state/ownership.rs).
        /// Absent from entries written before the rule, which apply as they always did.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        exclusive: bool,
    },
    /// Stop managing a group.
    RemoveGroup { name: String },
    /// The leader's detector opened suspicion round `round` on the group's master.
    OpenSuspicion {
        group: String,
        round: u64,
        since_ms: u64,
    },
    /// The master answers the leader again: round `round` (suspect, or unreachable-but-alive)
    /// is over and the health is alive.
    CloseSuspicion { group: String, round: u64 },
    /// The outcome of a suspicion round, with its evidence. At most one per round.
    RecordVerdict {
        group: String,
        verdict: Box<Verdict>,
    },
    /// A Dead verdict and, in the same entry, the automatic failover it starts: the verdict's
    /// rule, then `BeginFailover`'s (old master and anti-flap window from the group's state),
    /// whose refusal leaves the verdict standing (state/verdict_begins.rs). Proposed only when
    /// every member knows it (FEATURE_VERDICT_BEGINS).
    RecordVerdictAndBegin {
        group: String,
        verdict: Box<Verdict>,
    },
    /// Start a failover run of a group (refused while another is active; an automatic one is
    /// refused, and the refusal recorded, when blocked or within the anti-flap window).
    BeginFailover {
        group: String,
        kind: RunKind,
        old_master: String,
        verdict_round: Option<u64>,
        anti_flap_ms: u64,
        /// The operator's `--new-master` (manual runs): MHA's forced host.
        #[serde(default)]
        forced: Option<String>,
    },
    /// A step begins, in the leader's term: no side effect of the step before this commits.
    StepBegin {
        run: u64,
        step: StepName,
        term: u64,
        node: u64,
    },
    /// A step ends with its outcome (only in the term it runs in).
    StepEnd {
        run: u64,
        step: StepName,
        term: u64,
        outcome: StepOutcome,
    },
    /// Ends `step` (done) and begins the run's next step in the same entry: one commit instead
    /// of two between steps on the critical path. No side effect of the next step runs before
    /// this entry is committed, exactly as with a separate begin.
    StepAdvance {
        run: u64,
        step: StepName,
        term: u64,
        outcome: StepOutcome,
        node: u64,
    },
    /// The decisions that shape data, once per run.
    Decide { run: u64, decided: Decided },
    /// Several journal entries of one run (StepBegin, StepEnd, StepAdvance, Decide,
    /// RecordRecovery), applied in order in one log entry, all or nothing (state/batch.rs).
    /// Proposed only when every member knows it (FEATURE_JOURNAL_BATCH).
    JournalBatch { run: u64, entries: Vec<Cmd> },
    /// A fact of the run's binlog recovery (salvage, diff placed, applied, coordinates).
    RecordRecovery { run: u64, note: RecoveryNote },
    /// The run ends: completed (every step finished) or failed (blocks automatic failover).
    FinishFailover { run: u64, failed: Option<String> },
    /// An operator acknowledges: clears a failed run's block and the anti-flap window.
    AckFailover { group: String },
    /// Maintenance mode on (state/pause.rs): automatic failover off, monitoring on, from the
    /// entry's time for `for_ms` (None: until resumed). Replaces a pause in force. Proposed
    /// only when every member knows it (FEATURE_PAUSE).
    PauseGroup {
        group: String,
        by: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    /// Maintenance mode off. A master that died while paused is suspected afresh: the usual
    /// corroboration, then the usual failover.
    ResumeGroup { group: String },
    /// `mhactl rejoin` made `server` (a server of the spec the topology left) a replica of
    /// `master`: it joins the topology as such — only if the group's master and its last
    /// change are still the ones the rejoin read (`updated_at_ms`). Proposed only when every
    /// member knows it (state/rejoin.rs: FEATURE_REJOIN).
    RejoinReplica {
        group: String,
        master: String,
        updated_at_ms: u64,
        server: Box<super::group::DiscoveredServer>,
    },
    /// Start an online switchover of a group whose master is alive (`mhactl switchover`).
    /// Proposed only when every member knows it (state/switchover.rs: FEATURE_SWITCHOVER).
    BeginSwitchover {
        group: String,
        old_master: String,
        options: super::switchover::SwitchOptions,
    },
    /// What a switchover step did that its resumption must know (state/switchover.rs).
    RecordSwitch {
        run: u64,
        event: super::switchover::SwitchEvent,
    },
    /// An admin write the leader served (its audit trail; the state keeps the last
    /// [`super::audit::AUDIT_HISTORY`]). Proposed only when every member knows this command.
    Audit { entry: Box<AuditEntry> },
    /// The runs history of `group` is bounded: its ended runs with an id below `before` go,
    /// except those state/history.rs keeps (the newest completed and the newest failed one,
    /// the last master change, a run that answered the current Dead verdict), counted in
    /// `GroupFailover::pruned`. Proposed only when every member knows it (FEATURE_PRUNE_RUNS).
    PruneRuns { group: String, before: u64 },
}

/// One arm per command (the log's readable form), hence the length.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmd::SetClusterName { name } => write!(f, "set cluster name {name:?}"),
            Cmd::RegisterManager { id, addr, zone, .. } => {
                write!(f, "register manager {id} at {addr} in zone {zone:?}")
            }
            Cmd::ForgetManager { id } => write!(f, "forget manager {id}"),
            Cmd::PutGroup {
                spec,
                topology,
                replace,
                ..
            } => write!(
                f,
                "{} group {} ({} servers, master {})",
                if *replace { "update" } else { "add" },
                spec.name,
                spec.servers.len(),
                topology.master
            ),
            Cmd::RemoveGroup { name } => write!(f, "remove group {name}"),
            Cmd::OpenSuspicion { group, round, .. } => {
                write!(f, "group {group}: master suspect (round {round})")
            }
            Cmd::CloseSuspicion { group, round } => {
                write!(f, "group {group}: master answers again (round {round})")
            }
            Cmd::BeginFailover {
                group,
                kind,
                old_master,
                ..
            } => {
                write!(f, "group {group}: begin {kind:?} failover of {old_master}")
            }
            Cmd::StepBegin {
                run,
                step,
                term,
                node,
            } => write!(
                f,
                "run {run}: {} begins (term {term}, node {node})",
                step.phase()
            ),
            Cmd::StepEnd {
                run, step, outcome, ..
            } => write!(f, "run {run}: {} ends: {outcome:?}", step.phase()),
            Cmd::StepAdvance {
                run, step, outcome, ..
            } => write!(
                f,
                "run {run}: {} ends: {outcome:?}; the next step begins",
                step.phase()
            ),
            Cmd::Decide { run, decided } => write!(
                f,
                "run {run}: new master is {} ({})",
                decided.new_master, decided.rule
            ),
            Cmd::JournalBatch { run, entries } => {
                write!(f, "run {run}: {} journal entries in one:", entries.len())?;
                for (i, e) in entries.iter().enumerate() {
                    write!(f, "{} {e}", if i == 0 { "" } else { ";" })?;
                }
                Ok(())
            }
            Cmd::RecordRecovery { run, note } => match note {
                RecoveryNote::Salvage(s) => write!(f, "run {run}: salvage: {}", s.detail),
                RecoveryNote::Diff { server, diff } => write!(
                    f,
                    "run {run}: diff for {server}: {} transactions, {} bytes",
                    diff.transactions, diff.bytes
                ),
                RecoveryNote::Applied { server, detail } => {
                    write!(f, "run {run}: {server} applied its diff: {detail}")
                }
                RecoveryNote::NewMasterCoords { file, pos } => {
                    write!(f, "run {run}: new master coordinates {file}:{pos}")
                }
            },
            Cmd::FinishFailover { run, failed } => match failed {
                None => write!(f, "run {run}: completed"),
                Some(r) => write!(f, "run {run}: FAILED: {r}"),
            },
            Cmd::AckFailover { group } => write!(f, "group {group}: failover acknowledged"),
            Cmd::PauseGroup {
                group, by, reason, ..
            } => write!(f, "group {group}: paused by {by}: {reason}"),
            Cmd::ResumeGroup { group } => write!(f, "group {group}: resumed"),
            Cmd::RejoinReplica { group, server, .. } => write!(
                f,
                "group {group}: {} rejoined as a replica of {}",
                server.name,
                server.replicates_from.as_deref().unwrap_or("?")
            ),
            Cmd::BeginSwitchover {
                group, old_master, ..
            } => write!(
                f,
                "group {group}: online switchover from {old_master} begins"
            ),
            Cmd::RecordSwitch { run, event } => write!(f, "run {run}: {event:?}"),
            Cmd::PruneRuns { group, before } => {
                write!(f, "group {group}: ended runs before {before} pruned")
            }
            Cmd::Audit { entry } => {
                let e = entry.bounded();
                write!(
                    f,
                    "audit: {} from {} {} {}: {}",
                    e.who, e.from, e.rpc, e.what, e.result
                )
            }
            Cmd::RecordVerdict { group, verdict } => {
                write!(
                    f,
                    "group {group}: verdict {:?} (round {}): {}",
                    verdict.kind, verdict.round, verdict.reason
                )
            }
            Cmd::RecordVerdictAndBegin { group, verdict } => {
                write!(
                    f,
                    "group {group}: verdict {:?} (round {}): {}; its automatic failover begun \
                     (or the refusal recorded) in the same entry",
                    verdict.kind, verdict.round, verdict.reason
                )
            }
        }
    }
}

/// What a Raft log entry carries: the command and the leader's wall-clock time when it was
/// proposed. Apply uses that time, never its own clock, so replay is deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub at_ms: u64,
    pub cmd: Cmd,
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @{}ms", self.cmd, self.at_ms)
    }
}

/// The outcome of applying one command, returned to the proposer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CmdResult {
    /// The state changed.
    Ok,
    /// The command was valid but already in effect.
    #[default]
    Unchanged,
    /// The command was refused by the state's rules; nothing changed.
    Rejected(Rejection),
}
