//! Online switchover, leader side (`mhactl switchover`): read what the gates need and run them
//! (engine/switchover.rs), and begin the journaled run. The run's steps are the failover
//! runner's (runtime/failover/steps: switch_*.rs, reject_updates.rs); phase 1 runs the same
//! gates again just before writes are blocked.

use std::time::Duration;

use futures::future::join;

use super::credentials::{login, password};
use super::groups;
use crate::engine::switchover::{self as gates, GateInput, Passed, Refused};
use crate::local_config::LocalConfig;
use crate::raft::NodeError;
use crate::runtime::Runtime;
use crate::secret::Secret;
use crate::state::group::{Group, GroupSpec};
use crate::state::switchover::{SwitchOptions, FEATURE_SWITCHOVER};
use crate::state::{Cmd, CmdResult};

/// Reading one server for the gates.
const READ: Duration = Duration::from_secs(2);

/// The group's spec as a switchover sees it: the servers of its replication (an old master
/// of an earlier failover that never rejoined stays in the group file but is not read).
pub fn switch_spec(g: &Group) -> GroupSpec {
    let mut spec = g.spec.clone();
    spec.servers
        .retain(|s| g.topology.servers.contains_key(&s.name) || s.name == g.topology.master);
    spec
}

/// Reads every server and the threads of the old and new master, and runs MHA's gates.
pub async fn run_gates(
    local: &LocalConfig,
    spec: &GroupSpec,
    password: &Secret,
    old_master: &str,
    options: &SwitchOptions,
) -> Result<Passed, Refused> {
    let refuse = |reason: String| Refused {
        reason,
        lines: Vec::new(),
    };
    let old = spec
        .server(old_master)
        .ok_or_else(|| refuse(format!("{old_master} is not in the group")))?;
    let threads = |name: String, s: crate::state::group::ServerSpec| async move {
        let mut sess = login(spec, &s, password)
            .connect(READ)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        sess.set_timeout(READ);
        let t = sess.processlist().await.map_err(|e| format!("{name}: {e}"));
        sess.close().await;
        t
    };
    let (observed, master_threads) = join(
        groups::observe(local, spec, READ),
        threads(old.name.clone(), old.clone()),
    )
    .await;
    let observed = observed.map_err(|e| refuse(format!("password: {e}")))?;
    let master_threads = master_threads.map_err(refuse)?;
    let mut passed = gates::check(&GateInput {
        spec,
        old_master,
        observed: &observed,
        master_threads: &master_threads,
        running_updates_limit_s: options.running_updates_limit_s,
        seconds_behind_master_s: options.seconds_behind_master_s,
        forced: options.new_master.as_deref(),
    })?;
    let nm = spec
        .server(&passed.new_master)
        .cloned()
        .ok_or_else(|| refuse(format!("{} is not in the group", passed.new_master)))?;
    let busy = threads(nm.name.clone(), nm).await.map_err(|e| Refused {
        reason: e,
        lines: passed.lines.clone(),
    })?;
    let limit = options.running_seconds_limit_s;
    let long = gates::long_queries(&busy, limit);
    if !long.is_empty() {
        return Err(Refused {
            reason: format!(
                "queries on the new master {} running {} s or longer: {}",
                passed.new_master,
                limit,
                long.join("; ")
            ),
            lines: passed.lines,
        });
    }
    passed.lines.push(format!(
        "{}: nothing running {} s or longer",
        passed.new_master, limit
    ));
    Ok(passed)
}

/// What `StartSwitchover` answers.
pub struct Started {
    pub passed: Passed,
    /// The run begun (None: check only).
    pub run: Option<u64>,
}

/// Runs the gates and, unless `check_only`, begins the switchover run (leader only). A gate
/// that fails is `Refused` with every line read so far: nothing was changed.
pub async fn start(
    node: &Runtime,
    group: &str,
    options: SwitchOptions,
    check_only: bool,
) -> Result<Started, NodeError> {
    node.raft.require_leader()?;
    super::features::require(node, FEATURE_SWITCHOVER, "the online switchover")
        .await
        .map_err(NodeError::Refused)?;
    let g = groups::group(node, group)?;
    if let Some(run) = node
        .raft
        .read(|c| c.failover.get(group).and_then(|f| f.active_run))
    {
        return Err(NodeError::Refused(format!(
            "run {run} of group {group} is under way (mhactl failover history --group {group})"
        )));
    }
    let spec = switch_spec(&g);
    let pw = password(&node.local, &spec).map_err(|e| NodeError::Refused(e.to_string()))?;
    let passed = run_gates(&node.local, &spec, &pw, &g.topology.master, &options)
        .await
        .map_err(|r| {
            let mut text = r.lines.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            NodeError::Refused(format!(
                "{text}switchover refused, nothing changed: {}",
                r.reason
            ))
        })?;
    if check_only {
        return Ok(Started { passed, run: None });
    }
    let cmd = Cmd::BeginSwitchover {
        group: group.to_string(),
        old_master: g.topology.master.clone(),
        // Phase 1 runs the gates again and chooses by the same rules.
        options,
    };
    match node.raft.propose(cmd).await? {
        CmdResult::Rejected(r) => Err(NodeError::Rejected(r)),
        _ => {
            let run = node
                .raft
                .read(|c| c.failover.get(group).and_then(|f| f.active_run))
                .ok_or_else(|| NodeError::Fatal("run vanished after begin".into()))?;
            Ok(Started {
                passed,
                run: Some(run),
            })
        }
    }
}
