//! Phase 4 (every other survivor replicates from the new master and reaches what it has) and
//! phase 5 (new-master cleanup, MHA's statement for the record).

use super::vip_move::Release;
use super::*;
use crate::model::{ReplicaAction, ReplicaStart, ReplicasOutcome, ReplicasPlan};
use crate::state::journal::StepReport;

/// The planner's start as the MySQL adapter takes it.
fn position(start: &ReplicaStart) -> ReplicaPosition {
    match start {
        ReplicaStart::AutoPosition => ReplicaPosition::Gtid,
        ReplicaStart::Coord(c) => ReplicaPosition::FilePos {
            file: c.file.clone(),
            pos: c.pos,
        },
    }
}

impl RunCtx {
    /// Phase 4: every other survivor replicates from the new master (in parallel) and reaches
    /// the target. A replica that fails is reported (MHA: "partially failed"), the run still
    /// completes: the new master already serves writes. Where replicas start, what they wait
    /// for and what the step's outcome is are the planner's.
    pub(super) async fn recover_replicas(
        &self,
        run: &FailoverRun,
    ) -> Result<StepReport, StepError> {
        let d = Self::decided(run)?;
        let nm = self.server(&d.new_master)?;
        self.guard().await?;
        // The old host's VIP is released once every replica's repointing statements are done,
        // not alongside them: with lossless semi-sync the new master's first write waits for a
        // repointed replica, and the release's processes on the hosts only compete with it
        // (measured in the lab). Nor after the replicas' waits for the target, which may take
        // minutes while both hosts answer for the address. The old host answers resets
        // meanwhile, and a plan that fails still releases it.
        let others: Vec<ServerSpec> = self
            .survivors(run)
            .into_iter()
            .filter(|s| s.name != nm.name)
            .collect();
        let sem = tokio::sync::Semaphore::new(0);
        let permits = others.len();
        let repoint = async {
            // Whatever happens below, the release is let go when this ends.
            let _all = Repointed::new(&sem, permits);
            // File/position replicas start from the journaled coordinates; only a GTID target
            // is waited for (and must fit the mode).
            let decided = match self.mode() {
                ReplicationMode::FilePos => d.target.clone(),
                _ => self.decided_target(d)?,
            };
            let replicas = plan::replicas::plan(
                self.mode(),
                &nm.name,
                &decided,
                run.recovery.salvage.as_ref(),
                run.recovery.new_master_coords.as_ref(),
            )
            .map_err(abort)?;
            Ok::<_, StepError>(
                join_all(others.iter().map(|r| async {
                    let mut repointed = Repointed::new(&sem, 1);
                    (
                        r.name.clone(),
                        self.recover_one(run, r, &nm, &replicas, &mut repointed)
                            .await,
                    )
                }))
                .await,
            )
        };
        let release = async {
            // Every replica repointed (or given up on), or the repointing over; a diff applied
            // first (file/position) holds it 2 s at most.
            let _ = tokio::time::timeout(Duration::from_secs(2), sem.acquire_many(permits as u32))
                .await;
            self.vip_release_old(&nm, &run.old_master, Release::AfterPromote)
                .await
        };
        let (results, released) = futures::future::join(repoint, release).await;
        let released = released?;
        let results = super::replica_results(results?)?;
        let (outcome, mut detail) = plan::replicas::outcome(results);
        if let Some(l) = released {
            detail = format!("{detail}; {l}");
        }
        Ok(StepReport {
            detail,
            failed_replicas: match outcome {
                ReplicasOutcome::PartiallyFailed { failed } => failed,
                ReplicasOutcome::AllRecovered => Vec::new(),
            },
            statement: None,
        })
    }

    /// Where replicas start on the new master, as the adapter takes it.
    pub(super) fn position_on(
        &self,
        run: &FailoverRun,
        nm: &ServerSpec,
    ) -> Result<ReplicaPosition, StepError> {
        plan::replicas::start(
            self.mode(),
            &nm.name,
            run.recovery.new_master_coords.as_ref(),
        )
        .map(|s| position(&s))
        .map_err(abort)
    }

