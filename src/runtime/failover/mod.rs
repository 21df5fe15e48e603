//! The failover runner (ARCHITECTURE.md "The failover journal", invariants 3–5). While this
//! node is the acting leader, the supervisor
//! - begins an automatic run for every committed Dead verdict (once per verdict round; the
//!   replicated rules refuse it, and record why, when blocked or within the anti-flap window);
//! - executes every active run from its first unfinished step: commit step-begin in this term,
//!   act (only while still the acting leader of that term), commit step-end with the outcome.
//!
//! A new leader finds the active run in the replicated state and continues it: a step that was
//! running is begun again in the new term (attempt 2) and re-checks what is already done; what
//! was decided is never decided again.

mod choose;
pub mod delegate;
pub mod reach;
mod steps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use crate::failpoint::{self, When};
use crate::model::Health;
use crate::runtime::supervisor::{TermTasks, Ticker, Wake};
use crate::runtime::Runtime;
use crate::state::journal::{FailoverRun, RunKind, RunState, StepName, StepOutcome, StepState};
use crate::state::{Cmd, CmdResult};

use steps::Authority;
pub use steps::StepError;

const SUPERVISE_EVERY: Duration = Duration::from_millis(50);
/// A step given to another manager this many times in one executor is acted by the leader
/// itself (it fails there honestly rather than moving around forever).
const MAX_MOVES: u32 = 6;
/// Pause before a step moves to another manager (the one that stopped may be restarting).
const MOVE_PAUSE: Duration = Duration::from_millis(200);

/// Runs until `stop`: while this node is the acting leader, begins a run for every new Dead
/// verdict and keeps one executor per active run, in the current term.
pub async fn supervise(node: Arc<Runtime>, stop: watch::Receiver<bool>) {
    // Every applied entry wakes the loop: a committed Dead verdict starts its run at once
    // instead of at the next tick (the tick still covers lease expiry).
    let mut ticker =
        Ticker::new(&node.raft, stop, SUPERVISE_EVERY, Wake::TickOrApply).tolerating_lapses();
    let mut executors: TermTasks<u64> = TermTasks::new("failover executor");
    while let Some(lead) = ticker.next().await {
        executors.retain(lead, |_| true);
        let Some(term) = lead else { continue };
        // Kept through a lapse of the lease; nothing begun until it holds again.
        if node.raft.acting_term() != Some(term) {
            continue;
        }
        let (dead, active) = node.raft.read(|c| {
            let dead: Vec<(String, String, u64, u64)> = c
                .groups
                .values()
                .filter_map(|g| match g.health.state {
                    Health::Dead { round, .. } => {
                        let f = c.failover.get(&g.spec.name).cloned().unwrap_or_default();
                        (f.active_run.is_none() && f.handled_round != Some(round)).then(|| {
                            (
                                g.spec.name.clone(),
                                g.topology.master.clone(),
                                round,
                                g.spec.failover.anti_flap_ms(),
                            )
                        })
                    }
                    _ => None,
                })
                .collect();
            let active: Vec<u64> = c.failover.values().filter_map(|f| f.active_run).collect();
            (dead, active)
        });
        // Several groups dead at once (a host holding many masters): their runs begin in one
        // batch of concurrent commits, not one commit after another.
        futures::future::join_all(dead.into_iter().map(|(group, old_master, round, flap)| {
            begin_auto(&node, group, old_master, round, flap)
        }))
        .await;
        for id in active {
            executors.ensure(id, term, || execute(node.clone(), id, term));
        }
    }
}

async fn begin_auto(
    node: &Runtime,
    group: String,
    old_master: String,
    round: u64,
    anti_flap_ms: u64,
) {
    let cmd = Cmd::BeginFailover {
        group: group.clone(),
        kind: RunKind::Auto,
        old_master: old_master.clone(),
        verdict_round: Some(round),
        anti_flap_ms,
        forced: None,
    };
    match node.raft.propose(cmd).await {
        Ok(CmdResult::Rejected(reason)) => {
            tracing::error!(%group, %old_master, round, %reason, "automatic failover REFUSED")
        }
        Ok(_) => {
            tracing::warn!(%group, %old_master, round, "automatic failover begins")
        }
        Err(e) => tracing::warn!(%group, error = %e, "could not begin failover"),
    }
}

