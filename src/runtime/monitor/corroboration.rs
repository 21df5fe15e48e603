//! Corroboration of a suspicion: every follower manager probes the master from its own zone
//! (ProbeService), every replica says whether its IO thread is still connected to it. Each
//! answer comes back to the group's monitor as a detector event. Also the follower's side: one
//! probe of a group's master on the leader's request.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::mpsc;

use super::stats::Counters;
use crate::adapters::mysql::Login;
use crate::clock::now_ms;
use crate::engine::detector::Event;
use crate::model::{IoThread, ManagerVote, ReplicaIo};
use crate::proto::probe::probe_service_client::ProbeServiceClient;
use crate::proto::probe::ProbeRequest;
use crate::runtime::credentials::{login, password};
use crate::runtime::error::RuntimeError;
use crate::runtime::pinger::Pinger;
use crate::runtime::Runtime;
use crate::secret::Secret;
use crate::state::group::{Group, Role};

/// Asks every follower manager (ProbeService) and every replica, in parallel; each answer comes
/// back as an event.
pub(super) fn spawn_corroboration(
    node: Arc<Runtime>,
    g: Group,
    password: Secret,
    round: u64,
    tx: mpsc::Sender<Event>,
    counters: Arc<Counters>,
) {
    let timeout = Duration::from_millis(g.spec.ping.interval_ms.max(500));
    probe_from_followers(&node, &g.spec.name, round, timeout, &tx, &counters);
    ask_replicas(&g, password, timeout, tx);
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
                group,
                round,
                min_applied,
            };
            match tokio::time::timeout(timeout * 2, client.probe_master(req)).await {
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
}

/// Every replica of the master says whether its IO thread is still connected to it.
fn ask_replicas(g: &Group, password: Secret, timeout: Duration, tx: mpsc::Sender<Event>) {
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
pub async fn probe_master(
    node: &Runtime,
    group: &str,
) -> Result<(bool, String, Duration), RuntimeError> {
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
