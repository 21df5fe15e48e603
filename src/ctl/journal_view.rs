//! The failover journal for humans: one run as a header and a step table (used by
//! `cluster status`, `failover` while it follows a run, and `failover history`).

use super::table::render;
use crate::api::json::phase;
use crate::api::pb::{run_state, step_state, FailoverRun, RunKind, Step};

fn ms(d: u64) -> String {
    crate::errors::human_duration(std::time::Duration::from_millis(d))
}

/// The run's state (a message without one reads as still running).
pub fn run_state(r: &FailoverRun) -> &run_state::State {
    const RUNNING: run_state::State = run_state::State::Running(run_state::Running {});
    r.state
        .as_ref()
        .and_then(|s| s.state.as_ref())
        .unwrap_or(&RUNNING)
}

/// The step's state (a message without one reads as pending).
pub fn step_state(s: &Step) -> &step_state::State {
    const PENDING: step_state::State = step_state::State::Pending(step_state::Pending {});
    s.state
        .as_ref()
        .and_then(|s| s.state.as_ref())
        .unwrap_or(&PENDING)
}

pub fn is_running(r: &FailoverRun) -> bool {
    matches!(run_state(r), run_state::State::Running(_))
}

/// A step that is over: done, skipped or failed.
pub fn is_finished(s: &Step) -> bool {
    matches!(
        step_state(s),
        step_state::State::Done(_) | step_state::State::Skipped(_) | step_state::State::Failed(_)
    )
}

pub fn state_word(s: &Step) -> &'static str {
    match step_state(s) {
        step_state::State::Pending(_) => "pending",
        step_state::State::Running(_) => "running",
        step_state::State::Done(_) => "done",
        step_state::State::Failed(_) => "FAILED",
        step_state::State::Skipped(_) => "skipped",
    }
}

fn kind_word(kind: i32) -> &'static str {
    match RunKind::try_from(kind) {
        Ok(RunKind::Auto) => "auto",
        Ok(RunKind::Manual) => "manual",
        Ok(RunKind::Switchover) => "switchover",
        _ => "unknown kind",
    }
}

/// "run 3 (auto, epoch 2): db1 → db2 — completed in 1.2 s"
pub fn run_header(r: &FailoverRun, now_ms: u64) -> String {
    let target = r
        .decided
        .as_ref()
        .map(|d| format!("{} → {} ({})", r.old_master, d.new_master, d.rule))
        .unwrap_or_else(|| format!("{} → (not decided yet)", r.old_master));
    let state = match run_state(r) {
        run_state::State::Running(_) => {
            format!("RUNNING for {}", ms(now_ms.saturating_sub(r.started_at_ms)))
        }
        run_state::State::Completed(c) => {
            format!(
                "completed in {}",
                ms(c.at_ms.saturating_sub(r.started_at_ms))
            )
        }
        run_state::State::Failed(f) => format!(
            "FAILED after {}: {}",
            ms(f.at_ms.saturating_sub(r.started_at_ms)),
            f.reason
        ),
    };
    format!(
        "run {} ({}, epoch {}{}): {target} — {state}",
        r.id,
        kind_word(r.kind),
        r.epoch,
        r.forced
            .as_ref()
            .map(|f| format!(", forced {f}"))
            .unwrap_or_default()
    )
}

/// A switchover's closing line: how long writes were blocked (the acting managers' clocks,
/// from the old master's write block to read_only=0 on the new master; the VIP follows within
/// milliseconds), or what a roll-back did.
pub fn switch_summary(r: &FailoverRun) -> Option<String> {
    let sw = r.switch.as_ref()?;
    let blocked = sw.blocked_at_ms?;
    let new_master = sw.new_master.as_deref().unwrap_or("?");
    Some(
        match (sw.writable_at_ms, sw.rolled_back_at_ms, &sw.rolled_back) {
            (Some(w), _, _) => format!(
                "writes were blocked for {} ({} read_only → {new_master} writable)",
                ms(w.saturating_sub(blocked)),
                r.old_master
            ),
            (None, Some(at), Some(detail)) => format!(
                "switch ROLLED BACK after writes were blocked for {}: {detail}",
                ms(at.saturating_sub(blocked))
            ),
            _ => format!(
                "writes on {} blocked since the switch's phase 2",
                r.old_master
            ),
        },
    )
}

/// The step table: phase, state, node, term, attempts, duration, detail (`wide` = full detail).
pub fn steps_table(r: &FailoverRun, now_ms: u64, wide: bool) -> String {
    use step_state::State;
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|s| {
            let (node, term, attempts, dur, detail) = match step_state(s) {
                State::Pending(_) => (None, None, None, None, String::new()),
                State::Running(x) => (
                    Some(x.node),
                    Some(x.term),
                    Some(x.attempts),
                    Some(now_ms.saturating_sub(x.started_at_ms)),
                    String::new(),
                ),
                State::Done(x) => (
                    Some(x.node),
                    Some(x.term),
                    Some(x.attempts),
                    Some(x.finished_at_ms.saturating_sub(x.started_at_ms)),
                    x.detail.clone(),
                ),
                State::Failed(x) => (Some(x.node), Some(x.term), None, None, x.detail.clone()),
                State::Skipped(x) => (None, None, None, None, x.detail.clone()),
            };
            let detail = if wide || detail.chars().count() <= 70 {
                detail
            } else {
                format!("{}…", detail.chars().take(69).collect::<String>())
            };
            let o = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
            vec![
                phase(s.name),
                state_word(s).to_string(),
                o(node),
                o(term),
                o(attempts.map(u64::from)),
                dur.map(ms).unwrap_or_else(|| "-".into()),
                detail,
            ]
        })
        .collect();
    render(
        &["PHASE", "STATE", "NODE", "TERM", "TRY", "TOOK", "DETAIL"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pb::{StepName, StepState};

    fn step(name: StepName, state: step_state::State) -> Step {
        Step {
            name: name.into(),
            state: Some(StepState { state: Some(state) }),
        }
    }

    #[test]
    fn renders_a_resumed_run() {
        let r = FailoverRun {
            id: 3,
            epoch: 2,
            kind: RunKind::Auto.into(),
            group: "lab".into(),
            old_master: "db1".into(),
            verdict_round: Some(1),
            started_at_ms: 1000,
            steps: vec![
                step(
                    StepName::ConfigCheck,
                    step_state::State::Done(step_state::Done {
                        term: 5,
                        node: 1,
                        started_at_ms: 1000,
                        finished_at_ms: 1012,
                        detail: "master db1 still unreachable".into(),
                        attempts: 1,
                        ..Default::default()
                    }),
                ),
                step(
                    StepName::Fence,
                    step_state::State::Running(step_state::Running {
                        term: 6,
                        node: 2,
                        started_at_ms: 1900,
                        attempts: 2,
                    }),
                ),
                step(
                    StepName::LatestReplicas,
                    step_state::State::Pending(step_state::Pending {}),
                ),
            ],
            ..Default::default()
        };
        let h = run_header(&r, 2000);
        assert_eq!(
            h,
            "run 3 (auto, epoch 2): db1 → (not decided yet) — RUNNING for 1000 ms"
        );
        let t = steps_table(&r, 2000, false);
        assert!(t.contains("Phase 1: Configuration Check Phase"), "{t}");
        let fence = t.lines().find(|l| l.contains("Phase 2")).unwrap();
        assert!(
            fence.contains("running") && fence.contains("  2  "),
            "{fence}"
        );
        assert!(!is_finished(&r.steps[1]) && is_finished(&r.steps[0]));
    }
}
