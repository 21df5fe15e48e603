//! The leader's side of a delegated step: have it acted, confirm the actor's guards, commit
//! what the step journals.

use std::time::{Duration, Instant};

use tonic::Status;

use super::{addr_of, running_attempt, step_from, step_text};
use crate::engine::failover::workfiles::is_work_file;
use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::proto::admin::NodeStatusRequest;
use crate::proto::probe::probe_service_client::ProbeServiceClient;
use crate::proto::probe::run_step_reply::Outcome;
use crate::proto::probe::{
    DelegateCommitReply, DelegateCommitRequest, DelegateGuardReply, DelegateGuardRequest,
    RunStepReply, RunStepRequest,
};
use crate::raft::NodeId;
use crate::runtime::Runtime;
use crate::state::journal::{FailoverRun, StepName, StepReport};
use crate::state::recovery::RecoveryNote;
use crate::state::Cmd;

/// The leader checks an acting delegate this often; this many missed checks in a row and it
/// gives the step to another manager.
const WATCH_EVERY: Duration = Duration::from_secs(1);
const WATCH_MISSES: u32 = 3;
/// No delegated step runs longer than this (each of its waits has its own, shorter, bound).
const STEP_LIMIT: Duration = Duration::from_secs(1800);

/// How a delegated step ended, as the leader sees it.
pub enum Remote {
    Done(StepReport),
    Failed(String),
    /// The delegate stopped without an outcome, or stopped answering: nothing to journal; the
    /// leader chooses again, without this manager.
    Lost(String),
}

