//! The steps of a failover run (MHA's phases, GTID recovery). Each step first checks what is
//! already in place and does only what is missing, so a new leader can run it again after a
//! crash (invariant 4). Every side effect is preceded by [`RunCtx::guard`]: this node must still
//! be the acting leader of the term the step began in (invariant 3). Every MySQL and SSH call is
//! bounded, so a dead host costs about a second, not a hang.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

mod fence;

use super::epoch::{read_epoch, write_epoch};
use crate::adapters::mysql::{ChangeMaster, IoThread, Login, ReplicaPosition, Session};
use crate::adapters::ssh::SshPool;
use crate::engine::gtid;
use crate::engine::selection::{self, SelectionInput};
use crate::engine::topology::Observations;
use crate::node::NodeInner;
use crate::runtime::groups::{login, observe_except, resolve};
use crate::runtime::vip;
use crate::secret::Secret;
use crate::state::group::{Group, ReplicationMode, ServerSpec};
use crate::state::journal::{Decided, FailoverRun, StepName};
use crate::state::{Cmd, CmdResult};

/// Connecting to a server during a failover: a dead one costs at most this.
const CONNECT: Duration = Duration::from_secs(1);
/// One statement (not the waits, which carry their own limits).
const STATEMENT: Duration = Duration::from_secs(5);
/// Reading a survivor's state.
const OBSERVE: Duration = Duration::from_secs(2);
/// An SSH command on a reachable host (VIP, checks).
const SSH_COMMAND: Duration = Duration::from_secs(3);
/// An SSH command on the old master (a dead host costs this much).
const OLD_MASTER_SSH: Duration = Duration::from_secs(1);
/// A shutdown_script (STONITH) may take this long.
const HOOK: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum StepError {
    /// This node is no longer the acting leader of the step's term: stop, write nothing.
    Lost(String),
    /// The step failed; the run fails and blocks automatic failover until acknowledged.
    Abort(String),
}

type StepResult = Result<String, StepError>;

fn abort(e: impl std::fmt::Display) -> StepError {
    StepError::Abort(e.to_string())
}

pub struct RunCtx {
    node: Arc<NodeInner>,
    id: u64,
    term: u64,
    group: Group,
    password: Secret,
    repl_password: Secret,
    ssh: Result<Arc<SshPool>, String>,
    /// The survivors as phase 3.1 read them (IO threads stopped, so they hold still): phase 3.3
    /// of the same executor decides from it instead of reading again. A resumed run reads anew.
    latest: Option<Observations>,
}

