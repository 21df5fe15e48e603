//! The steps of a failover run (MHA's phases, GTID recovery). Each step first checks what is
//! already in place and does only what is missing, so a new leader can run it again after a
//! crash (invariant 4). Every side effect is preceded by [`RunCtx::guard`]: this node must still
//! be the acting leader of the term the step began in (invariant 3). Every MySQL and SSH call is
//! bounded, so a dead host costs about a second, not a hang.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

// One file per phase, named after the journal's step; apply.rs is the replay machinery
// phases 3.5 and 4 share.
mod apply;
mod choose_new_master;
mod config_check;
mod fence;
mod generate_diffs;
mod journal_commits;
mod latest_replicas;
mod new_master_cleanup;
mod point_ahead;
mod promote_new_master;
mod reject_updates;
mod replicas_recovery;
mod save_master_binlog;
mod switch_check;
mod switch_master;
mod switch_replicas;
mod switch_rollback;
mod vip_move;

use crate::adapters::mysql::{ChangeMaster, Login, MysqlError, ReplicaPosition, Session};
use crate::adapters::ssh::vip;
use crate::adapters::ssh::{SshError, SshPool};
use crate::engine::failover as plan;
use crate::engine::failover::check::CheckFacts;
use crate::engine::failover::target::{Choice, ChooseInput};
use crate::engine::selection::SelectionInput;
use crate::local_config::Hook;
use crate::model::{Observations, Target};
use crate::runtime::credentials::{login, resolve};
use crate::runtime::groups::observe_except;
use crate::runtime::Runtime;
use crate::secret::Secret;
use crate::state::group::{Group, ReplicationMode, ServerSpec};
use crate::state::journal::{Decided, FailoverRun, StepName, StepReport};
use crate::state::recovery::RecoveryNote;
use crate::state::{Cmd, CmdResult};

/// Connecting to a server during a failover: a dead one costs at most this.
pub(super) const CONNECT: Duration = Duration::from_secs(1);
/// One statement (not the waits, which carry their own limits).
pub(super) const STATEMENT: Duration = Duration::from_secs(5);
/// Reading a survivor's state.
pub(super) const OBSERVE: Duration = Duration::from_secs(2);
/// An SSH command on a reachable host (VIP, checks).
pub(super) const SSH_COMMAND: Duration = Duration::from_secs(3);
/// An SSH command on the old master (a dead host costs this much).
pub(super) const OLD_MASTER_SSH: Duration = Duration::from_secs(1);
/// Connecting to the old master (phase 1's double check, phase 2's fencing knock). A server
/// that came back answers a connect in milliseconds; a hung one (SIGSTOP: the kernel accepts
/// the TCP connection, mysqld never greets) must not cost a second per knock. A knock that
/// times out only confirms the committed verdict (phase 1) or leads to STONITH (phase 2).
pub(super) const OLD_MASTER_CONNECT: Duration = Duration::from_millis(300);
/// Fencing the old master by SQL as a whole (read_only, its clients killed). A server that
/// cannot do that in time is treated as hung: the shutdown_script (`stopssh`) stops it.
pub(super) const FENCE_WRITES: Duration = Duration::from_secs(1);
/// How long phase 1's silent knock on the old master stands in for phase 2's own.
pub(super) const SILENT_MYSQLD_FRESH: Duration = Duration::from_secs(5);
/// A shutdown_script (STONITH) may take this long.
pub(super) const HOOK: Duration = Duration::from_secs(30);

/// Per-replica results of a step that repoints replicas in parallel, as the planner takes
/// them. A replica whose repointing stopped at a guard is not a failed replica: the step
/// stops without an outcome (the term is over, or a delegate lost its leader's confirmation)
/// and is begun again.
/// Each replica's name and what repointing it came to (a failure's text).
type ReplicaResults = Vec<(String, Result<String, String>)>;

