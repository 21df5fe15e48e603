//! Replication groups, leader side: resolve credentials on this manager, observe every server
//! (in parallel, bounded), discover and commit topologies, run `check repl` / `check ssh`, and
//! build the live per-group view of `cluster status`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::credentials::{check_files, check_names, hook, login, password, CredentialError};
use super::features;
use crate::adapters::mysql::EpochTable;
use crate::adapters::ssh::SshPool;
use crate::clock::now_ms;
use crate::engine::topology::{self, ReplReport};
use crate::local_config::LocalConfig;
use crate::model::{IoThread, Observations};
use crate::raft::NodeError;
use crate::runtime::Runtime;
use crate::state::group::{Group, GroupSpec, ReplicationMode, ServerSpec};
use crate::state::ownership::FEATURE_EXCLUSIVE_SERVERS;
use crate::state::{Cmd, CmdResult, Rejection};

/// How long reading one server may take (connect + the status queries).
pub const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads every server of the group as the monitor user (password from this manager's
/// `[credentials]`), in parallel.
pub async fn observe(
    local: &LocalConfig,
    spec: &GroupSpec,
    timeout: Duration,
) -> Result<Observations, CredentialError> {
    observe_except(local, spec, None, timeout).await
}

/// Reads every server of the group but `except` (a dead master is not waited for).
pub async fn observe_except(
    local: &LocalConfig,
    spec: &GroupSpec,
    except: Option<&str>,
    timeout: Duration,
) -> Result<Observations, CredentialError> {
    let password = password(local, spec)?;
    let reads = spec
        .servers
        .iter()
        .filter(|s| Some(s.name.as_str()) != except)
        .map(|s| {
            let password = password.clone();
            async move {
                let login = login(spec, s, &password);
                let res = async {
                    let mut sess = login.connect(timeout).await?;
                    let info = sess.server_info().await;
                    sess.close().await;
                    info
                }
                .await;
                (s.name.clone(), res.map_err(|e| e.to_string()))
            }
        });
    Ok(join_all(reads).await.into_iter().collect())
}

/// Discovers the group's topology and commits it (add, or update with `replace`). The leader
/// first checks that every hook, credential and SSH profile the spec names is defined in its
/// own config file: a spec naming anything else is refused before any server is contacted and
/// before anything is read or run.
#[tracing::instrument(skip_all, fields(group = %spec.name, replace))]
pub async fn put_group(node: &Runtime, spec: GroupSpec, replace: bool) -> Result<Group, NodeError> {
    spec.validate()
        .map_err(|e| NodeError::InvalidArgument(e.join("; ")))?;
    if !node.raft.is_acting_leader() {
        return Err(NodeError::NotLeader {
            leader: node.raft.leader(),
        });
    }
    check_names(&node.local, &spec).map_err(|errs| {
        NodeError::InvalidArgument(format!(
            "group {} rejected by the leader (manager {}): {}",
            spec.name,
            node.id(),
            errs.join("; ")
        ))
    })?;
    // One server, one group: answered before any server is contacted. `apply` checks it again
    // (another add may commit first) when every member's build knows the rule.
    if let Some(r) = node.raft.read(|c| c.server_conflict(&spec)) {
        return Err(NodeError::Rejected(r));
    }
    if spec.servers.iter().any(|s| s.ignore_fail) {
        features::require(
            node,
            crate::state::group::FEATURE_IGNORE_FAIL,
            "ignore_fail",
        )
        .await
        .map_err(|why| NodeError::InvalidArgument(format!("group {}: {why}", spec.name)))?;
    }
    // Right after an election a member may not have registered yet: wait for it briefly, so
    // the replicated state enforces the one-server-one-group rule too.
    let exclusive = features::settled(node, FEATURE_EXCLUSIVE_SERVERS)
        .await
        .is_none();
    let missing = check_files(&node.local, &spec);
    if !missing.is_empty() {
        return Err(NodeError::InvalidArgument(format!(
            "group {} rejected by the leader (manager {}): its config names files that are not \
             there: {} (every manager needs them; mhactl check ssh checks each one's SSH)",
            spec.name,
            node.id(),
            missing.join("; ")
        )));
    }
    let obs = observe(&node.local, &spec, OBSERVE_TIMEOUT)
        .await
        .map_err(|e| NodeError::InvalidArgument(format!("password: {e}")))?;
    let topo = topology::discover(&spec, &obs, now_ms()).map_err(|errs| {
        NodeError::InvalidArgument(format!("group {} rejected: {}", spec.name, errs.join("; ")))
    })?;
    let name = spec.name.clone();
    tracing::info!(master = %topo.master, mode = ?topo.mode, "group topology discovered");
    let master = spec.server(&topo.master).cloned();
    let prepared = spec.clone();
    let cmd = Cmd::PutGroup {
        spec: Box::new(spec),
        topology: Box::new(topo),
        replace,
        exclusive,
    };
    let committed = node.raft.propose(cmd).await?;
    match committed {
        CmdResult::Rejected(r) => Err(NodeError::Rejected(r)),
        CmdResult::Ok | CmdResult::Unchanged => {
            if let (CmdResult::Ok, Some(master)) = (&committed, master) {
                // In the background: the DDL is bounded by the session's timeout (a lossless
                // semi-sync master without a replica to acknowledge holds it that long), and
                // the admin call need not wait for it.
                let local = node.local.clone();
                tokio::spawn(
                    async move { prepare_epoch_table(&local, &prepared, &master).await }
                        .instrument(tracing::Span::current()),
                );
            }
            node.raft
                .read(|c| c.groups.get(&name).cloned())
                .ok_or_else(|| NodeError::Fatal("group vanished after commit".into()))
        }
    }
}

/// The table a promotion records its epoch in, created on the master of a group just added
/// or changed (and so on its replicas, by replication) rather than by the group's first
/// failover, on its way to the new master's first write (adapters/mysql/epoch.rs). Best
/// effort: a promotion creates it when it is missing.
async fn prepare_epoch_table(local: &LocalConfig, spec: &GroupSpec, master: &ServerSpec) {
    let r = async {
        let password = password(local, spec).map_err(|e| e.to_string())?;
        let mut s = login(spec, master, &password)
            .connect(OBSERVE_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let r = s.prepare_epoch_table().await.map_err(|e| e.to_string());
        s.close().await;
        r
    }
    .await;
    let server = &master.name;
    match r {
        Ok(EpochTable::There) => tracing::debug!(%server, "epoch table already on the master"),
        Ok(EpochTable::Created) => tracing::info!(%server, "epoch table created on the master"),
        Ok(EpochTable::ReadOnly) => {
            tracing::info!(%server, "epoch table not created: the master is read-only (the group's first promotion creates it)")
        }
        Err(e) => {
            tracing::info!(%server, error = %e, "epoch table not created now: the group's first promotion creates it")
        }
    }
}

pub async fn remove_group(node: &Runtime, name: &str) -> Result<(), NodeError> {
    // A run in progress belongs to the group: removed under it, a group added again under the
    // name would inherit it (shown running, automatic failover never starting).
    if let Some(run) = node
        .raft
        .read(|c| c.failover.get(name).and_then(|f| f.active_run))
    {
        return Err(NodeError::Rejected(Rejection::RunActive {
            group: name.to_string(),
            run,
        }));
    }
    match node
        .raft
        .propose(Cmd::RemoveGroup {
            name: name.to_string(),
        })
        .await?
    {
        CmdResult::Rejected(r) => Err(NodeError::Rejected(r)),
        _ => Ok(()),
    }
}

pub fn group(node: &Runtime, name: &str) -> Result<Group, NodeError> {
    node.raft
        .read(|c| c.groups.get(name).cloned())
        .ok_or_else(|| {
            NodeError::Rejected(Rejection::NoSuchGroup {
                group: name.to_string(),
            })
        })
}

/// masterha_check_repl against the live servers.
pub async fn check_repl(node: &Runtime, name: &str) -> Result<ReplReport, NodeError> {
    let g = group(node, name)?;
    let obs = observe(&node.local, &g.spec, OBSERVE_TIMEOUT)
        .await
        .map_err(|e| NodeError::InvalidArgument(format!("password: {e}")))?;
    let mut report = topology::check_repl(&g.spec, &obs);
    if let (Some(name), Some(m)) = (
        &g.spec.failover.master_ip_failover_script,
        report.master.as_ref().and_then(|m| g.spec.server(m)),
    ) {
        // MHA's masterha_check_repl asks the script too (`--command=status`): a script that
        // cannot run would fail the failover later.
        let args = crate::adapters::hooks::orig_master_args(
            "status",
            &g.spec.ssh.user,
            &m.name,
            &m.host,
            m.port,
        );
        let run = async {
            let script =
                hook(&node.local, "master_ip_failover_script", name).map_err(|e| e.to_string())?;
            crate::adapters::hooks::run(script, &args, Duration::from_secs(10)).await
        };
        let (ok, detail) = match run.await {
            Ok(out) if out.code == Some(0) => (true, "status ok".to_string()),
            Ok(out) => (false, format!("exited {:?}: {}", out.code, out.tail)),
            Err(e) => (false, e),
        };
        if !ok {
            report.errors.push(format!(
                "master_ip_failover_script --command=status: {detail}"
            ));
            report.ok = false;
        }
        report.checks.push(topology::CheckItem {
            server: m.name.clone(),
            check: "master_ip_failover_script".into(),
            ok,
            detail,
        });
    }
    Ok(report)
}

/// One SSH check from this manager to one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SshResult {
    pub server: String,
    pub target: String,
    pub ok: bool,
    pub latency_ms: u64,
    pub error: String,
}

/// SSH from this manager to every server of the group (with this manager's profile).
pub async fn ssh_check_local(local: &LocalConfig, spec: &GroupSpec) -> Vec<SshResult> {
    let cfg = super::ssh_pools::ssh_config(local, &spec.ssh, Duration::from_secs(3));
    let pool = match cfg.and_then(SshPool::new) {
        Ok(p) => p,
        Err(e) => {
            return spec
                .servers
                .iter()
                .map(|s| SshResult {
                    server: s.name.clone(),
                    target: String::new(),
                    ok: false,
                    latency_ms: 0,
                    error: e.to_string(),
                })
                .collect()
        }
    };
    let pool = &pool;
    let results = join_all(spec.servers.iter().map(|s| async move {
        let (host, port) = s.ssh_target(&spec.ssh);
        let target = format!("{}@{host}:{port}", spec.ssh.user);
        match pool.check(&host, port).await {
            Ok(d) => SshResult {
                server: s.name.clone(),
                target,
                ok: true,
                latency_ms: d.as_millis() as u64,
                error: String::new(),
            },
            Err(e) => SshResult {
                server: s.name.clone(),
                target,
                ok: false,
                latency_ms: 0,
                error: e.to_string(),
            },
        }
    }))
    .await;
    pool.close_all().await;
    results
}

/// One server of a group as observed now (cluster status).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerLive {
    pub name: String,
    pub address: String,
    /// master | replica | unreachable
    pub role: String,
    pub read_only: Option<bool>,
    /// GTID position, or binlog file:pos.
    pub position: String,
    pub io_thread: Option<String>,
    pub sql_thread: Option<bool>,
    pub seconds_behind: Option<u64>,
    pub error: Option<String>,
}

