//! Phase 3.5: the new master is brought level (GTID: its relay log, catching up from a
//! survivor when it is not a latest replica, then the salvaged binlog; file/position: the diff
//! phase 3.4 placed), stops being a replica, carries the run's epoch, becomes writable and takes
//! the VIP; in GTID groups the other survivors are pointed at it meanwhile (point_ahead.rs).

use std::time::Duration;

use super::*;
use crate::adapters::hooks;

impl RunCtx {
    /// Phase 3.5: bring the new master level with the target, make it a master, record the
    /// epoch on it, make it writable, then bring the VIP up (writable before the VIP: the first
    /// client that reaches it can write); GTID groups point the other survivors at it alongside
    /// (point_ahead.rs).
    pub(super) async fn promote(&mut self, run: &FailoverRun) -> StepResult {
        let d = Self::decided(run)?;
        let nm = self.server(&d.new_master)?;
        let unfenced = self.vip_unfence_early(&nm).await?;
        // Two connections at once: the second is RESET SLAVE ALL's, below (opened again there
        // if it failed now; not needed at all by a server that is no replica any more).
        let (s, s2) = futures::future::join(self.connect(&nm), self.connect(&nm)).await;
        let mut s = s.map_err(abort)?;
        let mut s2 = s2
            .map_err(|e| tracing::info!(server = %nm.name, error = %e, "second connection failed: opened again if RESET SLAVE ALL needs it"))
            .ok();
        let mut lines = Vec::new();
        // The epoch and the server's state read alongside, one on each connection (the
        // second one, if it fails there, is not used again: read on the first).
        let (recorded, info) = match s2.as_mut() {
            Some(c2) => {
                let (recorded, info) =
                    futures::future::join(self.epoch_on(&mut s, run, &nm), c2.server_info()).await;
                let info = match info {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::info!(server = %nm.name, error = %e, "second connection failed: opened again if RESET SLAVE ALL needs it");
                        s2 = None;
                        s.server_info().await.map_err(abort)?
                    }
                };
                (recorded?, info)
            }
            None => (
                self.epoch_on(&mut s, run, &nm).await?,
                s.server_info().await.map_err(abort)?,
            ),
        };
        let filepos = self.mode() == ReplicationMode::FilePos;
        let mut reset = None;
        if let Some(r) = &info.replica {
            if filepos {
                let applied = self
                    .apply_diff(run, &nm, &mut s, StepName::PromoteNewMaster)
                    .await?;
                lines.push(format!("{}: {applied}", nm.name));
            } else {
                let target = self.decided_target(d)?;
                self.catch_up(&mut s, &nm, r, &target, &mut lines).await?;
            }
            self.guard().await?;
            s.stop_replica(false).await.map_err(abort)?;
            // RESET SLAVE ALL (an fsync of the replica's state files) on a second connection,
            // alongside the epoch, read_only and VIP below; the step ends only after it (a
            // promoted server must not restart into its old replication: docs/architecture.md).
            // If this step fails before joining it, the RESET still completes on its own (as
            // when it ran inline before what failed); its error is then logged.
            let mut s2 = match s2.take() {
                Some(c) => c,
                None => self.connect(&nm).await.map_err(abort)?,
            };
            let name = nm.name.clone();
            reset = Some(tokio::spawn(async move {
                let r = s2.reset_replica_all().await;
                s2.close().await;
                if let Err(e) = &r {
                    tracing::warn!(server = %name, error = %e, "RESET SLAVE ALL failed");
                }
                r
            }));
        } else {
            lines.push(format!("{}: already not a replica", nm.name));
        }
        if !filepos {
            if let Some(l) = self.apply_salvage(run, &nm, &mut s).await? {
                lines.push(l);
            }
        }
        if filepos {
            lines.push(self.record_coords(run, &nm, &mut s).await?);
        }
        self.guard().await?;
        if recorded.map(|(e, _)| e) != Some(run.epoch) {
            lines.push(self.write_epoch(&mut s, run, &nm).await?);
        }
        if self.group.topology.semisync && !info.semisync.master_enabled {
            s.enable_semisync_source().await.map_err(abort)?;
            lines.push("semi-sync source side enabled (lossless as before)".into());
        }
        // Writable and the VIP up, and alongside, the other survivors pointed at it
        // (point_ahead.rs: GTID groups, now that it holds everything it will serve).
        let open = async {
            let mut lines = Vec::new();
            if info.read_only {
                s.set_read_only(false).await.map_err(abort)?;
                lines.push(format!("{}: read_only=0", nm.name));
            } else {
                lines.push(format!("{}: already writable", nm.name));
            }
            s.close().await;
            if let Some(s2) = s2 {
                s2.close().await;
            }
            // The old host's release (and the second ARP) is phase 4's, once the replicas are
            // repointed: the old host answers resets meanwhile, never silence.
            lines.push(self.vip_add(&nm, unfenced).await?);
            if let Some(reset) = reset {
                reset
                    .await
                    .map_err(|e| abort(format!("RESET SLAVE ALL: {e}")))?
                    .map_err(abort)?;
                lines.push(format!(
                    "{}: replication stopped and reset (RESET SLAVE ALL)",
                    nm.name
                ));
            }
            if let Some(l) = self.ip_failover_start(run, &nm).await? {
                lines.push(l);
            }
            Ok::<_, StepError>(lines)
        };
        let (opened, ahead) =
            futures::future::join(open, self.point_replicas_ahead(run, &nm)).await;
        lines.extend(opened?);
        lines.extend(ahead);
        // Phase 4 connects to every other survivor first thing: open those sessions while
        // this step's end is committed.
        let others: Vec<ServerSpec> = self
            .survivors(run)
            .into_iter()
            .filter(|s| s.name != nm.name)
            .collect();
        self.warm_up(&others);
        Ok(lines.join("; "))
    }

    /// MHA's master_ip_failover_script `--command=start`: the script points the application's
    /// address at the new master (0 / 10 continue, else abort). Run again on a resumed step:
    /// scripts must be idempotent, as MHA's samples are.
    async fn ip_failover_start(
        &self,
        run: &FailoverRun,
        nm: &ServerSpec,
    ) -> Result<Option<String>, StepError> {
        let Some(name) = &self.group.spec.failover.master_ip_failover_script else {
            return Ok(None);
        };
        let script = self.hook("master_ip_failover_script", name)?;
        let old = self.server(&run.old_master)?;
        let mut args = hooks::orig_master_args(
            "start",
            &self.group.spec.ssh.user,
            &old.name,
            &old.host,
            old.port,
        );
        args.extend(hooks::new_master_args(
            &nm.name,
            &nm.host,
            nm.port,
            &self.group.spec.user,
        ));
        self.guard().await?;
        let out = hooks::run_with_env(
            script,
            &args,
            &[(hooks::NEW_MASTER_PASSWORD_ENV, self.password.expose())],
            HOOK,
        )
        .await
        .map_err(|e| abort(self.password.redact(&e)))?;
        let out = hooks::HookOutput {
            tail: self.password.redact(&out.tail),
            ..out
        };
        let v = hooks::verdict(&out)
            .map_err(|e| abort(format!("master_ip_failover_script --command=start {e}")))?;
        Ok(Some(format!(
            "master_ip_failover_script --command=start: {v}"
        )))
    }

    /// GTID groups: the transactions phase 3.2 saved from the dead master's binlog, applied on
    /// the new master once it executed everything the survivors had (replicas then get them
    /// by replication).
    async fn apply_salvage(
        &mut self,
        run: &FailoverRun,
        nm: &ServerSpec,
        s: &mut Session,
    ) -> Result<Option<String>, StepError> {
        if run
            .recovery
            .salvage
            .as_ref()
            .is_none_or(|x| x.transactions == 0)
        {
            return Ok(None);
        }
        if let Some(d) = run.recovery.applied.get(&nm.name) {
            return Ok(Some(format!(
                "{}: salvaged binlog already applied ({d})",
                nm.name
            )));
        }
        let log = self.salvaged(run).await?;
        let fde = log.fde().unwrap_or_default().to_vec();
        let detail = self.apply_events(nm, s, &fde, &[log.events()]).await?;
        self.record(RecoveryNote::Applied {
            server: nm.name.clone(),
            detail: detail.clone(),
        })
        .await?;
        Ok(Some(format!("{}: salvaged binlog: {detail}", nm.name)))
    }

    /// File/position groups: the new master's binlog coordinates after its apply, before
    /// anything else is written to it — every other replica starts there. Taken once.
    async fn record_coords(
        &self,
        run: &FailoverRun,
        nm: &ServerSpec,
        s: &mut Session,
    ) -> Result<String, StepError> {
        if let Some(c) = &run.recovery.new_master_coords {
            return Ok(format!("replicas start from {c} (recorded before)"));
        }
        let c = s
            .binlog_status()
            .await
            .map_err(abort)?
            .ok_or_else(|| abort(format!("{}: binary logging is off", nm.name)))?;
        self.record(RecoveryNote::NewMasterCoords {
            file: c.file.clone(),
            pos: c.pos,
        })
        .await?;
        Ok(format!(
            "{}'s binlog position after recovery: {c}; the other replicas start from it",
            nm.name
        ))
    }

    /// Waits until the new master executed the target GTID set. When its own relay log cannot
    /// get it there (it is not a latest replica), it first replicates the missing transactions
    /// from a survivor that has them (MHA's GTID recovery; the donor is the planner's), then
    /// stops again.
    pub(super) async fn catch_up(
        &self,
        s: &mut Session,
        nm: &ServerSpec,
        r: &crate::model::ReplicaStatus,
        target: &Target,
        lines: &mut Vec<String>,
    ) -> Result<(), StepError> {
        let limit = Duration::from_millis(self.group.spec.failover.apply_timeout_ms);
        let target = target.to_string();
        let target = target.as_str();
        if plan::target::needs_donor(self.mode(), &r.gtid_io_pos, target) {
            let obs = self.observe_run().await?;
            let donor = plan::target::donor(
                self.mode(),
                &nm.name,
                &self.group.spec.servers,
                &obs,
                target,
            )
            .map_err(abort)?;
            let donor = self.server(&donor)?;
            let period = s
                .replica_pulse()
                .await
                .ok()
                .flatten()
                .and_then(|(_, p)| p.heartbeat_period_ms);
            self.guard().await?;
            s.stop_replica(false).await.map_err(abort)?;
            s.change_master(&ChangeMaster {
                heartbeat_ms: self.heartbeat_for(period),
                ..self.change_master_to(&donor)
            })
            .await
            .map_err(abort)?;
            s.start_replica().await.map_err(abort)?;
            lines.push(format!(
                "{} is not a latest replica: catching up from {}",
                nm.name, donor.name
            ));
        }
        if !target.is_empty() && !s.wait_gtid(target, limit).await.map_err(abort)? {
            let st = s.replica_status().await.ok().flatten();
            return Err(abort(format!(
                "{} did not apply its relay log up to {target} within {limit:?}{}",
                nm.name,
                st.filter(|x| x.last_sql_errno > 0)
                    .map(|x| format!(
                        " (SQL thread error {}: {})",
                        x.last_sql_errno, x.last_sql_error
                    ))
                    .unwrap_or_default()
            )));
        }
        lines.push(format!("{}: relay log applied up to {target}", nm.name));
        Ok(())
    }

    pub(super) async fn observe_run(&self) -> Result<Observations, StepError> {
        let run = self
            .run()
            .ok_or_else(|| StepError::Lost("run vanished".into()))?;
        self.observe(&run).await
    }

    pub(super) fn change_master_to(&self, source: &ServerSpec) -> ChangeMaster {
        ChangeMaster {
            host: source.host.clone(),
            port: source.port,
            user: self.group.spec.repl_user.clone(),
            password: self.repl_password.clone(),
            position: ReplicaPosition::Gtid,
            heartbeat_ms: self.heartbeat_for(None),
        }
    }

    /// The heartbeat period to name when pointing a replica whose period is `current`: the
    /// detector tells a hung master by its replicas' heartbeats (engine::detector::pulse).
    pub(super) fn heartbeat_for(&self, current: Option<u64>) -> Option<u64> {
        crate::engine::detector::pulse::period_to_set(
            self.group.spec.ping.replica_heartbeat_ms,
            current,
        )
    }
}