/// What the Dead verdict of `round`, committed with its begin in one entry
/// (state/verdict_begins.rs), did about the failover: begun, refused (the refusal the entry
/// recorded), or left for after the run already active.
pub fn say_auto_begin(node: &Runtime, group: &str, old_master: &str, round: u64) {
    let (begun, refusal, active) = node.raft.read(|c| {
        let f = c.failover.get(group);
        let active = f.and_then(|f| f.active_run);
        // Begun: a run of this round exists, active or (failed fast) ended already. Only
        // otherwise is a handled round a refusal, the newest one recorded.
        let begun = c
            .runs
            .values()
            .any(|r| r.group == group && r.verdict_round == Some(round));
        let refusal = f
            .filter(|f| !begun && f.handled_round == Some(round))
            .and_then(|f| f.refusals.last())
            .map(|r| r.reason.clone());
        (begun, refusal, active)
    });
    match (begun, refusal, active) {
        (true, _, _) => tracing::warn!(%group, %old_master, round, "automatic failover begins"),
        (false, Some(reason), _) => {
            tracing::error!(%group, %old_master, round, %reason, "automatic failover REFUSED")
        }
        (false, None, Some(run)) => tracing::warn!(
            %group, %old_master, round, run,
            "automatic failover waits: run {run} is active; it begins once that one ended"
        ),
        (false, None, None) => {}
    }
}

/// Starts a manual run (`mhactl failover`): not subject to the anti-flap window, but refused
/// while a failed run is unacknowledged or another run is active. Returns the run id.
pub async fn begin_manual(
    node: &Runtime,
    group: &str,
    forced: Option<String>,
) -> Result<u64, crate::raft::NodeError> {
    use crate::raft::NodeError;
    let g = super::groups::group(node, group)?;
    if let Some(b) = node
        .raft
        .read(|c| c.failover.get(group).and_then(|f| f.blocked.clone()))
    {
        return Err(NodeError::InvalidArgument(format!(
            "{b}; acknowledge it first with: mhactl failover ack --group {group}"
        )));
    }
    if let Some(f) = &forced {
        if g.spec.server(f).is_none() {
            return Err(NodeError::InvalidArgument(format!(
                "--new-master {f}: no such server in group {group}"
            )));
        }
    }
    let cmd = Cmd::BeginFailover {
        group: group.to_string(),
        kind: RunKind::Manual,
        old_master: g.topology.master.clone(),
        verdict_round: None,
        anti_flap_ms: g.spec.failover.anti_flap_ms(),
        forced,
    };
    match node.raft.propose(cmd).await? {
        CmdResult::Rejected(r) => Err(NodeError::Rejected(r)),
        _ => node
            .raft
            .read(|c| c.failover.get(group).and_then(|f| f.active_run))
            .ok_or_else(|| NodeError::Fatal("run vanished after begin".into())),
    }
}

