//! `mhactl rejoin`: an old master (or any server of the spec the topology left) back as a
//! replica of the current master. Checked first: it must hold no transaction the master lacks
//! (engine::rejoin) — refused and named if it does, never discarded. Then: read_only, pointed
//! at the master by GTID, started, waited for until it has everything the master had when the
//! check ran, and the group's topology discovered again (it shows as a replica).
//!
//! GTID groups only for now: a file/position old master restarted with a rotated binlog, and
//! whether anything past the failover point is in it needs its binlog read over SSH; refused
//! with the coordinates to use by hand.

use std::time::Duration;

use super::credentials::{login, password, resolve};
use super::groups;
use super::Runtime;
use crate::adapters::mysql::{ChangeMaster, ReplicaPosition, Session};
use crate::engine::detector::pulse;
use crate::engine::{gtid, rejoin};
use crate::model::Flavor;
use crate::raft::NodeError;
use crate::secret::Secret;
use crate::state::group::{GroupSpec, ReplicationMode, ServerSpec};

const CONNECT: Duration = Duration::from_secs(2);

/// What a rejoin did (or, with `check_only`, would do), line by line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RejoinReport {
    pub lines: Vec<String>,
    /// False for a check only.
    pub rejoined: bool,
}

fn refused(why: impl Into<String>) -> NodeError {
    NodeError::Refused(why.into())
}

fn mysql(what: &str) -> impl Fn(crate::adapters::mysql::MysqlError) -> NodeError + '_ {
    move |e| refused(format!("{what}: {e}"))
}

/// Rejoins `server` to `group` (leader only). Nothing is changed unless every check passed.
pub async fn rejoin(
    node: &Runtime,
    group: &str,
    server: &str,
    check_only: bool,
) -> Result<RejoinReport, NodeError> {
    node.raft.require_leader()?;
    let g = groups::group(node, group)?;
    let s = g
        .spec
        .server(server)
        .cloned()
        .ok_or_else(|| refused(format!("group {group} has no server {server} in its spec")))?;
    let master = g.topology.master.clone();
    if server == master {
        return Err(refused(format!("{server} is the master of group {group}")));
    }
    if let Some(t) = g.topology.servers.get(server) {
        return Err(refused(format!(
            "{server} is already in group {group}'s topology ({:?} of {})",
            t.role,
            t.replicates_from.as_deref().unwrap_or("nobody")
        )));
    }
    let f = node.raft.read(|c| c.failover.get(group).cloned());
    if let Some(run) = f.and_then(|f| f.active_run) {
        return Err(refused(format!(
            "failover run {run} of group {group} is active: rejoin once it is over"
        )));
    }
    if g.topology.mode == ReplicationMode::FilePos {
        return Err(refused(
            "file/position group: rejoin by hand for now (check that the old master's binlog \
             holds nothing past the failover point, then CHANGE MASTER to the coordinates \
             in phase 5's statement of `mhactl failover history`); GTID groups are rejoined \
             by mhactl",
        ));
    }
    let m = g
        .spec
        .server(&master)
        .cloned()
        .ok_or_else(|| refused(format!("master {master} is not in the spec")))?;
    let pw = password(&node.local, &g.spec).map_err(|e| refused(e.to_string()))?;
    let mut old = login(&g.spec, &s, &pw)
        .connect(CONNECT)
        .await
        .map_err(mysql(server))?;
    let mut new = login(&g.spec, &m, &pw)
        .connect(CONNECT)
        .await
        .map_err(mysql(&master))?;
    let repl_password = resolve(&node.local, "repl_password", &g.spec.repl_password)
        .map_err(|e| refused(e.to_string()))?;
    let pair = Pair {
        old: &mut old,
        new: &mut new,
        repl_password: &repl_password,
    };
    let report = rejoin_with(&g.spec, &s, &m, pair, check_only).await;
    old.close().await;
    new.close().await;
    let mut report = report?;
    if check_only {
        return Ok(report);
    }
    // Discovered again from the live servers: the rejoined one shows as a replica.
    let g = groups::put_group(node, g.spec.clone(), true).await?;
    report.lines.push(format!(
        "topology discovered again: {server} is a replica of {}",
        g.topology
            .servers
            .get(server)
            .and_then(|t| t.replicates_from.clone())
            .unwrap_or_else(|| "nobody (see cluster status)".into())
    ));
    report.rejoined = true;
    Ok(report)
}

/// The two servers' sessions and the replication password, for [`rejoin_with`].
struct Pair<'a> {
    old: &'a mut Session,
    new: &'a mut Session,
    repl_password: &'a Secret,
}

