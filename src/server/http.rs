//! The plain-HTTP listener (`--metrics-listen`): Prometheus' `/metrics` and the health checks
//! load balancers and orchestration poll, Patroni-style — 200 when the answer is yes, 503
//! otherwise, a small JSON body either way, HEAD answered like GET without the body.
//!
//! - `/health`: this manager is a member with a quorum in sight (the acting leader, or a
//!   follower that knows its leader).
//! - `/leader`: this manager is the acting leader.
//! - `/groups/G/master`: the group's writable master (JSON); 200 while it is alive and no run
//!   is changing it.
//! - `/groups/G/servers/S/master`: S is that master (HAProxy's write backend).
//! - `/groups/G/servers/S/replica[?max_lag=S]`: S is a replica of the master, both threads
//!   running, at most max_lag (default 30) s behind (HAProxy's read backend).
//!
//! Every answer comes from what the manager already knows: the replicated state (the same on
//! every manager) and the latest reading of the replica. The leader's monitor keeps those
//! readings fresh; on another manager a check older than twice the ping interval reads the
//! replica once (1 s connect), and the next checks use that reading. Read-only: nothing here
//! acts, and no secret is ever served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::model::IoThread;
use crate::runtime::credentials::{login, password};
use crate::runtime::metrics::health_word;
use crate::runtime::monitor::seen::Seen;
use crate::runtime::Runtime;
use crate::state::group::{Group, Role};

/// MHA's `--seconds_behind_master` default: the lag a replica check allows unless told.
const DEFAULT_MAX_LAG_S: u64 = 30;
/// Connecting to a replica a check reads itself.
const READ_CONNECT: Duration = Duration::from_secs(1);
/// Connections still open this long after the stop are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Connections served at once; more are closed at accept (a scraper and a few load balancer
/// checks need a handful).
const MAX_CONNECTIONS: usize = 64;
/// A client must send a request's headers within this time (also on an idle kept-alive
/// connection), or the connection is closed: a slow or silent client cannot hold one.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection is closed after this long whatever it does: a client that requests and then
/// never reads the answer cannot keep its slot.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Serves until `stop`: HTTP/1.1, at most [`MAX_CONNECTIONS`] connections, each closed when
/// its client is silent for [`HEADER_TIMEOUT`]; at the stop, connections get
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(node: Arc<Runtime>, listener: TcpListener, stop: watch::Receiver<bool>) {
    let limits = Limits {
        connections: MAX_CONNECTIONS,
        header_timeout: HEADER_TIMEOUT,
    };
    serve_router(router(node), listener, stop, limits).await
}

/// How much one client may hold of the listener.
#[derive(Clone, Copy, Debug)]
struct Limits {
    connections: usize,
    header_timeout: Duration,
}

async fn serve_router(
    app: Router,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
    limits: Limits,
) {
    let addr = listener.local_addr().ok();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    let mut stopped = stop.clone();
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            _ = async { stopped.wait_for(|s| *s).await.is_ok() } => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, typically: wait instead of spinning.
                    tracing::warn!(?addr, error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    ?addr,
                    %peer,
                    refused,
                    "metrics listener: {} connections open, closing new ones",
                    limits.connections
                );
            }
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = tokio::time::sleep(CONNECTION_LIFETIME) => {}
                // The watch's guard dropped before the shutdown awaits (it is not Send).
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                    conn.as_mut().graceful_shutdown();
                    // A client holding a connection open must not hold up the shutdown.
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        });
    }
}

/// Binds `addr` (a start-up error when it cannot).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

fn router(node: Arc<Runtime>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/leader", get(leader))
        .route("/groups/{group}/master", get(group_master))
        .route(
            "/groups/{group}/servers/{server}/master",
            get(server_master),
        )
        .route(
            "/groups/{group}/servers/{server}/replica",
            get(server_replica),
        )
        .with_state(node)
}

#[tracing::instrument(skip_all, fields(rpc = "http_metrics"))]
async fn metrics(State(node): State<Arc<Runtime>>) -> Response {
    let body = node.metrics.render(&node);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// A check's answer: 200 with `ok` true, else 503; `why` says what was seen.
#[derive(Serialize)]
struct Check {
    ok: bool,
    why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    manager: Option<u64>,
}

fn answer(ok: bool, why: String) -> Response {
    answer_with(ok, why, None)
}

fn answer_with(ok: bool, why: String, manager: Option<u64>) -> Response {
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Check { ok, why, manager })).into_response()
}

fn not_found(what: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(Check {
            ok: false,
            why: what,
            manager: None,
        }),
    )
        .into_response()
}