/// Executes run `id` in `term` from its first unfinished step until it ends or this node stops
/// being the acting leader of `term`: choose who acts (this node, or the member that reaches
/// what it cannot), commit the step's begin naming it (unless the previous `StepAdvance` began
/// it), act or have it acted, commit its end (and the next begin, in one entry).
#[tracing::instrument(skip_all, fields(run = id, term = term))]
async fn execute(node: Arc<Runtime>, id: u64, term: u64) {
    let new_ctx = || steps::RunCtx::new(node.clone(), id, term, Authority::Leader);
    let mut ctx = match new_ctx() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot execute failover run");
            return;
        }
    };
    // The step the previous StepAdvance already began (its begin is committed).
    let mut begun = None;
    // Who acts this executor's steps (chosen once, again when a delegate stops answering).
    let mut actor: Option<u64> = None;
    let mut excluded: Vec<u64> = Vec::new();
    let mut moves = 0;
    // The views being taken while this node acts phase 1.
    let mut pending: Option<choose::Pending> = None;
    loop {
        let Some(run) = ctx.run() else { return };
        if run.state != RunState::Running {
            return;
        }
        let Some(step) = run.first_unfinished() else {
            complete(&ctx, &run).await;
            return;
        };
        // A step failed but the leader that journaled it stopped before it ended the run:
        // end it now (a switchover rolls back first).
        if let Some(detail) = failed_detail(&run, step) {
            fail(&mut ctx, id, format!("{}: {detail}", step.phase())).await;
            return;
        }
        // Everyone else left out after failing to act: give them another chance (bounded
        // by MAX_MOVES) rather than have a leader that cannot see the servers act.
        if excluded.len() + 1 >= crate::runtime::peers::members(&node).len() {
            excluded.clear();
        }
        let who = match actor {
            Some(a) => a,
            None if moves >= MAX_MOVES => node.id(),
            // A switchover's master is alive and every server answered its gates: the leader
            // acts every step (phase 2's read lock lives in its session).
            None if run.kind == RunKind::Switchover => node.id(),
            // Phase 1 only reads: the leader starts it at once and takes the views meanwhile
            // (the common case then costs nothing); what they say is settled after it.
            None if step == StepName::ConfigCheck && moves == 0 => {
                pending = Some(choose::spawn(&node, &ctx, &run, &excluded));
                node.id()
            }
            None => {
                let p = choose::spawn(&node, &ctx, &run, &excluded);
                choose::settle(&mut ctx, p).await
            }
        };
        actor = Some(who);
        if begun != Some(step) {
            let begin = Cmd::StepBegin {
                run: id,
                step,
                term,
                node: who,
            };
            // Not after a move (phase 1 begun again on a manager that sees more, a step moved
            // off one that stopped answering): the committed run must stop naming the manager
            // it moved from (delegate/leader.rs confirms an attempt from it) before anyone acts.
            if who == node.id() && moves == 0 && acts_ahead(&node, step) {
                ctx.gather(begin);
            } else if !commit_or_stop(&ctx, begin, step).await {
                return;
            }
        }
        let began = Instant::now();
        let acted = if who == node.id() {
            act(&mut ctx, &run, step, term).await
        } else {
            act_delegated(&node, &ctx, &run, step, term, who).await
        };
        if let Acted::Outcome(..) = &acted {
            node.metrics.step(run.kind, step, began.elapsed());
        }
        // Phase 1 acted here while the views were taken: if another manager sees more, it
        // acts from now on — phase 1 included when it failed here (nothing is journaled of a
        // check that only this node's view made fail).
        let acted =
            match (pending.take(), acted) {
                (Some(p), Acted::Outcome(outcome, failed)) => {
                    let chosen = choose::settle(&mut ctx, p).await;
                    actor = Some(chosen);
                    // Servers left out (ignore_fail) from this leader's view may be there for the
                    // manager that sees more: its phase 1 decides, as for a failure.
                    let left_out =
                        matches!(&outcome, StepOutcome::Done(r) if !r.failed_replicas.is_empty());
                    if chosen != node.id() && (failed.is_some() || left_out) {
                        tracing::warn!(
                        actor = chosen,
                        "phase 1 {} from this leader's view: it is begun again on manager {chosen}",
                        if left_out { "left servers out" } else { "failed" }
                    );
                        // Its begin here was only gathered: nothing of it is journaled.
                        ctx.discard_gathered();
                        begun = None;
                        moves += 1;
                        continue;
                    }
                    Acted::Outcome(outcome, failed)
                }
                (_, acted) => acted,
            };
        let next_actor = actor.unwrap_or(who);
        let (outcome, failed) = match acted {
            Acted::Outcome(outcome, failed) => (outcome, failed),
            Acted::Lost => return,
            Acted::Moved => {
                // Begin the step again on whoever else sees the most, once the lease of the
                // last confirmation given to the one that stopped has run out; a fresh context,
                // since what this one cached may predate what the other manager did.
                excluded.push(who);
                moves += 1;
                actor = None;
                begun = None;
                tokio::time::sleep(MOVE_PAUSE).await;
                delegate::settle_after_move(&node, id).await;
                match new_ctx() {
                    Ok(c) => ctx = c,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot execute failover run");
                        return;
                    }
                }
                continue;
            }
        };
        let (end, next) = end_entry(&run, step, term, next_actor, outcome, failed.is_none());
        begun = next;
        // The next step only reads and decides: acted at once, its begin gathered with this
        // end and committed with the next begin that has side effects (state/batch.rs).
        if next.is_some_and(|n| acts_ahead(&node, n)) && next_actor == node.id() && moves == 0 {
            ctx.gather(end);
            continue;
        }
        if !commit_or_stop(&ctx, end, step).await {
            return;
        }
        if let Some(reason) = failed {
            fail(&mut ctx, id, reason).await;
            return;
        }
    }
}

