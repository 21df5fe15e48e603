//! Checkers over a scenario's history, samples and failover journal. Each returns whether it
//! holds and, when it does not, a counterexample a human can follow.

use std::collections::{BTreeMap, BTreeSet};

use mha_raft::state::journal::{FailoverRun, RunState, StepName, StepState};
use serde::Serialize;

use crate::history::{Op, OpType};
use crate::sampler::Sample;

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub valid: bool,
    /// Informational checks report without failing the scenario (e.g. what async loses).
    pub informational: bool,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<serde_json::Value>,
}

pub(crate) fn check(
    name: &str,
    valid: bool,
    summary: String,
    cx: Option<serde_json::Value>,
) -> Check {
    Check {
        name: name.into(),
        valid,
        informational: false,
        summary,
        counterexample: cx,
    }
}

fn acked_adds(h: &[Op]) -> Vec<&Op> {
    h.iter()
        .filter(|o| o.f == "add" && o.kind == OpType::Ok)
        .collect()
}

/// The values of the last successful final read from `master`.
fn final_read(h: &[Op], master: &str) -> Option<BTreeSet<u64>> {
    h.iter()
        .rev()
        .find(|o| o.f == "read" && o.kind == OpType::Ok && o.node.as_deref() == Some(master))
        .map(|r| {
            r.value
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default()
        })
}

/// Every acknowledged add is in the final read of the final master.
pub fn no_lost_writes(h: &[Op], final_master: &str) -> Check {
    let Some(present) = final_read(h, final_master) else {
        return check(
            "no-lost-writes",
            false,
            format!("no final read from the final master {final_master}"),
            None,
        );
    };
    let acked: Vec<u64> = acked_adds(h)
        .iter()
        .filter_map(|o| o.value.as_u64())
        .collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|v| !present.contains(v))
        .collect();
    let unknown = h
        .iter()
        .filter(|o| o.f == "add" && o.kind == OpType::Info)
        .count();
    let summary = format!(
        "{} acknowledged, {} present on {final_master}, {} lost, {unknown} unknown outcomes",
        acked.len(),
        present.len(),
        lost.len()
    );
    let cx = (!lost.is_empty()).then(|| {
        let ops: Vec<&Op> = acked_adds(h)
            .into_iter()
            .filter(|o| o.value.as_u64().is_some_and(|v| lost.contains(&v)))
            .take(10)
            .collect();
        serde_json::json!({ "lost": lost.iter().take(50).collect::<Vec<_>>(), "first_acks": ops })
    });
    check("no-lost-writes", lost.is_empty(), summary, cx)
}

/// Every value a client read through the VIP during the run (acknowledged to its writer or
/// not: someone saw it committed) is in the final read of the final master.
pub fn observed_then_lost(h: &[Op], final_master: &str) -> Check {
    let Some(present) = final_read(h, final_master) else {
        return check(
            "observed-then-lost",
            false,
            format!("no final read from the final master {final_master}"),
            None,
        );
    };
    let observes: Vec<&Op> = h
        .iter()
        .filter(|o| o.f == "observe" && o.kind == OpType::Ok)
        .collect();
    // Per lost value, the first read that saw it.
    let mut lost: std::collections::BTreeMap<u64, &Op> = std::collections::BTreeMap::new();
    let mut seen = BTreeSet::new();
    for o in &observes {
        for v in o
            .value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_u64())
        {
            if seen.insert(v) && !present.contains(&v) {
                lost.insert(v, o);
            }
        }
    }
    let summary = format!(
        "{} reads during the run saw {} distinct values; {} of them missing from {final_master} at the end",
        observes.len(),
        seen.len(),
        lost.len()
    );
    let cx = (!lost.is_empty()).then(|| {
        let first: Vec<serde_json::Value> = lost
            .iter()
            .take(10)
            .map(|(v, o)| {
                serde_json::json!({ "value": v, "seen_at_ms": o.time_ms, "seen_on": o.node, "read_index": o.index })
            })
            .collect();
        serde_json::json!({ "lost": lost.keys().take(50).collect::<Vec<_>>(), "first_seen": first })
    });
    check("observed-then-lost", lost.is_empty(), summary, cx)
}

