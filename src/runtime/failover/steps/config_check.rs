//! Phase 1, configuration check: the old master still dead, every survivor answering and
//! replicating from it (the planner's verdict on what was gathered here). Nothing is touched.

use super::*;
use crate::engine::failover as plan;
use crate::model::MasterProbe;

impl RunCtx {
    /// Phase 1: the master is still dead, every replica answers and replicates from it (or is
    /// `ignore_fail`, then left out: the report's `failed_replicas` names it for every later
    /// phase), and the recovery mode is supported (the verdict is the planner's).
    pub(super) async fn config_check(
        &mut self,
        run: &FailoverRun,
    ) -> Result<StepReport, StepError> {
        plan::check::ssh_needed(
            self.mode(),
            self.ssh_available()
                .as_ref()
                .map(|_| ())
                .map_err(String::as_str),
        )
        .map_err(abort)?;
        let old = self.server(&run.old_master)?;
        let old_login = self.login(&old);
        // MHA's double check, bounded tightly: a master that came back answers at once.
        let (probe, obs) = tokio::join!(old_login.connect(OLD_MASTER_CONNECT), self.observe(run));
        let probe = match probe {
            Ok(s) => {
                s.close().await;
                MasterProbe::Answered
            }
            Err(e) if e.proves_alive() => MasterProbe::ProvesAlive(e.to_string()),
            Err(e) => {
                if !e.is_refused() {
                    self.old_mysqld_silent = Some((std::time::Instant::now(), e.to_string()));
                }
                MasterProbe::Unreachable(e.to_string())
            }
        };
        let obs = obs.map_err(|e| e.to_string());
        let checked = plan::check::verdict(&CheckFacts {
            old: &old,
            survivors: &self.survivors(run),
            probe: &probe,
            observed: obs.as_ref().map_err(String::as_str),
            forced: run.forced.as_deref(),
            check_repl_filter: self.group.spec.failover.check_repl_filter,
        })
        .map_err(abort)?;
        Ok(StepReport {
            detail: checked.detail,
            statement: None,
            failed_replicas: checked.left_out,
        })
    }
}
