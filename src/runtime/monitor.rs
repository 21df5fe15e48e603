//! Leader-only master monitoring. The supervisor runs one monitor per group while this node is
//! the acting leader (quorum lease fresh) and aborts them the moment it is not: a deposed leader
//! keeps no monitor. Each monitor feeds [`Detector`] with pings, follower votes (ProbeService)
//! and replica IO reports, and commits what it decides (open round, verdict) through Raft before
//! anything may act on it. A new leader restores each group's detector from the replicated
//! health, so an open suspicion round is finished, not restarted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::credentials::{login, resolve};
use super::pinger::Pinger;
use crate::adapters::mysql::Login;
use crate::clock::now_ms;
use crate::engine::detector::{Action, Detector, DetectorConfig, Event};
use crate::model::IoThread;
use crate::model::{Health, ManagerVote, ReplicaIo, VerdictKind};
use crate::proto::probe::probe_service_client::ProbeServiceClient;
use crate::proto::probe::ProbeRequest;
use crate::raft::NodeError;
use crate::runtime::supervisor::{TermTasks, Ticker, Wake};
use crate::runtime::Runtime;
use crate::state::group::{Group, Role};
use crate::state::{Cmd, CmdResult};

/// Metrics-ready counters per group, kept on the node (exported by the status API).
#[derive(Debug, Default)]
pub struct Counters {
    pub pings: AtomicU64,
    pub ping_failures: AtomicU64,
    pub probes: AtomicU64,
    pub probe_latency_ms_total: AtomicU64,
    pub verdicts: AtomicU64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CountersSnapshot {
    pub pings: u64,
    pub ping_failures: u64,
    pub probes: u64,
    pub probe_latency_ms_avg: u64,
    pub verdicts: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CountersSnapshot {
        let probes = self.probes.load(Ordering::Relaxed);
        CountersSnapshot {
            pings: self.pings.load(Ordering::Relaxed),
            ping_failures: self.ping_failures.load(Ordering::Relaxed),
            probes,
            probe_latency_ms_avg: self
                .probe_latency_ms_total
                .load(Ordering::Relaxed)
                .checked_div(probes)
                .unwrap_or(0),
            verdicts: self.verdicts.load(Ordering::Relaxed),
        }
    }
}

/// Counters of every group monitored on this node.
#[derive(Debug, Default)]
pub struct MonitorStats {
    groups: Mutex<BTreeMap<String, Arc<Counters>>>,
}

impl MonitorStats {
    pub fn counters(&self, group: &str) -> Arc<Counters> {
        self.groups
            .lock()
            .expect("stats lock")
            .entry(group.to_string())
            .or_default()
            .clone()
    }