/// Probe-based: the servers that acknowledged writes, in completion order, never go back: once
/// writes are acknowledged by B after A, A acknowledges nothing more.
pub fn single_writer_probe(h: &[Op]) -> Check {
    let mut acks: Vec<&Op> = acked_adds(h)
        .into_iter()
        .filter(|o| o.node.is_some())
        .collect();
    acks.sort_by_key(|o| o.index);
    let mut retired: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<&Op> = None;
    for o in &acks {
        let n = o.node.clone().expect("filtered");
        match current {
            Some(c) if c.node.as_ref() != Some(&n) => {
                if retired.contains(&n) {
                    return check(
                        "single-writer (probe)",
                        false,
                        format!("{n} acknowledged a write after another server had taken over"),
                        Some(serde_json::json!({ "previous": c, "this": o })),
                    );
                }
                retired.insert(c.node.clone().expect("filtered"));
                current = Some(o);
            }
            None => current = Some(o),
            _ => current = Some(o),
        }
    }
    let order: Vec<String> = {
        let mut seen = Vec::new();
        for o in &acks {
            let n = o.node.clone().expect("filtered");
            if seen.last() != Some(&n) {
                seen.push(n);
            }
        }
        seen
    };
    check(
        "single-writer (probe)",
        true,
        format!("writers in order: {}", order.join(" → ")),
        None,
    )
}

/// Sampler-based: no sample shows two writable servers, or the VIP served by two hosts (a
/// host that holds it fenced — answering every TCP packet with a reset — serves nothing).
pub fn single_writer_sampler(samples: &[Sample]) -> Check {
    for s in samples {
        if s.writable.len() > 1 || s.vip.len() > 1 {
            return check(
                "single-writer (sampler)",
                false,
                format!(
                    "at {} ms: writable {:?}, VIP served by {:?} (held fenced by {:?})",
                    s.time_ms, s.writable, s.vip, s.vip_fenced
                ),
                Some(serde_json::json!(s)),
            );
        }
    }
    check(
        "single-writer (sampler)",
        true,
        format!(
            "{} samples, never two writable servers or two VIP holders",
            samples.len()
        ),
        None,
    )
}

/// The journal is sound: steps finished in order without gaps, one terminal state, runs do
/// not overlap, none left running.
pub fn journal_sound(runs: &[FailoverRun]) -> Check {
    let mut problems = Vec::new();
    let mut last_end: Option<(u64, u64)> = None;
    for r in runs {
        let finished =
            |s: &StepState| matches!(s, StepState::Done { .. } | StepState::Skipped { .. });
        let first_open = r.steps.iter().position(|s| !finished(&s.state));
        if let Some(i) = first_open {
            if r.steps[i + 1..]
                .iter()
                .any(|s| !matches!(s.state, StepState::Pending | StepState::Skipped { .. }))
            {
                problems.push(format!(
                    "run {}: a step after {:?} is not pending",
                    r.id, r.steps[i].name
                ));
            }
        }
        match &r.state {
            RunState::Running => problems.push(format!("run {} is still running", r.id)),
            RunState::Completed { .. } if first_open.is_some() => {
                problems.push(format!("run {} completed with unfinished steps", r.id))
            }
            RunState::Failed { .. }
                if !r
                    .steps
                    .iter()
                    .any(|s| matches!(s.state, StepState::Failed { .. })) =>
            {
                problems.push(format!("run {} failed without a failed step", r.id))
            }
            _ => {}
        }
        if let Some((id, end)) = last_end {
            if r.started_at_ms < end {
                problems.push(format!("run {} began before run {id} ended", r.id));
            }
        }
        let end = match r.state {
            RunState::Completed { at_ms } | RunState::Failed { at_ms, .. } => at_ms,
            RunState::Running => u64::MAX,
        };
        last_end = Some((r.id, end));
    }
    check(
        "journal-sound",
        problems.is_empty(),
        if problems.is_empty() {
            format!(
                "{} run(s): ordered, gap-free, one terminal state each, no overlap",
                runs.len()
            )
        } else {
            problems.join("; ")
        },
        None,
    )
}

/// A failover happened exactly as often as the scenario requires, and completed.
pub fn failovers_expected(runs: &[FailoverRun], expected: usize) -> Check {
    let completed = runs
        .iter()
        .filter(|r| matches!(r.state, RunState::Completed { .. }))
        .count();
    check(
        "failover-as-required",
        runs.len() == expected && completed == expected,
        format!(
            "{} run(s), {completed} completed; the scenario requires {expected}",
            runs.len()
        ),
        None,
    )
}

