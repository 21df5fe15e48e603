//! Corroboration of a suspicion: every follower manager probes the master from its own zone
//! (ProbeService), every replica says whether its IO thread is still connected to it. Each
//! answer comes back to the group's monitor as a detector event. Also the follower's side: one
//! probe of a group's master on the leader's request.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::mpsc;

use super::pulses::PulseBook;
use super::stats::Counters;
use crate::adapters::mysql::Login;
use crate::clock::now_ms;
use crate::engine::detector::{pulse, Event};
use crate::model::{IoThread, ManagerVote, ReplicaIo};
use crate::proto::probe::probe_service_client::ProbeServiceClient;
use crate::proto::probe::ProbeRequest;
use crate::runtime::credentials::{login, password};
use crate::runtime::error::RuntimeError;
use crate::runtime::pinger::Pinger;
use crate::runtime::Runtime;
use crate::secret::Secret;
use crate::state::group::{Group, Role};

/// One suspicion round as corroboration sees it: its number, where answers go, and its
/// corroboration timeout (a replica report must arrive within it).
pub(super) struct RoundAsk {
    pub round: u64,
    pub tx: mpsc::Sender<Event>,
    pub window: Duration,
}

/// Asks every follower manager (ProbeService) and every replica, in parallel; each answer comes
/// back as an event.
pub(super) fn spawn_corroboration(
    node: Arc<Runtime>,
    g: Group,
    password: Secret,
    ask: RoundAsk,
    counters: Arc<Counters>,
    book: PulseBook,
) {
    let RoundAsk { round, tx, window } = ask;
    let timeout = Duration::from_millis(g.spec.ping.interval_ms.max(500));
    knock_from_here(&node, &g, round);
    probe_from_followers(&node, &g.spec.name, round, timeout, &tx, &counters);
    // A replica is watched at most three quarters of the round, so its report (and the
    // queries around the watch) still lands before the round decides without it.
    let budget = window * 3 / 4;
    ask_replicas(&g, password, round, timeout, budget, tx, book);
}

/// The leader's own knock on the master's host, for a run that may begin from this round
/// (host_silence.rs; the followers' knocks come with their votes).
fn knock_from_here(node: &Arc<Runtime>, g: &Group, round: u64) {
    let Some(master) = g.spec.server(&g.topology.master).cloned() else {
        return;
    };
    node.host_silence.begin(&g.spec.name, round, &master.name);
    let (node, spec) = (node.clone(), g.spec.clone());
    tokio::spawn(async move {
        let bound = knock_bound(spec.ping.interval_ms);
        if let Some(reached) = knock_host(&node, &spec, &master, bound).await {
            node.host_silence
                .record(&spec.name, round, node.id(), reached);
        }
    });
}

/// Every follower voter probes the master from its own zone; each answer is a vote.
fn probe_from_followers(
    node: &Arc<Runtime>,
    group: &str,
    round: u64,
    timeout: Duration,
    tx: &mpsc::Sender<Event>,
    counters: &Arc<Counters>,
) {
    let m = node.raft.metrics();
    let membership = m.membership_config.membership();
    let followers: Vec<(u64, String)> = membership
        .voter_ids()
        .filter(|id| *id != node.id())
        .filter_map(|id| membership.get_node(&id).map(|n| (id, n.addr.clone())))
        .collect();
    let min_applied = node.raft.applied_index();
    for (id, addr) in followers {
        let (node, tx, group, counters) = (
            node.clone(),
            tx.clone(),
            group.to_string(),
            counters.clone(),
        );
        tokio::spawn(async move {
            let Ok(channel) = node.raft.network().channel(id, &addr) else {
                return;
            };
            let t = std::time::Instant::now();
            let mut client = ProbeServiceClient::new(channel);
            let req = ProbeRequest {
                group: group.clone(),
                round,
                min_applied,
            };
            match tokio::time::timeout(timeout * 2, client.probe_master(req)).await {
                Ok(Ok(r)) => {
                    let r = r.into_inner();
                    // A master that answered this manager proves its host up as well as a
                    // knock that did.
                    if r.reachable || r.host_ssh_reached.is_some() {
                        let reached = r.reachable || r.host_ssh_reached == Some(true);
                        node.host_silence.record(&group, round, id, reached);
                    }
                    counters.probes.fetch_add(1, Ordering::Relaxed);
                    node.metrics.vote(&group, r.reachable);
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
                    let _ = tx.send(Event::Vote { round, vote }).await;
                }
                Ok(Err(s)) => {
                    tracing::warn!(manager = id, error = %crate::errors::status_text(&s), "probe failed")
                }
                Err(_) => tracing::warn!(manager = id, "probe timed out"),
            }
        });
    }
}