/// Asks `actor` to act `step` of `run` (its begin naming `actor` is committed in `term`) and
/// waits for its outcome, checking every [`WATCH_EVERY`] that it still answers.
#[tracing::instrument(skip_all, fields(run = run, step = ?step, term = term, actor = actor))]
pub async fn run_remote(
    node: &Runtime,
    actor: NodeId,
    run: u64,
    step: StepName,
    term: u64,
) -> Remote {
    let Some(addr) = addr_of(node, actor) else {
        return Remote::Lost(format!("manager {actor} is no longer a member"));
    };
    let channel = match node.raft.network().channel(actor, &addr) {
        Ok(c) => c,
        Err(e) => return Remote::Lost(format!("manager {actor} at {addr}: {e}")),
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
                    Err(_) => Remote::Lost(format!("manager {actor} did not finish within {STEP_LIMIT:?}")),
                    Ok(Err(s)) => Remote::Lost(format!("manager {actor}: {}", crate::errors::status_text(&s))),
                    Ok(Ok(reply)) => outcome(actor, reply.into_inner()),
                };
            }
            _ = tokio::time::sleep(WATCH_EVERY) => {
                let mut admin = AdminServiceClient::new(channel.clone());
                match tokio::time::timeout(WATCH_EVERY, admin.node_status(NodeStatusRequest {})).await {
                    Ok(Ok(_)) => misses = 0,
                    _ => {
                        misses += 1;
                        tracing::warn!(misses, "the manager acting this step does not answer");
                        if misses >= WATCH_MISSES {
                            return Remote::Lost(format!("manager {actor} stopped answering while acting"));
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
        Some(Outcome::Lost(why)) => Remote::Lost(format!("manager {actor}: {why}")),
        None => Remote::Lost(format!("manager {actor} answered without an outcome")),
    }
}

/// Before a step moves to another manager: wait until the lease of the last confirmation this
/// leader gave for `run` has run out, so the manager that held the step can no longer be acting
/// on a confirmation (an action already under way when it was cut off is the same exposure as
/// a deposed leader's: every step re-checks what is in place).
pub async fn settle_after_move(node: &Runtime, run: u64) {
    let last = node
        .delegated
        .confirmed
        .lock()
        .expect("confirmations lock")
        .get(&run)
        .copied();
    if let Some(at) = last {
        let until = at + node.raft.lease();
        if let Some(left) = until.checked_duration_since(Instant::now()) {
            tokio::time::sleep(left).await;
        }
    }
}

/// The leader's answer to a delegate's guard: yes (with the lease left) only while this node is
/// the acting leader of the request's term and the journal has that attempt of that step
/// running on that delegate.
pub fn confirm(node: &Runtime, req: &DelegateGuardRequest) -> Result<DelegateGuardReply, Status> {
    let step = step_from(&req.step)
        .ok_or_else(|| Status::invalid_argument(format!("unknown step {:?}", req.step)))?;
    check_attempt(node, req.run, step, req.term, req.node, req.attempt)?;
    let left = node.raft.lease_left().ok_or_else(|| {
        Status::failed_precondition(format!("no longer the acting leader of term {}", req.term))
    })?;
    node.delegated
        .confirmed
        .lock()
        .expect("confirmations lock")
        .insert(req.run, Instant::now());
    Ok(DelegateGuardReply {
        lease_left_ms: left.as_millis() as u64,
    })
}

fn check_attempt(
    node: &Runtime,
    run: u64,
    step: StepName,
    term: u64,
    delegate: NodeId,
    attempt: u32,
) -> Result<(), Status> {
    node.raft
        .guard(term)
        .map_err(|e| Status::failed_precondition(e.to_string()))?;
    match running_attempt(node, run, step, term, delegate) {
        Some(a) if a == attempt => Ok(()),
        _ => Err(Status::failed_precondition(format!(
            "attempt {attempt} of {step:?} in run {run} is not delegated to manager {delegate} \
             in term {term}"
        ))),
    }
}

/// Commits what a delegate's step journals: only what that step makes (phase 3.3's decision,
/// 3.2's salvage, 3.4's diffs, 3.5's and 4's applies, 3.5's coordinates), naming servers of
/// the group and work files of this run — the journal is where later steps find what to read
/// and replay.
pub async fn commit_for(
    node: &Runtime,
    req: &DelegateCommitRequest,
) -> Result<DelegateCommitReply, Status> {
    let step = step_from(&req.step)
        .ok_or_else(|| Status::invalid_argument(format!("unknown step {:?}", req.step)))?;
    check_attempt(node, req.run, step, req.term, req.node, req.attempt)?;
    let cmd: Cmd = serde_json::from_str(&req.cmd_json)
        .map_err(|e| Status::invalid_argument(format!("unreadable command: {e}")))?;
    let run = node
        .raft
        .read(|c| c.runs.get(&req.run).cloned())
        .ok_or_else(|| Status::not_found(format!("no run {}", req.run)))?;
    let servers = node.raft.read(|c| {
        c.groups
            .get(&run.group)
            .map(|g| {
                g.spec
                    .servers
                    .iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    may_commit(step, &cmd, &run, &servers).map_err(Status::permission_denied)?;
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

/// Whether `step` of `run` makes `cmd` (a pure rule; `servers`: the group's).
fn may_commit(
    step: StepName,
    cmd: &Cmd,
    run: &FailoverRun,
    servers: &[String],
) -> Result<(), String> {
    let known = |s: &str| {
        if servers.iter().any(|x| x == s) {
            Ok(())
        } else {
            Err(format!("{s} is not a server of group {}", run.group))
        }
    };
    let work_file = |p: &str| {
        if is_work_file(p, &run.group, run.id) {
            Ok(())
        } else {
            Err(format!("{p} is not a work file of run {}", run.id))
        }
    };
    let refuse = || Err(format!("a delegated {step:?} may not journal {cmd}"));
    match cmd {
        Cmd::Decide { run: r, decided } if *r == run.id && step == StepName::ChooseNewMaster => {
            known(&decided.new_master)
        }
        Cmd::RecordRecovery { run: r, note } if *r == run.id => match (step, note) {
            (StepName::SaveMasterBinlog, RecoveryNote::Salvage(s)) => {
                for copy in &s.copies {
                    let (server, path) = copy
                        .split_once(':')
                        .ok_or_else(|| format!("copy {copy} is not server:path"))?;
                    known(server)?;
                    work_file(path)?;
                }
                Ok(())
            }
            (StepName::GenerateDiffs, RecoveryNote::Diff { server, diff }) => {
                known(server)?;
                if diff.path.is_empty() {
                    Ok(())
                } else {
                    work_file(&diff.path)
                }
            }
            (
                StepName::PromoteNewMaster | StepName::ReplicasRecovery,
                RecoveryNote::Applied { server, .. },
            ) => known(server),
            (StepName::PromoteNewMaster, RecoveryNote::NewMasterCoords { .. }) => Ok(()),
            _ => refuse(),
        },
        _ => refuse(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Target;
    use crate::state::journal::{Decided, RunKind};
    use crate::state::recovery::{DiffFile, Salvage};

    fn run() -> FailoverRun {
        FailoverRun::new(4, 1, RunKind::Auto, "app", "db1", Some(1), 0)
    }

    fn servers() -> Vec<String> {
        vec!["db1".into(), "db2".into(), "db3".into()]
    }

    fn note(note: RecoveryNote) -> Cmd {
        Cmd::RecordRecovery { run: 4, note }
    }

    #[test]
    fn a_delegate_journals_only_what_its_step_makes() {
        let decide = |new_master: &str| Cmd::Decide {
            run: 4,
            decided: Decided {
                new_master: new_master.into(),
                rule: "latest".into(),
                target: Target::Gtid("0-1-5".into()),
            },
        };
        let good_file = "/var/tmp/mha-raft-app-run4-saved-db2.binlog";
        let salvage = |copy: &str| {
            note(RecoveryNote::Salvage(Salvage {
                copies: vec![copy.into()],
                ..Default::default()
            }))
        };
        let diff = |path: &str| {
            note(RecoveryNote::Diff {
                server: "db3".into(),
                diff: DiffFile {
                    path: path.into(),
                    ..Default::default()
                },
            })
        };
        use StepName::*;
        let cases: Vec<(StepName, Cmd, bool)> = vec![
            (ChooseNewMaster, decide("db2"), true),
            (ChooseNewMaster, decide("db9"), false),
            (Fence, decide("db2"), false),
            (SaveMasterBinlog, salvage(&format!("db2:{good_file}")), true),
            (SaveMasterBinlog, salvage("db2:/etc/shadow"), false),
            (
                SaveMasterBinlog,
                salvage(&format!("db9:{good_file}")),
                false,
            ),
            (ChooseNewMaster, salvage(&format!("db2:{good_file}")), false),
            (
                GenerateDiffs,
                diff("/var/tmp/mha-raft-app-run4-diff-db3.binlog"),
                true,
            ),
            (
                GenerateDiffs,
                diff("/var/tmp/mha-raft-app-run5-diff-db3.binlog"),
                false,
            ),
            (
                PromoteNewMaster,
                note(RecoveryNote::Applied {
                    server: "db2".into(),
                    detail: "ok".into(),
                }),
                true,
            ),
            (
                LatestReplicas,
                note(RecoveryNote::Applied {
                    server: "db2".into(),
                    detail: "ok".into(),
                }),
                false,
            ),
            (
                PromoteNewMaster,
                note(RecoveryNote::NewMasterCoords {
                    file: "b.000002".into(),
                    pos: 4,
                }),
                true,
            ),
            (
                PromoteNewMaster,
                Cmd::FinishFailover {
                    run: 4,
                    failed: None,
                },
                false,
            ),
            (
                ReplicasRecovery,
                Cmd::StepEnd {
                    run: 4,
                    step: ReplicasRecovery,
                    term: 9,
                    outcome: crate::state::journal::StepOutcome::Done("x".into()),
                },
                false,
            ),
        ];
        for (step, cmd, ok) in cases {
            let got = may_commit(step, &cmd, &run(), &servers());
            assert_eq!(got.is_ok(), ok, "{step:?} {cmd}: {got:?}");
        }
    }
}