/// A leader cut off from the data hosts did not act the steps itself: every step with side
/// effects (phase 1 only reads; the leader may well do it) of the completed run was acted by
/// another manager (the one it delegated to, or a later leader).
pub fn acted_elsewhere(runs: &[FailoverRun], blind: u64) -> Check {
    let acted: Vec<(String, u64)> = runs
        .iter()
        .filter(|r| matches!(r.state, RunState::Completed { .. }))
        .flat_map(|r| r.steps.iter())
        .filter(|s| s.name != StepName::ConfigCheck)
        .filter_map(|s| match s.state {
            StepState::Done { node, .. } => Some((format!("{:?}", s.name), node)),
            _ => None,
        })
        .collect();
    let by_blind: Vec<&(String, u64)> = acted.iter().filter(|(_, n)| *n == blind).collect();
    check(
        "acted-where-the-hosts-are-seen",
        !acted.is_empty() && by_blind.is_empty(),
        format!("steps acted by: {acted:?}; the blind leader is node {blind}"),
        None,
    )
}

/// The survivors hold identical data (CHECKSUM TABLE) after heal.
pub fn converged(checksums: &BTreeMap<String, Option<String>>) -> Check {
    let values: BTreeSet<&Option<String>> = checksums.values().collect();
    let ok = values.len() == 1 && !values.contains(&None);
    check(
        "replicas-converge",
        ok,
        format!("CHECKSUM TABLE per survivor: {checksums:?}"),
        None,
    )
}

/// A resumed run: the step the leader died in was re-checked by a newer term.
pub fn resumed(runs: &[FailoverRun], step: &str) -> Check {
    let ok = runs.iter().any(|r| {
        r.steps.iter().any(|s| {
            serde_json::to_value(s.name)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                == Some(step.to_string())
                && matches!(s.state, StepState::Done { attempts, .. } if attempts >= 2)
        })
    });
    check(
        "resumed-by-new-leader",
        ok,
        format!(
            "step {step} {} by a new leader",
            if ok {
                "was re-checked"
            } else {
                "was NOT resumed"
            }
        ),
        None,
    )
}

