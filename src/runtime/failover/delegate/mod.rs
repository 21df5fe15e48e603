//! Delegated steps (invariant 3's second clause): when the leader cannot reach what a step
//! needs but another member can, the leader begins the step in its own term naming that member
//! as the actor, asks it to act (ProbeService.RunStep), and ends the step with the outcome it
//! reports. The member acts only for that leader, that term and that attempt:
//! - before every side effect it asks the leader (DelegateGuard) whether the step's attempt is
//!   still its own; the leader answers yes only while it is the acting leader of the term and
//!   the journal names this member on that attempt of the running step, and says how long its
//!   lease still runs; an answer that took longer than that to arrive does not count;
//! - a journal entry the step makes (the new master decided, a recovery note) is committed by
//!   the leader in its term (DelegateCommit: only what that step makes), and the member waits
//!   until it has applied it.
//!
//! So a delegate acts within the leader's own lease, like the leader: the leader checks its
//! lease and acts; the delegate acts after the leader's check by less than the lease left.
//!
//! `leader.rs` is the leader's side, `actor.rs` the delegated member's.

mod actor;
mod leader;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use actor::{ask_guard, commit_via_leader, serve, DelegateAuth};
pub use leader::{commit_for, confirm, run_remote, settle_after_move, Remote};

use super::steps::RunCtx;
use crate::raft::NodeId;
use crate::runtime::Runtime;
use crate::state::journal::{StepName, StepState};

/// Waiting for this node to apply what the leader committed.
const CATCH_UP: Duration = Duration::from_secs(3);

/// The journal's name of a step ("promote_new_master"): how the wire names it.
fn step_text(step: StepName) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn step_from(text: &str) -> Option<StepName> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

fn addr_of(node: &Runtime, id: NodeId) -> Option<String> {
    crate::runtime::peers::members(node)
        .into_iter()
        .find(|(m, _)| *m == id)
        .map(|(_, a)| a)
}

/// The attempt of `step` of `run` that the journal has running in `term` on `actor`.
fn running_attempt(
    node: &Runtime,
    run: u64,
    step: StepName,
    term: u64,
    actor: NodeId,
) -> Option<u32> {
    node.raft.read(|c| {
        c.runs.get(&run).and_then(|r| {
            r.steps.iter().find_map(|s| match s.state {
                StepState::Running {
                    term: t,
                    node: n,
                    attempts,
                    ..
                } if s.name == step && t == term && n == actor => Some(attempts),
                _ => None,
            })
        })
    })
}

/// What a node keeps about delegation: as a delegate, the contexts of the runs it acts steps
/// of (kept between consecutive steps: phase 3.3 decides from what 3.1 read); as a leader, when
/// it last confirmed a delegate's action on each run (a step moves away only after that
/// confirmation's lease ran out).
#[derive(Default)]
pub struct DelegatedRuns {
    runs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Option<Kept>>>>>,
    confirmed: Mutex<HashMap<u64, Instant>>,
}

struct Kept {
    ctx: RunCtx,
    /// The last step this context acted (the cache is valid only if it is the run's last done
    /// step, done by this node in this term).
    last: StepName,
}
