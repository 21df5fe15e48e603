//! `mhactl rejoin`: an old master (or any server of the spec the topology left) back as a
//! replica of the current master.
//!
//! Order: read_only first (so nothing is written between the check and the repointing), then
//! the check — it must hold no transaction the master lacks (check.rs), refused and named if it
//! does, never discarded — then pointed at the master (by GTID; file/position groups at the
//! coordinates the master took over at, from the journal), started, shown to replicate
//! (threads running, no error, everything the master had at the check), and entered into the
//! topology by one replicated command that applies only if the group is still as it was read
//! (`Cmd::RejoinReplica`). Before every change: still the acting leader, the group's master
//! unchanged, no failover run active.
//!
//! File/position groups rejoin only the master the last run replaced: where any other server
//! stands in the new master's binlog was never journaled.

pub mod auto;
mod check;

use std::time::{Duration, Instant};

use super::credentials::{login, password, resolve};
use super::groups;
use super::Runtime;
use crate::adapters::mysql::{ChangeMaster, ReplicaPosition, Session};
use crate::engine::detector::pulse;
use crate::engine::rejoin::{filepos_point, FilePosPoint};
use crate::model::{IoThread, ServerInfo, Target};
use crate::raft::NodeError;
use crate::secret::Secret;
use crate::state::group::{DiscoveredServer, Group, GroupSpec, ReplicationMode, Role, ServerSpec};
use crate::state::rejoin::FEATURE_REJOIN;
use crate::state::{Cmd, CmdResult};

const CONNECT: Duration = Duration::from_secs(2);
/// How long the threads may take to show running once the replica has what the master had.
const SETTLE: Duration = Duration::from_secs(5);

/// The groups with a rejoin under way, per manager (tests run several in one process).
static UNDER_WAY: std::sync::Mutex<std::collections::BTreeSet<(u64, String)>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A group's rejoin slot, given back when dropped.
struct OneAtATime((u64, String));

impl OneAtATime {
    fn take(node: u64, group: &str) -> Option<OneAtATime> {
        let key = (node, group.to_string());
        UNDER_WAY
            .lock()
            .expect("rejoins")
            .insert(key.clone())
            .then_some(OneAtATime(key))
    }
}

impl Drop for OneAtATime {
    fn drop(&mut self) {
        UNDER_WAY.lock().expect("rejoins").remove(&self.0);
    }
}

/// How a rejoin is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Check and say what would be done; change nothing.
    pub check_only: bool,
    /// By the leader's own loop (`[failover] auto_rejoin`): the group must also stay unpaused
    /// and unblocked throughout, and a server replicating from another server than the master
    /// (set up by hand) is left alone.
    pub automatic: bool,
}

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

/// The group as the rejoin read it: what must still hold before each change.
struct Expect {
    group: String,
    master: String,
    updated_at_ms: u64,
    automatic: bool,
}

impl Expect {
    /// Still the acting leader, the same master, no failover run begun (automatic: nor the
    /// group paused or blocked meanwhile).
    fn still(&self, node: &Runtime) -> Result<(), NodeError> {
        node.raft.require_leader()?;
        let now = crate::clock::now_ms();
        let (g, run, held) = node.raft.read(|c| {
            let f = c.failover.get(&self.group);
            (
                c.groups.get(&self.group).cloned(),
                f.and_then(|f| f.active_run),
                f.and_then(|f| match (f.pause_at(now), &f.blocked) {
                    (Some(p), _) => Some(format!("paused ({p})")),
                    (None, Some(b)) => Some(format!("blocked ({b})")),
                    (None, None) => None,
                }),
            )
        });
        if let (true, Some(held)) = (self.automatic, held) {
            return Err(refused(format!(
                "group {} is {held}: the automatic rejoin waits",
                self.group
            )));
        }
        match (g, run) {
            (_, Some(run)) => Err(refused(format!(
                "failover run {run} of group {} began meanwhile",
                self.group
            ))),
            (Some(g), None) if g.topology.master == self.master => Ok(()),
            _ => Err(refused(format!(
                "group {}'s master is no longer {} (or the group is gone)",
                self.group, self.master
            ))),
        }
    }
}