#[tracing::instrument(skip_all, fields(rpc = "http_health"))]
async fn health(State(node): State<Arc<Runtime>>) -> Response {
    let (ok, why) = in_touch(&node);
    answer_with(ok, why, Some(node.id()))
}

/// Whether this manager is a voter with a quorum in sight (the acting leader, or a follower
/// that knows its leader), and what it sees. Its replicated state is current only then: the
/// group checks answer 503 otherwise (a manager cut off in a minority still holds the old
/// master as alive).
fn in_touch(node: &Runtime) -> (bool, String) {
    let m = node.raft.metrics();
    let me = node.id();
    let voter = m
        .membership_config
        .membership()
        .voter_ids()
        .any(|v| v == me);
    if !voter {
        (false, format!("manager {me} is not a voter of the cluster"))
    } else if node.raft.is_acting_leader() {
        (true, format!("manager {me} leads term {}", m.current_term))
    } else {
        match m.current_leader {
            Some(l) if l != me => (
                true,
                format!("manager {me} follows leader {l} in term {}", m.current_term),
            ),
            Some(_) => (
                false,
                format!("manager {me} leads without a quorum's acknowledgement"),
            ),
            None => (
                false,
                format!("manager {me} knows no leader (term {})", m.current_term),
            ),
        }
    }
}

#[tracing::instrument(skip_all, fields(rpc = "http_leader"))]
async fn leader(State(node): State<Arc<Runtime>>) -> Response {
    let me = node.id();
    let ok = node.raft.is_acting_leader();
    let why = if ok {
        format!("manager {me} is the acting leader")
    } else {
        match node.raft.leader() {
            Some((l, addr)) if l != me => format!("the leader is manager {l} ({addr})"),
            _ => "no acting leader here".to_string(),
        }
    };
    answer_with(ok, why, Some(me))
}

/// The group as the replicated state has it, and whether a run is changing its master; the
/// answer (503, 404) when this manager cannot say.
fn group_of(node: &Runtime, name: &str) -> Result<(Group, Option<u64>, bool), Box<Response>> {
    let (ok, why) = in_touch(node);
    if !ok {
        return Err(Box::new(answer(
            false,
            format!("{why}: its view may be stale"),
        )));
    }
    let now = crate::clock::now_ms();
    node.raft
        .read(|c| {
            let g = c.groups.get(name)?.clone();
            let f = c.failover.get(name);
            Some((
                g,
                f.and_then(|f| f.active_run),
                f.is_some_and(|f| f.pause_at(now).is_some()),
            ))
        })
        .ok_or_else(|| Box::new(not_found(format!("no group {name}"))))
}

#[derive(Serialize)]
struct MasterView {
    group: String,
    /// 200's condition: alive, and no run changing it.
    ok: bool,
    master: String,
    host: String,
    port: u16,
    health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<u64>,
    paused: bool,
}

#[tracing::instrument(skip_all, fields(rpc = "http_group_master", group = %group))]
async fn group_master(State(node): State<Arc<Runtime>>, Path(group): Path<String>) -> Response {
    let (g, run, paused) = match group_of(&node, &group) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let spec = g.spec.server(&g.topology.master);
    let health = health_word(&g.health.state);
    let ok = health == "alive" && run.is_none();
    let view = MasterView {
        group: group.clone(),
        ok,
        master: g.topology.master.clone(),
        host: spec.map(|s| s.host.clone()).unwrap_or_default(),
        port: spec.map(|s| s.port).unwrap_or_default(),
        health,
        run,
        paused,
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(view)).into_response()
}

#[tracing::instrument(skip_all, fields(rpc = "http_server_master", group = %group, server = %server))]
async fn server_master(
    State(node): State<Arc<Runtime>>,
    Path((group, server)): Path<(String, String)>,
) -> Response {
    let (g, run, _) = match group_of(&node, &group) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    if g.spec.server(&server).is_none() {
        return not_found(format!("group {group} has no server {server}"));
    }
    let health = health_word(&g.health.state);
    let (ok, why) = if g.topology.master != server {
        (
            false,
            format!("the master of {group} is {}", g.topology.master),
        )
    } else if let Some(run) = run {
        (
            false,
            format!("run {run} is changing the master of {group}"),
        )
    } else if health != "alive" {
        (
            false,
            format!("{server} is the master of {group}, {health}"),
        )
    } else {
        (true, format!("{server} is the master of {group}, alive"))
    };
    answer(ok, why)
}

#[derive(Deserialize)]
struct LagLimit {
    max_lag: Option<u64>,
}

