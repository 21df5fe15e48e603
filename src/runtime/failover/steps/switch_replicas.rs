//! Online switchover, phase 4 (MHA's switch_slaves) and phase 5: every other replica, once it
//! reached the old master's final position, repointed at the new master in parallel; then
//! the global read lock on the old master released (as MHA: after the replicas, so that a
//! write a SUPER user slips in on the read_only old master reaches no replica); the old master
//! made a replica of the new one when asked (`--orig-master-is-new-slave`); then RESET SLAVE
//! ALL on the new master and the VIP announced once more. A replica that fails is reported
//! (MHA: "switching slaves partially failed"): the new master already serves.

use super::replicas_recovery::status_and_period;
use super::switch_master::catch_up;
use super::*;
use crate::model::{IoThread, ReplicaStatus, ReplicasOutcome};
use crate::state::journal::StepReport;

impl RunCtx {
    pub(super) async fn switch_replicas(
        &mut self,
        run: &FailoverRun,
    ) -> Result<StepReport, StepError> {
        let sw = Self::switch_of(run)?.clone();
        let d = Self::decided(run)?.clone();
        let frozen = sw
            .frozen
            .clone()
            .ok_or_else(|| abort("phase 2 journaled no final position"))?;
        let nm = self.server(&d.new_master)?;
        let old = self.server(&run.old_master)?;
        let mut head = Vec::new();
        self.guard().await?;
        let others: Vec<ServerSpec> = self
            .group
            .spec
            .servers
            .iter()
            .filter(|s| s.name != nm.name && s.name != old.name)
            .cloned()
            .collect();
        let mut results = join_all(others.iter().map(|r| async {
            (
                r.name.clone(),
                self.switch_one(r, &nm, &frozen.position, &d.target, catch_up(&sw))
                    .await,
            )
        }))
        .await;
        match self.release_lock(&old, frozen.lock_session).await {
            Ok(Some(l)) => head.push(l),
            Ok(None) => {}
            Err(StepError::Lost(why)) => return Err(StepError::Lost(why)),
            Err(e) => head.push(format!("{}: the global read lock: {e}", old.name)),
        }
        if sw.options.orig_master_is_new_slave {
            let r = self
                .old_master_follows(&old, &nm, &frozen.position, &d.target)
                .await;
            results.push((old.name.clone(), r));
        }
        let (outcome, detail) = plan::replicas::outcome(super::replica_results(results)?);
        if !sw.options.orig_master_is_new_slave {
            head.push(format!(
                "{}: left read_only and out of replication (bring it back with mhactl rejoin)",
                old.name
            ));
        }
        head.push(detail);
        Ok(StepReport {
            detail: head.join("; "),
            failed_replicas: match outcome {
                ReplicasOutcome::PartiallyFailed { failed } => failed,
                ReplicasOutcome::AllRecovered => Vec::new(),
            },
            statement: None,
        })
    }

    /// The global read lock phase 2 took on the old master released: UNLOCK TABLES on this
    /// executor's own session, else (a resumed run) the session phase 2 journaled is killed
    /// if it still lives — the leader that took it may be frozen or cut off, and its lock would
    /// stop the old master from applying (or, rolled back, from taking) anything. None: no lock
    /// was taken.
    pub(super) async fn release_lock(
        &mut self,
        old: &ServerSpec,
        lock_session: Option<u64>,
    ) -> Result<Option<String>, StepError> {
        if let Some(mut lock) = self.switch_lock.take() {
            let r = lock.unlock_tables().await;
            lock.close().await;
            return Ok(Some(match r {
                Ok(()) => format!("{}: UNLOCK TABLES (still read_only)", old.name),
                Err(e) => format!(
                    "{}: UNLOCK TABLES failed ({e}); the session is closed, which releases it",
                    old.name
                ),
            }));
        }
        let Some(id) = lock_session else {
            return Ok(None);
        };
        self.guard().await?;
        let mut s = self.connect(old).await.map_err(abort)?;
        let killed = s
            .kill_session_of(id, &self.group.spec.user)
            .await
            .map_err(abort)?;
        s.close().await;
        Ok(Some(if killed {
            format!(
                "{}: session {id} of an earlier leader killed (its global read lock released)",
                old.name
            )
        } else {
            format!("{}: the global read lock's session {id} is gone", old.name)
        }))
    }

    /// Where a replica starts on the new master.
    fn switch_position(&self, target: &Target) -> ReplicaPosition {
        match target {
            Target::Coord(c) => ReplicaPosition::FilePos {
                file: c.file.clone(),
                pos: c.pos,
            },
            Target::Gtid(_) => ReplicaPosition::Gtid,
        }
    }