/// Every register key's history is linearizable (reads, writes, compare-and-sets; unknown
/// outcomes may or may not have happened; the history order is real time).
pub fn registers_linearizable(h: &[Op]) -> Check {
    use crate::linear::{check as lin, Entry, RegOp, Verdict};
    let mut open: BTreeMap<u64, &Op> = BTreeMap::new();
    let mut per_key: BTreeMap<u64, Vec<Entry>> = BTreeMap::new();
    let mut total = 0;
    for o in h.iter().filter(|o| o.f.starts_with("r-")) {
        if o.kind == OpType::Invoke {
            open.insert(o.process, o);
            continue;
        }
        let Some(inv) = open.remove(&o.process) else {
            continue;
        };
        if o.kind == OpType::Fail {
            continue;
        }
        let v = if o.kind == OpType::Ok {
            &o.value
        } else {
            &inv.value
        };
        let k = v["k"].as_u64().unwrap_or(0);
        let op = match o.f.as_str() {
            "r-read" => RegOp::Read(v["v"].as_i64()),
            "r-write" => RegOp::Write(v["v"].as_i64().unwrap_or(0)),
            _ => RegOp::Cas {
                from: v["from"].as_i64().unwrap_or(0),
                to: v["to"].as_i64().unwrap_or(0),
            },
        };
        total += 1;
        per_key.entry(k).or_default().push(Entry {
            op,
            call: inv.index,
            ret: (o.kind == OpType::Ok).then_some(o.index),
        });
    }
    for (k, entries) in &per_key {
        if let Verdict::NotLinearizable { stuck_at, prefix } = lin(entries, None) {
            let stuck: Vec<String> = stuck_at
                .iter()
                .map(|i| {
                    format!(
                        "{:?} [{}..{:?}]",
                        entries[*i].op, entries[*i].call, entries[*i].ret
                    )
                })
                .collect();
            return check(
                "registers-linearizable",
                false,
                format!("key {k}: no linearization; {prefix} operations placed, then stuck"),
                Some(serde_json::json!({ "key": k, "stuck_at": stuck })),
            );
        }
    }
    check(
        "registers-linearizable",
        true,
        format!(
            "{} keys, {total} operations: every key linearizable",
            per_key.len()
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(index: u64, kind: OpType, f: &str, v: serde_json::Value, node: Option<&str>) -> Op {
        Op {
            index,
            time_ms: index,
            process: 0,
            kind,
            f: f.into(),
            value: v,
            node: node.map(String::from),
            error: None,
        }
    }

    #[test]
    fn a_value_seen_then_gone_is_a_counterexample() {
        let h = vec![
            op(0, OpType::Invoke, "add", 7.into(), None),
            // Never acknowledged (the client lost the connection), yet a reader saw it.
            op(1, OpType::Info, "add", 7.into(), None),
            op(
                2,
                OpType::Ok,
                "observe",
                serde_json::json!([5, 7]),
                Some("db1"),
            ),
            op(3, OpType::Ok, "read", serde_json::json!([5]), Some("db2")),
        ];
        let c = observed_then_lost(&h, "db2");
        assert!(!c.valid);
        let cx = c.counterexample.unwrap();
        assert_eq!(cx["lost"], serde_json::json!([7]));
        assert_eq!(cx["first_seen"][0]["seen_on"], "db1");
        let mut ok = h.clone();
        ok[3] = op(
            3,
            OpType::Ok,
            "read",
            serde_json::json!([5, 7]),
            Some("db2"),
        );
        assert!(observed_then_lost(&ok, "db2").valid);
    }

    #[test]
    fn lost_write_is_a_counterexample() {
        let h = vec![
            op(0, OpType::Invoke, "add", 1.into(), None),
            op(1, OpType::Ok, "add", 1.into(), Some("db1")),
            op(2, OpType::Invoke, "add", 2.into(), None),
            op(3, OpType::Ok, "add", 2.into(), Some("db1")),
            op(4, OpType::Ok, "read", serde_json::json!([1]), Some("db2")),
        ];
        let c = no_lost_writes(&h, "db2");
        assert!(!c.valid);
        assert_eq!(c.counterexample.unwrap()["lost"], serde_json::json!([2]));
        let ok = no_lost_writes(
            &h[..2]
                .iter()
                .cloned()
                .chain([op(
                    4,
                    OpType::Ok,
                    "read",
                    serde_json::json!([1]),
                    Some("db2"),
                )])
                .collect::<Vec<_>>(),
            "db2",
        );
        assert!(ok.valid, "{}", ok.summary);
    }

    #[test]
    fn a_writer_coming_back_is_caught() {
        let ok = |i, n| op(i, OpType::Ok, "add", i.into(), Some(n));
        assert!(single_writer_probe(&[ok(1, "db1"), ok(2, "db2"), ok(3, "db2")]).valid);
        let bad = single_writer_probe(&[ok(1, "db1"), ok(2, "db2"), ok(3, "db1")]);
        assert!(!bad.valid, "{}", bad.summary);
    }

    #[test]
    fn two_writable_servers_in_a_sample() {
        let s = |w: &[&str]| Sample {
            time_ms: 1,
            vip: vec!["db1".into()],
            vip_fenced: vec![],
            writable: w.iter().map(|x| x.to_string()).collect(),
            managers: vec![],
        };
        assert!(single_writer_sampler(&[s(&["db1"]), s(&[])]).valid);
        assert!(!single_writer_sampler(&[s(&["db1", "db2"])]).valid);
    }

    /// While the VIP moves, the old host holds it fenced (resets only): not a second server of
    /// it. Two hosts serving it are.
    #[test]
    fn a_fenced_vip_is_not_served() {
        let s = |vip: &[&str], fenced: &[&str]| Sample {
            time_ms: 1,
            vip: vip.iter().map(|x| x.to_string()).collect(),
            vip_fenced: fenced.iter().map(|x| x.to_string()).collect(),
            writable: vec!["db2".into()],
            managers: vec![],
        };
        assert!(single_writer_sampler(&[s(&["db2"], &["db1"])]).valid);
        assert!(!single_writer_sampler(&[s(&["db1", "db2"], &[])]).valid);
    }
}
