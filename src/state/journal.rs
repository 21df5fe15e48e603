//! The failover journal in the replicated state (ARCHITECTURE.md "The failover journal"): a
//! run per failover, MHA's phases as steps, each begun (with the leader's term) before any side
//! effect and ended with its outcome; the decisions that shape data are taken once. This module
//! holds the data and the rules applied to it; the runner (runtime/) does the work.

use serde::{Deserialize, Serialize};

use super::rejection::JournalError;
pub use super::step::{RunKind, StepName};
use crate::model::Target;

/// MHA's last_failover_minute default: no second automatic failover of a group within it.
pub const DEFAULT_ANTI_FLAP_MS: u64 = 480 * 60 * 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running {
        term: u64,
        node: u64,
        started_at_ms: u64,
        attempts: u32,
    },
    Done {
        term: u64,
        node: u64,
        started_at_ms: u64,
        finished_at_ms: u64,
        detail: String,
        /// How many times the step was begun (more than 1: resumed by a new leader).
        #[serde(default)]
        attempts: u32,
        /// See [`StepReport::statement`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        statement: Option<String>,
        /// See [`StepReport::failed_replicas`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failed_replicas: Vec<String>,
    },
    Failed {
        term: u64,
        node: u64,
        finished_at_ms: u64,
        detail: String,
    },
    Skipped {
        detail: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: StepName,
    pub state: StepState,
}

/// Decisions that shape data, taken once per run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub new_master: String,
    pub rule: String,
    /// What every replica must reach (GTID set or binlog coordinates of the new master).
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    Running,
    Completed { at_ms: u64 },
    Failed { at_ms: u64, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRun {
    pub id: u64,
    /// The group's failover generation this run creates (the fencing token).
    pub epoch: u64,
    pub kind: RunKind,
    pub group: String,
    pub old_master: String,
    pub verdict_round: Option<u64>,
    /// The operator's forced new master (`mhactl failover --new-master`), if any.
    #[serde(default)]
    pub forced: Option<String>,
    pub decided: Option<Decided>,
    /// Binlog salvage and relay-log diffs, as they were done.
    #[serde(default)]
    pub recovery: crate::state::recovery::Recovery,
    pub steps: Vec<Step>,
    pub state: RunState,
    pub started_at_ms: u64,
    /// An online switchover's options and progress (state/switchover.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<super::switchover::Switch>,
}

/// What a done step reports: the detail an operator reads, and the facts other code needs,
/// as fields (never found again in the text).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepReport {
    pub detail: String,
    /// Phase 5: MHA's closing statement ("All other slaves should start replication from here.
    /// Statement should be: CHANGE MASTER TO …", password masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Phase 1: the `ignore_fail` servers left out of the run. Phase 4: the replicas whose
    /// recovery failed (MHA's "partially failed").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_replicas: Vec<String>,
}

impl From<&str> for StepReport {
    fn from(detail: &str) -> Self {
        detail.to_string().into()
    }
}

impl From<String> for StepReport {
    fn from(detail: String) -> Self {
        StepReport {
            detail,
            ..StepReport::default()
        }
    }
}

/// What a step ended with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    Done(StepReport),
    Failed { detail: String },
    Skipped { detail: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub at_ms: u64,
    pub kind: RunKind,
    pub reason: String,
}

/// A group's failover bookkeeping: its epoch (failover generation), the active run, the
/// anti-flap clock and what blocks automatic failover until an operator acknowledges it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupFailover {
    pub epoch: u64,
    pub active_run: Option<u64>,
    pub last_completed_at_ms: Option<u64>,
    /// A failed run (or an operator's hold) blocks automatic failover until `failover ack`.
    pub blocked: Option<String>,
    /// Refused automatic failovers, newest last (bounded).
    pub refusals: Vec<Refusal>,
    /// The last Dead-verdict round an automatic failover was begun (or refused) for: each
    /// verdict starts at most one attempt.
    pub handled_round: Option<u64>,
    /// Maintenance mode (`mhactl pause`): automatic failover off, monitoring on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<super::pause::Pause>,
    /// The ended runs the history no longer holds, counted (state/history.rs): the runs
    /// counters stay counters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<super::history::PrunedRuns>,
}

pub const REFUSAL_HISTORY: usize = 20;

