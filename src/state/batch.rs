//! The journal's entries applied to one run, alone or several in one log entry.
//!
//! Each failover step is journaled before and after it runs, and each journal entry is one
//! Raft commit: on the lab's hosts 4–9 ms under a failover's load, with a flush on every
//! manager. Phases 3.1–3.3 only read (what phase 2 read as it took the old master out, the dead
//! master's binlog read ahead) and decide: the leader acts them without waiting for their
//! begins, gathers their entries, and commits them with the next begin — the first that has
//! side effects — in one [`Cmd::JournalBatch`]. The batch applies all or nothing, so the
//! journal never shows a step begun that the batch's later entries did not end, nor a decision
//! without its step's end; what a new leader finds is either none of it (it re-checks from the
//! last committed step, as after any crash) or all of it.

use super::apply::Applied;
use super::journal::FailoverRun;
use super::rejection::JournalError;
use super::{ClusterState, Cmd};

/// A manager that can apply [`Cmd::JournalBatch`] registers this feature; a leader gathers
/// entries only when every member did (an older build would refuse the entry and stop
/// applying its log).
pub const FEATURE_JOURNAL_BATCH: &str = "journal-batch";

/// Whether `cmd` is a journal entry a batch may hold.
pub fn batchable(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::StepBegin { .. }
            | Cmd::StepEnd { .. }
            | Cmd::StepAdvance { .. }
            | Cmd::Decide { .. }
            | Cmd::RecordRecovery { .. }
    )
}

/// The run a journal entry is for.
fn run_of(cmd: &Cmd) -> Option<u64> {
    match cmd {
        Cmd::StepBegin { run, .. }
        | Cmd::StepEnd { run, .. }
        | Cmd::StepAdvance { run, .. }
        | Cmd::Decide { run, .. }
        | Cmd::RecordRecovery { run, .. } => Some(*run),
        _ => None,
    }
}

impl FailoverRun {
    /// One journal entry's rule, applied to this run (its own entries only). Also how the
    /// failover driver sees the run with the entries it gathered but has not committed yet.
    pub fn apply_journal(&mut self, cmd: &Cmd, at: u64) -> Applied {
        if run_of(cmd) != Some(self.id) {
            return Err(JournalError::NotInBatch {
                run: self.id,
                what: cmd.to_string(),
            }
            .into());
        }
        match cmd {
            Cmd::StepBegin {
                step, term, node, ..
            } => {
                self.begin_step(*step, *term, *node, at)?;
                Ok(true)
            }
            Cmd::StepEnd {
                step,
                term,
                outcome,
                ..
            } => {
                self.end_step(*step, *term, outcome.clone(), at)?;
                Ok(true)
            }
            Cmd::StepAdvance {
                step,
                term,
                outcome,
                node,
                ..
            } => {
                // All or nothing: the step ends only if the next one can begin.
                let mut next = self.clone();
                next.end_step(*step, *term, outcome.clone(), at)?;
                let n = next.first_unfinished().ok_or(JournalError::NoNextStep {
                    run: self.id,
                    step: *step,
                })?;
                next.begin_step(n, *term, *node, at)?;
                *self = next;
                Ok(true)
            }
            Cmd::Decide { decided, .. } => Ok(self.decide(decided.clone())?),
            Cmd::RecordRecovery { note, .. } => {
                if self.state != super::journal::RunState::Running {
                    return Err(JournalError::RunNotRunning { run: self.id }.into());
                }
                Ok(self.recovery.record(note)?)
            }
            other => Err(JournalError::NotInBatch {
                run: self.id,
                what: other.to_string(),
            }
            .into()),
        }
    }
}

impl ClusterState {
    /// [`Cmd::JournalBatch`]: every entry applied in order to a copy of the run, which replaces
    /// it only if none was refused (the first refusal is the batch's). An empty batch changes
    /// nothing.
    pub(super) fn journal_batch(&mut self, run: u64, entries: &[Cmd], at: u64) -> Applied {
        let r = self.run_mut(run)?;
        let mut next = r.clone();
        let mut changed = false;
        for e in entries {
            changed |= next.apply_journal(e, at)?;
        }
        *r = next;
        Ok(changed)
    }
}

// Tested with the journal's other rules (state/journal_tests.rs).