/// Whether `step` is acted ahead of its begin (its entries gathered, state/batch.rs): phase 1,
/// which only reads and checks, and phases 3.1–3.3, which read what phase 2 read, take the
/// binlog read ahead and decide; their entries are committed with the next begin that has side
/// effects (phase 2's, 3.5's). What they do that is not harmless whatever the journal says (3.2
/// placing a salvaged binlog's copies) commits the gathered entries first
/// ([`steps::RunCtx::guard`]). Only when every member can apply a batch, and never for a step a
/// failpoint stops at (failpoint.rs).
fn acts_ahead(node: &Runtime, step: StepName) -> bool {
    matches!(
        step,
        StepName::ConfigCheck
            | StepName::LatestReplicas
            | StepName::SaveMasterBinlog
            | StepName::ChooseNewMaster
    ) && !failpoint::stops_at(step)
        && super::features::lacking(node, crate::state::batch::FEATURE_JOURNAL_BATCH).is_none()
}

/// What acting a step came to.
enum Acted {
    /// Its outcome, and the run's failure reason when it failed.
    Outcome(StepOutcome, Option<String>),
    /// Leadership lost: write nothing (the next leader resumes the step).
    Lost,
    /// The manager acting it stopped without an outcome while this node still leads: begin it
    /// again, on another manager.
    Moved,
}

/// Has `actor` act `step` (its begin naming `actor` is committed) and turns what it reports
/// into the step's outcome, with the same phase banners as a step acted here.
async fn act_delegated(
    node: &Runtime,
    ctx: &steps::RunCtx,
    run: &FailoverRun,
    step: StepName,
    term: u64,
    actor: u64,
) -> Acted {
    let attempt = attempt_of(ctx, step);
    failpoint::hit(When::Begin, step, attempt);
    let span = tracing::info_span!("failover_step", group = %run.group, run = run.id, step = ?step, term, attempt, actor);
    let t = Instant::now();
    let remote = async {
        tracing::warn!(
            "* {}.. (acted by manager {actor}, which reaches what this leader cannot)",
            step.phase()
        );
        delegate::run_remote(node, actor, run.id, step, term).await
    }
    .instrument(span.clone())
    .await;
    failpoint::hit(When::Act, step, attempt);
    let elapsed = crate::errors::human_duration(t.elapsed());
    // Entered only now: no await below (an entered span must not cross one).
    let _entered = span.enter();
    match remote {
        delegate::Remote::Done(report) => {
            tracing::warn!(detail = %report.detail, %elapsed, "* {} completed (by manager {actor}).", step.phase());
            Acted::Outcome(StepOutcome::Done(report), None)
        }
        delegate::Remote::Failed(mut detail) => {
            if let Some(note) = ctx.kept_files_note() {
                detail.push_str("; ");
                detail.push_str(&note);
            }
            tracing::error!(%detail, %elapsed, "* {} FAILED (on manager {actor}).", step.phase());
            let reason = format!("{}: {detail}", step.phase());
            Acted::Outcome(StepOutcome::Failed { detail }, Some(reason))
        }
        delegate::Remote::Lost(why) => {
            if node
                .raft
                .guard_within(term, crate::raft::LAPSE_GRACE)
                .await
                .is_err()
            {
                tracing::warn!(%why, "step abandoned: leadership lost (the next leader resumes it)");
                return Acted::Lost;
            }
            tracing::warn!(%why, "the manager acting this step stopped without an outcome: choosing again without it");
            Acted::Moved
        }
    }
}

