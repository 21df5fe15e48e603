//! Online switchover, a failure before the point of no return (the new master not yet the
//! writable master): the old master takes writes again — the global read lock released,
//! read_only=0, the online change script's `start` naming it as the master — and the new
//! master, if phase 3 stopped its replication, replicates again. Journaled as `RolledBack`;
//! the run then fails without blocking automatic failover (nothing changed).
//!
//! Never when the new master may have taken writes: if phase 3 began and the new master is
//! writable, or cannot be read, the old master stays read_only and the run fails blocked for
//! an operator to decide (two writable masters are worse than none).

use super::*;
use crate::state::journal::StepState;
use crate::state::switchover::{RolledBack, SwitchEvent};

impl RunCtx {
    /// Undoes phase 2 when that is safe; Err says why it is not (or what failed).
    pub async fn roll_back_switch(&mut self, run: &FailoverRun) -> Result<String, String> {
        let Some(sw) = run.switch.clone() else {
            return Err("not a switchover".into());
        };
        if let Some(rb) = &sw.rolled_back {
            return Ok(rb.detail.clone());
        }
        if sw.writable_at_ms.is_some() {
            return Err("the new master took over: the switch only goes forward".into());
        }
        let phase3_begun = run
            .steps
            .iter()
            .any(|s| s.name == StepName::SwitchMaster && s.state != StepState::Pending);
        let mut lines = Vec::new();
        if let (true, Some(nm)) = (phase3_begun, &sw.new_master) {
            let nm = self.server(nm).map_err(|e| e.to_string())?;
            let mut s = self.connect(&nm).await.map_err(|e| {
                format!(
                    "cannot tell whether the new master {} took writes ({e}): the old master \
                     stays read_only",
                    nm.name
                )
            })?;
            let info = s.server_info().await.map_err(|e| e.to_string())?;
            if !info.read_only {
                return Err(format!(
                    "the new master {} is writable (it may have taken writes): the old master \
                     stays read_only; finish the switch by hand",
                    nm.name
                ));
            }
            if let Some(r) = &info.replica {
                if r.io_thread == crate::model::IoThread::No || !r.sql_thread {
                    self.guard().await.map_err(|e| e.to_string())?;
                    s.start_replica().await.map_err(|e| e.to_string())?;
                    lines.push(format!("{}: replication started again", nm.name));
                }
            }
            s.close().await;
        }
        let old = self.server(&run.old_master).map_err(|e| e.to_string())?;
        self.guard().await.map_err(|e| e.to_string())?;
        let blocking_begun = self.switch_blocking_begun(run);
        if let Some(mut lock) = self.switch_lock.take() {
            let _ = lock.unlock_tables().await;
            lock.close().await;
            lines.push(format!("{}: UNLOCK TABLES", old.name));
        } else if blocking_begun {
            lines.push(self.release_stale_lock(&old).await);
        }
        if blocking_begun {
            let mut s = self.connect(&old).await.map_err(|e| e.to_string())?;
            s.set_read_only(false).await.map_err(|e| e.to_string())?;
            s.close().await;
            lines.push(format!("{}: read_only=0, taking writes again", old.name));
            if let Some(l) = self
                .online_change_script("start", &old, &old)
                .await
                .map_err(|e| e.to_string())?
            {
                lines.push(l);
            }
        }
        let detail = lines.join("; ");
        let rolled = Cmd::RecordSwitch {
            run: self.id,
            event: SwitchEvent::RolledBack(RolledBack {
                at_ms: crate::clock::now_ms(),
                detail: detail.clone(),
            }),
        };
        match self.commit(rolled).await.map_err(|e| e.to_string())? {
            CmdResult::Rejected(r) => Err(r.to_string()),
            _ => Ok(detail),
        }
    }

    /// Phase 2 began (writes may be blocked even if it journaled nothing yet).
    fn switch_blocking_begun(&self, run: &FailoverRun) -> bool {
        run.steps
            .iter()
            .any(|s| s.name == StepName::RejectUpdates && s.state != StepState::Pending)
    }
}