impl GroupFailover {
    /// The pause in force at `now_ms` (an expired one is none).
    pub fn pause_at(&self, now_ms: u64) -> Option<&super::pause::Pause> {
        self.paused.as_ref().filter(|p| p.holds_at(now_ms))
    }

    /// Why an automatic failover may not start now, if it may not.
    pub fn refuse_auto(&self, now_ms: u64, anti_flap_ms: u64) -> Option<String> {
        if let Some(p) = self.pause_at(now_ms) {
            return Some(format!(
                "automatic failover is paused ({p}); mhactl resume lets it happen, mhactl \
                 failover fails over by hand"
            ));
        }
        if let Some(b) = &self.blocked {
            return Some(format!(
                "automatic failover is blocked until acknowledged (mhactl failover ack): {b}"
            ));
        }
        match self.last_completed_at_ms {
            Some(t) if now_ms < t.saturating_add(anti_flap_ms) => Some(format!(
                "last failover completed {} min ago, within the anti-flap window of {} min; \
                 acknowledge with mhactl failover ack to allow another",
                now_ms.saturating_sub(t) / 60_000,
                anti_flap_ms / 60_000
            )),
            _ => None,
        }
    }
}

impl FailoverRun {
    /// The servers phase 1 left out (`ignore_fail`), from its journaled report: every later
    /// phase, a resuming leader and the run's completion leave them out.
    pub fn left_out(&self) -> Vec<String> {
        self.failed_replicas_of(StepName::ConfigCheck)
    }

