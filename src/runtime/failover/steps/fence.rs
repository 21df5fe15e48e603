//! Phase 2, dead-master shutdown: the replicas' IO threads stopped, the old master's VIP
//! down, its mysqld fenced by SQL when it answers, and MHA's shutdown_script when it cannot be
//! trusted to stay down (host unreachable: `stop`; mysqld hung: `stopssh`).

use futures::future::join_all;

use super::{abort, RunCtx, StepError, StepResult, CONNECT, HOOK, OLD_MASTER_SSH, STATEMENT};
use crate::adapters::hooks;
use crate::runtime::{fence, vip};
use crate::state::group::ServerSpec;
use crate::state::journal::FailoverRun;

impl RunCtx {
    /// Phase 2: stop every replica's IO thread (positions hold still), then take the old master
    /// out: VIP down and read_only + client connections killed when it can be reached, the
    /// shutdown_script (STONITH) when its host cannot be reached over SSH.
    pub(super) async fn fence(&mut self, run: &FailoverRun) -> StepResult {
        self.guard()?;
        if crate::failpoint::broken("fence") {
            return Ok("RED GATE: fencing skipped (test-only failpoint)".into());
        }
        let old = self.server(&run.old_master)?;
        let this = &*self;
        let stop_io = join_all(self.survivors(run).into_iter().map(|s| async move {
            match this.connect(&s).await {
                Ok(mut sess) => {
                    let r = sess.stop_replica(true).await;
                    sess.close().await;
                    match r {
                        Ok(()) => format!("{}: IO thread stopped", s.name),
                        Err(e) => format!("{}: STOP SLAVE IO_THREAD failed: {e}", s.name),
                    }
                }
                Err(e) => format!("{}: unreachable: {e}", s.name),
            }
        }));
        let (io_lines, (ssh_line, ssh_ok), (mysql_line, mysqld)) =
            tokio::join!(stop_io, this.fence_host(&old), this.fence_mysqld(&old));
        let mut lines = io_lines;
        lines.push(mysql_line);
        lines.push(ssh_line);
        // MHA's shutdown_script: `stop` (power off) when SSH cannot reach the host; `stopssh`
        // when SSH works but mysqld neither answered nor refused (hung or paused: it could
        // wake up writable). A mysqld that refused connections is down; one that answered is
        // fenced by SQL.
        self.old_host_unreachable = !ssh_ok;
        if let Some(l) = self.ip_failover_stop(&old, ssh_ok).await? {
            lines.push(l);
        }
        if !ssh_ok {
            lines.push(self.shutdown_hook(&old, "stop").await?);
        } else if mysqld == Mysqld::Silent {
            lines.push(self.shutdown_hook(&old, "stopssh").await?);
        }
        Ok(lines.join("; "))
    }

    /// The old master's host over SSH: VIP down (or just reachability when there is no VIP).
    async fn fence_host(&self, old: &ServerSpec) -> (String, bool) {
        let pool = match self.ssh() {
            Ok(p) => p,
            Err(e) => return (format!("{}: no SSH: {e}", old.name), false),
        };
        let (host, port) = old.ssh_target(&self.group.spec.ssh);
        let r = match self.vip() {
            // The old master may be dead: its warm session gets no answer rather than a reset,
            // so the command's own bound is what a dead host costs (≈ 1 s).
            Some(v) => vip::remove(pool, &host, port, &v, OLD_MASTER_SSH)
                .await
                .map(|removed| {
                    if removed {
                        format!("{}: VIP {} removed", old.name, v.cidr)
                    } else {
                        format!("{}: VIP {} was not there", old.name, v.cidr)
                    }
                })
                .map_err(|e| e.to_string()),
            None => pool
                .check(&host, port)
                .await
                .map(|_| format!("{}: host reachable over SSH", old.name))
                .map_err(|e| e.to_string()),
        };
        match r {
            Ok(line) => (line, true),
            Err(e) => (
                format!("{}: host unreachable over SSH: {e}", old.name),
                false,
            ),
        }
    }

