//! Online switchover, a failure before the point of no return (the new master not yet the
//! writable master): the old master takes writes again — the global read lock released,
//! read_only=0, the VIP served there again if phase 2 fenced it, the online change script's
//! `start` naming it as the master — and the new master, if phase 3 stopped its replication,
//! replicates again. Journaled as `RolledBack`; the run then fails without blocking automatic
//! failover (nothing changed).
//!
//! Never when the new master may have taken writes: if phase 3 began and the new master is
//! writable, or cannot be read, the old master stays read_only and the run fails blocked for
//! an operator to decide (two writable masters are worse than none).
//!
//! Known limit: a leader frozen between its check and its `read_only=0` on the new master
//! (phase 3), and thawed after the next leader rolled back, would still send that statement on
//! its open session; leases make the window the length of a freeze, not of a normal step.

use super::*;
use crate::state::journal::StepState;
use crate::state::switchover::{RolledBack, SwitchEvent};

/// Tries of the old master's part (a connection that fails once must not leave the group
/// without a writable master), and the pause between them.
const TRIES: u32 = 3;
const PAUSE: Duration = Duration::from_millis(300);

impl RunCtx {
    /// Undoes phase 2 when that is safe; Err says why it is not (or what failed before the old
    /// master took writes again).
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
        let begun = |name: StepName| {
            run.steps
                .iter()
                .any(|s| s.name == name && s.state != StepState::Pending)
        };
        let phase3_begun = begun(StepName::SwitchMaster);
        let mut lines = Vec::new();
        if let (true, Some(nm)) = (phase3_begun, &sw.new_master) {
            let nm = self.server(nm).map_err(|e| e.to_string())?;
            lines.extend(self.new_master_untouched(&nm).await?);
        }
        let old = self.server(&run.old_master).map_err(|e| e.to_string())?;
        let mut last = String::new();
        let mut writable = false;
        for i in 0..TRIES {
            if i > 0 {
                tokio::time::sleep(PAUSE).await;
            }
            match self.old_master_writable(&old, &sw).await {
                Ok(l) => {
                    lines.extend(l);
                    writable = true;
                    break;
                }
                Err(StepError::Lost(why)) => return Err(format!("leadership lost: {why}")),
                Err(e) => last = e.to_string(),
            }
        }
        if !writable {
            if phase3_begun {
                return Err(format!(
                    "{} could not be made writable again: {last}",
                    old.name
                ));
            }
            // Nothing but the old master was touched, and it does not answer: the run ends
            // without blocking, and the monitor (back once the run is over) suspects it as
            // any master — a corroborated death is failed over as usual.
            lines.push(format!(
                "{} does not answer ({last}); nothing else was changed: if it is dead, the \
                 monitor's verdict fails it over",
                old.name
            ));
        } else {
            let frozen_fenced = sw.frozen.as_ref().map(|f| f.vip_fenced);
            // Phase 2 fenced the VIP (or may have: it failed before journaling): served again.
            if frozen_fenced != Some(false) && begun(StepName::RejectUpdates) {
                match self.vip_unfence(&old).await {
                    Ok(Some(l)) => lines.push(l),
                    Ok(None) => {}
                    Err(e) => lines.push(format!(
                        "{}: the VIP could not be served again ({e}): remove its iptables \
                         REJECT rule on that host, or add the address back",
                        old.name
                    )),
                }
            }
            // MHA's sample script exits 10 on a failed `start` for this reason: the old master
            // takes writes again whatever the script says.
            let new_slave = sw.options.orig_master_is_new_slave;
            match self
                .online_change_script("start", &old, &old, new_slave)
                .await
            {
                Ok(Some(l)) => lines.push(l),
                Ok(None) => {}
                Err(e) => lines.push(format!("{e} (the old master takes writes all the same)")),
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

    /// Phase 3 began: the new master must provably not be the writable master (read_only,
    /// read now); its replication, if phase 3 stopped it, runs again.
    async fn new_master_untouched(&self, nm: &ServerSpec) -> Result<Vec<String>, String> {
        let mut s = self.connect(nm).await.map_err(|e| {
            format!(
                "cannot tell whether the new master {} took writes ({e}): the old master \
                 stays read_only",
                nm.name
            )
        })?;
        let info = s.server_info().await.map_err(|e| {
            format!(
                "cannot tell whether the new master {} took writes ({e}): the old master \
                 stays read_only",
                nm.name
            )
        })?;
        if !info.read_only {
            return Err(format!(
                "the new master {} is writable (it may have taken writes): the old master \
                 stays read_only; finish the switch by hand",
                nm.name
            ));
        }
        let mut lines = Vec::new();
        if let Some(r) = &info.replica {
            if r.io_thread == crate::model::IoThread::No || !r.sql_thread {
                self.guard().await.map_err(|e| e.to_string())?;
                s.start_replica().await.map_err(|e| e.to_string())?;
                lines.push(format!("{}: replication started again", nm.name));
            }
        }
        s.close().await;
        Ok(lines)
    }

    /// The old master's lock released and read_only=0.
    async fn old_master_writable(
        &mut self,
        old: &ServerSpec,
        sw: &crate::state::switchover::Switch,
    ) -> Result<Vec<String>, StepError> {
        let mut lines = Vec::new();
        let lock_session = sw.frozen.as_ref().and_then(|f| f.lock_session);
        if let Some(l) = self.release_lock(old, lock_session).await? {
            lines.push(l);
        }
        let mut s = self.connect(old).await.map_err(abort)?;
        self.guard().await?;
        s.set_read_only(false).await.map_err(abort)?;
        s.close().await;
        lines.push(format!("{}: read_only=0, taking writes again", old.name));
        Ok(lines)
    }
}