/// A group as observed now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupLive {
    pub name: String,
    /// The master recorded in the replicated state.
    pub master: String,
    /// Shown as MHA users read it (MariadbGtid, MysqlGtid, FilePos).
    #[serde(serialize_with = "debug_name")]
    pub mode: ReplicationMode,
    pub semisync: bool,
    /// masterha_check_status code and name (0 PING_OK, 20 PING_FAILING, 21 PING_FAILED).
    pub status_code: u8,
    pub status: String,
    /// The committed detector state (alive / suspect / unreachable_but_alive / dead).
    pub health: crate::model::Health,
    /// The latest verdict with its evidence (who voted what, replicas' IO threads, why).
    pub last_verdict: Option<crate::model::Verdict>,
    /// The leader's monitor counters for this group.
    #[serde(default)]
    pub counters: Option<super::monitor::CountersSnapshot>,
    /// The running failover run, else the most recent one (the journal, step by step).
    #[serde(default)]
    pub failover: Option<crate::state::journal::FailoverRun>,
    /// Why automatic failover is blocked (a failed run not yet acknowledged), if it is.
    #[serde(default)]
    pub failover_blocked: Option<String>,
    /// The latest refused automatic failover, if any.
    #[serde(default)]
    pub last_refusal: Option<crate::state::journal::Refusal>,
    /// Maintenance mode in force (automatic failover off), if any.
    #[serde(default)]
    pub paused: Option<crate::state::pause::Pause>,
    /// File/position groups: the leader's last relay-log purge attempt per replica.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relay_purges: Vec<super::relay_purge::RelayPurge>,
    /// `[failover] auto_rejoin`: the leader's last attempt to rejoin the replaced master.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_rejoins: Vec<super::rejoin::auto::AutoRejoin>,
    /// The servers from the monitor's latest readings, not read for this call.
    #[serde(default)]
    pub observed: bool,
    pub servers: Vec<ServerLive>,
    pub error: Option<String>,
}

