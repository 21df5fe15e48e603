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
//!   its semi-sync source side is on before any replica connects. So no replica is ahead of
//!   it, and GTID auto-positioning fetches only what each replica lacks. A replica usually
//!   registers as a semi-sync replica before the first client write; one that registers later
//!   acknowledges that write when it reaches it (lossless either way).
//! - A failure here is not the step's failure: it is said in 3.5's line, and phase 4 repoints
//!   whatever does not replicate from the new master with its IO thread running, and waits for
//!   every replica to reach the target, as before.
//! - File/position groups keep MHA's order: each replica's diff is applied first, in phase 4,
//!   from the coordinates 3.5 records.
//!
//! Unlike MHA, a 3.5 that fails after this point (the VIP's add, `master_ip_failover_script
//! --command=start`) leaves the survivors replicating from the chosen new master, which is
//! writable by then: the run is finished by hand from there (docs/operations.md).

use super::replicas_recovery::status_and_period;
use super::*;
use crate::model::{IoThread, ReplicaAction, ReplicaStart};

/// How long a pointed replica's IO thread may take to run (its statements have their own
/// bounds: cut off midway, a STOP SLAVE would still finish on the server, racing phase 4).
const AHEAD: Duration = Duration::from_secs(1);
/// Between two readings of a pointed replica's IO thread.
const IO_POLL: Duration = Duration::from_millis(5);

impl RunCtx {
    /// Points every other survivor at the new master `nm`, in parallel. Yields a line per
    /// replica pointed, or not pointed (left to phase 4); none for one that replicates from
    /// it already (phase 4 says so).
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
            match self.point_one_ahead(r, nm).await {
                Ok(line) => line,
                Err(StepError::Lost(e)) => {
                    tracing::info!(server = %r.name, error = %e, "not pointed at the new master ahead: this step stops");
                    None
                }
                Err(e) => {
                    tracing::info!(server = %r.name, error = %e, "not pointed at the new master ahead: phase 4 repoints it");
                    Some(format!(
                        "{}: not pointed at {} ahead ({e}): phase 4 repoints it",
                        r.name, nm.name
                    ))
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
        let (st, period) = status_and_period(&mut s).await?;
        let start = ReplicaStart::AutoPosition;
        if plan::replicas::action(st.as_ref(), nm, &start) == ReplicaAction::LeaveAlone {
            s.close().await;
            return Ok(None);
        }
        self.point_at(&mut s, nm, &start, period).await?;
        tracing::debug!(server = %r.name, "repointed ahead");
        let running = tokio::time::timeout(AHEAD, async {
            loop {
                match s.replica_status().await.map_err(abort)? {
                    Some(x) if x.io_thread == IoThread::Yes => return Ok(()),
                    Some(x) if x.io_thread == IoThread::No => {
                        return Err(abort(format!(
                            "its IO thread stopped: {} {}",
                            x.last_io_errno, x.last_io_error
                        )))
                    }
                    _ => tokio::time::sleep(IO_POLL).await,
                }
            }
        })
        .await;
        match running {
            Ok(r) => r?,
            Err(_) => {
                return Err(abort(format!(
                    "its IO thread was not running {AHEAD:?} after START SLAVE"
                )))
            }
        }
        s.close().await;
        Ok(Some(format!(
            "{}: replicating from {} (pointed ahead of phase 4)",
            r.name, nm.name
        )))
    }
}