#[tracing::instrument(skip_all, fields(rpc = "http_server_replica", group = %group, server = %server))]
async fn server_replica(
    State(node): State<Arc<Runtime>>,
    Path((group, server)): Path<(String, String)>,
    Query(q): Query<LagLimit>,
) -> Response {
    let (g, run, _) = match group_of(&node, &group) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let Some(spec) = g.spec.server(&server).cloned() else {
        return not_found(format!("group {group} has no server {server}"));
    };
    let max_lag = q.max_lag.unwrap_or(DEFAULT_MAX_LAG_S);
    let in_topology = g
        .topology
        .servers
        .get(&server)
        .is_some_and(|s| s.role == Role::Replica);
    if !in_topology {
        return answer(false, format!("{server} is not a replica of {group}"));
    }
    if let Some(run) = run {
        return answer(
            false,
            format!("run {run} is changing {group}'s replication"),
        );
    }
    let fresh = Duration::from_millis(g.spec.ping.interval_ms.saturating_mul(2))
        .max(Duration::from_secs(2));
    // The leader's monitor reads every replica once per ping interval: it never reads here.
    let seen = match node.replicas_seen.get(&group, &server, fresh) {
        Some(s) => s,
        None if node.raft.is_acting_leader() => Err("no recent reading".to_string()),
        None => read_replica(&node, &g, &spec).await,
    };
    let seen = match seen {
        Ok(s) => s,
        Err(why) => return answer(false, format!("{server}: {why}")),
    };
    let master = g.spec.server(&g.topology.master);
    let from_master = master.is_some_and(|m| {
        (seen.source.0 == m.host || seen.source.0 == m.name) && seen.source.1 == m.port
    });
    let (ok, why) = if !from_master {
        (
            false,
            format!(
                "{server} replicates from {}:{}, not from the master {}",
                seen.source.0, seen.source.1, g.topology.master
            ),
        )
    } else if seen.io_thread != IoThread::Yes || !seen.sql_thread {
        (
            false,
            format!(
                "{server}: IO thread {:?}, SQL thread {}",
                seen.io_thread,
                if seen.sql_thread {
                    "running"
                } else {
                    "stopped"
                }
            ),
        )
    } else {
        match seen.seconds_behind {
            Some(lag) if lag <= max_lag => (true, format!("{server}: {lag} s behind")),
            Some(lag) => (
                false,
                format!("{server}: {lag} s behind (more than {max_lag} s)"),
            ),
            None => (false, format!("{server}: lag unknown")),
        }
    };
    answer(ok, why)
}

/// A manager that is not the leader (its monitor does not run) reads the replica itself, once
/// per freshness window; the reading is kept for the next checks.
async fn read_replica(
    node: &Runtime,
    g: &Group,
    spec: &crate::state::group::ServerSpec,
) -> Result<Seen, String> {
    let read = async {
        let pw = password(&node.local, &g.spec).map_err(|_| "no password".to_string())?;
        let mut s = login(&g.spec, spec, &pw)
            .connect(READ_CONNECT)
            .await
            .map_err(|_| "cannot connect".to_string())?;
        s.set_timeout(READ_CONNECT);
        let status = s.replica_status().await;
        s.close().await;
        match status {
            Ok(Some(st)) => Ok(Seen::of(&st)),
            Ok(None) => Err("not a replica".to_string()),
            Err(_) => Err("replica status could not be read".to_string()),
        }
    };
    // A failure is kept as well: a replica that is down is tried once per window, however
    // many checks come.
    let r = read.await;
    match &r {
        Ok(s) => node
            .replicas_seen
            .record(&g.spec.name, &spec.name, s.clone()),
        Err(why) => node
            .replicas_seen
            .failed(&g.spec.name, &spec.name, why.clone()),
    }
    r
}

#[cfg(test)]
mod listener_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A silent client is closed after the header timeout; connections past the limit are
    /// closed at once; a well-behaved client is served after.
    #[tokio::test]
    async fn silent_clients_and_too_many_connections_are_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let app = Router::new().route("/health", get(|| async { "ok" }));
        let limits = Limits {
            connections: 2,
            header_timeout: Duration::from_millis(300),
        };
        let server = tokio::spawn(serve_router(app, listener, stop, limits));
        let closed = |mut c: tokio::net::TcpStream| async move {
            let mut buf = [0u8; 64];
            matches!(
                tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf)).await,
                Ok(Ok(0)) | Ok(Err(_))
            )
        };
        let silent1 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let silent2 = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(closed(third).await, "a third connection is closed");
        // ...while the two silent ones are still open (closed by their header timeout next).
        let mut buf = [0u8; 8];
        let mut silent1 = silent1;
        assert!(
            tokio::time::timeout(Duration::from_millis(20), silent1.read(&mut buf))
                .await
                .is_err(),
            "the first silent connection was closed before its timeout"
        );
        assert!(closed(silent1).await && closed(silent2).await);
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(3), server)
            .await
            .unwrap()
            .unwrap();
    }
}