fn debug_name<S: serde::Serializer>(m: &ReplicationMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{m:?}"))
}

/// Observes every group (in parallel) for `cluster status`.
pub async fn live_view(node: &Runtime, groups: Vec<Group>, timeout: Duration) -> Vec<GroupLive> {
    join_all(groups.into_iter().map(|g| async move {
        let obs = observe(&node.local, &g.spec, timeout).await;
        let (servers, error) = match obs {
            Err(e) => (Vec::new(), Some(format!("password: {e}"))),
            Ok(obs) => (
                g.spec
                    .servers
                    .iter()
                    .map(|s| {
                        server_live(
                            s.name.clone(),
                            s.endpoint(),
                            g.topology.mode,
                            obs.get(&s.name),
                        )
                    })
                    .collect(),
                None,
            ),
        };
        group_status(node, &g, servers, error, false)
    }))
    .await
}

/// A group's status around its server rows (read now, or as last observed): its masterha
/// status code, health, last verdict, failover, pause, purges and rejoins, all from the
/// replicated state and the leader's books.
pub(super) fn group_status(
    node: &Runtime,
    g: &Group,
    servers: Vec<ServerLive>,
    error: Option<String>,
    observed: bool,
) -> GroupLive {
    {
        let (run, f) = node.raft.read(|c| {
            let f = c.failover.get(&g.spec.name).cloned().unwrap_or_default();
            let run = f
                .active_run
                .and_then(|id| c.runs.get(&id))
                .or_else(|| c.runs.values().rev().find(|r| r.group == g.spec.name))
                .cloned();
            (run, f)
        });
        // masterha_check_status: 50 FAILOVER_RUNNING, 51 FAILOVER_ERROR win over the ping state;
        // then 40 PAUSED (ours: MHA has no maintenance mode) — except for a master dead while
        // paused, which stays 21 PING_FAILED: nothing will fail it over, someone must act.
        let paused = f.pause_at(now_ms()).cloned();
        let dead = matches!(g.health.state, crate::model::Health::Dead { .. });
        let (code, status) = if f.active_run.is_some() {
            (50, "FAILOVER_RUNNING")
        } else if f.blocked.is_some() {
            (51, "FAILOVER_ERROR")
        } else if paused.is_some() && !dead {
            (40, "PAUSED")
        } else {
            g.health.status_code()
        };
        GroupLive {
            name: g.spec.name.clone(),
            master: g.topology.master.clone(),
            mode: g.topology.mode,
            semisync: g.topology.semisync,
            status_code: code,
            status: status.to_string(),
            health: g.health.state.clone(),
            last_verdict: g.health.verdicts.last().cloned(),
            counters: node.monitor.snapshot(&g.spec.name),
            failover: run,
            failover_blocked: f.blocked.clone(),
            last_refusal: f.refusals.last().cloned(),
            paused,
            relay_purges: node
                .relay_purge
                .of_group(&g.spec.name)
                .into_iter()
                .filter(|p| {
                    p.server != g.topology.master && g.topology.servers.contains_key(&p.server)
                })
                .collect(),
            auto_rejoins: node.auto_rejoin.attempts.of_group(&g.spec.name),
            observed,
            servers,
            error,
        }
    }
}