impl RunCtx {
    pub fn new(node: Arc<NodeInner>, id: u64, term: u64) -> Result<RunCtx, String> {
        let run = node
            .state
            .read()
            .expect("state lock")
            .cluster
            .runs
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("no run {id}"))?;
        let mut group =
            crate::runtime::groups::group(&node, &run.group).map_err(|e| e.to_string())?;
        // The servers of this failover: the topology's (an old master removed by an earlier
        // failover stays in the spec but is not part of the group's replication any more).
        let members = group.topology.servers.clone();
        group
            .spec
            .servers
            .retain(|s| members.contains_key(&s.name) || s.name == run.old_master);
        let password = resolve(&group.spec.password)?;
        let repl_password = resolve(&group.spec.repl_password)?;
        let ssh = node.ssh.get(&group.spec).map_err(|e| e.to_string());
        Ok(RunCtx {
            node,
            id,
            term,
            group,
            password,
            repl_password,
            ssh,
            latest: None,
        })
    }

    /// The run as the replicated state has it now.
    pub fn run(&self) -> Option<FailoverRun> {
        self.node
            .state
            .read()
            .expect("state lock")
            .cluster
            .runs
            .get(&self.id)
            .cloned()
    }

    /// Side effects only while this node is the acting leader of the step's term.
    fn guard(&self) -> Result<(), StepError> {
        if !self.node.is_acting_leader() {
            return Err(StepError::Lost("not the acting leader".into()));
        }
        let now = self.node.metrics().current_term;
        if now != self.term {
            return Err(StepError::Lost(format!(
                "term moved from {} to {now}",
                self.term
            )));
        }
        Ok(())
    }

    /// Commits a journal entry in this term.
    pub async fn commit(&self, cmd: Cmd) -> Result<CmdResult, StepError> {
        self.guard()?;
        self.node
            .propose(cmd)
            .await
            .map_err(|e| StepError::Lost(e.to_string()))
    }

    pub async fn run_step(&mut self, step: StepName) -> StepResult {
        let run = self
            .run()
            .ok_or_else(|| StepError::Lost("run vanished".into()))?;
        match step {
            StepName::ConfigCheck => self.config_check(&run).await,
            StepName::Fence => self.fence(&run).await,
            StepName::LatestReplicas => self.latest_replicas(&run).await,
            StepName::ChooseNewMaster => self.choose(&run).await,
            StepName::PromoteNewMaster => self.promote(&run).await,
            StepName::ReplicasRecovery => self.recover_replicas(&run).await,
            StepName::NewMasterCleanup => self.cleanup(&run).await,
        }
    }

    fn server(&self, name: &str) -> Result<ServerSpec, StepError> {
        self.group.spec.server(name).cloned().ok_or_else(|| {
            abort(format!(
                "server {name} is not in group {}",
                self.group.spec.name
            ))
        })
    }

    fn login(&self, s: &ServerSpec) -> Login {
        login(&self.group.spec, s, &self.password)
    }

    async fn connect(&self, s: &ServerSpec) -> Result<Session, String> {
        let mut sess = self
            .login(s)
            .connect(CONNECT)
            .await
            .map_err(|e| e.to_string())?;
        sess.set_timeout(STATEMENT);
        Ok(sess)
    }

    /// The servers that replicate (or replicated) from the old master, in group-file order.
    fn survivors(&self, run: &FailoverRun) -> Vec<ServerSpec> {
        self.group
            .spec
            .servers
            .iter()
            .filter(|s| s.name != run.old_master)
            .cloned()
            .collect()
    }

    async fn observe(&self, run: &FailoverRun) -> Result<Observations, StepError> {
        observe_except(&self.group.spec, Some(&run.old_master), OBSERVE)
            .await
            .map_err(abort)
    }

    fn ssh(&self) -> Result<&SshPool, String> {
        self.ssh.as_deref().map_err(|e| e.clone())
    }

    fn vip(&self) -> Option<vip::Vip> {
        match (&self.group.spec.vip, &self.group.spec.vip_interface) {
            (Some(cidr), Some(iface)) => Some(vip::Vip {
                cidr: cidr.clone(),
                interface: iface.clone(),
            }),
            _ => None,
        }
    }

    fn mode(&self) -> ReplicationMode {
        self.group.topology.mode
    }

    /// Phase 1: the master is still dead, every replica answers and replicates from it, and
    /// the recovery mode is supported.
    async fn config_check(&self, run: &FailoverRun) -> StepResult {
        if self.mode() == ReplicationMode::FilePos {
            return Err(abort(
                "binlog file/position groups need relay-log diff recovery, which this build \
                 does not have yet; promote by hand (see docs/operations.md)",
            ));
        }
        let old = self.server(&run.old_master)?;
        let old_login = self.login(&old);
        let (probe, obs) = tokio::join!(old_login.connect(CONNECT), self.observe(run));
        let master_state = match probe {
            Ok(s) => {
                s.close().await;
                return Err(abort(format!(
                    "master {} ({}) answers again: it is not dead, nothing to fail over",
                    old.name,
                    old.endpoint()
                )));
            }
            Err(e) if e.proves_alive() => {
                return Err(abort(format!(
                    "master {} ({}) answers (with an error that proves it is up: {e}): not dead",
                    old.name,
                    old.endpoint()
                )))
            }
            Err(e) => e.to_string(),
        };
        let obs = obs?;
        let mut lines = vec![format!(
            "master {} still unreachable: {master_state}",
            old.name
        )];
        let mut problems = Vec::new();
        for s in self.survivors(run) {
            match obs.get(&s.name) {
                Some(Ok(i)) => match &i.replica {
                    Some(r) if r.source_host == old.host && r.source_port == old.port => {
                        lines.push(format!("{}: replica of {}, ok", s.name, old.name))
                    }
                    Some(r) => problems.push(format!(
                        "{} replicates from {}:{}, not from the dead master",
                        s.name, r.source_host, r.source_port
                    )),
                    None => problems.push(format!("{} is not a replica", s.name)),
                },
                Some(Err(e)) => problems.push(format!("{} is unreachable: {e}", s.name)),
                None => problems.push(format!("{} was not observed", s.name)),
            }
        }
        if !problems.is_empty() {
            // MHA's rule (without ignore_fail): every replica must be healthy before anything
            // is touched; a half-recoverable group is a human's decision.
            return Err(abort(format!(
                "{}; nothing was changed",
                problems.join("; ")
            )));
        }
        Ok(lines.join("; "))
    }

    /// Phase 3.1: how far each replica got (read and applied).
    async fn latest_replicas(&mut self, run: &FailoverRun) -> StepResult {
        let obs = self.observe(run).await?;
        self.latest = Some(obs.clone());
        let mut lines = Vec::new();
        for s in self.survivors(run) {
            if let Some(Ok(i)) = obs.get(&s.name) {
                if let Some(r) = &i.replica {
                    lines.push(format!(
                        "{}: read {} applied {} gtid received [{}] executed [{}]",
                        s.name, r.read, r.exec, r.gtid_io_pos, i.gtid.executed
                    ));
                }
            }
        }
        if lines.is_empty() {
            return Err(abort("no replica answered"));
        }
        Ok(lines.join("; "))
    }

    /// The GTID set every survivor must reach: everything any of them received or executed.
    fn target(&self, obs: &Observations) -> Result<String, String> {
        let mut sets = Vec::new();
        for i in obs.values().flatten() {
            if let Some(r) = &i.replica {
                sets.push(r.gtid_io_pos.as_str());
            }
            match self.mode() {
                ReplicationMode::MariadbGtid => sets.push(i.gtid.slave_pos.as_str()),
                _ => sets.push(i.gtid.executed.as_str()),
            }
        }
        match self.mode() {
            ReplicationMode::MariadbGtid => gtid::merge_mariadb(sets),
            _ => gtid::merge_mysql(sets),
        }
    }

    /// Phase 3.3: MHA's selection, decided once and journaled with the target GTID set.
    async fn choose(&mut self, run: &FailoverRun) -> StepResult {
        if let Some(d) = &run.decided {
            return Ok(format!(
                "already decided: new master {} ({}), target {} (not decided again)",
                d.new_master, d.rule, d.target
            ));
        }
        let obs = match self.latest.take() {
            Some(o) => o,
            None => self.observe(run).await?,
        };
        let sel = selection::select(&SelectionInput {
            spec: &self.group.spec,
            old_master: &run.old_master,
            observed: &obs,
            forced: run.forced.as_deref(),
            latest_priority: true,
            check_repl_delay: true,
        })
        .map_err(|(reason, excluded)| {
            abort(format!(
                "{reason}; {}",
                excluded
                    .iter()
                    .map(|e| format!("{}: {}", e.server, e.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        let target = self.target(&obs).map_err(abort)?;
        let decided = Decided {
            new_master: sel.new_master.clone(),
            rule: sel.rule.clone(),
            target: target.clone(),
        };
        if let CmdResult::Rejected { reason } = self
            .commit(Cmd::Decide {
                run: self.id,
                decided,
            })
            .await?
        {
            return Err(abort(reason));
        }
        Ok(format!(
            "{}; target GTID set {target}",
            sel.explanation.join("; ")
        ))
    }

    fn decided(run: &FailoverRun) -> Result<&Decided, StepError> {
        run.decided
            .as_ref()
            .ok_or_else(|| abort("no new master was decided"))
    }

    /// Phase 3.5: bring the new master level with the target, make it a master, record the
    /// epoch on it, make it writable, then bring the VIP up (writable before the VIP: the first
    /// client that reaches it can write).
    async fn promote(&self, run: &FailoverRun) -> StepResult {
        let d = Self::decided(run)?;
        let nm = self.server(&d.new_master)?;
        let mut s = self.connect(&nm).await.map_err(abort)?;
        let mut lines = Vec::new();
        let recorded = read_epoch(&mut s, &run.group).await.map_err(abort)?;
        if let Some((epoch, r)) = recorded {
            if epoch > run.epoch {
                return Err(abort(format!(
                    "{} already carries epoch {epoch} (run {r}): this run (epoch {}) is stale",
                    nm.name, run.epoch
                )));
            }
        }
        let info = s.server_info().await.map_err(abort)?;
        if let Some(r) = &info.replica {
            self.catch_up(&mut s, &nm, r, &d.target, &mut lines).await?;
            self.guard()?;
            s.stop_replica(false).await.map_err(abort)?;
            s.reset_replica_all().await.map_err(abort)?;
            lines.push(format!(
                "{}: replication stopped and reset (RESET SLAVE ALL)",
                nm.name
            ));
        } else {
            lines.push(format!("{}: already not a replica", nm.name));
        }
        self.guard()?;
        if recorded.map(|(e, _)| e) != Some(run.epoch) {
            write_epoch(
                &mut s,
                &run.group,
                run.epoch,
                self.id,
                self.term,
                self.node.id(),
            )
            .await
            .map_err(abort)?;
            lines.push(format!("epoch {} recorded on {}", run.epoch, nm.name));
        }
        if self.group.topology.semisync && !info.semisync.master_enabled {
            s.enable_semisync_source().await.map_err(abort)?;
            lines.push("semi-sync source side enabled (lossless as before)".into());
        }
        if info.read_only {
            s.set_read_only(false).await.map_err(abort)?;
            lines.push(format!("{}: read_only=0", nm.name));
        } else {
            lines.push(format!("{}: already writable", nm.name));
        }
        s.close().await;
        lines.push(self.vip_up(&nm).await?);
        Ok(lines.join("; "))
    }

    /// Waits until the new master executed the target GTID set. When its own relay log cannot
    /// get it there (it is not a latest replica), it first replicates the missing transactions
    /// from a survivor that has them (MHA's GTID recovery), then stops again.
    async fn catch_up(
        &self,
        s: &mut Session,
        nm: &ServerSpec,
        r: &crate::adapters::mysql::ReplicaStatus,
        target: &str,
        lines: &mut Vec<String>,
    ) -> Result<(), StepError> {
        let limit = Duration::from_millis(self.group.spec.failover.apply_timeout_ms);
        let received = self.merge(&[&r.gtid_io_pos, target]) == self.merge(&[&r.gtid_io_pos]);
        if !received && !target.is_empty() {
            let obs = self.observe_run().await?;
            let donor = self
                .group
                .spec
                .servers
                .iter()
                .filter(|x| x.name != nm.name)
                .find(|x| match obs.get(&x.name) {
                    Some(Ok(i)) => {
                        let have = match self.mode() {
                            ReplicationMode::MariadbGtid => i.gtid.binlog_pos.clone(),
                            _ => i.gtid.executed.clone(),
                        };
                        i.log_bin && self.merge(&[&have, target]) == self.merge(&[&have])
                    }
                    _ => false,
                })
                .cloned()
                .ok_or_else(|| {
                    abort(format!(
                        "{} lacks part of {target} and no survivor has it in its binlog",
                        nm.name
                    ))
                })?;
            self.guard()?;
            s.stop_replica(false).await.map_err(abort)?;
            s.change_master(&self.change_master_to(&donor))
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

    async fn observe_run(&self) -> Result<Observations, StepError> {
        let run = self
            .run()
            .ok_or_else(|| StepError::Lost("run vanished".into()))?;
        self.observe(&run).await
    }

    /// Normalised merge of GTID sets in this group's flavour (unparseable = empty, which makes
    /// a containment test fail safe).
    fn merge(&self, sets: &[&str]) -> String {
        let r = match self.mode() {
            ReplicationMode::MariadbGtid => gtid::merge_mariadb(sets.iter().copied()),
            _ => gtid::merge_mysql(sets.iter().copied()),
        };
        r.unwrap_or_default()
    }

    fn change_master_to(&self, source: &ServerSpec) -> ChangeMaster {
        ChangeMaster {
            host: source.host.clone(),
            port: source.port,
            user: self.group.spec.repl_user.clone(),
            password: self.repl_password.clone(),
            position: ReplicaPosition::Gtid,
        }
    }

    async fn vip_up(&self, nm: &ServerSpec) -> StepResult {
        let Some(v) = self.vip() else {
            return Ok("no VIP configured".into());
        };
        self.guard()?;
        let pool = self.ssh().map_err(abort)?;
        let (host, port) = nm.ssh_target(&self.group.spec.ssh);
        let added = vip::add(pool, &host, port, &v, SSH_COMMAND)
            .await
            .map_err(abort)?;
        Ok(format!(
            "{}: VIP {} {} (gratuitous ARP sent in the background)",
            nm.name,
            v.cidr,
            if added { "up" } else { "already up" }
        ))
    }

    /// Phase 4: every other survivor replicates from the new master (in parallel) and reaches
    /// the target set. A replica that fails is reported (MHA: "partially failed"), the run
    /// still completes: the new master already serves writes.
    async fn recover_replicas(&self, run: &FailoverRun) -> StepResult {
        let d = Self::decided(run)?;
        let nm = self.server(&d.new_master)?;
        self.guard()?;
        let others: Vec<ServerSpec> = self
            .survivors(run)
            .into_iter()
            .filter(|s| s.name != nm.name)
            .collect();
        let lines = join_all(others.iter().map(|r| self.recover_one(r, &nm, &d.target))).await;
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

    async fn recover_one(&self, r: &ServerSpec, nm: &ServerSpec, target: &str) -> (bool, String) {
        let res: Result<String, String> = async {
            let mut s = self.connect(r).await?;
            let st = s.replica_status().await.map_err(|e| e.to_string())?;
            let already = st.as_ref().is_some_and(|x| {
                x.source_host == nm.host && x.source_port == nm.port && x.io_thread == IoThread::Yes
            });
            let mut what = if already {
                format!("already replicating from {}", nm.name)
            } else {
                self.guard().map_err(|e| format!("{e:?}"))?;
                s.stop_replica(false).await.map_err(|e| e.to_string())?;
                s.change_master(&self.change_master_to(nm))
                    .await
                    .map_err(|e| e.to_string())?;
                s.start_replica().await.map_err(|e| e.to_string())?;
                format!("now replicating from {}", nm.name)
            };
            let info = s.server_info().await.map_err(|e| e.to_string())?;
            if !info.read_only {
                s.set_read_only(true).await.map_err(|e| e.to_string())?;
                what.push_str(", read_only set");
            }
            let limit = Duration::from_millis(self.group.spec.failover.replica_timeout_ms);
            if !target.is_empty()
                && !s
                    .wait_gtid(target, limit)
                    .await
                    .map_err(|e| e.to_string())?
            {
                return Err(format!(
                    "{what}, but did not reach {target} within {limit:?}"
                ));
            }
            s.close().await;
            Ok(format!("{what}, reached {target}"))
        }
        .await;
        match res {
            Ok(l) => (true, format!("{}: {l}", r.name)),
            Err(e) => (false, format!("{}: FAILED: {e}", r.name)),
        }
    }

    /// Phase 5: the new master is a writable master holding the VIP; MHA's statement for the
    /// other replicas (password masked).
    async fn cleanup(&self, run: &FailoverRun) -> StepResult {
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
            ..self.change_master_to(&nm)
        };
        lines.push(format!(
            "All other slaves should start replication from here. Statement should be: {};",
            info.dialect.change_master(&masked)
        ));
        Ok(lines.join("; "))
    }
}