    /// A server already pointed at the new master (an earlier attempt got that far): its
    /// threads started if they are not running.
    async fn ensure_running(
        &self,
        s: &mut Session,
        st: &ReplicaStatus,
        nm: &ServerSpec,
    ) -> Result<String, StepError> {
        if st.io_thread == IoThread::Yes && st.sql_thread {
            return Ok(format!("already replicating from {}", nm.name));
        }
        self.guard().await?;
        s.start_replica().await.map_err(abort)?;
        Ok(format!(
            "already pointed at {}; replication started",
            nm.name
        ))
    }

    /// One replica: once it applied the old master's final position, repointed at the new
    /// master (unless it already replicates from it).
    async fn switch_one(
        &self,
        r: &ServerSpec,
        nm: &ServerSpec,
        frozen: &Target,
        target: &Target,
        within: Duration,
    ) -> Result<String, StepError> {
        let mut s = self.connect(r).await.map_err(abort)?;
        let (st, period) = status_and_period(&mut s).await?;
        if let Some(st) = st
            .as_ref()
            .filter(|st| st.source_host == nm.host && st.source_port == nm.port)
        {
            return self.ensure_running(&mut s, st, nm).await;
        }
        if !self.reach(&mut s, frozen, within).await? {
            return Err(abort(format!(
                "did not reach the old master's final position {frozen} within {} s",
                within.as_secs()
            )));
        }
        self.guard().await?;
        s.stop_replica(false).await.map_err(abort)?;
        s.change_master(&ChangeMaster {
            position: self.switch_position(target),
            heartbeat_ms: self.heartbeat_for(period),
            ..self.change_master_to(nm)
        })
        .await
        .map_err(abort)?;
        s.start_replica().await.map_err(abort)?;
        s.close().await;
        Ok(format!("now replicating from {}", nm.name))
    }

    /// `--orig-master-is-new-slave`: the old master (read_only since phase 2) replicates from
    /// the new one, from where it stopped.
    async fn old_master_follows(
        &self,
        old: &ServerSpec,
        nm: &ServerSpec,
        frozen: &Target,
        target: &Target,
    ) -> Result<String, StepError> {
        let mut s = self.connect(old).await.map_err(abort)?;
        let info = s.server_info().await.map_err(abort)?;
        if let Some(st) = info
            .replica
            .as_ref()
            .filter(|st| st.source_host == nm.host && st.source_port == nm.port)
        {
            return self.ensure_running(&mut s, st, nm).await;
        }
        self.guard().await?;
        if !info.read_only {
            s.set_read_only(true).await.map_err(abort)?;
        }
        let mut what = Vec::new();
        if info.semisync.master_enabled {
            // As a replica its SQL thread would wait, at every commit, for acknowledgements
            // from replicas it does not have.
            s.disable_semisync_source().await.map_err(abort)?;
            what.push("semi-sync source side off".to_string());
        }
        if let (ReplicationMode::MariadbGtid, Target::Gtid(frozen)) = (self.mode(), frozen) {
            // A master's own writes are in its binlog, not in its slave position: it resumes
            // after the last transaction it wrote, per domain the further of the two.
            let pos = plan::merge_or_empty(self.mode(), &[frozen, &info.gtid.slave_pos]);
            s.exec(&format!(
                "SET GLOBAL gtid_slave_pos = '{}'",
                crate::adapters::mysql::dialect::literal_body(&pos)
            ))
            .await
            .map_err(abort)?;
            what.push(format!("gtid_slave_pos = {pos}"));
        }
        s.change_master(&ChangeMaster {
            position: self.switch_position(target),
            ..self.change_master_to(nm)
        })
        .await
        .map_err(abort)?;
        s.start_replica().await.map_err(abort)?;
        s.close().await;
        what.push(format!("the old master now replicates from {}", nm.name));
        Ok(what.join(", "))
    }

    /// Phase 5: the new master forgets its replication (RESET SLAVE ALL) and the VIP is
    /// announced once more; the report says how long writes were blocked.
    pub(super) async fn switch_cleanup(&mut self, run: &FailoverRun) -> StepResult {
        let d = Self::decided(run)?.clone();
        let nm = self.server(&d.new_master)?;
        let mut s = self.connect(&nm).await.map_err(abort)?;
        let mut lines = Vec::new();
        self.guard().await?;
        match s.replica_status().await {
            Ok(Some(_)) => {
                s.reset_replica_all().await.map_err(abort)?;
                lines.push(format!("{}: RESET SLAVE ALL", nm.name));
            }
            Ok(None) => lines.push(format!("{}: not a replica", nm.name)),
            Err(e) => return Err(abort(e)),
        }
        s.close().await;
        lines.push(self.vip_up(&nm, &run.old_master).await?);
        if let Some(ms) = Self::switch_of(run)?.blocked_ms() {
            lines.push(format!("writes were blocked for {ms} ms"));
        }
        Ok(lines.join("; "))
    }
}