/// The position column: GTID groups show the executed GTID set; file/position groups show, for
/// the master, its binlog coordinates and, for a replica, how far it has applied the master's
/// binlog (Relay_Master_Log_File:Exec_Master_Log_Pos), so the rows compare directly.
fn position(mode: ReplicationMode, i: &crate::model::ServerInfo) -> String {
    match (mode, &i.replica) {
        (ReplicationMode::FilePos, Some(r)) => r.exec.to_string(),
        (ReplicationMode::FilePos, None) => {
            i.binlog.as_ref().map(|b| b.to_string()).unwrap_or_default()
        }
        _ => i.position(),
    }
}

fn server_live(
    name: String,
    address: String,
    mode: ReplicationMode,
    obs: Option<&Result<crate::model::ServerInfo, String>>,
) -> ServerLive {
    match obs {
        Some(Ok(i)) => ServerLive {
            name,
            address,
            role: if i.replica.is_some() {
                "replica"
            } else {
                "master"
            }
            .into(),
            read_only: Some(i.read_only),
            position: position(mode, i),
            io_thread: i.replica.as_ref().map(|r| {
                match r.io_thread {
                    IoThread::Yes => "Yes",
                    IoThread::Connecting => "Connecting",
                    IoThread::No => "No",
                }
                .to_string()
            }),
            sql_thread: i.replica.as_ref().map(|r| r.sql_thread),
            seconds_behind: i.replica.as_ref().and_then(|r| r.seconds_behind),
            error: None,
        },
        other => ServerLive {
            name,
            address,
            role: "unreachable".into(),
            read_only: None,
            position: String::new(),
            io_thread: None,
            sql_thread: None,
            seconds_behind: None,
            error: Some(match other {
                Some(Err(e)) => e.clone(),
                _ => "not observed".into(),
            }),
        },
    }
}

/// Groups by name, for callers that only need the spec map.
pub fn groups(node: &Runtime) -> BTreeMap<String, Group> {
    node.raft.read(|c| c.groups.clone())
}

/// `failover --dry-run`: which server MHA's order would promote now, and why, without acting.
pub async fn failover_dry_run(
    node: &Runtime,
    name: &str,
    forced: Option<&str>,
) -> Result<
    Result<crate::engine::selection::Selection, (String, Vec<crate::engine::selection::Excluded>)>,
    NodeError,
> {
    let g = group(node, name)?;
    let obs = observe(&node.local, &g.spec, OBSERVE_TIMEOUT)
        .await
        .map_err(|e| NodeError::InvalidArgument(format!("password: {e}")))?;
    Ok(crate::engine::selection::select(
        &crate::engine::selection::SelectionInput {
            spec: &g.spec,
            old_master: &g.topology.master,
            observed: &obs,
            forced,
            latest_priority: g.spec.failover.latest_priority,
            check_repl_delay: g.spec.failover.check_repl_delay,
        },
    ))
}
