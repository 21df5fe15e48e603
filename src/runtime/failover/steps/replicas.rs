//! Phase 4 (every other survivor replicates from the new master and reaches what it has) and
//! phase 5 (new-master cleanup, MHA's statement for the record).

use super::*;
use crate::adapters::hooks;

impl RunCtx {
    /// Phase 4: every other survivor replicates from the new master (in parallel) and reaches
    /// the target set. A replica that fails is reported (MHA: "partially failed"), the run
    /// still completes: the new master already serves writes.
    pub(super) async fn recover_replicas(&self, run: &FailoverRun) -> StepResult {
        let d = Self::decided(run)?;
        let nm = self.server(&d.new_master)?;
        self.guard()?;
        let others: Vec<ServerSpec> = self
            .survivors(run)
            .into_iter()
            .filter(|s| s.name != nm.name)
            .collect();
        let target = self.final_target(run, d);
        let position = self.position_on(run, &nm)?;
        let lines = join_all(
            others
                .iter()
                .map(|r| self.recover_one(run, r, &nm, &target, &position)),
        )
        .await;
        let failed = lines.iter().filter(|(ok, _)| !ok).count();
        let text: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
        Ok(if failed == 0 {
            text.join("; ")
        } else {
            format!(
                "recovery on {failed} replica(s) partially failed: {}",
                text.join("; ")
            )
        })
    }

    /// Where replicas start on the new master: GTID auto-position, or (file/position) the
    /// coordinates phase 3.5 journaled after the new master's apply.
    fn position_on(
        &self,
        run: &FailoverRun,
        nm: &ServerSpec,
    ) -> Result<ReplicaPosition, StepError> {
        if self.mode() != ReplicationMode::FilePos {
            return Ok(ReplicaPosition::Gtid);
        }
        let (file, pos) = run.recovery.new_master_coords.clone().ok_or_else(|| {
            abort(format!(
                "no binlog coordinates of {} were recorded in phase 3.5",
                nm.name
            ))
        })?;
        Ok(ReplicaPosition::FilePos { file, pos })
    }

    pub(super) async fn recover_one(
        &self,
        run: &FailoverRun,
        r: &ServerSpec,
        nm: &ServerSpec,
        target: &str,
        position: &ReplicaPosition,
    ) -> (bool, String) {
        let res: Result<String, String> = async {
            let mut s = self.connect(r).await?;
            let st = s.replica_status().await.map_err(|e| e.to_string())?;
            let already = st.as_ref().is_some_and(|x| {
                x.source_host == nm.host && x.source_port == nm.port && x.io_thread == IoThread::Yes
            });
            let mut what = if already {
                format!("already replicating from {}", nm.name)
            } else {
                let mut applied = String::new();
                if let ReplicaPosition::FilePos { .. } = position {
                    applied = self
                        .apply_diff(run, r, &mut s, StepName::ReplicasRecovery)
                        .await
                        .map_err(|e| e.to_string())?;
                    applied.push_str("; ");
                }
                self.guard().map_err(|e| e.to_string())?;
                s.stop_replica(false).await.map_err(|e| e.to_string())?;
                s.change_master(&ChangeMaster {
                    position: position.clone(),
                    ..self.change_master_to(nm)
                })
                .await
                .map_err(|e| e.to_string())?;
                s.start_replica().await.map_err(|e| e.to_string())?;
                format!("{applied}now replicating from {}", nm.name)
            };
            let info = s.server_info().await.map_err(|e| e.to_string())?;
            if !info.read_only {
                s.set_read_only(true).await.map_err(|e| e.to_string())?;
                what.push_str(", read_only set");
            }
            let limit = Duration::from_millis(self.group.spec.failover.replica_timeout_ms);
            let (reached, goal) = match position {
                ReplicaPosition::FilePos { file, pos } => (
                    s.wait_pos(file, *pos, limit)
                        .await
                        .map_err(|e| e.to_string())?,
                    format!("{file}:{pos}"),
                ),
                ReplicaPosition::Gtid if target.is_empty() => (true, String::new()),
                ReplicaPosition::Gtid => (
                    s.wait_gtid(target, limit)
                        .await
                        .map_err(|e| e.to_string())?,
                    target.to_string(),
                ),
            };
            if !reached {
                return Err(format!("{what}, but did not reach {goal} within {limit:?}"));
            }
            s.close().await;
            Ok(format!("{what}, reached {goal}"))
        }
        .await;
        match res {
            Ok(l) => (true, format!("{}: {l}", r.name)),
            Err(e) => (false, format!("{}: FAILED: {e}", r.name)),
        }
    }

    /// Phase 5: the new master is a writable master holding the VIP; MHA's statement for the
    /// other replicas (password masked).
    pub(super) async fn cleanup(&self, run: &FailoverRun) -> StepResult {
        let d = Self::decided(run)?;
        let nm = self.server(&d.new_master)?;
        let mut s = self.connect(&nm).await.map_err(abort)?;
        let info = s.server_info().await.map_err(abort)?;
        let mut lines = Vec::new();
        if info.replica.is_some() {
            self.guard()?;
            s.stop_replica(false).await.map_err(abort)?;
            s.reset_replica_all().await.map_err(abort)?;
            lines.push(format!("{}: RESET SLAVE ALL", nm.name));
        }
        if info.read_only {
            self.guard()?;
            s.set_read_only(false).await.map_err(abort)?;
            lines.push(format!("{}: read_only=0", nm.name));
        }
        s.close().await;
        lines.push(self.vip_up(&nm).await?);
        let masked = ChangeMaster {
            password: Secret::new("xxx"),
            position: self.position_on(run, &nm)?,
            ..self.change_master_to(&nm)
        };
        lines.push(format!(
            "All other slaves should start replication from here. Statement should be: {};",
            info.dialect.change_master(&masked)
        ));
        if let Some(l) = self.report(run, &nm).await {
            lines.push(l);
        }
        Ok(lines.join("; "))
    }

    /// MHA's report_script (`--orig_master_host --new_master_host --new_slave_hosts --subject
    /// --body`). Its failure is noted, not fatal: the failover is done.
    async fn report(&self, run: &FailoverRun, nm: &ServerSpec) -> Option<String> {
        let script = self.group.spec.failover.report_script.as_ref()?;
        let slaves: Vec<String> = self
            .survivors(run)
            .into_iter()
            .filter(|s| s.name != nm.name)
            .map(|s| s.name)
            .collect();
        let subject = format!(
            "{}: MySQL Master failover {} to {} succeeded",
            run.group, run.old_master, nm.name
        );
        let body = format!(
            "Master {} is down! Run {} (epoch {}): {} is the new master; replicas: {}. \
             Journal: mhactl failover history --group {}",
            run.old_master,
            run.id,
            run.epoch,
            nm.name,
            slaves.join(","),
            run.group
        );
        let args = vec![
            format!("--orig_master_host={}", run.old_master),
            format!("--new_master_host={}", nm.name),
            format!("--new_slave_hosts={}", slaves.join(",")),
            format!("--subject={subject}"),
            format!("--body={body}"),
        ];
        Some(match hooks::run(script, &args, HOOK).await {
            Ok(out) => match hooks::verdict(&out) {
                Ok(v) => format!("report_script: {v}"),
                Err(e) => format!("report_script {e} (ignored: the failover is done)"),
            },
            Err(e) => format!("report_script: {e} (ignored: the failover is done)"),
        })
    }
}
