//! Delegated steps (invariant 3's second clause): when the leader cannot reach what a step
//! needs but another member can, the leader begins the step in its own term naming that member
//! as the actor, asks it to act (ProbeService.RunStep), and ends the step with the outcome it
//! reports. The member acts only for that leader and that term:
//! - before every side effect it asks the leader (DelegateGuard) whether the step is still its
//!   own in the leader's term, and the leader answers yes only while it is the acting leader of
//!   that term (its lease) and the journal names this member on the running step; an answer
//!   that took longer than [`GUARD_RTT`] does not count;
//! - a journal entry the step makes (the new master decided, a recovery note) is committed by
//!   the leader in its term (DelegateCommit), and the member waits until it has applied it.
//!
//! So a delegate is no staler than the leader itself: the leader checks its lease and then
//! acts; the delegate's action follows the leader's check by at most one bounded round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::Status;

use super::steps::{Authority, RunCtx, StepError};
use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::proto::admin::NodeStatusRequest;
use crate::proto::probe::probe_service_client::ProbeServiceClient;
use crate::proto::probe::run_step_reply::Outcome;
use crate::proto::probe::{
    DelegateCommitReply, DelegateCommitRequest, DelegateGuardRequest, RunStepReply, RunStepRequest,
};
use crate::raft::NodeId;
use crate::runtime::Runtime;
use crate::state::journal::{StepName, StepReport, StepState};
use crate::state::{Cmd, CmdResult};

/// A guard answer older than this (measured by the delegate, request to reply) is no answer:
/// the leader's lease may have lapsed meanwhile.
pub const GUARD_RTT: Duration = Duration::from_millis(500);
/// Waiting for this node to apply what the leader committed.
const CATCH_UP: Duration = Duration::from_secs(3);
/// The leader checks an acting delegate this often; this many missed checks in a row and it
/// gives the step to another manager.
const WATCH_EVERY: Duration = Duration::from_secs(1);
const WATCH_MISSES: u32 = 3;
/// No step runs longer than this (each of its waits has its own, shorter, bound).
const STEP_LIMIT: Duration = Duration::from_secs(3600);

/// How a delegated step ended, as the leader sees it.
pub enum Remote {
    Done(StepReport),
    Failed(String),
    /// The delegate stopped without an outcome, or stopped answering: nothing to journal; the
    /// leader chooses again (`unreachable`: leave this manager out).
    Lost {
        why: String,
        unreachable: bool,
    },
}

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

// ---- the leader's side ---------------------------------------------------------------------

/// Asks `actor` to act `step` of `run` (its begin naming `actor` is committed in `term`) and
/// waits for its outcome, checking every [`WATCH_EVERY`] that it still answers.
#[tracing::instrument(skip_all, fields(run, step = ?step, term, actor))]
pub async fn run_remote(
    node: &Runtime,
    actor: NodeId,
    run: u64,
    step: StepName,
    term: u64,
) -> Remote {
    let lost = |why: String| Remote::Lost {
        why,
        unreachable: true,
    };
    let Some(addr) = addr_of(node, actor) else {
        return lost(format!("manager {actor} is no longer a member"));
    };
    let channel = match node.raft.network().channel(actor, &addr) {
        Ok(c) => c,
        Err(e) => return lost(format!("manager {actor} at {addr}: {e}")),
    };
    let req = RunStepRequest {
        run,
        step: step_text(step),
        term,
        min_applied: node.raft.written_index(),
        leader: node.id(),
    };
    let mut client = ProbeServiceClient::new(channel.clone());
    let call = tokio::time::timeout(STEP_LIMIT, client.run_step(req));
    tokio::pin!(call);
    let mut misses = 0;
    loop {
        tokio::select! {
            r = &mut call => {
                return match r {
                    Err(_) => lost(format!("manager {actor} did not finish within {STEP_LIMIT:?}")),
                    Ok(Err(s)) => lost(format!("manager {actor}: {}", crate::errors::status_text(&s))),
                    Ok(Ok(reply)) => outcome(actor, reply.into_inner()),
                };
            }
            _ = tokio::time::sleep(WATCH_EVERY) => {
                let mut admin = AdminServiceClient::new(channel.clone());
                match tokio::time::timeout(WATCH_EVERY, admin.node_status(NodeStatusRequest {})).await {
                    Ok(Ok(_)) => misses = 0,
                    _ => {
                        misses += 1;
                        tracing::warn!(actor, misses, "the manager acting this step does not answer");
                        if misses >= WATCH_MISSES {
                            return lost(format!("manager {actor} stopped answering while acting"));
                        }
                    }
                }
            }
        }
    }
}