fn replica_results(
    results: Vec<(String, Result<String, StepError>)>,
) -> Result<ReplicaResults, StepError> {
    if let Some(why) = results.iter().find_map(|(_, r)| match r {
        Err(StepError::Lost(why)) => Some(why.clone()),
        _ => None,
    }) {
        return Err(StepError::Lost(why));
    }
    Ok(results
        .into_iter()
        .map(|(name, r)| (name, r.map_err(|e| e.to_string())))
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// This node is no longer the acting leader of the step's term: stop, write nothing.
    #[error("leadership lost: {0}")]
    Lost(String),
    /// The step failed; the run fails and blocks automatic failover until acknowledged.
    #[error("{0}")]
    Abort(String),
}

type StepResult = Result<String, StepError>;

/// Why an executor cannot start on a run (logged; the next supervisor round tries again).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no run {0}")]
    NoRun(u64),
    #[error(transparent)]
    Group(#[from] crate::raft::NodeError),
    #[error("{which}: {source}")]
    Credential {
        which: &'static str,
        source: crate::runtime::credentials::CredentialError,
    },
}

fn abort(e: impl std::fmt::Display) -> StepError {
    StepError::Abort(e.to_string())
}

/// On whose authority a run's steps act here (invariant 3).
#[derive(Clone, Debug)]
pub enum Authority {
    /// This node is the acting leader of the run's term.
    Leader,
    /// The leader of the run's term delegated the step to this node: before every side effect
    /// it asks that leader whether the step's attempt is still its own in that term, and it
    /// commits the step's journal entries through it.
    Delegate(super::delegate::DelegateAuth),
}

pub struct RunCtx {
    node: Arc<Runtime>,
    id: u64,
    term: u64,
    authority: Authority,
    group: Group,
    password: Secret,
    repl_password: Secret,
    ssh: Result<Arc<SshPool>, SshError>,
    /// The survivors as phase 3.1 read them (IO threads stopped, so they hold still): phase 3.3
    /// of the same executor decides from it instead of reading again. A resumed run reads anew.
    latest: Option<Observations>,
    /// The dead master's events phase 3.2 saved (a resumed run reads a survivor's copy).
    salvaged: Option<crate::adapters::binlog::MasterLog>,
    /// Phase 2 found the old master's host unreachable over SSH (and powered it off): phase
    /// 3.2 does not wait for it again.
    old_host_unreachable: bool,
    /// When choosing who acts, or corroborating the suspicion just before (host_silence.rs),
    /// no manager (this one included) reached the old master's host over SSH: phase 2,
    /// moments later, does not spend another knock on it.
    old_host_silent: Option<HostSilence>,
    /// Phase 1's double check found the old mysqld silent (no answer, no refusal): when, and
    /// the error. Phase 2 moments later goes straight to STONITH instead of knocking again.
    old_mysqld_silent: Option<(std::time::Instant, String)>,
    /// An online switchover's session on the old master holding FLUSH TABLES WITH READ LOCK
    /// (phase 2 to phase 4; dropping it releases the lock).
    switch_lock: Option<Session>,
    /// Sessions being opened ahead for the next step, by server name ([`Self::warm_up`]).
    warm: std::sync::Mutex<std::collections::HashMap<String, Vec<Ahead>>>,
    /// Steps run by this context so far: which one opened a session ahead.
    steps_run: u64,
    /// Every survivor as phase 2 read it once the old master was taken out (on the session
    /// that stopped its IO thread), and the step counter of that phase 2: phase 3.1 right
    /// after it takes this instead of reading again.
    observed_at_fence: Option<(u64, Observations)>,
    /// The VIP's fencing rule being deleted from the new master's host since phase 2's end
    /// (the server MHA's selection picks on phase 2's readings) or phase 3.3's decision
    /// (vip_move.rs): the new master's name and the deletion's task.
    unfencing: Option<(String, tokio::task::JoinHandle<bool>)>,
    /// The dead master's binlog being read since phase 2 took it out
    /// (save_master_binlog.rs): phase 3.2 of this executor takes it.
    salvage_ahead: Option<save_master_binlog::SalvageAhead>,
    /// Journal entries of steps acted ahead of their begins (phase 1, phases 3.1–3.3),
    /// committed in one entry with the next begin or before the next side effect
    /// (state/batch.rs).
    gathered: std::sync::Mutex<Vec<Cmd>>,
    /// Held while gathered entries are committed (a side effect waits for them). Holds why a
    /// commit of gathered entries failed: they are not journaled, so from then on no side
    /// effect of this context may run (every later guard fails with it; the executor starts
    /// again from the committed run).
    flushing: tokio::sync::Mutex<Option<String>>,
}

/// A session being opened ahead: by which step, when, and the task opening it. Dropped (with
/// its session, once open) when the step after the one that opened it has not taken it.
struct Ahead {
    step: u64,
    opened: std::time::Instant,
    task: tokio::task::JoinHandle<Result<Session, MysqlError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A session opened ahead longer ago than this is not used (it may have been idle through a
/// long catch-up or a hook, and a server or a middlebox may have dropped it): a fresh one is.
const AHEAD_FRESH: Duration = Duration::from_secs(1);

/// No manager reached the old master's host over SSH: since when, and when that was found
/// (for the journal: "when the suspicion was corroborated", "when asked who acts").
#[derive(Clone, Copy, Debug)]
pub struct HostSilence {
    pub since: std::time::Instant,
    pub found: &'static str,
}

impl RunCtx {
    pub fn new(
        node: Arc<Runtime>,
        id: u64,
        term: u64,
        authority: Authority,
    ) -> Result<RunCtx, SetupError> {
        let run = node
            .raft
            .read(|c| c.runs.get(&id).cloned())
            .ok_or(SetupError::NoRun(id))?;
        let mut group = crate::runtime::groups::group(&node, &run.group)?;
        // The servers of this failover: the topology's (an old master removed by an earlier
        // failover stays in the spec but is not part of the group's replication any more).
        let members = group.topology.servers.clone();
        group
            .spec
            .servers
            .retain(|s| members.contains_key(&s.name) || s.name == run.old_master);
        let local = node.local.clone();
        let password = resolve(&local, "password", &group.spec.password).map_err(|source| {
            SetupError::Credential {
                which: "password",
                source,
            }
        })?;
        let repl_password =
            resolve(&local, "repl_password", &group.spec.repl_password).map_err(|source| {
                SetupError::Credential {
                    which: "repl_password",
                    source,
                }
            })?;
        let ssh = node.ssh.get(&local, &group.spec);
        Ok(RunCtx {
            node,
            id,
            term,
            authority,
            group,
            password,
            repl_password,
            ssh,
            latest: None,
            salvaged: None,
            old_host_unreachable: false,
            old_host_silent: None,
            old_mysqld_silent: None,
            switch_lock: None,
            warm: Default::default(),
            steps_run: 0,
            unfencing: None,
            observed_at_fence: None,
            salvage_ahead: None,
            gathered: Default::default(),
            flushing: Default::default(),
        })
    }

    /// The run as the replicated state has it now, with the entries this context gathered
    /// and has not committed yet applied as they will be (state/batch.rs).
    pub fn run(&self) -> Option<FailoverRun> {
        let mut run = self.node.raft.read(|c| c.runs.get(&self.id).cloned())?;
        let gathered = self.gathered.lock().expect("gathered entries").clone();
        let at = crate::clock::now_ms();
        for cmd in &gathered {
            // Refused here, the batch is refused when committed and this executor stops.
            if let Err(e) = run.apply_journal(cmd, at) {
                tracing::warn!(error = %e, entry = %cmd, "a gathered journal entry does not apply to the run as committed");
            }
        }
        Some(run)
    }

    /// Side effects only while this node is the acting leader of the step's term, or — acting
    /// for that leader — while the leader confirms the step is still this node's in its term;
    /// and only once the step's begin is committed: entries gathered ahead of it are first.
    async fn guard(&self) -> Result<(), StepError> {
        self.flush().await?;
        self.guard_term().await
    }

    /// [`Self::guard`] without committing the gathered entries: for the few side effects that
    /// are harmless whatever the journal says (vip_move.rs: a leftover fencing rule deleted from
    /// a host that does not hold the VIP).
    async fn guard_term(&self) -> Result<(), StepError> {
        match &self.authority {
            Authority::Leader => self
                .node
                .raft
                .guard_within(self.term, crate::raft::LAPSE_GRACE)
                .await
                .map_err(|e| StepError::Lost(e.to_string())),
            Authority::Delegate(auth) => {
                super::delegate::ask_guard(&self.node, auth, self.id, self.term)
                    .await
                    .map_err(StepError::Lost)
            }
        }
    }

    /// Whether automatic failover of this run's group is blocked now.
    pub fn group_blocked(&self) -> bool {
        self.node.raft.read(|c| {
            c.failover
                .get(&self.group.spec.name)
                .is_some_and(|f| f.blocked.is_some())
        })
    }

    /// This context may no longer act (its term is over, as far as this node knows).
    pub fn lost(&self) -> bool {
        matches!(self.authority, Authority::Leader) && self.node.raft.guard(self.term).is_err()
    }

    /// A kept delegate's context acts the next step (its attempt) for the same leader.
    pub fn act_for(&mut self, auth: super::delegate::DelegateAuth) {
        self.authority = Authority::Delegate(auth);
    }

    pub fn node_id(&self) -> u64 {
        self.node.id()
    }

    /// The term this context acts in.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The node this run is executed on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.node
    }

    /// The group as this run sees it.
    pub fn spec(&self) -> &crate::state::group::GroupSpec {
        &self.group.spec
    }

    /// No manager reached the old master's host over SSH (see `old_host_silent`).
    pub fn old_host_silent(&mut self, silence: HostSilence) {
        self.old_host_silent = Some(silence);
    }

    /// What the run's steps need to reach (who acts them is chosen from it).
    pub fn needs(&self, run: &FailoverRun) -> plan::actor::Needs {
        let survivors: Vec<String> = self.survivors(run).into_iter().map(|s| s.name).collect();
        plan::actor::Needs::of(&survivors, &run.old_master, self.ssh.is_ok())
    }

    pub async fn run_step(&mut self, step: StepName) -> Result<StepReport, StepError> {
        self.steps_run += 1;
        let r = self.run_step_here(step).await;
        // What the step before opened ahead for this one and this one did not take.
        let this = self.steps_run;
        // A binlog read phase 2 began is 3.2's (two steps on) or nobody's: a context kept
        // for a delegate's later steps does not hold on to it.
        if self
            .salvage_ahead
            .as_ref()
            .is_some_and(|a| a.step + 2 <= this)
        {
            self.salvage_ahead = None;
        }
        self.warm.lock().expect("warm sessions").retain(|_, v| {
            v.retain(|a| a.step == this);
            !v.is_empty()
        });
        r
    }

    async fn run_step_here(&mut self, step: StepName) -> Result<StepReport, StepError> {
        let run = self
            .run()
            .ok_or_else(|| StepError::Lost("run vanished".into()))?;
        let detail = match step {
            StepName::Fence => self.fence(&run).await,
            StepName::LatestReplicas => self.latest_replicas(&run).await,
            StepName::SaveMasterBinlog => self.save_master_binlog(&run).await,
            StepName::ChooseNewMaster => self.choose(&run).await,
            StepName::GenerateDiffs => self.generate_diffs(&run).await,
            StepName::PromoteNewMaster => self.promote(&run).await,
            // The steps whose reports carry more than their text.
            StepName::ConfigCheck => return self.config_check(&run).await,
            StepName::ReplicasRecovery => return self.recover_replicas(&run).await,
            StepName::NewMasterCleanup => return self.cleanup(&run).await,
            StepName::SwitchCheck => self.switch_check(&run).await,
            StepName::RejectUpdates => self.reject_updates(&run).await,
            StepName::SwitchMaster => self.switch_master(&run).await,
            StepName::SwitchReplicas => return self.switch_replicas(&run).await,
            StepName::SwitchCleanup => self.switch_cleanup(&run).await,
        };
        detail.map(StepReport::from)
    }

    /// For a failed run's journal: where its work files stay on the DB hosts (None: it wrote
    /// none).
    pub fn kept_files_note(&self) -> Option<String> {
        let run = self.run()?;
        let survivors: Vec<String> = self.survivors(&run).into_iter().map(|s| s.name).collect();
        plan::workfiles::kept_note(&run, &self.group.spec.failover.remote_workdir, &survivors)
    }

    /// The epoch the group's new master already carries, refused if a later run's (this run
    /// is stale then).
    async fn epoch_on(
        &self,
        s: &mut Session,
        run: &FailoverRun,
        nm: &ServerSpec,
    ) -> Result<Option<(u64, u64)>, StepError> {
        let recorded = s.read_epoch(&run.group).await.map_err(abort)?;
        if let Some((epoch, r)) = recorded {
            if epoch > run.epoch {
                return Err(abort(format!(
                    "{} already carries epoch {epoch} (run {r}): this run (epoch {}) is stale",
                    nm.name, run.epoch
                )));
            }
        }
        Ok(recorded)
    }

    /// Records on the new master which run (epoch, term, manager) made it the master.
    async fn write_epoch(
        &self,
        s: &mut Session,
        run: &FailoverRun,
        nm: &ServerSpec,
    ) -> Result<String, StepError> {
        s.write_epoch(&crate::adapters::mysql::EpochRow {
            group: &run.group,
            epoch: run.epoch,
            run: self.id,
            term: self.term,
            manager: self.node.id(),
        })
        .await
        .map_err(abort)?;
        Ok(format!("epoch {} recorded on {}", run.epoch, nm.name))
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

    /// Opens a session to each of `servers` in the background (a server named twice, two), for
    /// the next step's [`Self::connect`] to take: its connects then cost nothing on the
    /// failover's path (phase 3.3 opens the new master's for 3.5 in GTID groups, 3.5 the
    /// replicas' for 4 once the new master is writable). Taken within [`AHEAD_FRESH`] or not
    /// at all; one the next step does not take is closed when that step ends.
    fn warm_up(&self, servers: &[ServerSpec]) {
        let mut warm = self.warm.lock().expect("warm sessions");
        for s in servers {
            let login = self.login(s);
            let task = tokio::spawn(async move { login.connect(CONNECT).await });
            warm.entry(s.name.clone()).or_default().push(Ahead {
                step: self.steps_run,
                opened: std::time::Instant::now(),
                task,
            });
        }
    }

    async fn connect(&self, s: &ServerSpec) -> Result<Session, MysqlError> {
        let t = std::time::Instant::now();
        let ahead = self
            .warm
            .lock()
            .expect("warm sessions")
            .get_mut(&s.name)
            .and_then(Vec::pop)
            .filter(|a| a.opened.elapsed() < AHEAD_FRESH);
        if let Some(mut ahead) = ahead {
            // Its outcome is this connect's: a server that did not answer it a moment ago is
            // not given a second timeout.
            let opened = (&mut ahead.task)
                .await
                .map_err(|e| MysqlError::Connect {
                    endpoint: s.name.clone(),
                    message: format!("session opened ahead: {e}"),
                })
                .and_then(|r| r);
            tracing::debug!(server = %s.name, elapsed_us = t.elapsed().as_micros() as u64, ok = opened.is_ok(), "session opened ahead");
            let mut sess = opened?;
            sess.set_timeout(STATEMENT);
            return Ok(sess);
        }
        let mut sess = self.login(s).connect(CONNECT).await?;
        tracing::debug!(server = %s.name, elapsed_us = t.elapsed().as_micros() as u64, "connected");
        sess.set_timeout(STATEMENT);
        Ok(sess)
    }

    /// The servers that replicate (or replicated) from the old master, in group-file order.
    /// Less the `ignore_fail` servers phase 1 left out (journaled in its report).
    fn survivors(&self, run: &FailoverRun) -> Vec<ServerSpec> {
        let left_out = run.left_out();
        self.group
            .spec
            .servers
            .iter()
            .filter(|s| s.name != run.old_master && !left_out.contains(&s.name))
            .cloned()
            .collect()
    }

    /// Every survivor's state; a server phase 1 left out (`ignore_fail`) is not among them,
    /// so no later phase reads, chooses or repoints it.
    async fn observe(&self, run: &FailoverRun) -> Result<Observations, StepError> {
        let mut obs = observe_except(
            &self.node.local,
            &self.group.spec,
            Some(&run.old_master),
            OBSERVE,
        )
        .await
        .map_err(|e| abort(format!("password: {e}")))?;
        for name in run.left_out() {
            obs.remove(&name);
        }
        Ok(obs)
    }

    /// The `[hooks]` entry of this manager that the spec's `field` names.
    fn hook(&self, field: &str, name: &str) -> Result<&Hook, StepError> {
        crate::runtime::credentials::hook(&self.node.local, field, name).map_err(abort)
    }

    /// MHA's client_bindir on the DB hosts, from this manager's SSH profile of the group.
    fn client_bindir(&self) -> Option<String> {
        crate::runtime::credentials::ssh_profile(&self.node.local, &self.group.spec.ssh)
            .ok()
            .and_then(|p| p.client_bindir.clone())
    }

    fn ssh(&self) -> Result<&SshPool, SshError> {
        self.ssh.as_deref().map_err(|e| e.clone())
    }

    /// Whether this group has SSH, as the planner takes it (Err: why not).
    fn ssh_available(&self) -> Result<(), String> {
        self.ssh().map(|_| ()).map_err(|e| e.to_string())
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
}