/// Every replica of the master says whether its IO thread is still connected to it.
fn ask_replicas(
    g: &Group,
    password: Secret,
    round: u64,
    timeout: Duration,
    budget: Duration,
    tx: mpsc::Sender<Event>,
    book: PulseBook,
) {
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
            let (tx, master, book) = (tx.clone(), master.clone(), book.clone());
            let login = login(&spec, &r, &password);
            async move {
                let source = (master.host.clone(), master.port);
                let io = replica_io(&login, &r.name, &source, timeout, budget, &book).await;
                if let ReplicaIo::Disconnected { detail } = &io {
                    // Why this replica does not veto a Dead verdict, in the operator's log too.
                    tracing::warn!(replica = %r.name, "replica counts as disconnected: {detail}");
                }
                let _ = tx
                    .send(Event::Replica {
                        round,
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

/// A replica's IO thread towards the master: connected (running, pointed at this master, and
/// something arrived from the master lately), disconnected, or the replica could not be asked.
/// An IO thread that says "Yes" is watched for up to twice its heartbeat period (within
/// `budget`): if neither an event nor a heartbeat arrives meanwhile, the master has gone
/// silent without closing its socket (hung) and the replica counts as disconnected
/// (engine::detector::pulse). A reading in `book` that the replica has not moved from since
/// counts as the watch's start: that silence began before the round did.
async fn replica_io(
    login: &Login,
    name: &str,
    master: &(String, u16),
    timeout: Duration,
    budget: Duration,
    book: &PulseBook,
) -> ReplicaIo {
    let mut s = match login.connect(timeout).await {
        Ok(s) => s,
        Err(e) => {
            return ReplicaIo::Unreachable {
                detail: e.to_string(),
            }
        }
    };
    let io = watch(&mut s, name, master, budget, book).await;
    s.close().await;
    io
}

async fn watch(
    s: &mut crate::adapters::mysql::Session,
    name: &str,
    master: &(String, u16),
    budget: Duration,
    book: &PulseBook,
) -> ReplicaIo {
    let (r, first) = match s.replica_pulse().await {
        Err(e) => {
            return ReplicaIo::Unreachable {
                detail: e.to_string(),
            }
        }
        Ok(None) => {
            return ReplicaIo::Disconnected {
                detail: "not a replica".into(),
            }
        }
        Ok(Some(x)) => x,
    };
    if r.source_host != master.0 || r.source_port != master.1 {
        return ReplicaIo::Disconnected {
            detail: format!("replicates from {}:{}", r.source_host, r.source_port),
        };
    }
    if r.io_thread != IoThread::Yes {
        return ReplicaIo::Disconnected {
            detail: format!(
                "IO thread {:?}{}",
                r.io_thread,
                if r.last_io_errno > 0 {
                    format!(": {}", r.last_io_error)
                } else {
                    String::new()
                }
            ),
        };
    }
    // Measured from after the first reading: the silence is never overstated. When the book
    // holds an earlier reading the replica has not moved from, the silence began then — but
    // it is credited at most one heartbeat period before now: a master that stalls briefly
    // (GC, a short freeze) sends nothing for a period plus the stall, and the watch must
    // still see its next heartbeat rather than count the stall as death.
    let now = std::time::Instant::now();
    let credit = Duration::from_millis(first.heartbeat_period_ms.unwrap_or(0));
    let (mut last, first, started) = match book.silent_since(name, master, &first) {
        Some(earlier) => {
            let floor = now.checked_sub(credit).unwrap_or(now);
            (first, earlier.pulse, earlier.at.max(floor))
        }
        None => (first.clone(), first, now),
    };
    let budget_ms = budget.as_millis() as u64;
    if let Some(window) = pulse::watch_ms(&first, budget_ms) {
        let poll = Duration::from_millis(pulse::poll_ms(&first));
        let until = started + Duration::from_millis(window);
        // Ends early when something arrives (connected), or when the IO thread itself now says
        // it is not running (it noticed the master's end after the first reading: a killed
        // master's replicas notice within moments, later on a loaded host).
        while !pulse::moved(&first, &last)
            && last.io_thread == IoThread::Yes
            && std::time::Instant::now() < until
        {
            tokio::time::sleep(
                poll.min(until.saturating_duration_since(std::time::Instant::now())),
            )
            .await;
            match s.replica_pulse().await {
                Ok(Some((_, p))) => last = p,
                // The replica answered once: a failed re-read proves nothing about the master,
                // so the IO thread's first word stands.
                Ok(None) | Err(_) => {
                    return ReplicaIo::Connected {
                        detail: "IO thread running (could not be watched)".into(),
                    }
                }
            }
        }
    }
    pulse::judge(
        &first,
        &last,
        started.elapsed().as_millis() as u64,
        budget_ms,
    )
}

/// The bound of every manager's knock on a suspected master's host while corroborating: the
/// same as a follower's ping (the ping interval, at least 300 ms), so a follower's knock
/// travels with its vote without delaying it, and a host is called silent only after as long
/// as a run's own knock would have waited for it (`reach::KNOCK` at the default interval).
fn knock_bound(interval_ms: u64) -> Duration {
    Duration::from_millis(interval_ms.max(300))
}

/// A follower's answer to ProbeMaster.
pub struct ProbeFound {
    /// The master answered (or answered with an error that proves it is up).
    pub reachable: bool,
    pub detail: String,
    pub latency: Duration,
    /// Its host over SSH, when known by the time the ping ended (host_silence.rs).
    pub host_ssh: Option<bool>,
}

/// A follower's answer to ProbeMaster: one ping of the group's type from this zone, and a
/// knock on the master's host over SSH alongside it.
pub async fn probe_master(node: &Runtime, group: &str) -> Result<ProbeFound, RuntimeError> {
    let g = node
        .raft
        .read(|c| c.groups.get(group).cloned())
        .ok_or_else(|| RuntimeError::NoGroup(group.to_string()))?;
    let master = g
        .spec
        .server(&g.topology.master)
        .ok_or_else(|| RuntimeError::NoMaster(group.to_string()))?
        .clone();
    let password = password(&node.local, &g.spec)?;
    let timeout = Duration::from_millis(g.spec.ping.interval_ms.max(300));
    // A fresh connection from this zone is what corroboration is about.
    let mut p = Pinger::new(
        login(&g.spec, &master, &password),
        crate::state::group::PingType::Connect,
        timeout,
        (g.spec.name.clone(), node.id()),
    );
    let t = std::time::Instant::now();
    let bound = knock_bound(g.spec.ping.interval_ms);
    let knock = knock_host(node, &g.spec, &master, bound);
    let (pinged, latency, host_ssh) = with_knock(p.ping(), knock, bound, t).await;
    let (reachable, detail) = match pinged {
        Ok(_) => (true, "answered".into()),
        Err(e) if e.proves_alive() => (
            true,
            format!("answered with an error that proves it is up: {e}"),
        ),
        Err(e) => (false, e.to_string()),
    };
    Ok(ProbeFound {
        reachable,
        detail,
        latency,
        host_ssh,
    })
}

/// The ping's outcome, and the knock's when known by the time the ping ended: the knock is
/// never waited for beyond the ping (a vote is not delayed by it), except that a knock
/// unanswered for its whole bound — the ping took as long — is a silent host.
async fn with_knock<T>(
    ping: impl std::future::Future<Output = T>,
    knock: impl std::future::Future<Output = Option<bool>>,
    bound: Duration,
    started: std::time::Instant,
) -> (T, Duration, Option<bool>) {
    let mut knock = std::pin::pin!(futures::future::maybe_done(knock));
    let mut ping = std::pin::pin!(ping);
    let mut knocked = false;
    let res = loop {
        tokio::select! {
            r = &mut ping => break r,
            () = &mut knock, if !knocked => knocked = true,
        }
    };
    let latency = started.elapsed();
    if !knocked && latency >= bound {
        // Its own bound (the same, from the same start) ends it within moments.
        knock.as_mut().await;
    }
    let host_ssh = knock.as_mut().take_output().flatten();
    (res, latency, host_ssh)
}

/// One knock on `master`'s host over SSH (a channel on the kept session), bounded by
/// `bound`: reached, or silent (no answer at all within it). Anything the host answered (a
/// refused connection, a host key, an authentication failure) reaches it: only silence
/// counts towards "dark". None when this manager has no SSH for the group, or cannot tell
/// (its own key or configuration fails).
async fn knock_host(
    node: &Runtime,
    spec: &crate::state::group::GroupSpec,
    master: &crate::state::group::ServerSpec,
    bound: Duration,
) -> Option<bool> {
    use crate::adapters::ssh::SshError;
    let pool = node.ssh.get(&node.local, spec).ok()?;
    let (host, port) = master.ssh_target(&spec.ssh);
    match pool.answers(&host, port, bound).await {
        Ok(()) => Some(true),
        Err(SshError::Timeout { .. }) => Some(false),
        // The network says no host answers there (no ARP reply): silent as well.
        Err(SshError::Connect { message, .. })
            if message.contains("No route to host") || message.contains("unreachable") =>
        {
            Some(false)
        }
        Err(SshError::Key { .. } | SshError::Config(_)) => None,
        Err(_) => Some(true),
    }
}