/// How many times `step` has been begun (1 the first time; more: resumed by a new leader).
fn attempt_of(ctx: &steps::RunCtx, step: StepName) -> u32 {
    ctx.run().map_or(1, |r| r.attempts(step))
}

/// Runs `step` (its begin is committed) in a span, with MHA's phase banners.
async fn act(ctx: &mut steps::RunCtx, run: &FailoverRun, step: StepName, term: u64) -> Acted {
    let attempt = attempt_of(ctx, step);
    failpoint::hit(When::Begin, step, attempt);
    let span = tracing::info_span!("failover_step", group = %run.group, run = run.id, step = ?step, term, attempt);
    let t = Instant::now();
    let res = async {
        tracing::warn!("* {}..", step.phase());
        if attempt > 1 {
            tracing::warn!(
                attempt,
                "resuming this step after a leader change: re-checking what is already done"
            );
        }
        if failpoint::fails(step, attempt) {
            return Err(StepError::Abort("FAILPOINT: this step fails".into()));
        }
        ctx.run_step(step).await
    }
    .instrument(span.clone())
    .await;
    failpoint::hit(When::Act, step, attempt);
    let elapsed = crate::errors::human_duration(t.elapsed());
    let _entered = span.enter();
    match res {
        Ok(report) => {
            tracing::warn!(detail = %report.detail, %elapsed, "* {} completed.", step.phase());
            Acted::Outcome(StepOutcome::Done(report), None)
        }
        Err(StepError::Lost(why)) => {
            tracing::warn!(%why, "step abandoned: leadership lost (the next leader resumes it)");
            Acted::Lost
        }
        Err(StepError::Abort(mut detail)) => {
            // A failed run keeps its work files on the DB hosts: the journal says where.
            if let Some(note) = ctx.kept_files_note() {
                detail.push_str("; ");
                detail.push_str(&note);
            }
            tracing::error!(%detail, %elapsed, "* {} FAILED.", step.phase());
            let reason = format!("{}: {detail}", step.phase());
            Acted::Outcome(StepOutcome::Failed { detail }, Some(reason))
        }
    }
}

/// The entry that ends `step`, and the step it begins: a done step that has a successor ends
/// and begins it in one entry (`StepAdvance`); a failed or last one just ends.
fn end_entry(
    run: &FailoverRun,
    step: StepName,
    term: u64,
    node: u64,
    outcome: StepOutcome,
    done: bool,
) -> (Cmd, Option<StepName>) {
    // The run's own step list (a run journaled by an older build keeps its steps), past the
    // ones skipped from the start.
    let next = run
        .steps
        .iter()
        .skip_while(|s| s.name != step)
        .skip(1)
        .find(|s| s.state == StepState::Pending)
        .map(|s| s.name);
    let is_last = run.steps.last().map(|s| s.name) == Some(step);
    if done && !is_last {
        let cmd = Cmd::StepAdvance {
            run: run.id,
            step,
            term,
            outcome,
            node,
        };
        (cmd, next)
    } else {
        let cmd = Cmd::StepEnd {
            run: run.id,
            step,
            term,
            outcome,
        };
        (cmd, None)
    }
}

