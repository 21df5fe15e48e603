//! Relay-log purge for file/position groups (MHA's purge_relay_logs, run by the leader instead
//! of cron). Their replicas keep `relay_log_purge=0`: a failover cuts the relay-log diffs a
//! lagging replica needs from the latest replica's relay logs, so nothing may delete them on
//! its own — and nothing did, so they grew without bound.
//!
//! Every `purge_relay_logs_every_m` minutes per replica (opt-in), one replica at a time, only
//! while the group is healthy (master alive, no run active: checked again before every
//! change): the target's IO thread stopped, so its relay logs end at a fixed position P once
//! it applied them; then, only if every other replica applied at least P (a failover cuts each
//! survivor's diff from its applied position, so none needs the target's relay logs up to P:
//! what recovery may need is kept), MHA's sequence with the rotation done by starting the IO
//! thread: `relay_log_purge=1`, `START SLAVE IO_THREAD` (a new relay log; the SQL thread moves
//! to it and deletes the applied ones); then `relay_log_purge=0` (and the IO thread running),
//! whatever happened. A
//! `relay_log_purge=1` found on a replica is set back to 0, loudly.
//! What each replica's last attempt did is kept on the leader (not replicated: routine
//! traffic stays out of Raft) and shown by `cluster status`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::credentials::{login, password};
use super::groups::observe;
use super::supervisor::{Ticker, Wake};
use super::Runtime;
use crate::adapters::mysql::Session;
use crate::clock::now_ms;
use crate::model::{IoThread, Observations};
use crate::state::group::{Group, ReplicationMode};

const EVERY: Duration = Duration::from_secs(10);
/// Connecting to or reading a server.
const READ: Duration = Duration::from_secs(2);
/// One statement on the purged replica (the SQL thread deleting many relay logs holds the
/// locks SHOW SLAVE STATUS needs meanwhile).
const STATEMENT: Duration = Duration::from_secs(10);
/// How long the target may take to apply what it read once its IO thread is stopped.
const APPLY: Duration = Duration::from_secs(5);
/// How long the SQL thread may take to move to the new relay log.
const ROTATE: Duration = Duration::from_secs(5);
/// A replica whose relay logs were kept (not level, a failure) is tried again this soon, or
/// at its interval if that is shorter.
const RETRY: Duration = Duration::from_secs(300);

/// What the last purge attempt on one replica did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPurge {
    pub server: String,
    pub at_ms: u64,
    /// Relay logs were purged (false: skipped, or failed: `detail` says why).
    pub purged: bool,
    pub detail: String,
}

/// The last attempt per (group, server), on this node (the leader's is what status shows).
pub type PurgeBook = super::attempts::AttemptBook<RelayPurge>;

/// Whether `server`'s relay logs are due: its interval after a purge, sooner after one kept.
fn due(book: &PurgeBook, group: &str, server: &str, every: Duration) -> bool {
    book.last(group, server)
        .is_none_or(|(at, p)| at.elapsed() >= if p.purged { every } else { every.min(RETRY) })
}

/// Runs until `stop`: while this node leads, repairs a relay_log_purge left on and purges what
/// is due (one replica per group per round).
pub async fn supervise(node: Arc<Runtime>, stop: watch::Receiver<bool>) {
    let mut ticker = Ticker::new(&node.raft, stop, EVERY, Wake::Tick);
    while let Some(lead) = ticker.next().await {
        let Some(term) = lead else { continue };
        for g in purgeable(&node) {
            let every =
                Duration::from_secs(g.spec.failover.purge_relay_logs_every_m.saturating_mul(60));
            let due = g
                .topology
                .servers
                .keys()
                .filter(|s| **s != g.topology.master)
                .find(|s| due(&node.relay_purge, &g.spec.name, s, every))
                .cloned();
            if let Some(server) = due {
                let p = purge(&node, &g, &server, term).await;
                if p.purged {
                    tracing::info!(group = %g.spec.name, %server, detail = %p.detail, "relay logs purged");
                } else {
                    tracing::warn!(group = %g.spec.name, %server, detail = %p.detail, "relay logs kept");
                }
                node.relay_purge.record(&g.spec.name, &server, p);
            }
        }
    }
}

/// The file/position groups whose relay logs may be purged now: the interval set, the master
/// alive, no run active (a failover reads the relay logs).
fn purgeable(node: &Runtime) -> Vec<Group> {
    node.raft.read(|c| {
        c.groups
            .values()
            .filter(|g| {
                g.topology.mode == ReplicationMode::FilePos
                    && g.spec.failover.purge_relay_logs_every_m > 0
                    && matches!(g.health.state, crate::model::Health::Alive)
                    && c.failover
                        .get(&g.spec.name)
                        .is_none_or(|f| f.active_run.is_none())
            })
            .cloned()
            .collect()
    })
}

