//! Maintenance mode for the admin API: pause or resume automatic failover of named groups (or
//! all of them), one replicated command per group (state/pause.rs holds the rules).

use super::features;
use super::Runtime;
use crate::raft::NodeError;
use crate::state::pause::{Pause, FEATURE_PAUSE};
use crate::state::{Cmd, CmdResult};

/// One group after a pause or resume: its pause now (None: not paused), and whether the call
/// changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPause {
    pub group: String,
    pub pause: Option<Pause>,
    pub changed: bool,
}

/// What an operator asked for.
pub struct PauseAsk {
    pub groups: Vec<String>,
    pub all: bool,
    pub by: String,
    pub reason: String,
    pub for_ms: Option<u64>,
}

/// The groups named (each must exist), or every group with `all`; never both, never none.
fn targets(node: &Runtime, groups: &[String], all: bool) -> Result<Vec<String>, NodeError> {
    match (all, groups.is_empty()) {
        (true, false) => Err(NodeError::InvalidArgument(
            "name groups or ask for all of them, not both".into(),
        )),
        (false, true) => Err(NodeError::InvalidArgument(
            "no group named (--group G, or --all)".into(),
        )),
        (true, true) => Ok(node.raft.read(|c| c.groups.keys().cloned().collect())),
        (false, false) => {
            for g in groups {
                super::groups::group(node, g)?;
            }
            Ok(groups.to_vec())
        }
    }
}

/// A member that could not decode the command would stop replicating: refuse instead.
async fn every_member_knows_pause(node: &Runtime) -> Result<(), NodeError> {
    features::require(node, FEATURE_PAUSE, "maintenance mode")
        .await
        .map_err(NodeError::InvalidArgument)
}

fn pause_of(node: &Runtime, group: &str) -> Option<Pause> {
    node.raft
        .read(|c| c.failover.get(group).and_then(|f| f.paused.clone()))
}

async fn each(
    node: &Runtime,
    groups: Vec<String>,
    cmd: impl Fn(String) -> Cmd,
) -> Result<Vec<GroupPause>, NodeError> {
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let changed = match node.raft.propose(cmd(group.clone())).await? {
            CmdResult::Rejected(r) => return Err(NodeError::Rejected(r)),
            CmdResult::Ok => true,
            CmdResult::Unchanged => false,
        };
        let pause = pause_of(node, &group);
        out.push(GroupPause {
            group,
            pause,
            changed,
        });
    }
    Ok(out)
}

pub async fn pause(node: &Runtime, ask: PauseAsk) -> Result<Vec<GroupPause>, NodeError> {
    every_member_knows_pause(node).await?;
    let groups = targets(node, &ask.groups, ask.all)?;
    tracing::warn!(
        groups = %groups.join(","), by = %ask.by, reason = %ask.reason,
        "automatic failover paused (maintenance mode)"
    );
    each(node, groups, |group| Cmd::PauseGroup {
        group,
        by: ask.by.clone(),
        reason: ask.reason.clone(),
        for_ms: ask.for_ms,
    })
    .await
}

pub async fn resume(
    node: &Runtime,
    groups: &[String],
    all: bool,
) -> Result<Vec<GroupPause>, NodeError> {
    every_member_knows_pause(node).await?;
    let groups = targets(node, groups, all)?;
    tracing::warn!(groups = %groups.join(","), "automatic failover resumed");
    each(node, groups, |group| Cmd::ResumeGroup { group }).await
}