    /// Replica session `s` replicates from the new master from `start` (STOP SLAVE, CHANGE
    /// MASTER, START SLAVE), its heartbeat period `period` kept if shorter than ours.
    pub(super) async fn point_at(
        &self,
        s: &mut Session,
        nm: &ServerSpec,
        start: &ReplicaStart,
        period: Option<u64>,
    ) -> Result<(), StepError> {
        self.guard().await?;
        s.stop_replica(false).await.map_err(abort)?;
        s.change_master(&ChangeMaster {
            position: position(start),
            heartbeat_ms: self.heartbeat_for(period),
            ..self.change_master_to(nm)
        })
        .await
        .map_err(abort)?;
        s.start_replica().await.map_err(abort)
    }

    /// One replica: repointed at the new master (after its diff, file/position) unless it
    /// already replicates from it, read-only, and waited for until it reaches the plan's goal.
    pub(super) async fn recover_one(
        &self,
        run: &FailoverRun,
        r: &ServerSpec,
        nm: &ServerSpec,
        replicas: &ReplicasPlan,
        repointed: &mut Repointed<'_>,
    ) -> Result<String, StepError> {
        let mut s = self.connect(r).await.map_err(abort)?;
        // The pulse carries the replica's heartbeat period, which the repoint keeps if shorter.
        let (st, period) = status_and_period(&mut s).await?;
        let mut what = match plan::replicas::action(st.as_ref(), nm, &replicas.start) {
            ReplicaAction::LeaveAlone => format!("already replicating from {}", nm.name),
            ReplicaAction::Repoint { apply_diff } => {
                let mut applied = String::new();
                if apply_diff {
                    applied = self
                        .apply_diff(run, r, &mut s, StepName::ReplicasRecovery)
                        .await?;
                    applied.push_str("; ");
                }
                self.point_at(&mut s, nm, &replicas.start, period).await?;
                tracing::debug!(server = %r.name, "repointed");
                format!("{applied}now replicating from {}", nm.name)
            }
        };
        repointed.fire();
        let info = s.server_info().await.map_err(abort)?;
        if !info.read_only {
            s.set_read_only(true).await.map_err(abort)?;
            what.push_str(", read_only set");
        }
        let limit = Duration::from_millis(self.group.spec.failover.replica_timeout_ms);
        let (reached, goal) = match &replicas.goal {
            Some(Target::Coord(c)) => (
                s.wait_pos(&c.file, c.pos, limit).await.map_err(abort)?,
                c.to_string(),
            ),
            Some(Target::Gtid(set)) => (s.wait_gtid(set, limit).await.map_err(abort)?, set.clone()),
            None => (true, String::new()),
        };
        if !reached {
            return Err(abort(format!(
                "{what}, but did not reach {goal} within {limit:?}"
            )));
        }
        s.close().await;
        Ok(format!("{what}, reached {goal}"))
    }
}

/// A replica's status and its heartbeat period (None: not a replica), read in one query: the
/// repoint keeps the period if shorter than ours.
pub(super) async fn status_and_period(
    s: &mut Session,
) -> Result<(Option<crate::model::ReplicaStatus>, Option<u64>), StepError> {
    Ok(match s.replica_pulse().await.map_err(abort)? {
        Some((st, p)) => (Some(st), p.heartbeat_period_ms),
        None => (None, None),
    })
}

/// Tells phase 4's VIP release that replicas' repointing statements are done, or will not be:
/// `permits` at once, when fired or at the latest when dropped (an error, a cancelled future).
pub(super) struct Repointed<'a> {
    sem: &'a tokio::sync::Semaphore,
    permits: usize,
}

impl<'a> Repointed<'a> {
    fn new(sem: &'a tokio::sync::Semaphore, permits: usize) -> Self {
        Repointed { sem, permits }
    }

    fn fire(&mut self) {
        self.sem.add_permits(std::mem::take(&mut self.permits));
    }
}

impl Drop for Repointed<'_> {
    fn drop(&mut self) {
        self.fire();
    }
}
