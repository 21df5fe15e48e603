//! Phase 5, new master cleanup: the new master is a writable master holding the VIP (each
//! checked first); MHA's closing statement for the other replicas (password masked) and
//! MHA's report_script; last, the run's work files on the DB hosts are removed.

use super::*;
use crate::adapters::hooks;
use crate::adapters::ssh::remote;
use crate::engine::failover::workfiles::{self, HostFiles};
use crate::state::journal::StepReport;

impl RunCtx {
    /// Phase 5: the new master is a writable master holding the VIP; MHA's statement for the
    /// other replicas (password masked).
    pub(super) async fn cleanup(&self, run: &FailoverRun) -> Result<StepReport, StepError> {
        let d = Self::decided(run)?;
        let nm = self.server(&d.new_master)?;
        let mut s = self.connect(&nm).await.map_err(abort)?;
        let info = s.server_info().await.map_err(abort)?;
        let mut lines = Vec::new();
        if info.replica.is_some() {
            self.guard().await?;
            s.stop_replica(false).await.map_err(abort)?;
            s.reset_replica_all().await.map_err(abort)?;
            lines.push(format!("{}: RESET SLAVE ALL", nm.name));
        }
        if info.read_only {
            self.guard().await?;
            s.set_read_only(false).await.map_err(abort)?;
            lines.push(format!("{}: read_only=0", nm.name));
        }
        s.close().await;
        lines.push(self.vip_up(&nm, &run.old_master).await?);
        let masked = ChangeMaster {
            password: Secret::new("xxx"),
            position: self.position_on(run, &nm)?,
            ..self.change_master_to(&nm)
        };
        let statement = format!(
            "All other slaves should start replication from here. Statement should be: {};",
            info.dialect.change_master(&masked)
        );
        lines.push(statement.clone());
        if let Some(l) = self.report(run, &nm).await {
            lines.push(l);
        }
        if let Some(l) = self.remove_workfiles(run).await? {
            lines.push(l);
        }
        Ok(StepReport {
            detail: lines.join("; "),
            statement: Some(statement),
            failed_replicas: Vec::new(),
        })
    }

    /// The run's work files (salvaged binlog copies, diffs, replayed files: row data) go, once
    /// the run succeeded: it is the last thing of the last step, so a new leader that resumes
    /// phase 5 removes them again (a missing file is no error) and one that only finishes the
    /// run finds them gone. Files on a replica phase 4 did not recover are kept for its manual
    /// recovery. Best effort: a host where removal fails is logged and named in the step's
    /// report, never a failure of the run.
    async fn remove_workfiles(&self, run: &FailoverRun) -> Result<Option<String>, StepError> {
        let survivors: Vec<String> = self.survivors(run).into_iter().map(|s| s.name).collect();
        let plan = workfiles::cleanup(run, &self.group.spec.failover.remote_workdir, &survivors);
        if !plan.remove.is_empty() {
            self.guard().await?;
        }
        let results = join_all(plan.remove.iter().map(|h| async move {
            self.remove_on(h)
                .await
                .err()
                .map(|why| (h.server.clone(), why))
        }))
        .await;
        let failures: Vec<(String, String)> = results.into_iter().flatten().collect();
        for (server, why) in &failures {
            tracing::warn!(group = %run.group, run = run.id, %server, error = %why,
                "could not remove this run's work files (left behind; the run is not failed for it)");
        }
        Ok(workfiles::cleanup_line(
            &plan, &failures, &run.group, run.id,
        ))
    }

    /// Removes one host's work files.
    async fn remove_on(&self, h: &HostFiles) -> Result<(), String> {
        let s = self.server(&h.server).map_err(|e| e.to_string())?;
        let (host, port) = self.ssh_of(&s);
        let pool = self.ssh().map_err(|e| e.to_string())?;
        let out = pool
            .exec(&host, port, &remote::remove_files(&h.paths), SSH_COMMAND)
            .await
            .map_err(|e| e.to_string())?;
        if out.success() {
            Ok(())
        } else {
            Err(format!(
                "rm exited {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// MHA's report_script (`--orig_master_host --new_master_host --new_slave_hosts --subject
    /// --body`). Its failure is noted, not fatal: the failover is done.
    async fn report(&self, run: &FailoverRun, nm: &ServerSpec) -> Option<String> {
        let name = self.group.spec.failover.report_script.as_ref()?;
        let script = match self.hook("report_script", name) {
            Ok(h) => h,
            Err(e) => {
                return Some(format!(
                    "report_script: {e} (ignored: the failover is done)"
                ))
            }
        };
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