fn outcome(actor: NodeId, reply: RunStepReply) -> Remote {
    match reply.outcome {
        Some(Outcome::DoneJson(j)) => match serde_json::from_str::<StepReport>(&j) {
            Ok(r) => Remote::Done(r),
            Err(e) => Remote::Failed(format!("manager {actor} sent an unreadable report: {e}")),
        },
        Some(Outcome::Failed(d)) => Remote::Failed(d),
        Some(Outcome::Lost(why)) => Remote::Lost {
            why: format!("manager {actor}: {why}"),
            unreachable: false,
        },
        None => Remote::Lost {
            why: format!("manager {actor} answered without an outcome"),
            unreachable: false,
        },
    }
}

/// The leader's answer to a delegate's guard: Ok only while this node is the acting leader of
/// `term` and the running step of `run` is `delegate`'s in that term.
pub fn confirm(node: &Runtime, run: u64, term: u64, delegate: NodeId) -> Result<(), Status> {
    node.raft
        .guard(term)
        .map_err(|e| Status::failed_precondition(e.to_string()))?;
    let mine = node.raft.read(|c| {
        c.runs.get(&run).is_some_and(|r| {
            r.steps.iter().any(|s| {
                matches!(s.state, StepState::Running { term: t, node: n, .. } if t == term && n == delegate)
            })
        })
    });
    if mine {
        Ok(())
    } else {
        Err(Status::failed_precondition(format!(
            "no step of run {run} is delegated to manager {delegate} in term {term}"
        )))
    }
}

/// Commits what a delegate's step journals: only a decision or a recovery note of the run
/// whose running step is the delegate's, in the leader's term.
pub async fn commit_for(
    node: &Runtime,
    req: &DelegateCommitRequest,
) -> Result<DelegateCommitReply, Status> {
    confirm(node, req.run, req.term, req.node)?;
    let cmd: Cmd = serde_json::from_str(&req.cmd_json)
        .map_err(|e| Status::invalid_argument(format!("unreadable command: {e}")))?;
    let allowed = matches!(&cmd, Cmd::Decide { run, .. } | Cmd::RecordRecovery { run, .. } if *run == req.run);
    if !allowed {
        return Err(Status::permission_denied(format!(
            "a delegated step may journal only its run's decision or recovery notes, not {cmd}"
        )));
    }
    let result = node
        .raft
        .propose_in(req.term, cmd)
        .await
        .map_err(|e| Status::failed_precondition(e.to_string()))?;
    Ok(DelegateCommitReply {
        result_json: serde_json::to_string(&result).map_err(|e| Status::internal(e.to_string()))?,
        applied: node.raft.written_index(),
    })
}

// ---- the delegate's side -------------------------------------------------------------------

/// Asks the leader whether the running step is still this node's in `term` (see [`confirm`]).
pub async fn ask_guard(
    node: &Runtime,
    leader: NodeId,
    addr: &str,
    run: u64,
    term: u64,
) -> Result<(), String> {
    let seen = node.raft.metrics().current_term;
    if seen > term {
        return Err(format!(
            "term {seen} has begun; the step was delegated in term {term}"
        ));
    }
    let channel = node
        .raft
        .network()
        .channel(leader, addr)
        .map_err(|e| format!("leader {leader} at {addr}: {e}"))?;
    let t = Instant::now();
    let mut client = ProbeServiceClient::new(channel);
    let call = client.delegate_guard(DelegateGuardRequest {
        run,
        term,
        node: node.id(),
    });
    match tokio::time::timeout(GUARD_RTT, call).await {
        Err(_) => Err(format!(
            "leader {leader} did not confirm within {GUARD_RTT:?}"
        )),
        Ok(Err(s)) => Err(format!(
            "leader {leader} did not confirm: {}",
            crate::errors::status_text(&s)
        )),
        Ok(Ok(_)) if t.elapsed() > GUARD_RTT => {
            Err(format!("leader {leader}'s confirmation came too late"))
        }
        Ok(Ok(_)) => Ok(()),
    }
}

/// Commits `cmd` through the leader, then waits until this node has applied it.
pub async fn commit_via_leader(
    node: &Runtime,
    leader: NodeId,
    addr: &str,
    run: u64,
    term: u64,
    cmd: &Cmd,
) -> Result<CmdResult, String> {
    let channel = node
        .raft
        .network()
        .channel(leader, addr)
        .map_err(|e| format!("leader {leader} at {addr}: {e}"))?;
    let cmd_json = serde_json::to_string(cmd).map_err(|e| e.to_string())?;
    let mut client = ProbeServiceClient::new(channel);
    let call = client.delegate_commit(DelegateCommitRequest {
        run,
        term,
        node: node.id(),
        cmd_json,
    });
    let reply = match tokio::time::timeout(CATCH_UP * 2, call).await {
        Err(_) => {
            return Err(format!(
                "leader {leader} did not commit within {:?}",
                CATCH_UP * 2
            ))
        }
        Ok(Err(s)) => {
            return Err(format!(
                "leader {leader} did not commit: {}",
                crate::errors::status_text(&s)
            ))
        }
        Ok(Ok(r)) => r.into_inner(),
    };
    if !node.raft.wait_applied(reply.applied, CATCH_UP).await {
        return Err(format!(
            "did not apply the leader's entry {} in time",
            reply.applied
        ));
    }
    serde_json::from_str(&reply.result_json).map_err(|e| e.to_string())
}

