//! Per-run reports, drawn from the files in a run's store directory: `plot.svg` (each client
//! operation's latency over time, ok / fail / info, with the nemesis window and the failover
//! phases as bands) and `timeline.html` (swimlanes per host: VIP and writable DB servers, each
//! manager's role, the nemesis events, the failover steps). Plain SVG, no plotting library.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use mha_raft::state::journal::{FailoverRun, StepState};
use serde::Deserialize;

use crate::history::{read_jsonl, Op, OpType};
use crate::sampler::Sample;

#[derive(Deserialize)]
struct NemesisEvent {
    time_ms: u64,
    f: String,
    value: String,
}

/// One completed operation: when it was invoked, how long it took, how it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub at_ms: u64,
    pub latency_ms: u64,
    pub kind: OpType,
}

/// Pairs each process's invoke with its completion.
pub fn points(h: &[Op]) -> Vec<Point> {
    let mut open: BTreeMap<u64, &Op> = BTreeMap::new();
    let mut out = Vec::new();
    for o in h.iter().filter(|o| o.f == "add") {
        match o.kind {
            OpType::Invoke => {
                open.insert(o.process, o);
            }
            k => {
                if let Some(i) = open.remove(&o.process) {
                    out.push(Point {
                        at_ms: i.time_ms,
                        latency_ms: o.time_ms.saturating_sub(i.time_ms),
                        kind: k,
                    });
                }
            }
        }
    }
    out
}

/// Failover steps as (phase, begin, end) bands.
fn step_bands(runs: &[FailoverRun]) -> Vec<(String, u64, u64)> {
    let mut v = Vec::new();
    for r in runs {
        for s in &r.steps {
            if let StepState::Done {
                started_at_ms,
                finished_at_ms,
                ..
            } = s.state
            {
                v.push((
                    s.name.phase().to_string(),
                    started_at_ms,
                    finished_at_ms.max(started_at_ms + 1),
                ));
            }
        }
    }
    v
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 1000.0;
const H: f64 = 360.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 40.0;

/// The latency plot. Latency on a log scale (1 ms … 10 s).
pub fn plot_svg(h: &[Op], nemesis: &[(u64, String)], runs: &[FailoverRun]) -> String {
    let pts = points(h);
    let t0 = pts.iter().map(|p| p.at_ms).min().unwrap_or(0);
    let t1 = pts
        .iter()
        .map(|p| p.at_ms + p.latency_ms)
        .max()
        .unwrap_or(t0 + 1)
        .max(t0 + 1);
    let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * (W - LEFT - 10.0);
    let y = |ms: u64| {
        let l = ((ms.max(1)) as f64).log10().min(4.0);
        (H - BOTTOM) - l / 4.0 * (H - BOTTOM - 10.0)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    s.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    // Nemesis window: from the first nemesis event to the heal.
    let start = nemesis.iter().find(|(_, f)| f != "heal").map(|(t, _)| *t);
    let heal = nemesis.iter().find(|(_, f)| f == "heal").map(|(t, _)| *t);
    if let (Some(a), Some(b)) = (start, heal) {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="10" width="{:.1}" height="{:.1}" fill="#f4cccc" opacity="0.6"><title>nemesis</title></rect>"##,
            x(a),
            (x(b) - x(a)).max(1.0),
            H - BOTTOM - 10.0
        );
    }
    for (i, (phase, a, b)) in step_bands(runs).iter().enumerate() {
        let fill = if i % 2 == 0 { "#cfe2f3" } else { "#d9ead3" };
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="10" width="{:.1}" height="{:.1}" fill="{fill}" opacity="0.8"><title>{}</title></rect>"#,
            x(*a),
            (x(*b) - x(*a)).max(1.0),
            H - BOTTOM - 10.0,
            esc(phase)
        );
    }
    for p in &pts {
        let color = match p.kind {
            OpType::Ok => "#2b7a0b",
            OpType::Fail => "#cc0000",
            _ => "#e69138",
        };
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.5" fill="{color}"/>"#,
            x(p.at_ms),
            y(p.latency_ms)
        );
    }
    // Axes.
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="black"/><line x1="{LEFT}" y1="10" x2="{LEFT}" y2="{0}" stroke="black"/>"#,
        H - BOTTOM,
        W - 10.0
    );
    for (ms, label) in [
        (1, "1 ms"),
        (10, "10 ms"),
        (100, "100 ms"),
        (1000, "1 s"),
        (10000, "10 s"),
    ] {
        let _ = write!(s, r#"<text x="5" y="{:.1}">{label}</text>"#, y(ms) + 4.0);
    }
    let secs = (t1 - t0) / 1000;
    let step = (secs / 10).max(1);
    for k in (0..=secs).step_by(step as usize) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{k} s</text>"#,
            x(t0 + k * 1000) - 8.0,
            H - BOTTOM + 15.0
        );
    }
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}">latency per add (log) — green ok, red fail, orange info; red band: nemesis, blue/green bands: failover phases</text>"##,
        H - 8.0
    );
    s.push_str("</svg>");
    s
}

