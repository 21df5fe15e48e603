//! Phase 1, configuration check: the old master still dead, every survivor answering and
//! replicating from it (the planner's verdict on what was gathered here). Nothing is touched.

use std::future::Future;

use tracing::Instrument;

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
        let reads = match self
            .check_ahead
            .take()
            .filter(|a| a.step + 1 == self.steps_run)
        {
            Some(mut ahead) => (&mut ahead.task)
                .await
                .map_err(|e| abort(format!("phase 1's reads: {e}")))?,
            None => self.check_reads(run)?.await,
        };
        let old = self.server(&run.old_master)?;
        let (probe, obs) = (reads.probe, reads.observed);
        let probe = match probe {
            Ok(()) => MasterProbe::Answered,
            Err(e) if e.proves_alive() => MasterProbe::ProvesAlive(e.to_string()),
            Err(e) => {
                if !e.is_refused() {
                    self.old_mysqld_silent = Some((reads.at, e.to_string()));
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

    /// Phase 1's reads begun while its begin is committed (before this context's next step):
    /// reading changes nothing, and what they found is judged only once the begin is
    /// committed, as the phase itself would have read it a few milliseconds later.
    pub fn begin_check_ahead(&mut self, run: &FailoverRun) {
        if let Ok(reads) = self.check_reads(run) {
            self.check_ahead = Some(CheckAhead {
                step: self.steps_run,
                task: tokio::spawn(reads.instrument(tracing::Span::current())),
            });
        }
    }

    /// MHA's double check of the old master, bounded tightly (a master that came back answers
    /// at once), and every survivor read, at the same time.
    fn check_reads(
        &self,
        run: &FailoverRun,
    ) -> Result<impl Future<Output = CheckReads> + Send + 'static, StepError> {
        let old = self.server(&run.old_master)?;
        let old_login = self.login(&old);
        let local = self.node.local.clone();
        let spec = self.group.spec.clone();
        let old_master = run.old_master.clone();
        let left_out = run.left_out();
        Ok(async move {
            let probe = async {
                let s = old_login.connect(OLD_MASTER_CONNECT).await?;
                s.close().await;
                Ok(())
            };
            let observed = observe_survivors(&local, &spec, &old_master, &left_out);
            let (probe, observed) = tokio::join!(probe, observed);
            CheckReads {
                probe,
                at: std::time::Instant::now(),
                observed,
            }
        })
    }
}

/// Phase 1's reads: the old master's double check (Ok: it answered) and when it ended, and
/// the survivors.
pub(super) struct CheckReads {
    probe: Result<(), MysqlError>,
    at: std::time::Instant,
    observed: Result<Observations, StepError>,
}

/// Phase 1's reads begun ahead ([`RunCtx::begin_check_ahead`]) and the step counter then.
pub(super) struct CheckAhead {
    step: u64,
    task: tokio::task::JoinHandle<CheckReads>,
}

impl Drop for CheckAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