/// The contexts of the runs this node acts steps of, kept between consecutive steps (phase 3.3
/// decides from what 3.1 read) as long as nobody else acted in between.
#[derive(Default)]
pub struct DelegatedRuns {
    runs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Option<Kept>>>>>,
}

struct Kept {
    ctx: RunCtx,
    /// The last step this context acted (the cache is valid only if it is the run's last done
    /// step, done by this node in this term).
    last: StepName,
}

/// Acts a step the leader delegated to this node (ProbeService.RunStep).
#[tracing::instrument(skip_all, fields(node = node.id(), run = req.run, step = %req.step, term = req.term, leader = req.leader))]
pub async fn serve(node: &Arc<Runtime>, req: RunStepRequest) -> Result<RunStepReply, Status> {
    let lost = |why: String| {
        tracing::warn!(%why, "delegated step not acted");
        Ok(RunStepReply {
            outcome: Some(Outcome::Lost(why)),
        })
    };
    let step = step_from(&req.step)
        .ok_or_else(|| Status::invalid_argument(format!("unknown step {}", req.step)))?;
    if !node.raft.wait_applied(req.min_applied, CATCH_UP).await {
        return lost(format!(
            "could not apply the leader's journal up to {}",
            req.min_applied
        ));
    }
    let m = node.raft.metrics();
    if m.current_term != req.term || m.current_leader != Some(req.leader) {
        return lost(format!(
            "this manager is in term {} with leader {:?}, not term {} with leader {}",
            m.current_term, m.current_leader, req.term, req.leader
        ));
    }
    let Some(addr) = addr_of(node, req.leader) else {
        return lost(format!("leader {} is not a member here", req.leader));
    };
    let me = node.id();
    let (attempt, last_done) = node.raft.read(|c| {
        let run = c.runs.get(&req.run);
        let attempt = run.and_then(|r| {
            r.steps.iter().find_map(|s| match s.state {
                StepState::Running {
                    term,
                    node,
                    attempts,
                    ..
                } if s.name == step && term == req.term && node == me => Some(attempts),
                _ => None,
            })
        });
        let last_done = run.and_then(|r| {
            r.steps
                .iter()
                .rev()
                .find(|s| matches!(s.state, StepState::Done { .. }))
                .map(|s| (s.name, s.state.clone()))
        });
        (attempt, last_done)
    });
    let Some(attempt) = attempt else {
        return lost(format!(
            "step {} of run {} is not delegated to this manager in term {}",
            req.step, req.run, req.term
        ));
    };
    crate::failpoint::hit(crate::failpoint::When::Delegate, step, attempt);
    let slot = node
        .delegated
        .runs
        .lock()
        .expect("delegated runs lock")
        .entry(req.run)
        .or_default()
        .clone();
    let mut kept = slot.lock().await;
    let reusable = kept.as_ref().is_some_and(|k| {
        k.ctx.term() == req.term
            && matches!(&last_done, Some((name, StepState::Done { term, node, .. })) if *name == k.last && *term == req.term && *node == me)
    });
    if !reusable {
        let authority = Authority::Delegate {
            leader: req.leader,
            addr,
        };
        match RunCtx::new(node.clone(), req.run, req.term, authority) {
            Ok(ctx) => *kept = Some(Kept { ctx, last: step }),
            Err(e) => {
                return Ok(RunStepReply {
                    outcome: Some(Outcome::Failed(format!("cannot act for the leader: {e}"))),
                })
            }
        }
    }
    let k = kept.as_mut().expect("context just set");
    k.last = step;
    tracing::warn!(
        "* {} (acting for leader {} in term {})..",
        step.phase(),
        req.leader,
        req.term
    );
    let t = Instant::now();
    let res = k.ctx.run_step(step).await;
    let elapsed = crate::errors::human_duration(t.elapsed());
    let outcome = match res {
        Ok(report) => {
            tracing::warn!(detail = %report.detail, %elapsed, "* {} completed (for the leader).", step.phase());
            Outcome::DoneJson(
                serde_json::to_string(&report).map_err(|e| Status::internal(e.to_string()))?,
            )
        }
        Err(StepError::Abort(d)) => {
            tracing::error!(detail = %d, %elapsed, "* {} FAILED (for the leader).", step.phase());
            Outcome::Failed(d)
        }
        Err(StepError::Lost(why)) => {
            *kept = None;
            tracing::warn!(%why, "delegated step abandoned: the leader no longer confirms it");
            Outcome::Lost(why)
        }
    };
    Ok(RunStepReply {
        outcome: Some(outcome),
    })
}
