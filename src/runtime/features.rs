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
/// retried every 300 ms, so this covers a leader elected a moment ago; it stays well inside
/// mhactl's default 3 s budget for the whole call.
const REGISTRATION_GRACE: Duration = Duration::from_secs(1);
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

/// Waits up to [`REGISTRATION_GRACE`] for every member to declare `feature`; `Err` with why not,
/// naming the manager and `what` the command needs (e.g. "maintenance mode").
pub(super) async fn require(node: &Runtime, feature: &str, what: &str) -> Result<(), String> {
    match settled(node, feature).await {
        None => Ok(()),
        Some(id) => Err(refusal(node, id, what)),
    }
}

/// The first member still lacking `feature` after waiting up to [`REGISTRATION_GRACE`] for
/// members that have not registered with this leader (one registered without it runs an older
/// build: no wait for it).
pub(super) async fn settled(node: &Runtime, feature: &str) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + REGISTRATION_GRACE;
    loop {
        let id = lacking(node, feature)?;
        if registered(node, id) || tokio::time::Instant::now() >= deadline {
            return Some(id);
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

/// Whether manager `id` registered itself (with any features, or from a build that sets
/// `ran`), as opposed to a record `mhactl member add` wrote or none at all.
fn registered(node: &Runtime, id: u64) -> bool {
    node.raft.read(|c| {
        c.managers
            .get(&id)
            .is_some_and(|m| m.ran || !m.features.is_empty())
    })
}

/// Says whether manager `id` has not registered with this leader's state at all (it is down, or
/// cannot reach the leader) or runs a build that does not know `what`.
fn refusal(node: &Runtime, id: u64, what: &str) -> String {
    if registered(node, id) {
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
