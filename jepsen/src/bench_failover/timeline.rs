//! Where a failover's time goes, phase by phase: each run's marks as offsets from the fault
//! (suspicion, verdict, run begun, each step's end, first acknowledged write, run completed),
//! and over all runs the median of each mark and of the time since the mark before it.

use std::time::Duration;

use mha_raft::state::journal::{FailoverRun, StepState};

use crate::stats::summarize;

pub struct Timeline {
    /// (mark, offset from the fault), in the order they happened.
    marks: Vec<(String, Duration)>,
}

fn after(at_ms: u64, t0: u64) -> Duration {
    Duration::from_millis(at_ms.saturating_sub(t0))
}

/// What the bench's client saw (wall ms): its first session on a new master, and the first
/// write a new master acknowledged.
pub struct ClientSaw {
    pub connected: Option<u64>,
    pub first: Option<u64>,
}

impl Timeline {
    pub fn of(
        t0: u64,
        suspected_ms: u64,
        verdict_ms: u64,
        run: &FailoverRun,
        client: ClientSaw,
        completed_ms: u64,
    ) -> Timeline {
        let mut marks = vec![
            ("suspect".to_string(), after(suspected_ms, t0)),
            ("verdict".to_string(), after(verdict_ms, t0)),
            ("run begun".to_string(), after(run.started_at_ms, t0)),
        ];
        for s in &run.steps {
            if let StepState::Done { finished_at_ms, .. } = s.state {
                let name = serde_json::to_value(s.name)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| format!("{:?}", s.name));
                marks.push((format!("{name} done"), after(finished_at_ms, t0)));
            }
        }
        marks.push(("run completed".into(), after(completed_ms, t0)));
        if let Some(c) = client.connected {
            marks.push(("client on the new master".into(), after(c, t0)));
        }
        if let Some(f) = client.first {
            marks.push(("first acked write".into(), after(f, t0)));
        }
        marks.sort_by_key(|(_, d)| *d);
        Timeline { marks }
    }

    /// One run, one line: `suspect +410 | verdict +830 | ...` (ms after the fault).
    pub fn line(&self) -> String {
        self.marks
            .iter()
            .map(|(m, d)| format!("{m} +{}", d.as_millis()))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// Per mark over all runs: the median offset from the fault and the median time since the
/// previous mark of the same run, in the order of the median offsets.
pub fn breakdown(runs: &[Timeline]) -> Vec<String> {
    let mut names: Vec<&str> = Vec::new();
    for t in runs {
        for (m, _) in &t.marks {
            if !names.contains(&m.as_str()) {
                names.push(m);
            }
        }
    }
    let mut rows: Vec<(Duration, String)> = names
        .into_iter()
        .filter_map(|name| {
            let mut offsets = Vec::new();
            let mut spans = Vec::new();
            for t in runs {
                if let Some(i) = t.marks.iter().position(|(m, _)| m == name) {
                    offsets.push(t.marks[i].1);
                    let prev = if i == 0 {
                        Duration::ZERO
                    } else {
                        t.marks[i - 1].1
                    };
                    spans.push(t.marks[i].1.saturating_sub(prev));
                }
            }
            let (o, s) = (summarize(&offsets)?, summarize(&spans)?);
            Some((
                o.median,
                format!(
                    "  {name:<28} +{:>6} ms   (+{:>5} ms after the mark before; {} runs)",
                    o.median.as_millis(),
                    s.median.as_millis(),
                    o.count
                ),
            ))
        })
        .collect();
    rows.sort_by_key(|(d, _)| *d);
    rows.into_iter().map(|(_, r)| r).collect()
}