/// Every step finished: the run completes, with MHA's closing line (phase 4's report tells
/// whether some replica was left behind).
async fn complete(ctx: &steps::RunCtx, run: &FailoverRun) {
    let finish = Cmd::FinishFailover {
        run: run.id,
        failed: None,
    };
    let new_master = run
        .decided
        .as_ref()
        .map(|d| d.new_master.clone())
        .unwrap_or_default();
    match ctx.commit(finish).await {
        Ok(_) if crate::engine::failover::replicas::partially_failed(run) => tracing::warn!(
            group = %run.group,
            "Master failover to {new_master} done, but recovery on slave partially failed."
        ),
        Ok(_) => tracing::warn!(
            group = %run.group,
            "Master failover to {new_master} completed successfully."
        ),
        Err(e) => tracing::warn!(error = ?e, "could not commit the end of the run"),
    }
    prune_history(ctx.runtime(), &run.group).await;
}

/// After a run of `group` ended: its oldest ended runs beyond
/// [`crate::state::history::KEEP_RUNS`] go, once every member knows the command (until then
/// they stay; the next run's end tries again).
async fn prune_history(node: &Runtime, group: &str) {
    use crate::state::history::{FEATURE_PRUNE_RUNS, KEEP_RUNS};
    if super::features::lacking(node, FEATURE_PRUNE_RUNS).is_some() {
        return;
    }
    let Some(before) = node.raft.read(|c| c.prune_point(group, KEEP_RUNS)) else {
        return;
    };
    let cmd = Cmd::PruneRuns {
        group: group.to_string(),
        before,
    };
    match node.raft.propose(cmd).await {
        Ok(_) => tracing::info!(%group, before, "runs history pruned to the newest {KEEP_RUNS}"),
        Err(e) => tracing::warn!(%group, error = %e, "could not prune the runs history"),
    }
}

/// The detail of `step` if it failed.
fn failed_detail(run: &FailoverRun, step: StepName) -> Option<String> {
    run.steps
        .iter()
        .find(|s| s.name == step)
        .and_then(|s| match &s.state {
            StepState::Failed { detail, .. } => Some(detail.clone()),
            _ => None,
        })
}

/// A step failed: the run fails. A switchover that blocked writes is rolled back first when
/// the new master has not taken over. The replicated rule decides whether that blocks
/// automatic failover (from phase 2 on, unless rolled back); the log says what it did.
async fn fail(ctx: &mut steps::RunCtx, id: u64, mut reason: String) {
    if let Some(run) = ctx
        .run()
        .filter(|r| r.kind == RunKind::Switchover && r.touched_servers())
    {
        match ctx.roll_back_switch(&run).await {
            Ok(done) => {
                tracing::warn!(%done, "online switch ROLLED BACK: the old master takes writes again");
                reason.push_str(&format!("; rolled back: {done}"));
            }
            Err(why) => {
                if ctx.lost() {
                    tracing::warn!(%why, "roll-back abandoned: leadership lost (the next leader ends the run)");
                    return;
                }
                tracing::error!(%why, "online switch NOT rolled back");
                reason.push_str(&format!("; not rolled back: {why}"));
            }
        }
    }
    let finish = Cmd::FinishFailover {
        run: id,
        failed: Some(reason.clone()),
    };
    if ctx.commit(finish).await.is_ok() {
        let blocked = ctx.group_blocked();
        if blocked {
            tracing::error!(%reason, "Master failover FAILED: automatic failover of this group is blocked until `mhactl failover ack`");
        } else {
            tracing::error!(%reason, "Master failover FAILED, nothing was changed (configuration check, or a switch rolled back)");
        }
        if let Some(group) = ctx.run().map(|r| r.group) {
            prune_history(ctx.runtime(), &group).await;
        }
    }
}

/// Commits a step's journal entry; false (stop executing) when it was refused or this node
/// lost the leadership.
async fn commit_or_stop(ctx: &steps::RunCtx, cmd: Cmd, step: StepName) -> bool {
    match ctx.commit_journal(cmd).await {
        Ok(CmdResult::Rejected(reason)) => {
            tracing::warn!(?step, %reason, "journal entry refused: stopping");
            false
        }
        Ok(_) => true,
        Err(_) => false,
    }
}
