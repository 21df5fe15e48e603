//! Phase 3.5 points the other survivors at the new master ahead of phase 4 (GTID groups).
//!
//! With lossless semi-sync the new master's first write waits for a replica's ACK. A replica
//! pointed only in phase 4 starts its STOP SLAVE / CHANGE MASTER / START SLAVE and its IO
//! thread's connect (25–30 ms on the lab's hosts) after the new master is writable and 3.5's
//! end is committed, and the first client waits for all of it. Pointed here instead, the replica
//! is usually connected when the first client comes, in two moves:
//! - aimed (STOP SLAVE, CHANGE MASTER) as soon as the new master executed every survivor's
//!   transactions, alongside the new master's own last statements (its STOP SLAVE, the
//!   salvaged binlog, the epoch, semi-sync);
//! - started (START SLAVE, its IO thread's connect) once those are done and it is aimed,
//!   alongside read_only=0 and the VIP's add. The new master does not wait for the aiming: on
//!   the lab's shared disk a replica's CHANGE MASTER can outlast the new master's statements.
//!
//! Why it is safe:
//! - A replica's relay log goes with its CHANGE MASTER only once the new master executed the
//!   target, which holds everything any survivor received: nothing is lost with it.
//! - It starts only once the new master holds everything it will serve. It executed the target,
//!   the salvaged binlog and the run's epoch are applied, and its semi-sync source side is on
//!   before any replica connects. So no replica is ahead of it, and GTID auto-positioning
//!   fetches only what each replica lacks. A replica usually
//!   registers as a semi-sync replica before the first client write; one that registers later
//!   acknowledges that write when it reaches it (lossless either way).
//! - A failure here is not the step's failure: it is said in 3.5's line, and phase 4 repoints
//!   whatever does not replicate from the new master with its IO thread running, and waits for
//!   every replica to reach the target, as before.
//! - File/position groups keep MHA's order: each replica's diff is applied first, in phase 4,
//!   from the coordinates 3.5 records.
//!
//! Unlike MHA, a 3.5 that fails once the new master caught up leaves the other survivors
//! pointed at it: stopped, if it failed before the new master was ready (a retried 3.5, or
//! phase 4, points and starts them again); replicating, if it failed after (the VIP's add,
//! `master_ip_failover_script --command=start`), the new master writable by then. An aborted
//! run is finished by hand from there (docs/operations.md).

use super::replicas_recovery::status_and_period;
use super::*;
use crate::model::{IoThread, ReplicaAction, ReplicaStart};

/// How long a pointed replica's IO thread may take to run (its statements have their own
/// bounds: cut off midway, a STOP SLAVE would still finish on the server, racing phase 4).
const AHEAD: Duration = Duration::from_secs(1);
/// Between two readings of a pointed replica's IO thread.
const IO_POLL: Duration = Duration::from_millis(5);

/// A survivor phase 3.5 stopped and pointed at the new master, not started yet: started once
/// the new master is ready to serve it (semi-sync source side on, everything applied).
pub(super) struct Aimed {
    server: ServerSpec,
    session: Session,
}

/// What aiming a survivor came to: aimed, or a line for 3.5's report (none when it replicates
/// from the new master already, or leadership was lost).
type AimedOrLine = Result<Aimed, Option<String>>;

impl RunCtx {
    /// Stops every other survivor and points it at the new master `nm`, in parallel, without
    /// starting it: 3.5 runs this alongside the new master's last statements (its STOP SLAVE,
    /// the salvaged binlog, the epoch, semi-sync), once `nm` executed every survivor's
    /// transactions, so that only the START SLAVE remains for when `nm` can serve them.
    pub(super) async fn aim_replicas_ahead(
        &self,
        run: &FailoverRun,
        nm: &ServerSpec,
    ) -> Vec<AimedOrLine> {
        if self.mode() == ReplicationMode::FilePos {
            return Vec::new();
        }
        let others: Vec<ServerSpec> = self
            .survivors(run)
            .into_iter()
            .filter(|s| s.name != nm.name)
            .collect();
        join_all(others.into_iter().map(|r| async move {
            match self.aim_one_ahead(&r, nm).await {
                Ok(Some(session)) => Ok(Aimed { server: r, session }),
                Ok(None) => Err(None),
                Err(e) => Err(self.not_pointed(&r, nm, e)),
            }
        }))
        .await
    }

    /// Starts the survivors [`Self::aim_replicas_ahead`] aimed, in parallel. Yields a line per
    /// replica pointed, or not pointed (left to phase 4).
    pub(super) async fn start_replicas_ahead(
        &self,
        aimed: Vec<AimedOrLine>,
        nm: &ServerSpec,
    ) -> Vec<String> {
        join_all(aimed.into_iter().map(|a| async move {
            match a {
                Ok(Aimed {
                    server,
                    mut session,
                }) => match start_one_ahead(&mut session).await {
                    Ok(()) => {
                        session.close().await;
                        Some(format!(
                            "{}: replicating from {} (pointed ahead of phase 4)",
                            server.name, nm.name
                        ))
                    }
                    Err(e) => self.not_pointed(&server, nm, e),
                },
                Err(line) => line,
            }
        }))
        .await
        .into_iter()
        .flatten()
        .collect()
    }

    /// 3.5's line for a replica not pointed ahead: none when leadership was lost (the step
    /// stops).
    fn not_pointed(&self, r: &ServerSpec, nm: &ServerSpec, e: StepError) -> Option<String> {
        match e {
            StepError::Lost(e) => {
                tracing::info!(server = %r.name, error = %e, "not pointed at the new master ahead: this step stops");
                None
            }
            e => {
                tracing::info!(server = %r.name, error = %e, "not pointed at the new master ahead: phase 4 repoints it");
                Some(format!(
                    "{}: not pointed at {} ahead ({e}): phase 4 repoints it",
                    r.name, nm.name
                ))
            }
        }
    }

    /// One replica stopped and pointed at `nm` (its session returned, to start it), unless it
    /// replicates from it already (None: phase 4 says so then).
    async fn aim_one_ahead(
        &self,
        r: &ServerSpec,
        nm: &ServerSpec,
    ) -> Result<Option<Session>, StepError> {
        let mut s = self.connect(r).await.map_err(abort)?;
        let (st, period) = status_and_period(&mut s).await?;
        let start = ReplicaStart::AutoPosition;
        if plan::replicas::action(st.as_ref(), nm, &start) == ReplicaAction::LeaveAlone {
            s.close().await;
            return Ok(None);
        }
        self.aim_at(&mut s, nm, &start, period).await?;
        tracing::debug!(server = %r.name, "aimed at the new master ahead");
        Ok(Some(s))
    }
}

/// START SLAVE on an aimed replica, then waited for until its IO thread runs (phase 4 leaves
/// alone only a replica whose IO thread runs; one still connecting would be repointed a second
/// time).
async fn start_one_ahead(s: &mut Session) -> Result<(), StepError> {
    s.start_replica().await.map_err(abort)?;
    tracing::debug!("started ahead");
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
        Ok(r) => r,
        Err(_) => Err(abort(format!(
            "its IO thread was not running {AHEAD:?} after START SLAVE"
        ))),
    }
}