async fn rejoin_with(
    spec: &GroupSpec,
    s: &ServerSpec,
    m: &ServerSpec,
    pair: Pair<'_>,
    check_only: bool,
) -> Result<RejoinReport, NodeError> {
    let Pair {
        old,
        new,
        repl_password,
    } = pair;
    let mut lines = Vec::new();
    let old_info = old.server_info().await.map_err(mysql(&s.name))?;
    let new_info = new.server_info().await.map_err(mysql(&m.name))?;
    let errant = match new_info.dialect.flavor {
        Flavor::MariaDb => {
            let (old_state, _) = old.mariadb_gtid_state().await.map_err(mysql(&s.name))?;
            let (new_state, new_slave) = new.mariadb_gtid_state().await.map_err(mysql(&m.name))?;
            let o = gtid::mariadb_last_seq([old_state.as_str()])
                .map_err(|e| refused(format!("{}: {e}", s.name)))?;
            let n = gtid::mariadb_last_seq([new_state.as_str(), new_slave.as_str()])
                .map_err(|e| refused(format!("{}: {e}", m.name)))?;
            rejoin::mariadb_errant(&o, &n)
        }
        Flavor::MySql => {
            // The master computes it: GTID_SUBTRACT is exact on MySQL's interval sets.
            let sql = format!(
                "SELECT GTID_SUBTRACT('{}', '{}') AS e",
                old_info.gtid.executed.replace('\'', ""),
                new_info.gtid.executed.replace('\'', "")
            );
            let rows = new.rows(&sql).await.map_err(mysql(&m.name))?;
            rows.first()
                .and_then(|r| r.get("e").cloned().flatten())
                .filter(|e| !e.trim().is_empty())
                .into_iter()
                .collect()
        }
    };
    if !errant.is_empty() {
        return Err(refused(format!(
            "{} holds transactions the master {} lacks (errant): {}; nothing was changed. \
             Inspect them (mysqlbinlog on {}), then either apply them to {} by hand or \
             rebuild {} from a backup of {}",
            s.name,
            m.name,
            errant.join(", "),
            s.name,
            m.name,
            s.name,
            m.name
        )));
    }
    lines.push(format!(
        "{}: no transaction the master {} lacks (GTID {} ⊆ {})",
        s.name,
        m.name,
        if old_info.gtid.binlog_pos.is_empty() {
            &old_info.gtid.executed
        } else {
            &old_info.gtid.binlog_pos
        },
        new_info.gtid.executed
    ));
    if check_only {
        lines.push(format!(
            "would: set read_only on {}, point it at {} by GTID, start replication, wait until \
             it has {}, and discover the topology again",
            s.name, m.name, new_info.gtid.executed
        ));
        return Ok(RejoinReport {
            lines,
            rejoined: false,
        });
    }
    if !old_info.read_only {
        old.set_read_only(true).await.map_err(mysql(&s.name))?;
        lines.push(format!("{}: read_only=1", s.name));
    }
    if old_info.replica.is_some() {
        old.stop_replica(false).await.map_err(mysql(&s.name))?;
    }
    if old_info.dialect.flavor == Flavor::MariaDb {
        // A former master's own writes are in its binlog, not in gtid_slave_pos: replication
        // must start after them (MariaDB's documented way to turn a master into a slave).
        old.exec("SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos")
            .await
            .map_err(mysql(&s.name))?;
    }
    let period = old
        .replica_pulse()
        .await
        .ok()
        .flatten()
        .and_then(|(_, p)| p.heartbeat_period_ms);
    old.change_master(&ChangeMaster {
        host: m.host.clone(),
        port: m.port,
        user: spec.repl_user.clone(),
        password: repl_password.clone(),
        position: ReplicaPosition::Gtid,
        // The detector reads this replica's heartbeats too (engine::detector::pulse).
        heartbeat_ms: pulse::period_to_set(spec.ping.replica_heartbeat_ms, period),
    })
    .await
    .map_err(mysql(&s.name))?;
    old.start_replica().await.map_err(mysql(&s.name))?;
    lines.push(format!("{}: replicating from {} by GTID", s.name, m.name));
    let limit = Duration::from_millis(spec.failover.replica_timeout_ms);
    let target = new_info.gtid.executed.clone();
    if !target.is_empty()
        && !old
            .wait_gtid(&target, limit)
            .await
            .map_err(mysql(&s.name))?
    {
        let st = old.replica_status().await.ok().flatten();
        return Err(refused(format!(
            "{} replicates from {} but did not reach {target} within {limit:?}{}: it stays \
             pointed at {} and out of the topology; see its SHOW SLAVE STATUS",
            s.name,
            m.name,
            st.map(|x| format!(
                " (IO {:?}, SQL errno {}: {})",
                x.io_thread, x.last_sql_errno, x.last_sql_error
            ))
            .unwrap_or_default(),
            m.name
        )));
    }
    lines.push(format!("{}: reached {target}", s.name));
    Ok(RejoinReport {
        lines,
        rejoined: false,
    })
}
