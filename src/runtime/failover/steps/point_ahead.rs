//! Phase 3.5 points the other survivors at the new master ahead of phase 4 (GTID groups).
//!
//! With lossless semi-sync the new master's first write waits for a replica's ACK. A replica
//! pointed only in phase 4 starts its STOP SLAVE / CHANGE MASTER / START SLAVE and its IO
//! thread's connect (25–30 ms on the lab's hosts) after the new master is writable and 3.5's
//! end is committed, and the first client waits for all of it. Pointed here instead, alongside
//! read_only=0 and the VIP's add, the replica is usually connected when the first client comes.
//!
//! Why it is safe:
//! - It starts only once the new master holds everything it will serve. It executed the target
//!   (every survivor's transactions), the salvaged binlog and the run's epoch are applied, and
//!   its semi-sync source side is on. So no replica is ahead of it, and GTID auto-positioning
//!   fetches only what each replica lacks. The replicas register as semi-sync before the first
//!   write they must acknowledge.
//! - A failure here is not the step's failure. Phase 4 repoints whatever does not replicate
//!   from the new master with its IO thread running, and waits for every replica to reach the
//!   target, as before.
//! - File/position groups keep MHA's order: each replica's diff is applied first, in phase 4,
//!   from the coordinates 3.5 records.

use super::*;
use crate::model::{IoThread, ReplicaAction, ReplicaStart};

/// How long pointing one replica ahead may take (its statements and its IO thread's connect)
/// before it is left to phase 4.
const AHEAD: Duration = Duration::from_secs(1);
/// Between two readings of a pointed replica's IO thread.
const IO_POLL: Duration = Duration::from_millis(5);

impl RunCtx {
    /// Points every other survivor at the new master `nm`, in parallel. Yields a line per
    /// replica pointed; one not pointed is logged and left to phase 4.
    pub(super) async fn point_replicas_ahead(
        &self,
        run: &FailoverRun,
        nm: &ServerSpec,
    ) -> Vec<String> {
        if self.mode() == ReplicationMode::FilePos {
            return Vec::new();
        }
        let others: Vec<ServerSpec> = self
            .survivors(run)
            .into_iter()
            .filter(|s| s.name != nm.name)
            .collect();
        join_all(others.iter().map(|r| async move {
            match tokio::time::timeout(AHEAD, self.point_one_ahead(r, nm)).await {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => {
                    tracing::info!(server = %r.name, error = %e, "not pointed at the new master ahead: phase 4 repoints it");
                    None
                }
                Err(_) => {
                    tracing::info!(server = %r.name, "pointing at the new master ahead took over {AHEAD:?}: phase 4 repoints it");
                    None
                }
            }
        }))
        .await
        .into_iter()
        .flatten()
        .collect()
    }

    /// One replica: pointed at `nm` unless it replicates from it already (phase 4 says so
    /// then), and waited for until its IO thread runs (phase 4 leaves alone only a replica
    /// whose IO thread runs; one still connecting would be repointed a second time).
    async fn point_one_ahead(
        &self,
        r: &ServerSpec,
        nm: &ServerSpec,
    ) -> Result<Option<String>, StepError> {
        let mut s = self.connect(r).await.map_err(abort)?;
        let (st, period) = match s.replica_pulse().await.map_err(abort)? {
            Some((st, p)) => (Some(st), p.heartbeat_period_ms),
            None => (None, None),
        };
        let start = ReplicaStart::AutoPosition;
        if plan::replicas::action(st.as_ref(), nm, &start) == ReplicaAction::LeaveAlone {
            s.close().await;
            return Ok(None);
        }
        self.point_at(&mut s, nm, &start, period).await?;
        tracing::debug!(server = %r.name, "repointed ahead");
        loop {
            match s.replica_status().await.map_err(abort)? {
                Some(x) if x.io_thread == IoThread::Yes => break,
                Some(x) if x.io_thread == IoThread::No => {
                    return Err(abort(format!(
                        "its IO thread stopped: {} {}",
                        x.last_io_errno, x.last_io_error
                    )))
                }
                _ => tokio::time::sleep(IO_POLL).await,
            }
        }
        s.close().await;
        Ok(Some(format!(
            "{}: replicating from {} (pointed ahead of phase 4)",
            r.name, nm.name
        )))
    }
}
