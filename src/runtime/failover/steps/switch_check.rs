//! Online switchover, phase 1 (MHA's MasterRotate configuration check): the gates run again
//! just before writes are blocked, and the new master is chosen once (journaled), so a
//! resuming leader promotes the same server.

use super::*;
use crate::state::switchover::{Switch, SwitchEvent};

impl RunCtx {
    /// The run's switchover record (every switchover run has one).
    pub(super) fn switch_of(run: &FailoverRun) -> Result<&Switch, StepError> {
        run.switch
            .as_ref()
            .ok_or_else(|| abort(format!("run {} is not a switchover", run.id)))
    }

    /// The new master phase 1 chose.
    pub(super) fn switch_new_master(run: &FailoverRun) -> Result<String, StepError> {
        Self::switch_of(run)?
            .new_master
            .clone()
            .ok_or_else(|| abort("no new master was chosen"))
    }

    pub(super) async fn switch_check(&mut self, run: &FailoverRun) -> StepResult {
        let sw = Self::switch_of(run)?;
        let mut options = sw.options.clone();
        if let Some(m) = &sw.new_master {
            options.new_master = Some(m.clone());
        }
        // The online change script must be one this manager runs, before anything is blocked.
        if let Some(name) = &self.group.spec.failover.master_ip_online_change_script {
            self.hook("master_ip_online_change_script", name)?;
        }
        let passed = crate::runtime::switchover::run_gates(
            &self.node.local,
            &self.group.spec,
            &self.password,
            &run.old_master,
            &options,
        )
        .await
        .map_err(|r| {
            let mut lines = r.lines;
            lines.push(format!("refused, nothing changed: {}", r.reason));
            abort(lines.join("; "))
        })?;
        let chosen = Cmd::RecordSwitch {
            run: self.id,
            event: SwitchEvent::Chosen {
                new_master: passed.new_master.clone(),
                rule: passed.rule.clone(),
            },
        };
        if let CmdResult::Rejected(r) = self.commit(chosen).await? {
            return Err(abort(r));
        }
        Ok(passed.lines.join("; "))
    }

    /// MHA's master_ip_online_change_script, if configured: `--command=stop` before writes
    /// are blocked, `start` once the new master takes over (and, on a roll-back, `start` with
    /// the old master as the one that takes writes). The passwords go in the environment
    /// (hooks::ORIG_MASTER_PASSWORD_ENV, NEW_MASTER_PASSWORD_ENV), never in arguments.
    pub(super) async fn online_change_script(
        &self,
        command: &str,
        orig: &ServerSpec,
        new: &ServerSpec,
        orig_master_is_new_slave: bool,
    ) -> Result<Option<String>, StepError> {
        use crate::adapters::hooks;
        let Some(name) = &self.group.spec.failover.master_ip_online_change_script else {
            return Ok(None);
        };
        let script = self.hook("master_ip_online_change_script", name)?;
        let args = hooks::online_change_args(&hooks::OnlineChange {
            command,
            orig: (&orig.name, &orig.host, orig.port),
            new: (&new.name, &new.host, new.port),
            user: &self.group.spec.user,
            ssh_user: &self.group.spec.ssh.user,
            orig_master_is_new_slave,
        });
        self.guard().await?;
        let env = [
            (hooks::ORIG_MASTER_PASSWORD_ENV, self.password.expose()),
            (hooks::NEW_MASTER_PASSWORD_ENV, self.password.expose()),
        ];
        let out = hooks::run_with_env(script, &args, &env, HOOK)
            .await
            .map_err(|e| abort(self.password.redact(&e)))?;
        let out = hooks::HookOutput {
            tail: self.password.redact(&out.tail),
            ..out
        };
        let v = hooks::verdict(&out).map_err(|e| {
            abort(format!(
                "master_ip_online_change_script --command={command} {e}"
            ))
        })?;
        Ok(Some(format!(
            "master_ip_online_change_script --command={command}: {v}"
        )))
    }
}
