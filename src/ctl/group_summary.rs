//! `mhactl cluster status` with many groups: one line per group, aligned in one table, from
//! the leader's observations (no server read for the call).
//!
//! ```text
//! GROUP  MASTER  STATUS                 MODE         REPLICAS  LAG_S  LAST_RUN
//! app1   db1     0:PING_OK              MariadbGtid  2/2 ok    0      -
//! app2   db2     0:PING_OK              MariadbGtid  2/2 ok    0      run 4 completed 3m ago
//! app3   db1     50:FAILOVER_RUNNING    FilePos      1/2 ok    -      run 7 running 2000 ms
//! ```

use super::journal_view::run_state;
use super::table;
use crate::api::json::mode_name;
use crate::api::pb::{run_state, GroupLive};
use crate::errors::human_duration;

/// The summary table of `groups`.
pub fn render_summary(groups: &[GroupLive], now_ms: u64) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.master.clone(),
                format!("{}:{}", g.status_code, g.status),
                mode_name(g.mode).to_string(),
                replicas(g),
                g.servers
                    .iter()
                    .filter_map(|s| s.seconds_behind)
                    .max()
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into()),
                last_run(g, now_ms),
            ]
        })
        .collect();
    format!(
        "\n{}",
        table::render(
            &["GROUP", "MASTER", "STATUS", "MODE", "REPLICAS", "LAG_S", "LAST_RUN"],
            &rows
        )
    )
}

pub fn render(groups: &[GroupLive]) -> String {
    render_summary(groups, crate::clock::now_ms())
}

/// "2/2 ok": replicas whose IO and SQL threads both run, of the group's replicas.
fn replicas(g: &GroupLive) -> String {
    let replicas: Vec<_> = g.servers.iter().filter(|s| s.name != g.master).collect();
    let ok = replicas
        .iter()
        .filter(|s| s.io_thread.as_deref() == Some("Yes") && s.sql_thread == Some(true))
        .count();
    format!("{ok}/{} ok", replicas.len())
}

fn last_run(g: &GroupLive, now_ms: u64) -> String {
    let Some(r) = &g.failover else {
        return "-".into();
    };
    let ago = |at: u64| human_duration(std::time::Duration::from_millis(now_ms.saturating_sub(at)));
    match run_state(r) {
        run_state::State::Running(_) => format!("run {} running {}", r.id, ago(r.started_at_ms)),
        run_state::State::Completed(c) => format!("run {} completed {} ago", r.id, ago(c.at_ms)),
        run_state::State::Failed(f) => format!("run {} FAILED {} ago", r.id, ago(f.at_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pb::{FailoverRun, RunState, ServerLive};

    fn server(name: &str, io: Option<&str>, sql: Option<bool>, lag: Option<u64>) -> ServerLive {
        ServerLive {
            name: name.into(),
            io_thread: io.map(str::to_string),
            sql_thread: sql,
            seconds_behind: lag,
            ..Default::default()
        }
    }

    #[test]
    fn one_aligned_line_per_group() {
        let ok = GroupLive {
            name: "app1".into(),
            master: "db1".into(),
            status: "PING_OK".into(),
            servers: vec![
                server("db1", None, None, None),
                server("db2", Some("Yes"), Some(true), Some(0)),
                server("db3", Some("Yes"), Some(true), Some(2)),
            ],
            ..Default::default()
        };
        let running = GroupLive {
            name: "application-two".into(),
            master: "db4".into(),
            status_code: 50,
            status: "FAILOVER_RUNNING".into(),
            servers: vec![
                server("db4", None, None, None),
                server("db5", Some("No"), Some(true), None),
            ],
            failover: Some(FailoverRun {
                id: 7,
                started_at_ms: 8_000,
                state: Some(RunState {
                    state: Some(run_state::State::Running(run_state::Running {})),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render_summary(&[ok, running], 10_000);
        let lines: Vec<&str> = text.trim().lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with("app1 ") && lines[1].contains("0:PING_OK"));
        assert!(
            lines[1].contains("2/2 ok") && lines[1].contains(" 2 "),
            "{text}"
        );
        assert!(lines[2].contains("50:FAILOVER_RUNNING") && lines[2].contains("0/1 ok"));
        assert!(lines[2].contains("run 7 running 2"), "{text}");
        // Columns line up: every row's status starts where the header's does.
        let col = lines[0].find("STATUS").unwrap();
        assert!(lines[1..]
            .iter()
            .all(|l| l[col..].starts_with(char::is_numeric)));
    }
}