    /// The servers a done step reported as failed (or left out).
    pub fn failed_replicas_of(&self, step: StepName) -> Vec<String> {
        self.steps
            .iter()
            .find(|s| s.name == step)
            .and_then(|s| match &s.state {
                StepState::Done {
                    failed_replicas, ..
                } => Some(failed_replicas.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn new(
        id: u64,
        epoch: u64,
        kind: RunKind,
        group: &str,
        old_master: &str,
        verdict_round: Option<u64>,
        at_ms: u64,
    ) -> Self {
        FailoverRun {
            id,
            epoch,
            kind,
            group: group.to_string(),
            old_master: old_master.to_string(),
            verdict_round,
            forced: None,
            decided: None,
            recovery: Default::default(),
            steps: match kind {
                RunKind::Switchover => &StepName::SWITCHOVER[..],
                _ => &StepName::ALL[..],
            }
            .iter()
            .map(|n| Step {
                name: *n,
                state: StepState::Pending,
            })
            .collect(),
            state: RunState::Running,
            started_at_ms: at_ms,
            switch: None,
        }
    }

    /// Whether this run changed its group's master: it completed, or it is a switchover that
    /// failed after its new master took writes.
    pub fn changed_master(&self) -> bool {
        match self.state {
            RunState::Completed { .. } => self.decided.is_some(),
            RunState::Failed { .. } => {
                self.decided.is_some()
                    && self
                        .switch
                        .as_ref()
                        .is_some_and(|s| s.writable_at_ms.is_some())
            }
            RunState::Running => false,
        }
    }

    /// The highest term any step of this run was begun or ended in.
    fn max_term(&self) -> u64 {
        self.steps
            .iter()
            .filter_map(|s| match &s.state {
                StepState::Running { term, .. }
                | StepState::Done { term, .. }
                | StepState::Failed { term, .. } => Some(*term),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether any step that acts on servers (phase 2 on) was begun.
    pub fn touched_servers(&self) -> bool {
        self.steps.iter().any(|s| {
            !s.name.reads_only()
                && !matches!(s.state, StepState::Pending | StepState::Skipped { .. })
        })
    }

    /// Marks a pending step skipped (decided when the run begins: a step this run has no use
    /// for).
    pub fn skip(&mut self, step: StepName, detail: &str) {
        if let Some(s) = self
            .steps
            .iter_mut()
            .find(|s| s.name == step && s.state == StepState::Pending)
        {
            s.state = StepState::Skipped {
                detail: detail.to_string(),
            };
        }
    }

    /// The first step that is not finished: where a resumed run continues.
    pub fn first_unfinished(&self) -> Option<StepName> {
        self.steps
            .iter()
            .find(|s| !matches!(s.state, StepState::Done { .. } | StepState::Skipped { .. }))
            .map(|s| s.name)
    }

    /// How many times `step` has been begun while it runs (1 the first time; more: a new
    /// leader resumed it); 1 when it is not running.
    pub fn attempts(&self, step: StepName) -> u32 {
        self.steps
            .iter()
            .find(|s| s.name == step)
            .and_then(|s| match s.state {
                StepState::Running { attempts, .. } => Some(attempts),
                _ => None,
            })
            .unwrap_or(1)
    }

    /// Begins `step` in `term` on `node` (the manager that acts it: the leader, or the member
    /// it delegated the step to). Earlier steps must be finished; a step already running under
    /// an older term is taken over (a new leader resumes it: it re-checks, it does not
    /// re-decide); a stale term is refused.
    pub fn begin_step(
        &mut self,
        step: StepName,
        term: u64,
        node: u64,
        at_ms: u64,
    ) -> Result<(), JournalError> {
        if self.state != RunState::Running {
            return Err(JournalError::RunNotRunning { run: self.id });
        }
        if term < self.max_term() {
            return Err(JournalError::StaleTerm {
                run: self.id,
                term,
                reached: self.max_term(),
            });
        }
        if self.first_unfinished() != Some(step) {
            return Err(JournalError::OutOfOrder {
                run: self.id,
                step,
                next: self.first_unfinished(),
            });
        }
        let run = self.id;
        let s = self
            .steps
            .iter_mut()
            .find(|s| s.name == step)
            .ok_or(JournalError::NoSuchStep { run, step })?;
        s.state = match &s.state {
            StepState::Pending => StepState::Running {
                term,
                node,
                started_at_ms: at_ms,
                attempts: 1,
            },
            // A higher term takes the step over; within its own term the leader may begin it
            // again after losing track of its own commit, or on another manager when the one
            // it delegated the step to stopped answering (only the term's leader proposes, so
            // the term alone says the begin is legitimate; the node is the actor it names).
            StepState::Running {
                attempts,
                started_at_ms,
                ..
            } => StepState::Running {
                term,
                node,
                started_at_ms: *started_at_ms,
                attempts: attempts + 1,
            },
            other => {
                return Err(JournalError::CannotBegin {
                    step,
                    state: format!("{other:?}"),
                })
            }
        };
        Ok(())
    }

    /// Ends `step`, which must be running in the same `term` (a deposed leader's late end is
    /// refused).
    pub fn end_step(
        &mut self,
        step: StepName,
        term: u64,
        outcome: StepOutcome,
        at_ms: u64,
    ) -> Result<(), JournalError> {
        let run = self.id;
        let s = self
            .steps
            .iter_mut()
            .find(|s| s.name == step)
            .ok_or(JournalError::NoSuchStep { run, step })?;
        let (node, started_at_ms, attempts) = match &s.state {
            StepState::Running {
                term: t,
                node,
                started_at_ms,
                attempts,
            } if *t == term => (*node, *started_at_ms, *attempts),
            StepState::Running { term: t, .. } => {
                return Err(JournalError::WrongTerm {
                    step,
                    running: *t,
                    term,
                })
            }
            other => {
                return Err(JournalError::NotRunning {
                    step,
                    state: format!("{other:?}"),
                })
            }
        };
        s.state = match outcome {
            StepOutcome::Done(report) => StepState::Done {
                term,
                node,
                started_at_ms,
                finished_at_ms: at_ms,
                detail: report.detail,
                attempts,
                statement: report.statement,
                failed_replicas: report.failed_replicas,
            },
            StepOutcome::Failed { detail } => StepState::Failed {
                term,
                node,
                finished_at_ms: at_ms,
                detail,
            },
            StepOutcome::Skipped { detail } => StepState::Skipped { detail },
        };
        Ok(())
    }

    /// Records the decisions once; the same decision again is a no-op, a different one refused.
    pub fn decide(&mut self, d: Decided) -> Result<bool, JournalError> {
        match &self.decided {
            None => {
                self.decided = Some(d);
                Ok(true)
            }
            Some(x) if *x == d => Ok(false),
            Some(x) => Err(JournalError::AlreadyDecided {
                run: self.id,
                new_master: x.new_master.clone(),
                rule: x.rule.clone(),
            }),
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
