//! The delegated member's side: act a step for the leader, asking it before every side effect
//! and committing through it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Status;

use super::{addr_of, running_attempt, step_from, step_text, Kept, CATCH_UP};
use crate::proto::probe::probe_service_client::ProbeServiceClient;
use crate::proto::probe::run_step_reply::Outcome;
use crate::proto::probe::{
    DelegateCommitRequest, DelegateGuardRequest, RunStepReply, RunStepRequest,
};
use crate::raft::NodeId;
use crate::runtime::failover::steps::{Authority, RunCtx, StepError};
use crate::runtime::Runtime;
use crate::state::journal::{StepName, StepState};
use crate::state::{Cmd, CmdResult};

/// A guard answer is never waited for longer than this.
const GUARD_WAIT: Duration = Duration::from_millis(500);
/// A step of a run this node already acts (for an older attempt still unwinding) is waited for
/// at most this long.
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// On whose behalf, and for which attempt of which step, a delegate acts.
#[derive(Clone, Debug)]
pub struct DelegateAuth {
    pub leader: NodeId,
    pub addr: String,
    pub step: StepName,
    pub attempt: u32,
}

/// Asks the leader whether this attempt of the step is still this node's (see
/// [`super::confirm`]). The answer counts only if it arrived within the lease it reports.
pub async fn ask_guard(
    node: &Runtime,
    auth: &DelegateAuth,
    run: u64,
    term: u64,
) -> Result<(), String> {
    let seen = node.raft.metrics().current_term;
    if seen > term {
        return Err(format!(
            "term {seen} has begun; the step was delegated in term {term}"
        ));
    }
    let leader = auth.leader;
    let channel = node
        .raft
        .network()
        .channel(leader, &auth.addr)
        .map_err(|e| format!("leader {leader} at {}: {e}", auth.addr))?;
    let t = Instant::now();
    let mut client = ProbeServiceClient::new(channel);
    let call = client.delegate_guard(DelegateGuardRequest {
        run,
        term,
        node: node.id(),
        step: step_text(auth.step),
        attempt: auth.attempt,
    });
    let reply = match tokio::time::timeout(GUARD_WAIT, call).await {
        Err(_) => {
            return Err(format!(
                "leader {leader} did not confirm within {GUARD_WAIT:?}"
            ))
        }
        Ok(Err(s)) => {
            return Err(format!(
                "leader {leader} did not confirm: {}",
                crate::errors::status_text(&s)
            ))
        }
        Ok(Ok(r)) => r.into_inner(),
    };
    let rtt = t.elapsed();
    let left = Duration::from_millis(reply.lease_left_ms);
    if rtt >= left {
        return Err(format!(
            "leader {leader}'s confirmation took {rtt:?}, longer than the {left:?} its lease had left"
        ));
    }
    Ok(())
}

/// Commits `cmd` through the leader, then waits until this node has applied it.
pub async fn commit_via_leader(
    node: &Runtime,
    auth: &DelegateAuth,
    run: u64,
    term: u64,
    cmd: &Cmd,
) -> Result<CmdResult, String> {
    let leader = auth.leader;
    let channel = node
        .raft
        .network()
        .channel(leader, &auth.addr)
        .map_err(|e| format!("leader {leader} at {}: {e}", auth.addr))?;
    let cmd_json = serde_json::to_string(cmd).map_err(|e| e.to_string())?;
    let mut client = ProbeServiceClient::new(channel);
    let call = client.delegate_commit(DelegateCommitRequest {
        run,
        term,
        node: node.id(),
        cmd_json,
        step: step_text(auth.step),
        attempt: auth.attempt,
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

fn lost(why: String) -> Result<RunStepReply, Status> {
    tracing::warn!(%why, "delegated step not acted");
    Ok(RunStepReply {
        outcome: Some(Outcome::Lost(why)),
    })
}

/// Acts a step the leader delegated to this node (ProbeService.RunStep).
#[tracing::instrument(skip_all, fields(node = node.id(), run = req.run, step = %req.step, term = req.term, leader = req.leader))]
pub async fn serve(node: &Arc<Runtime>, req: RunStepRequest) -> Result<RunStepReply, Status> {
    let step = step_from(&req.step)
        .ok_or_else(|| Status::invalid_argument(format!("unknown step {:?}", req.step)))?;
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
    let Some(attempt) = running_attempt(node, req.run, step, req.term, me) else {
        return lost(format!(
            "step {} of run {} is not delegated to this manager in term {}",
            req.step, req.run, req.term
        ));
    };
    crate::failpoint::hit(crate::failpoint::When::Delegate, step, attempt);
    let slot = slot(node, req.run);
    let Ok(mut kept) = tokio::time::timeout(SLOT_WAIT, slot.lock()).await else {
        return lost(format!(
            "an earlier attempt on run {} is still unwinding here",
            req.run
        ));
    };
    let auth = DelegateAuth {
        leader: req.leader,
        addr,
        step,
        attempt,
    };
    let last_done = node.raft.read(|c| {
        c.runs.get(&req.run).and_then(|r| {
            r.steps
                .iter()
                .rev()
                .find(|s| matches!(s.state, StepState::Done { .. }))
                .map(|s| (s.name, s.state.clone()))
        })
    });
    let reusable = kept.as_ref().is_some_and(|k| {
        k.ctx.term() == req.term
            && matches!(&last_done, Some((name, StepState::Done { term, node, .. }))
                if *name == k.last && *term == req.term && *node == me)
    });
    if reusable {
        let k = kept.as_mut().expect("checked");
        k.ctx.act_for(auth);
        k.last = step;
    } else {
        match RunCtx::new(node.clone(), req.run, req.term, Authority::Delegate(auth)) {
            Ok(ctx) => *kept = Some(Kept { ctx, last: step }),
            // Without this manager's own hooks, credentials or SSH profile for the group it
            // cannot act: another manager may.
            Err(e) => return lost(format!("cannot act for the leader here: {e}")),
        }
    }
    let k = kept.as_mut().expect("context just set");
    tracing::warn!(
        "* {} (acting for leader {} in term {}, attempt {attempt})..",
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
            *kept = None;
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

/// The run's context slot; drops the slots of runs that are over (they hold passwords and
/// salvaged row data).
fn slot(node: &Runtime, run: u64) -> Arc<tokio::sync::Mutex<Option<Kept>>> {
    let active: Vec<u64> = node
        .raft
        .read(|c| c.failover.values().filter_map(|f| f.active_run).collect());
    let mut runs = node.delegated.runs.lock().expect("delegated runs lock");
    runs.retain(|id, _| *id == run || active.contains(id));
    runs.entry(run).or_default().clone()
}