    pub fn snapshot(&self, group: &str) -> Option<CountersSnapshot> {
        self.groups
            .lock()
            .expect("stats lock")
            .get(group)
            .map(|c| c.snapshot())
    }
}

const SUPERVISE_EVERY: Duration = Duration::from_millis(50);

/// Runs until `stop`: keeps one monitor per group (for its current master) while this node is
/// the acting leader, in the current term.
pub async fn supervise(node: Arc<Runtime>, stop: watch::Receiver<bool>) {
    let mut ticker = Ticker::new(&node.raft, stop, SUPERVISE_EVERY, Wake::Tick);
    // Keyed by (group, master): a failover's new master gets a new monitor.
    let mut monitors: TermTasks<(String, String)> = TermTasks::new("monitor");
    while let Some(lead) = ticker.next().await {
        let groups: BTreeMap<String, Group> = node.raft.read(|c| c.groups.clone());
        monitors.retain(lead, |(name, master)| {
            groups
                .get(name)
                .is_some_and(|g| g.topology.master == *master)
        });
        let Some(term) = lead else { continue };
        for (name, g) in groups {
            if matches!(g.health.state, Health::Dead { .. }) {
                continue;
            }
            let key = (name, g.topology.master.clone());
            monitors.ensure(key, term, || monitor_group(node.clone(), g, term));
        }
    }
}

fn detector_config(node: &Runtime, g: &Group) -> DetectorConfig {
    let managers = node
        .raft
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .count()
        .max(1);
    DetectorConfig {
        ping_interval_ms: g.spec.ping.interval_ms,
        suspect_interval_ms: g.spec.ping.suspect_interval_ms,
        failure_threshold: g.spec.ping.failure_threshold,
        managers,
        replicas: g
            .topology
            .servers
            .values()
            .filter(|s| s.role == Role::Replica)
            .map(|s| s.name.clone())
            .collect(),
        replica_policy: g.spec.ping.replica_policy,
        corroboration_timeout_ms: (2 * g.spec.ping.interval_ms).max(1500),
    }
}

/// Commits a command only while still the acting leader of `term`; false if not committed.
async fn commit(node: &Runtime, term: u64, cmd: Cmd) -> bool {
    match node.raft.propose_in(term, cmd).await {
        Ok(CmdResult::Rejected(reason)) => {
            tracing::info!(%reason, "monitor command not applied");
            false
        }
        Ok(_) => true,
        Err(NodeError::LeadershipLost { .. }) => false,
        Err(e) => {
            tracing::warn!(error = %e, "monitor could not commit");
            false
        }
    }
}

#[tracing::instrument(skip_all, fields(group = %g.spec.name, master = %g.topology.master, term))]
async fn monitor_group(node: Arc<Runtime>, g: Group, term: u64) {
    let name = g.spec.name.clone();
    let Some(master) = g.spec.server(&g.topology.master).cloned() else {
        return;
    };
    let password = match resolve(&g.spec.password) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot monitor: password");
            return;
        }
    };
    let counters = node.monitor.counters(&name);
    let cfg = detector_config(&node, &g);
    let timeout = Duration::from_millis(g.spec.ping.interval_ms);
    let master_login = login(&g.spec, &master, &password);
    let mut pinger = Pinger::new(
        master_login.clone(),
        g.spec.ping.ping_type,
        timeout,
        (name.clone(), node.id()),
    );
    let mut det = Detector::new(
        cfg.clone(),
        node.id(),
        node.me.zone.clone(),
        g.health.state.clone(),
        g.health.next_round,
    );
    tracing::info!(state = ?det.health(), "monitor started");
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    // Aborted with this monitor (the guard's drop), so a deposed leader keeps no connection.
    let _sentinel = AbortOnDrop(tokio::spawn(sentinel(master_login, timeout, tx.clone())));
    // Warm SSH sessions to every server: a failover then pays no handshake.
    let _warm = match node.ssh.get(&g.spec) {
        Ok(pool) => Some(AbortOnDrop(tokio::spawn(
            crate::runtime::ssh_pools::keep_warm(pool, g.spec.clone()),
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "ssh pool unavailable: failover will connect on demand");
            None
        }
    };
    let mut actions = det.start(now_ms());
    let mut next_ping = Instant::now();
    let mut deadline: Option<(u64, Instant)> = None;
    loop {
        for a in std::mem::take(&mut actions) {
            match a {
                Action::Ping { after_ms } => {
                    next_ping = Instant::now() + Duration::from_millis(after_ms)
                }
                Action::StartCorroboration { round, since_ms } => {
                    tracing::warn!(
                        round,
                        "master suspect: corroborating from other zones and replicas"
                    );
                    deadline = Some((
                        round,
                        Instant::now() + Duration::from_millis(cfg.corroboration_timeout_ms),
                    ));
                    let open = Cmd::OpenSuspicion {
                        group: name.clone(),
                        round,
                        since_ms,
                    };
                    let node2 = node.clone();
                    tokio::spawn(async move {
                        commit(&node2, term, open).await;
                    });
                    spawn_corroboration(
                        node.clone(),
                        g.clone(),
                        password.clone(),
                        round,
                        tx.clone(),
                        counters.clone(),
                    );
                }
                Action::Verdict(v) => {
                    counters.verdicts.fetch_add(1, Ordering::Relaxed);
                    let votes: Vec<String> = v
                        .votes
                        .iter()
                        .map(|x| {
                            format!("{}:{}", x.manager, if x.reachable { "up" } else { "down" })
                        })
                        .collect();
                    match v.kind {
                        VerdictKind::Dead => {
                            tracing::error!(round = v.round, votes = ?votes, reason = %v.reason, "MASTER DEAD: verdict committed")
                        }
                        VerdictKind::UnreachableButAlive => {
                            tracing::warn!(round = v.round, votes = ?votes, reason = %v.reason, "master unreachable but alive: no failover")
                        }
                    }
                    deadline = None;
                    let dead = v.kind == VerdictKind::Dead;
                    if !commit(
                        &node,
                        term,
                        Cmd::RecordVerdict {
                            group: name.clone(),
                            verdict: Box::new(v),
                        },
                    )
                    .await
                    {
                        return;
                    }
                    if dead {
                        // The failover runner (next milestone) takes it from here.
                        return;
                    }
                }
            }
        }
        let before = det.health().clone();
        let ev = tokio::select! {
            _ = sleep_until(next_ping) => {
                counters.pings.fetch_add(1, Ordering::Relaxed);
                let at_ms = now_ms();
                match pinger.ping().await {
                    Ok(_) => Event::PingOk { at_ms },
                    Err(e) => {
                        if !e.proves_alive() {
                            counters.ping_failures.fetch_add(1, Ordering::Relaxed);
                        }
                        tracing::debug!(error = %e, "ping failed");
                        Event::PingFailed { at_ms, proves_alive: e.proves_alive(), error: e.to_string() }
                    }
                }
            }
            Some(ev) = rx.recv() => ev,
            _ = async { sleep_until(deadline.expect("guarded").1).await }, if deadline.is_some() => {
                let (round, _) = deadline.take().expect("guarded");
                Event::CorroborationTimeout { round, at_ms: now_ms() }
            }
        };
        actions = det.handle(ev);
        if let (
            Health::Suspect { round, .. } | Health::UnreachableButAlive { round, .. },
            Health::Alive,
        ) = (&before, det.health())
        {
            tracing::info!(round, "master answers again: suspicion closed");
            deadline = None;
            let close = Cmd::CloseSuspicion {
                group: name.clone(),
                round: *round,
            };
            let node2 = node.clone();
            tokio::spawn(async move {
                commit(&node2, term, close).await;
            });
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The early signal: a connection parked in a long `SELECT SLEEP()` returns with an error the
/// moment mysqld dies (its socket is closed by the kernel: EOF/RST), long before the next ping.
/// It only *suspects*: a paused or partitioned master produces no signal, and a Dead verdict
/// still needs the pings, the other zones and the replicas.
async fn sentinel(login: Login, timeout: Duration, tx: mpsc::Sender<Event>) {
    loop {
        match login.connect(timeout).await {
            Ok(mut s) => {
                // 30 s sleeps in a loop on one connection: if this monitor is aborted (leader
                // change), the server's thread lingers at most one sleep, not a day.
                s.set_timeout(Duration::from_secs(40));
                loop {
                    if let Err(e) = s.exec("SELECT SLEEP(30)").await {
                        tracing::info!(error = %e, "monitoring connection lost");
                        if tx
                            .send(Event::ConnectionLost { at_ms: now_ms() })
                            .await
                            .is_err()
                        {
                            return;
                        }
                        break;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "sentinel connect failed"),
        }
        // While the master is down, retry quietly; the pings do the counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asks every follower manager (ProbeService) and every replica, in parallel; each answer comes
/// back as an event.
fn spawn_corroboration(
    node: Arc<Runtime>,
    g: Group,
    password: crate::secret::Secret,
    round: u64,
    tx: mpsc::Sender<Event>,
    counters: Arc<Counters>,
) {
    let m = node.raft.metrics();
    let followers: Vec<(u64, String)> = m
        .membership_config
        .membership()
        .voter_ids()
        .filter(|id| *id != node.id())
        .filter_map(|id| {
            m.membership_config
                .membership()
                .get_node(&id)
                .map(|n| (id, n.addr.clone()))
        })
        .collect();
    let timeout = Duration::from_millis(g.spec.ping.interval_ms.max(500));
    let min_applied = node.raft.applied_index();
    for (id, addr) in followers {
        let (node, tx, group, counters) = (
            node.clone(),
            tx.clone(),
            g.spec.name.clone(),
            counters.clone(),
        );
        tokio::spawn(async move {
            let Ok(channel) = node.raft.network().channel(id, &addr) else {
                return;
            };
            let t = std::time::Instant::now();
            let mut client = ProbeServiceClient::new(channel);
            match tokio::time::timeout(
                timeout * 2,
                client.probe_master(ProbeRequest {
                    group,
                    round,
                    min_applied,
                }),
            )
            .await
            {
                Ok(Ok(r)) => {
                    let r = r.into_inner();
                    counters.probes.fetch_add(1, Ordering::Relaxed);
                    counters
                        .probe_latency_ms_total
                        .fetch_add(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                    let vote = ManagerVote {
                        manager: id,
                        zone: r.zone,
                        reachable: r.reachable,
                        detail: r.detail,
                        at_ms: now_ms(),
                    };
                    let _ = tx.send(Event::Vote(vote)).await;
                }
                Ok(Err(s)) => {
                    tracing::warn!(manager = id, error = %crate::errors::status_text(&s), "probe failed")
                }
                Err(_) => tracing::warn!(manager = id, "probe timed out"),
            }
        });
    }
    let master = g.spec.server(&g.topology.master).cloned();
    let replicas: Vec<_> = g
        .topology
        .servers
        .values()
        .filter(|s| s.role == Role::Replica)
        .filter_map(|s| g.spec.server(&s.name).cloned())
        .collect();
    let spec = g.spec.clone();
    tokio::spawn(async move {
        let Some(master) = master else { return };
        join_all(replicas.into_iter().map(|r| {
            let (tx, master) = (tx.clone(), master.clone());
            let login = login(&spec, &r, &password);
            async move {
                let io = replica_io(&login, &master.host, master.port, timeout).await;
                let _ = tx
                    .send(Event::Replica {
                        name: r.name.clone(),
                        io,
                        at_ms: now_ms(),
                    })
                    .await;
            }
        }))
        .await;
    });
}

/// A replica's IO thread towards the master: connected (running, pointed at this master),
/// disconnected, or the replica could not be asked.
async fn replica_io(
    login: &Login,
    master_host: &str,
    master_port: u16,
    timeout: Duration,
) -> ReplicaIo {
    let mut s = match login.connect(timeout).await {
        Ok(s) => s,
        Err(e) => {
            return ReplicaIo::Unreachable {
                detail: e.to_string(),
            }
        }
    };
    let r = s.replica_status().await;
    s.close().await;
    match r {
        Err(e) => ReplicaIo::Unreachable {
            detail: e.to_string(),
        },
        Ok(None) => ReplicaIo::Disconnected {
            detail: "not a replica".into(),
        },
        Ok(Some(r)) if r.source_host != master_host || r.source_port != master_port => {
            ReplicaIo::Disconnected {
                detail: format!("replicates from {}:{}", r.source_host, r.source_port),
            }
        }
        Ok(Some(r)) if r.io_thread == IoThread::Yes => ReplicaIo::Connected {
            detail: "IO thread running".into(),
        },
        Ok(Some(r)) => ReplicaIo::Disconnected {
            detail: format!(
                "IO thread {:?}{}",
                r.io_thread,
                if r.last_io_errno > 0 {
                    format!(": {}", r.last_io_error)
                } else {
                    String::new()
                }
            ),
        },
    }
}

/// A follower's answer to ProbeMaster: one ping of the group's type from this zone.
pub async fn probe_master(node: &Runtime, group: &str) -> Result<(bool, String, Duration), String> {
    let g = node
        .raft
        .read(|c| c.groups.get(group).cloned())
        .ok_or_else(|| format!("no group named {group:?}"))?;
    let master = g
        .spec
        .server(&g.topology.master)
        .ok_or("group has no master")?
        .clone();
    let password = resolve(&g.spec.password)?;
    let timeout = Duration::from_millis(g.spec.ping.interval_ms.max(300));
    // A fresh connection from this zone is what corroboration is about.
    let mut p = Pinger::new(
        login(&g.spec, &master, &password),
        crate::state::group::PingType::Connect,
        timeout,
        (g.spec.name.clone(), node.id()),
    );
    let t = std::time::Instant::now();
    Ok(match p.ping().await {
        Ok(d) => (true, "answered".into(), d),
        Err(e) if e.proves_alive() => (
            true,
            format!("answered with an error that proves it is up: {e}"),
            t.elapsed(),
        ),
        Err(e) => (false, e.to_string(), t.elapsed()),
    })
}