    /// The old master's mysqld, if it answers: read_only and its client connections killed.
    async fn fence_mysqld(&self, old: &ServerSpec) -> (String, Mysqld) {
        match self.login(old).connect(CONNECT).await {
            Ok(mut sess) => {
                sess.set_timeout(STATEMENT);
                let r = fence::fence(&mut sess).await;
                sess.close().await;
                match r {
                    Ok(rep) => (
                        format!(
                            "{}: mysqld answered: read_only set{}, {} client connection(s) killed",
                            old.name,
                            if rep.was_writable { "" } else { " already" },
                            rep.killed.len()
                        ),
                        Mysqld::Fenced,
                    ),
                    Err(e) => (
                        format!("{}: mysqld answered but fencing failed: {e}", old.name),
                        Mysqld::Silent,
                    ),
                }
            }
            Err(e) if e.is_refused() => (
                format!("{}: mysqld is down (connection refused)", old.name),
                Mysqld::Down,
            ),
            Err(e) => (
                format!("{}: mysqld does not answer ({e})", old.name),
                Mysqld::Silent,
            ),
        }
    }

    /// MHA's master_ip_failover_script `--command=stopssh` (host reachable) or `stop`: the
    /// script takes the old master's address away its own way (0 / 10 continue, else abort).
    async fn ip_failover_stop(
        &self,
        old: &ServerSpec,
        ssh_ok: bool,
    ) -> Result<Option<String>, StepError> {
        let Some(script) = &self.group.spec.failover.master_ip_failover_script else {
            return Ok(None);
        };
        self.guard()?;
        let command = if ssh_ok { "stopssh" } else { "stop" };
        let args = hooks::orig_master_args(
            command,
            &self.group.spec.ssh.user,
            &old.name,
            &old.host,
            old.port,
        );
        let out = hooks::run(script, &args, HOOK).await.map_err(abort)?;
        let v = hooks::verdict(&out)
            .map_err(|e| abort(format!("master_ip_failover_script --command={command} {e}")))?;
        Ok(Some(format!(
            "master_ip_failover_script --command={command}: {v}"
        )))
    }

    /// MHA's shutdown_script for a host SSH cannot reach: exit 0 = powered off, 10 = mysqld
    /// stopped and SSH works, anything else aborts (the old master may still take writes).
    async fn shutdown_hook(&self, old: &ServerSpec, command: &str) -> Result<String, StepError> {
        let Some(script) = &self.group.spec.failover.shutdown_script else {
            return Ok(if command == "stop" {
                format!(
                    "{}: no shutdown_script configured: the old master's host could not be \
                     powered off{}",
                    old.name,
                    if self.vip().is_some() {
                        " and the VIP could not be removed from it"
                    } else {
                        ""
                    }
                )
            } else {
                format!(
                    "{}: no shutdown_script configured to stop a mysqld that does not answer: \
                     it comes back writable unless my.cnf has read_only=ON",
                    old.name
                )
            });
        };
        self.guard()?;
        let args = hooks::shutdown_args(
            command,
            &self.group.spec.ssh.user,
            &old.name,
            &old.host,
            old.port,
        );
        let out = hooks::run(script, &args, HOOK).await.map_err(abort)?;
        match out.code {
            Some(0) => Ok(format!("{}: powered off by shutdown_script", old.name)),
            Some(10) => Ok(format!(
                "{}: shutdown_script stopped mysqld (exit 10): {}",
                old.name, out.tail
            )),
            c => Err(abort(format!(
                "shutdown_script exited {c:?} ({}): the old master may still accept writes",
                out.tail
            ))),
        }
    }
}

/// What the old master's mysqld did when phase 2 knocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mysqld {
    /// It answered and was fenced by SQL (read_only, client connections killed).
    Fenced,
    /// Connection refused: nothing listens, it is down.
    Down,
    /// No answer in time (hung, paused, cut off), or fencing failed: it could come back.
    Silent,
}