/// Whether `g` may still be purged, as the replicated state has it now, with this node the
/// acting leader of `term`: checked again right before every change to a server.
fn still(node: &Runtime, g: &Group, term: u64) -> Result<(), String> {
    node.raft.guard(term).map_err(|e| e.to_string())?;
    let ok = purgeable(node)
        .iter()
        .any(|x| x.spec.name == g.spec.name && x.topology.master == g.topology.master);
    if ok {
        Ok(())
    } else {
        Err("the group changed (a run began, or its master is suspect): not now".into())
    }
}

async fn purge(node: &Runtime, g: &Group, server: &str, term: u64) -> RelayPurge {
    let (purged, detail) = match try_purge(node, g, server, term).await {
        Ok(detail) => (true, detail),
        Err(why) => (false, why),
    };
    RelayPurge {
        server: server.to_string(),
        at_ms: now_ms(),
        purged,
        detail,
    }
}

/// Ok: purged, what changed; Err: kept, and why.
///
/// The target's IO thread is stopped first, so its relay logs end at a fixed position P once
/// it applied them; they are purged only if every other replica applied at least P (a
/// failover's diffs start at each survivor's applied position: none needs what the target
/// held up to P). Its IO thread is started again and relay_log_purge set back to 0 on every
/// path.
async fn try_purge(node: &Runtime, g: &Group, server: &str, term: u64) -> Result<String, String> {
    let mut spec = g.spec.clone();
    spec.servers
        .retain(|s| g.topology.servers.contains_key(&s.name));
    let s = spec
        .server(server)
        .cloned()
        .ok_or_else(|| format!("{server} is not in the group"))?;
    let pw = password(&node.local, &spec).map_err(|e| e.to_string())?;
    let connect = || async {
        let mut sess = login(&spec, &s, &pw)
            .connect(READ)
            .await
            .map_err(|e| e.to_string())?;
        sess.set_timeout(STATEMENT);
        Ok::<_, String>(sess)
    };
    let mut sess = connect().await?;
    let info = sess.server_info().await.map_err(|e| e.to_string())?;
    let st = info
        .replica
        .ok_or_else(|| format!("{server} is not a replica"))?;
    if st.io_thread != IoThread::Yes || !st.sql_thread {
        return Err(format!("{server}'s replication is not running"));
    }
    if info.relay_log_purge {
        // Left on (a purge cut short, a CHANGE MASTER on old MySQL): it would delete what a
        // failover's diffs need. Set back, loudly.
        still(node, g, term)?;
        restore(&mut sess, &connect).await?;
        tracing::warn!(group = %g.spec.name, %server, "relay_log_purge was ON: set back to OFF");
    }
    still(node, g, term)?;
    sess.exec("STOP SLAVE IO_THREAD")
        .await
        .map_err(|e| e.to_string())?;
    let r = purge_stopped(node, g, server, term, &spec, &mut sess).await;
    // Whatever happened: relay_log_purge back to 0, the IO thread running — unless a failover
    // run began meanwhile: its phase 2 stopped the IO threads to fix the positions it decides
    // on, and it repoints this replica itself; starting the thread again behind its back could
    // move a position it read.
    let restored = restore(&mut sess, &connect).await;
    let run = node
        .raft
        .read(|c| c.failover.get(&g.spec.name).and_then(|f| f.active_run));
    // A purge that went through started the IO thread itself (the rotation).
    if let (Some(run), Err(_)) = (run, &r) {
        sess.close().await;
        restored?;
        return Err(format!(
            "run {run} began meanwhile: {server}'s IO thread left stopped for it (the run \
             repoints it)"
        ));
    }
    let started = match sess.exec("START SLAVE IO_THREAD").await {
        Ok(()) => Ok(()),
        Err(_) => match connect().await {
            Ok(mut again) => {
                let r = again.exec("START SLAVE IO_THREAD").await;
                again.close().await;
                r.map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        },
    };
    sess.close().await;
    if let Err(e) = started {
        return Err(format!(
            "{server}'s IO thread could not be started again ({e}): START SLAVE IO_THREAD by hand"
        ));
    }
    restored?;
    r
}

/// The target's IO thread stopped: wait until it applied all it read (P), check every other
/// replica applied at least P, then rotate with relay_log_purge=1.
async fn purge_stopped(
    node: &Runtime,
    g: &Group,
    server: &str,
    term: u64,
    spec: &crate::state::group::GroupSpec,
    sess: &mut Session,
) -> Result<String, String> {
    let t = Instant::now();
    let p = loop {
        let st = sess
            .replica_status()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{server} is not a replica"))?;
        if st.exec == st.read {
            break st.read;
        }
        if t.elapsed() > APPLY {
            return Err(format!(
                "{server} did not apply all it read within {} s ({} of {}): relay logs kept",
                APPLY.as_secs(),
                st.exec,
                st.read
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let observed = observe(&node.local, spec, READ)
        .await
        .map_err(|e| e.to_string())?;
    applied_by_all(&observed, &g.topology.master, server, &p)?;
    still(node, g, term)?;
    rotate(sess).await
}

/// relay_log_purge back to 0: on `sess`, else on a new connection (a statement cut short by a
/// timeout leaves the session unusable), retried.
async fn restore<F, Fut>(sess: &mut Session, connect: &F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Session, String>>,
{
    const SQL: &str = "SET GLOBAL relay_log_purge = 0";
    if sess.exec(SQL).await.is_ok() {
        return Ok(());
    }
    let mut last = String::new();
    for _ in 0..3 {
        match connect().await {
            Ok(mut again) => {
                let r = again.exec(SQL).await;
                again.close().await;
                match r {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "relay_log_purge could not be set back to 0 ({last}): the next round tries again; \
         SET GLOBAL relay_log_purge = 0 by hand if it persists"
    ))
}

/// relay_log_purge=1, the IO thread started again (a new relay log), and the SQL thread on
/// the new relay log (it deleted the applied ones on its way).
async fn rotate(sess: &mut Session) -> Result<String, String> {
    let before = relay_file(sess).await?;
    sess.exec("SET GLOBAL relay_log_purge = 1")
        .await
        .map_err(|e| e.to_string())?;
    // The IO thread, started again, begins a new relay log; the SQL thread moves to it
    // (deleting the applied ones) once the first events arrive there. (MHA's FLUSH LOGS does
    // the rotation with the IO thread running; here it is stopped, and would not write to a
    // flushed-in file until it starts.)
    sess.exec("START SLAVE IO_THREAD")
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    loop {
        let now = relay_file(sess).await?;
        if now != before {
            return Ok(format!(
                "applied relay logs before {now} purged (was on {before})"
            ));
        }
        if t.elapsed() > ROTATE {
            return Err(format!(
                "the SQL thread stayed on {before} for {} s: perhaps nothing purged",
                ROTATE.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The relay log the SQL thread reads.
async fn relay_file(sess: &mut Session) -> Result<String, String> {
    sess.replica_status()
        .await
        .map_err(|e| e.to_string())?
        .and_then(|st| st.relay_log.map(|c| c.file))
        .ok_or_else(|| "not a replica".to_string())
}

/// Every other replica applied at least `p` (the master's binlog position the target's relay
/// logs end at) with its threads running: no diff a failover would cut for it starts before
/// `p`, so none needs the target's relay logs up to there.
fn applied_by_all(
    observed: &Observations,
    master: &str,
    server: &str,
    p: &crate::model::BinlogCoord,
) -> Result<(), String> {
    for (name, o) in observed
        .iter()
        .filter(|(n, _)| *n != master && *n != server)
    {
        let st = match o {
            Ok(i) => i
                .replica
                .as_ref()
                .ok_or_else(|| format!("{name} is not a replica"))?,
            Err(e) => return Err(format!("{name} is unreachable: {e}")),
        };
        if st.io_thread != IoThread::Yes || !st.sql_thread {
            return Err(format!(
                "{name}'s replication is not running: relay logs kept for recovery"
            ));
        }
        if !st.exec.partial_cmp(p).is_some_and(|o| o.is_ge()) {
            return Err(format!(
                "{name} applied only {} of {p}: relay logs kept for recovery",
                st.exec
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::{coord, mariadb, running_status};
    use crate::model::ServerInfo;

    fn replica(id: u32, read: u64, exec: u64) -> Result<ServerInfo, String> {
        let mut st = running_status("10.0.0.1");
        st.read = coord(1, read);
        st.exec = coord(1, exec);
        Ok(ServerInfo {
            replica: Some(st),
            ..mariadb(id, true, "")
        })
    }

    /// The target's relay logs end at 100: purged only if every other replica applied 100.
    #[test]
    fn only_what_every_replica_applied_is_purged() {
        let p = coord(1, 100);
        let mut obs = Observations::new();
        obs.insert("db1".into(), Ok(mariadb(1, false, "")));
        obs.insert("db2".into(), replica(2, 100, 100));
        obs.insert("db3".into(), replica(3, 120, 100));
        assert_eq!(applied_by_all(&obs, "db1", "db2", &p), Ok(()));
        // db3 read further but applied less: a failover's diff for it would start at 90.
        obs.insert("db3".into(), replica(3, 120, 90));
        assert!(applied_by_all(&obs, "db1", "db2", &p)
            .unwrap_err()
            .contains("applied only"));
        let mut stopped = replica(3, 100, 100).unwrap();
        stopped.replica.as_mut().unwrap().io_thread = IoThread::No;
        obs.insert("db3".into(), Ok(stopped));
        assert!(applied_by_all(&obs, "db1", "db2", &p)
            .unwrap_err()
            .contains("not running"));
        obs.insert("db3".into(), Err("timed out".into()));
        assert!(applied_by_all(&obs, "db1", "db2", &p)
            .unwrap_err()
            .contains("unreachable"));
    }
}
