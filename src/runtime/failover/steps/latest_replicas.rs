//! Phase 3.1, getting the latest slaves: how far each survivor read and applied the old
//! master's binlog (kept for phase 3.3 of the same executor).

use super::*;
use crate::engine::failover as plan;

impl RunCtx {
    /// Phase 3.1: how far each replica got (read and applied). Right after phase 2 in this
    /// executor, what phase 2 read once the old master was taken out, on the sessions that
    /// stopped the IO threads (when this step would read them, without connecting again);
    /// else read now.
    pub(super) async fn latest_replicas(&mut self, run: &FailoverRun) -> StepResult {
        let (obs, when) = match self.observed_at_fence.take() {
            Some((step, obs)) if step + 1 == self.steps_run => (
                obs,
                " (as phase 2 read them once the old master was taken out)",
            ),
            _ => (self.observe(run).await?, ""),
        };
        self.latest = Some(obs.clone());
        plan::latest::report(&self.survivors(run), &obs)
            .map(|r| format!("{r}{when}"))
            .map_err(abort)
    }
}
