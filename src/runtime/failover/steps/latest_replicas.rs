//! Phase 3.1, getting the latest slaves: how far each survivor read and applied the old
//! master's binlog (kept for phase 3.3 of the same executor).

use super::*;
use crate::engine::failover as plan;

impl RunCtx {
    /// Phase 3.1: how far each replica got (read and applied).
    pub(super) async fn latest_replicas(&mut self, run: &FailoverRun) -> StepResult {
        let obs = self.observe(run).await?;
        self.latest = Some(obs.clone());
        plan::latest::report(&self.survivors(run), &obs).map_err(abort)
    }
}