/// Rejoins `server` to `group` (leader only). Nothing is changed unless every check before the
/// first change passed; a failure after it says what was done.
pub async fn rejoin(
    node: &Runtime,
    group: &str,
    server: &str,
    options: Options,
) -> Result<RejoinReport, NodeError> {
    let check_only = options.check_only;
    node.raft.require_leader()?;
    // One rejoin per group at a time on this leader (a client that retries after a timeout
    // must not start a second one alongside the first).
    let _one = OneAtATime::take(node.id(), group)
        .ok_or_else(|| refused(format!("a rejoin in group {group} is already under way")))?;
    crate::runtime::features::require(node, FEATURE_REJOIN, "rejoin")
        .await
        .map_err(refused)?;
    let g = groups::group(node, group)?;
    let (s, m, point) = targets(node, &g, server)?;
    let expect = Expect {
        group: group.to_string(),
        master: m.name.clone(),
        updated_at_ms: g.updated_at_ms,
        automatic: options.automatic,
    };
    let pw = password(&node.local, &g.spec).map_err(|e| refused(e.to_string()))?;
    let repl_password = resolve(&node.local, "repl_password", &g.spec.repl_password)
        .map_err(|e| refused(e.to_string()))?;
    let mut old = login(&g.spec, &s, &pw)
        .connect(CONNECT)
        .await
        .map_err(|e| refused(format!("{server}: {e}")))?;
    let mut new = login(&g.spec, &m, &pw)
        .connect(CONNECT)
        .await
        .map_err(|e| refused(format!("{}: {e}", m.name)))?;
    let mut r = Rejoin {
        node,
        spec: &g.spec,
        s: &s,
        m: &m,
        expect: &expect,
        repl_password: &repl_password,
        point,
        kept_at: None,
        lines: Vec::new(),
    };
    let res = r.run(&mut old, &mut new, check_only).await;
    old.close().await;
    new.close().await;
    let discovered = match res {
        Ok(d) => d,
        // What was done before the failure, with it: the operator finds the server as left.
        Err(e) if r.lines.is_empty() => return Err(e),
        Err(e) => {
            return Err(refused(format!(
                "{e} (done before: {})",
                r.lines.join("; ")
            )))
        }
    };
    let Some(discovered) = discovered else {
        return Ok(RejoinReport {
            lines: r.lines,
            rejoined: false,
        });
    };
    let cmd = Cmd::RejoinReplica {
        group: group.to_string(),
        master: m.name.clone(),
        updated_at_ms: expect.updated_at_ms,
        server: Box::new(discovered),
    };
    // Whatever stops the entry now, the server already replicates: say so, never turn it
    // into a redirect that would run the rejoin again elsewhere.
    match node.raft.propose(cmd).await {
        Err(e) => Err(refused(format!(
            "{server} replicates from {}, but entering it into the topology failed ({e}); \
             run the rejoin again (done before: {})",
            m.name,
            r.lines.join("; ")
        ))),
        Ok(CmdResult::Rejected(rej)) => Err(refused(format!(
            "{rej} (done before: {})",
            r.lines.join("; ")
        ))),
        Ok(_) => {
            r.lines.push(format!(
                "{server} is in the topology again, a replica of {}",
                m.name
            ));
            Ok(RejoinReport {
                lines: r.lines,
                rejoined: true,
            })
        }
    }
}

/// The server to rejoin and the master (and, file/position groups, the journaled point), once
/// the group allows it.
fn targets(
    node: &Runtime,
    g: &Group,
    server: &str,
) -> Result<(ServerSpec, ServerSpec, Option<FilePosPoint>), NodeError> {
    let group = &g.spec.name;
    let s = g
        .spec
        .server(server)
        .cloned()
        .ok_or_else(|| refused(format!("group {group} has no server {server} in its spec")))?;
    let master = &g.topology.master;
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
    if let Some(run) = node
        .raft
        .read(|c| c.failover.get(group).and_then(|f| f.active_run))
    {
        return Err(refused(format!(
            "failover run {run} of group {group} is active: rejoin once it is over"
        )));
    }
    let point = match g.topology.mode {
        ReplicationMode::FilePos => Some(
            node.raft
                .read(|c| filepos_point(c.runs.values(), group, server, master))
                .map_err(|why| {
                    refused(format!(
                        "file/position group: {why}. Rejoin it by hand (find where it stands \
                         in {master}'s binlog, check its own binlog holds nothing {master} \
                         lacks, CHANGE MASTER, then mhactl group update), or rebuild it from a \
                         backup of {master}"
                    ))
                })?,
        ),
        _ => None,
    };
    let m = g
        .spec
        .server(master)
        .cloned()
        .ok_or_else(|| refused(format!("master {master} is not in the spec")))?;
    Ok((s, m, point))
}

