//! The failover journal for humans: one run as a header and a step table (used by
//! `cluster status`, `failover` while it follows a run, and `failover history`).

use super::table::render;
use crate::state::journal::{FailoverRun, RunState, StepState};

fn ms(d: u64) -> String {
    crate::errors::human_duration(std::time::Duration::from_millis(d))
}

/// "run 3 (auto, epoch 2): db1 → db2 — completed in 1.2 s"
pub fn run_header(r: &FailoverRun, now_ms: u64) -> String {
    let target = r
        .decided
        .as_ref()
        .map(|d| format!("{} → {} ({})", r.old_master, d.new_master, d.rule))
        .unwrap_or_else(|| format!("{} → (not decided yet)", r.old_master));
    let state = match &r.state {
        RunState::Running => format!("RUNNING for {}", ms(now_ms.saturating_sub(r.started_at_ms))),
        RunState::Completed { at_ms } => {
            format!("completed in {}", ms(at_ms.saturating_sub(r.started_at_ms)))
        }
        RunState::Failed { at_ms, reason } => format!(
            "FAILED after {}: {reason}",
            ms(at_ms.saturating_sub(r.started_at_ms))
        ),
    };
    format!(
        "run {} ({:?}, epoch {}{}): {target} — {state}",
        r.id,
        r.kind,
        r.epoch,
        r.forced
            .as_ref()
            .map(|f| format!(", forced {f}"))
            .unwrap_or_default()
    )
    .replace("(Auto", "(auto")
    .replace("(Manual", "(manual")
    .replace("(Switchover", "(switchover")
}

/// The step table: phase, state, node, term, attempts, duration, detail (`wide` = full detail).
pub fn steps_table(r: &FailoverRun, now_ms: u64, wide: bool) -> String {
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|s| {
            let (state, node, term, attempts, dur, detail) = match &s.state {
                StepState::Pending => ("pending", None, None, None, None, String::new()),
                StepState::Running {
                    term,
                    node,
                    started_at_ms,
                    attempts,
                } => (
                    "running",
                    Some(*node),
                    Some(*term),
                    Some(*attempts),
                    Some(now_ms.saturating_sub(*started_at_ms)),
                    String::new(),
                ),
                StepState::Done {
                    term,
                    node,
                    started_at_ms,
                    finished_at_ms,
                    detail,
                    attempts,
                } => (
                    "done",
                    Some(*node),
                    Some(*term),
                    Some(*attempts),
                    Some(finished_at_ms.saturating_sub(*started_at_ms)),
                    detail.clone(),
                ),
                StepState::Failed {
                    term, node, detail, ..
                } => (
                    "FAILED",
                    Some(*node),
                    Some(*term),
                    None,
                    None,
                    detail.clone(),
                ),
                StepState::Skipped { detail } => {
                    ("skipped", None, None, None, None, detail.clone())
                }
            };
            let detail = if wide || detail.chars().count() <= 70 {
                detail
            } else {
                format!("{}…", detail.chars().take(69).collect::<String>())
            };
            let o = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
            vec![
                s.name.phase().to_string(),
                state.to_string(),
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
    use crate::state::journal::{RunKind, StepName, StepOutcome};

    #[test]
    fn renders_a_resumed_run() {
        let mut r = FailoverRun::new(3, 2, RunKind::Auto, "lab", "db1", Some(1), 1000);
        r.begin_step(StepName::ConfigCheck, 5, 1, 1000).unwrap();
        r.end_step(
            StepName::ConfigCheck,
            5,
            StepOutcome::Done {
                detail: "master db1 still unreachable".into(),
            },
            1012,
        )
        .unwrap();
        r.begin_step(StepName::Fence, 5, 1, 1013).unwrap();
        r.begin_step(StepName::Fence, 6, 2, 1900).unwrap();
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
    }
}