/// The timeline page: one lane per DB host (VIP, writable) and per manager (role), plus the
/// nemesis events and the failover steps.
pub fn timeline_html(
    title: &str,
    samples: &[Sample],
    nemesis: &[(u64, String)],
    runs: &[FailoverRun],
) -> String {
    let t0 = samples.first().map(|s| s.time_ms).unwrap_or(0);
    let t1 = samples
        .last()
        .map(|s| s.time_ms)
        .unwrap_or(t0 + 1)
        .max(t0 + 1);
    let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * (W - LEFT - 10.0);
    let mut lanes: Vec<String> = vec!["db1".into(), "db2".into(), "db3".into()];
    let mut managers: Vec<u64> = samples
        .iter()
        .flat_map(|s| s.managers.iter().map(|m| m.id))
        .collect();
    managers.sort();
    managers.dedup();
    lanes.extend(managers.iter().map(|m| format!("m{m}")));
    lanes.push("nemesis".into());
    lanes.push("failover".into());
    let lane_h = 26.0;
    let height = 20.0 + lanes.len() as f64 * lane_h + 20.0;
    let ly = |i: usize| 20.0 + i as f64 * lane_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    for (i, l) in lanes.iter().enumerate() {
        let _ = write!(svg, r#"<text x="5" y="{:.1}">{l}</text>"#, ly(i) + 15.0);
    }
    for w in samples.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let (xa, xb) = (x(a.time_ms), x(b.time_ms));
        for (i, db) in ["db1", "db2", "db3"].iter().enumerate() {
            let writable = a.writable.iter().any(|h| h == db);
            let vip = a.vip.iter().any(|h| h == db);
            let color = match (writable, vip) {
                (true, true) => "#2b7a0b",
                (true, false) => "#93c47d",
                (false, true) => "#e69138",
                _ => continue,
            };
            let _ = write!(
                svg,
                r#"<rect x="{xa:.1}" y="{:.1}" width="{:.1}" height="18" fill="{color}"/>"#,
                ly(i) + 2.0,
                (xb - xa).max(0.5)
            );
        }
        for (j, m) in managers.iter().enumerate() {
            let role = a.managers.iter().find(|x| x.id == *m);
            let color = match role.map(|r| r.role.as_str()) {
                Some("leader") => "#3d85c6",
                Some("follower") => "#cfe2f3",
                Some(_) => "#f1c232",
                None => "#999999",
            };
            let _ = write!(
                svg,
                r#"<rect x="{xa:.1}" y="{:.1}" width="{:.1}" height="18" fill="{color}"><title>m{m} {} term {}</title></rect>"#,
                ly(3 + j) + 2.0,
                (xb - xa).max(0.5),
                role.map(|r| r.role.as_str()).unwrap_or("unreachable"),
                role.map(|r| r.term).unwrap_or(0)
            );
        }
    }
    let nl = lanes.len() - 2;
    for (t, what) in nemesis {
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#cc0000"/><text x="{3:.1}" y="{4:.1}" fill="#cc0000">{5}</text>"##,
            x(*t),
            ly(nl) + 2.0,
            ly(nl) + 20.0,
            x(*t) + 2.0,
            ly(nl) + 14.0,
            esc(what)
        );
    }
    for (i, (phase, a, b)) in step_bands(runs).iter().enumerate() {
        let fill = if i % 2 == 0 { "#3d85c6" } else { "#6aa84f" };
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="18" fill="{fill}"><title>{}</title></rect>"#,
            x(*a),
            ly(nl + 1) + 2.0,
            (x(*b) - x(*a)).max(1.0),
            esc(phase)
        );
    }
    svg.push_str("</svg>");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\
         <h1>{t}</h1><p>DB lanes: dark green = writable and holds the VIP, light green = \
         writable, orange = holds the VIP only. Manager lanes: blue = leader, light blue = \
         follower, grey = unreachable. Hover for details.</p>{svg}\
         <p><img src=\"plot.svg\" alt=\"latency plot\"></p></body></html>",
        t = esc(title)
    )
}

/// Writes plot.svg and timeline.html into a run's store directory from its files.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    let h: Vec<Op> = read_jsonl(&dir.join("history.jsonl")).unwrap_or_default();
    let samples: Vec<Sample> = read_jsonl(&dir.join("samples.jsonl")).unwrap_or_default();
    let nemesis: Vec<(u64, String)> = read_jsonl::<NemesisEvent>(&dir.join("nemesis.jsonl"))
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.time_ms, format!("{} {}", e.f, e.value)))
        .collect();
    let runs: Vec<FailoverRun> = std::fs::read_to_string(dir.join("journal.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let kinds: Vec<(u64, String)> = nemesis
        .iter()
        .map(|(t, w)| (*t, w.split(' ').next().unwrap_or_default().to_string()))
        .collect();
    std::fs::write(dir.join("plot.svg"), plot_svg(&h, &kinds, &runs))?;
    let title = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    std::fs::write(
        dir.join("timeline.html"),
        timeline_html(&title, &samples, &nemesis, &runs),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: u64, kind: OpType, t: u64) -> Op {
        Op {
            index: t,
            time_ms: t,
            process,
            kind,
            f: "add".into(),
            value: 1.into(),
            node: None,
            error: None,
        }
    }

    #[test]
    fn invokes_pair_with_their_completions() {
        let h = vec![
            op(0, OpType::Invoke, 10),
            op(1, OpType::Invoke, 11),
            op(1, OpType::Info, 40),
            op(0, OpType::Ok, 15),
        ];
        let p = points(&h);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].latency_ms, 29);
        assert_eq!(p[0].kind, OpType::Info);
        assert_eq!(p[1].latency_ms, 5);
        let svg = plot_svg(&h, &[(12, "kill-mysqld".into()), (30, "heal".into())], &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2);
    }
}
