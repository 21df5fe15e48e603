//! Commands an older build would apply differently are proposed only once every member declared
//! that its build knows them (the `features` of its registration, state/audit.rs).
//!
//! A manager registers with each new leader within a second or so of the election, so a command
//! sent right after a cluster starts (or after a leader change) can find a member that has not
//! registered with this leader's state yet. That is waited for, briefly, instead of being refused
//! with advice to upgrade a build that is current.

use std::time::Duration;

use super::Runtime;

/// How long a command waits for members that have not declared a feature yet. Registration is
/// retried every 300 ms; a few rounds cover a leader that has just been elected.
const REGISTRATION_GRACE: Duration = Duration::from_secs(3);
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// The first member (voter or learner) that has not declared `feature`, if any.
pub(super) fn lacking(node: &Runtime, feature: &str) -> Option<u64> {
    let members: Vec<u64> = node
        .raft
        .metrics()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .collect();
    node.raft.read(|c| c.lacking_feature(members, feature))
}

/// Whether every member declared `feature`: only then may the leader propose what an older
/// build would apply differently.
pub(super) fn every_member_has(node: &Runtime, feature: &str) -> bool {
    lacking(node, feature).is_none()
}

/// Waits up to [`REGISTRATION_GRACE`] for every member to declare `feature`; `Err` with why not,
/// naming the manager and `what` the command needs (e.g. "maintenance mode").
pub(super) async fn require(node: &Runtime, feature: &str, what: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + REGISTRATION_GRACE;
    loop {
        let Some(id) = lacking(node, feature) else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(refusal(node, id, what));
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

/// Says whether manager `id` has not registered with this leader's state at all (it is down, or
/// cannot reach the leader) or runs a build that does not know `what`.
fn refusal(node: &Runtime, id: u64, what: &str) -> String {
    let ran = node
        .raft
        .read(|c| c.managers.get(&id).is_some_and(|m| m.ran));
    if ran {
        format!(
            "manager {id} runs a build that does not know {what}: upgrade every manager first \
             (mhactl cluster status shows the managers)"
        )
    } else {
        format!(
            "manager {id} has not registered with the leader yet, so whether its build knows \
             {what} is not known: a running manager registers within seconds; if it is down or \
             cut off, bring it back (or remove it with mhactl member remove) and retry"
        )
    }
}
