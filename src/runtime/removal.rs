//! A manager removed from the cluster says so, once, and stops acting as a member.
//!
//! What openraft 0.9 does with a removed voter: the leader stops replicating to it as soon as
//! it appends the membership without it, so the removed node usually never receives that entry.
//! Its own log still lists it as a voter; without heartbeats it times out and asks for votes,
//! again and again, and every member refuses (with TLS the security layer refuses a non-member's
//! certificate; in any mode the Raft service refuses a vote from a non-voter). A removed node
//! that did receive the entry (a leader that removed itself) sits as a learner.
//!
//! Either way this watch notices — its membership no longer lists it, or a majority of the
//! other voters it knows refuse its vote as a non-member — logs one WARN with what to do,
//! turns off its elections, and the node reports the role `removed` (with why) in its status;
//! its registration loop stops. Nothing in the cluster depends on this: it only makes the
//! removed node quiet and explicit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::runtime::Runtime;

/// Re-checked at least this often: refusals arrive from the network, not with the metrics.
const PERIOD: Duration = Duration::from_millis(250);

/// Why this manager considers itself removed, while it does.
#[derive(Default, Debug)]
pub struct Removed(Mutex<Option<String>>);

impl Removed {
    pub fn get(&self) -> Option<String> {
        self.0.lock().expect("removed lock").clone()
    }

    fn set(&self, why: Option<String>) {
        *self.0.lock().expect("removed lock") = why;
    }
}

fn list(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why this node was removed, if what it sees says it was.
fn assess(node: &Runtime) -> Option<String> {
    let m = node.raft.metrics();
    let me = node.id();
    let membership = m.membership_config.membership();
    let members: Vec<u64> = membership.nodes().map(|(id, _)| *id).collect();
    if members.is_empty() {
        // Never joined (a manager waiting to be added).
        return None;
    }
    if !members.contains(&me) {
        return Some(format!(
            "the cluster's membership no longer lists it (members {})",
            list(&members)
        ));
    }
    let others: Vec<u64> = membership.voter_ids().filter(|v| *v != me).collect();
    let refused = node.raft.network().stats().refused_me();
    let refusing: Vec<u64> = others
        .iter()
        .copied()
        .filter(|v| refused.contains_key(v))
        .collect();
    // A majority of the other voters: without them this node could never be elected anyway.
    if others.is_empty() || refusing.len() * 2 <= others.len() {
        return None;
    }
    let words = refused.get(&refusing[0]).cloned().unwrap_or_default();
    Some(format!(
        "managers {} refuse it as a non-member ({words})",
        list(&refusing)
    ))
}

/// Watches this node's membership until `stop`.
pub async fn watch(node: Arc<Runtime>, mut stop: watch::Receiver<bool>) {
    let mut metrics = node.raft.watch_metrics();
    let mut membership = None;
    loop {
        // Refusals given under another membership (this node not yet a voter there) say
        // nothing about the current one.
        let now = *node.raft.metrics().membership_config.log_id();
        if membership.as_ref() != Some(&now) {
            if membership.is_some() {
                node.raft.network().stats().forget_refusals();
            }
            membership = Some(now);
        }
        match (assess(&node), node.removed.get()) {
            (Some(why), None) => {
                tracing::warn!(
                    id = node.id(),
                    "this manager was removed from the cluster: {why}. It no longer takes part \
                     (no elections, no registration). To bring it back: stop it, delete its \
                     data dir, start it without initial_members and `mhactl member add` it"
                );
                node.raft.raft().runtime_config().elect(false);
                node.removed.set(Some(why));
            }
            (None, Some(_)) => {
                tracing::info!(
                    id = node.id(),
                    "this manager is a member of the cluster again"
                );
                node.raft.raft().runtime_config().elect(true);
                node.removed.set(None);
            }
            _ => {}
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = metrics.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
}