/// Where the server starts on the master, and what it must reach to show it replicates.
struct Start {
    /// MariaDB GTID: the gtid_slave_pos to set first.
    slave_pos: Option<String>,
    position: ReplicaPosition,
    /// The master's GTID set or binlog position at the check.
    reach: Target,
}

struct Rejoin<'a> {
    node: &'a Runtime,
    spec: &'a GroupSpec,
    s: &'a ServerSpec,
    m: &'a ServerSpec,
    expect: &'a Expect,
    repl_password: &'a Secret,
    /// File/position groups: the failover point and where the master took over.
    point: Option<FilePosPoint>,
    /// File/position: the server already replicates from the master, from here (at or past
    /// where the master took over): started, not repointed.
    kept_at: Option<crate::model::BinlogCoord>,
    /// What was checked and done so far.
    lines: Vec<String>,
}

impl Rejoin<'_> {
    fn fail(&self, on: &str, e: impl std::fmt::Display) -> NodeError {
        refused(format!("{on}: {e}"))
    }

    /// Ok(None) for a check only; Ok(the server as the topology will hold it) once it
    /// replicates.
    async fn run(
        &mut self,
        old: &mut Session,
        new: &mut Session,
        check_only: bool,
    ) -> Result<Option<DiscoveredServer>, NodeError> {
        let (s, m) = (self.s, self.m);
        let mut old_info = old.server_info().await.map_err(|e| self.fail(&s.name, e))?;
        // Already pointed at the master (a rejoin cut short after START SLAVE, or by hand): it
        // goes on from where it stopped — never from the journaled start again, which would
        // apply what it already has a second time.
        let at_master = old_info.replica.as_ref().filter(|r| {
            (r.source_host == m.host || r.source_host == m.name) && r.source_port == m.port
        });
        if let (true, None, Some(r)) = (self.expect.automatic, at_master, &old_info.replica) {
            return Err(refused(format!(
                "{} replicates from {}:{} (set up by hand?): the automatic rejoin leaves it \
                 alone; mhactl rejoin repoints it",
                s.name, r.source_host, r.source_port
            )));
        }
        // File/position: kept where it is if that is at or past where the master took over
        // (GTID groups are simply repointed by GTID: nothing is applied twice there).
        self.kept_at = match (&self.point, at_master) {
            (Some(point), Some(r))
                if r.exec
                    .partial_cmp(&point.start_at)
                    .is_some_and(|o| o.is_ge()) =>
            {
                Some(r.exec.clone())
            }
            (Some(point), Some(r)) => {
                return Err(refused(format!(
                    "{} replicates from {} but has applied only up to {}, before where {} took \
                     over ({}): repoint it by hand",
                    s.name, m.name, r.exec, m.name, point.start_at
                )))
            }
            _ => None,
        };
        if !check_only {
            // read_only and replication stopped before the check, and the state read again
            // after: nothing is written or applied between the check and the repointing. A
            // server coming back from a failover must not take writes anyway, so read_only
            // stays set even when the rejoin is refused, and so does a stopped replication
            // (the refusal says so).
            self.expect.still(self.node)?;
            if !old_info.read_only {
                old.set_read_only(true)
                    .await
                    .map_err(|e| self.fail(&s.name, e))?;
                self.lines.push(format!("{}: read_only=1", s.name));
            }
            if old_info.replica.is_some() {
                old.stop_replica(false)
                    .await
                    .map_err(|e| self.fail(&s.name, e))?;
                self.lines
                    .push(format!("{}: its replication stopped", s.name));
            }
            old_info = old.server_info().await.map_err(|e| self.fail(&s.name, e))?;
        }
        let new_info = new.server_info().await.map_err(|e| self.fail(&m.name, e))?;
        let start = self
            .check(old, new, &old_info, &new_info, check_only)
            .await?;
        if check_only {
            return Ok(None);
        }
        self.expect.still(self.node)?;
        if let Some(at) = &self.kept_at {
            old.start_replica()
                .await
                .map_err(|e| self.fail(&s.name, e))?;
            self.lines.push(format!(
                "{}: already pointed at {} (an earlier rejoin cut short, or by hand): \
                 replicating from where it stopped ({at})",
                s.name, m.name
            ));
            return self.settle(old, &start, &old_info).await.map(Some);
        }
        if let Some(pos) = &start.slave_pos {
            old.exec(&format!("SET GLOBAL gtid_slave_pos = '{pos}'"))
                .await
                .map_err(|e| self.fail(&s.name, e))?;
            self.lines
                .push(format!("{}: gtid_slave_pos = {pos}", s.name));
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
            user: self.spec.repl_user.clone(),
            password: self.repl_password.clone(),
            position: start.position.clone(),
            // The detector reads this replica's heartbeats too (engine::detector::pulse).
            heartbeat_ms: pulse::period_to_set(self.spec.ping.replica_heartbeat_ms, period),
        })
        .await
        .map_err(|e| self.fail(&s.name, e))?;
        old.start_replica()
            .await
            .map_err(|e| self.fail(&s.name, e))?;
        self.lines.push(format!(
            "{}: replicating from {} {}",
            s.name,
            m.name,
            match &start.position {
                ReplicaPosition::Gtid => "by GTID".to_string(),
                ReplicaPosition::FilePos { file, pos } => format!("from {file}:{pos}"),
            }
        ));
        self.settle(old, &start, &old_info).await.map(Some)
    }

    /// It replicates (Self::replicates), still under the same leader and master: the server
    /// as the topology will hold it.
    async fn settle(
        &mut self,
        old: &mut Session,
        start: &Start,
        old_info: &ServerInfo,
    ) -> Result<DiscoveredServer, NodeError> {
        self.replicates(old, &start.reach).await?;
        // A failover begun during the wait is refused by the state too (RejoinReplica).
        self.expect.still(self.node)?;
        Ok(DiscoveredServer {
            name: self.s.name.clone(),
            role: Role::Replica,
            server_id: old_info.server_id,
            version: old_info.version.clone(),
            read_only: true,
            log_bin: old_info.log_bin,
            replicates_from: Some(self.m.name.clone()),
        })
    }

    /// Everything the master had at the check, and the threads running without error: it
    /// replicates. An error in either thread fails at once, not at the end of the wait.
    async fn replicates(&mut self, old: &mut Session, target: &Target) -> Result<(), NodeError> {
        let s = self.s;
        let limit = Duration::from_millis(self.spec.failover.replica_timeout_ms);
        let started = Instant::now();
        let nothing = matches!(target, Target::Gtid(g) if g.is_empty());
        let mut reached_at = nothing.then(Instant::now);
        loop {
            let st = old
                .replica_status()
                .await
                .map_err(|e| self.fail(&s.name, e))?
                .ok_or_else(|| self.fail(&s.name, "not a replica after START SLAVE"))?;
            if st.last_io_errno > 0 || st.last_sql_errno > 0 {
                return Err(self.fail(
                    &s.name,
                    format!(
                        "replication stopped: IO error {} ({}), SQL error {} ({}); it stays \
                         pointed at {} and out of the topology",
                        st.last_io_errno,
                        st.last_io_error,
                        st.last_sql_errno,
                        st.last_sql_error,
                        self.m.name
                    ),
                ));
            }
            if reached_at.is_none()
                // Short waits, so an error shows up within one.
                && match target {
                    Target::Gtid(g) => old.wait_gtid(g, Duration::from_secs(1)).await,
                    Target::Coord(c) => old.wait_pos(&c.file, c.pos, Duration::from_secs(1)).await,
                }
                .map_err(|e| self.fail(&s.name, e))?
            {
                reached_at = Some(Instant::now());
            }
            let reached = reached_at.is_some();
            let running = st.io_thread == IoThread::Yes && st.sql_thread;
            if reached && running {
                self.lines.push(format!(
                    "{}: has {} and its threads run",
                    s.name,
                    if nothing {
                        "(nothing to reach)".to_string()
                    } else {
                        target.to_string()
                    }
                ));
                return Ok(());
            }
            let late = match reached_at {
                Some(t) => t.elapsed() > SETTLE,
                None => started.elapsed() > limit,
            };
            let bound = if reached { SETTLE } else { limit };
            if late {
                return Err(self.fail(
                    &s.name,
                    format!(
                        "did not {} within {bound:?} (IO {:?}, SQL running {}); it stays pointed \
                         at {} and out of the topology",
                        if reached {
                            "show both threads running"
                        } else {
                            "reach what the master had at the check"
                        },
                        st.io_thread,
                        st.sql_thread,
                        self.m.name
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
