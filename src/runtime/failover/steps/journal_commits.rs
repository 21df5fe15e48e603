//! How a failover context journals: entries committed now, or gathered while steps are acted
//! ahead of their begins and committed in one entry with the next begin (state/batch.rs); a
//! failed commit of gathered entries fails every later one of the context.

use super::{Authority, RunCtx, StepError};
use crate::state::{Cmd, CmdResult};

impl RunCtx {
    /// A step's journal entry (a decision, a recovery fact). While this context acts a step
    /// ahead of its begin, the entry is gathered with it (taken as accepted: the batch is
    /// applied all or nothing, and nothing acts on it before it is committed); otherwise it is
    /// committed now, after whatever was gathered.
    pub async fn commit(&self, cmd: Cmd) -> Result<CmdResult, StepError> {
        {
            let mut gathered = self.gathered.lock().expect("gathered entries");
            if !gathered.is_empty() && crate::state::batch::batchable(&cmd) {
                tracing::debug!(entry = %cmd, "journal entry gathered: committed with the next begin");
                gathered.push(cmd);
                return Ok(CmdResult::Ok);
            }
        }
        self.flush().await?;
        self.commit_one(cmd).await
    }

    /// Acting a step ahead of its begin: `cmd` (the previous step's end and this step's begin)
    /// is gathered instead of committed (only this run's journal entries: state/batch.rs).
    pub fn gather(&self, cmd: Cmd) {
        debug_assert!(crate::state::batch::batchable(&cmd));
        self.gathered.lock().expect("gathered entries").push(cmd);
    }

    /// Forgets what was gathered (phase 1 begun again on another manager: nothing of this
    /// node's attempt is journaled).
    pub fn discard_gathered(&self) {
        self.gathered.lock().expect("gathered entries").clear();
    }

    /// Commits the entries gathered so far and then `cmd` (a journal entry: in the same log
    /// entry), as the driver does with a step's end.
    pub async fn commit_journal(&self, cmd: Cmd) -> Result<CmdResult, StepError> {
        let mut failed = self.flushing.lock().await;
        if let Some(why) = failed.as_ref() {
            return Err(StepError::Lost(why.clone()));
        }
        let mut entries = std::mem::take(&mut *self.gathered.lock().expect("gathered entries"));
        let gathered = !entries.is_empty();
        entries.push(cmd);
        let res = self.commit_entries(entries).await;
        if gathered {
            *failed = not_journaled(&res);
        }
        res
    }

    /// Commits what was gathered (nothing to do when nothing was). A refusal stops the
    /// executor as a lost leadership does: the journal is not what this context acted on.
    /// Serialised: a second caller returns only once the first one's entries are committed.
    /// A failed commit fails every later one of this context too (a concurrent guard must not
    /// find the entries gone and take them for committed).
    pub(super) async fn flush(&self) -> Result<(), StepError> {
        let mut failed = self.flushing.lock().await;
        if let Some(why) = failed.as_ref() {
            return Err(StepError::Lost(why.clone()));
        }
        let entries = std::mem::take(&mut *self.gathered.lock().expect("gathered entries"));
        if entries.is_empty() {
            return Ok(());
        }
        let res = self.commit_entries(entries).await;
        *failed = not_journaled(&res);
        match (res, failed.as_ref()) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(why)) => Err(StepError::Lost(why.clone())),
            (Ok(_), None) => Ok(()),
        }
    }

    /// Commits `entries` in order: in one [`Cmd::JournalBatch`] when there are several and
    /// every member can apply one (checked again now: a member may have joined since they were
    /// gathered), else one by one, stopping at the first refusal, which is the result.
    async fn commit_entries(&self, mut entries: Vec<Cmd>) -> Result<CmdResult, StepError> {
        if entries.len() == 1 {
            return self.commit_one(entries.remove(0)).await;
        }
        let batch_known = crate::runtime::features::lacking(
            &self.node,
            crate::state::batch::FEATURE_JOURNAL_BATCH,
        )
        .is_none();
        if batch_known {
            return self
                .commit_one(Cmd::JournalBatch {
                    run: self.id,
                    entries,
                })
                .await;
        }
        let mut last = CmdResult::Unchanged;
        for cmd in entries {
            last = self.commit_one(cmd).await?;
            if matches!(last, CmdResult::Rejected(_)) {
                break;
            }
        }
        Ok(last)
    }

    /// Commits a journal entry in this term (through the leader when acting for it).
    async fn commit_one(&self, cmd: Cmd) -> Result<CmdResult, StepError> {
        let t = std::time::Instant::now();
        let r = self.commit_now(cmd).await;
        tracing::debug!(
            elapsed_us = t.elapsed().as_micros() as u64,
            "journal commit"
        );
        r
    }

    async fn commit_now(&self, cmd: Cmd) -> Result<CmdResult, StepError> {
        match &self.authority {
            Authority::Leader => self
                .node
                .raft
                .propose_in(self.term, cmd)
                .await
                .map_err(|e| StepError::Lost(e.to_string())),
            Authority::Delegate(auth) => crate::runtime::failover::delegate::commit_via_leader(
                &self.node, auth, self.id, self.term, &cmd,
            )
            .await
            .map_err(StepError::Lost),
        }
    }
}

/// Why a commit of gathered entries left them out of the journal, if it did: they are gone
/// from the context, so nothing it does from then on may take them for committed.
fn not_journaled(res: &Result<CmdResult, StepError>) -> Option<String> {
    match res {
        Err(e) => Some(format!(
            "the entries gathered ahead were not committed: {e}"
        )),
        Ok(CmdResult::Rejected(r)) => Some(format!(
            "the journal refused the entries gathered ahead (the run is not as this manager \
             acted on it): {r}"
        )),
        Ok(_) => None,
    }
}
