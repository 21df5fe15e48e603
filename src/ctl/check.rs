//! `mhactl check repl|ssh|status`: MHA's masterha_check_* as cluster calls.
//!
//! ```text
//! $ mhactl check repl --group lab
//!
//! db1 (10.77.0.11:3306) (current master)
//!  +--db2 (10.77.0.12:3306)
//!  +--db3 (10.77.0.13:3306)
//!
//! Checking db1 log_bin: ok (log_bin=1)
//! Checking db2 io_thread: ok (running)
//! ...
//! MySQL Replication Health is OK.
//! $ mhactl check ssh --group lab
//! MANAGER  ZONE    SERVER  TARGET               RESULT  LATENCY
//! 1        zone-1  db1     root@10.77.0.11:22   ok      14ms
//! ...
//! All SSH connection tests passed successfully.
//! ```
//! check repl exits 0 when healthy, 1 when not; check ssh exits 0 only if every manager reached
//! every host.

use clap::{Args, Subcommand};

use super::table::render;
use super::{exit, out, AdminClient};
use crate::api::json;
use crate::api::pb::ReplReport;
use crate::proto::admin::{CheckGroupRequest, CheckSshReply};

#[derive(Subcommand, Debug, Clone)]
pub enum CheckCmd {
    /// Replication health (masterha_check_repl).
    Repl(GroupArgs),
    /// SSH from every manager to every host of the group (masterha_check_ssh).
    Ssh(GroupArgs),
    /// The group's monitoring status; exits with masterha_check_status's code
    /// (0 PING_OK, 2 NOT_RUNNING, 20 PING_FAILING, 21 PING_FAILED, 31 CONFIG_ERROR,
    /// 50 FAILOVER_RUNNING, 51 FAILOVER_ERROR) or 40 PAUSED (maintenance mode: mhactl pause;
    /// a master dead while paused stays 21).
    Status(GroupArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GroupArgs {
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: String,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn build_request(a: &GroupArgs) -> CheckGroupRequest {
    CheckGroupRequest {
        group: a.group.clone(),
        min_applied: 0,
    }
}

pub fn render_ssh(r: &CheckSshReply) -> (String, bool) {
    let rows: Vec<Vec<String>> = r
        .results
        .iter()
        .map(|c| {
            vec![
                c.manager_id.to_string(),
                c.manager_zone.clone(),
                c.server.clone(),
                c.target.clone(),
                if c.ok { "ok".into() } else { "FAILED".into() },
                if c.ok {
                    format!("{}ms", c.latency_ms)
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    let mut text = render(
        &["MANAGER", "ZONE", "SERVER", "TARGET", "RESULT", "LATENCY"],
        &rows,
    );
    for c in r.results.iter().filter(|c| !c.ok) {
        text.push_str(&format!(
            "  manager {} -> {}: {}\n",
            c.manager_id, c.server, c.error
        ));
    }
    for m in &r.unreachable_managers {
        text.push_str(&format!("  {m}\n"));
    }
    let ok = !r.results.is_empty()
        && r.results.iter().all(|c| c.ok)
        && r.unreachable_managers.is_empty();
    text.push_str(if ok {
        "All SSH connection tests passed successfully.\n"
    } else {
        "SSH connection test FAILED.\n"
    });
    (text, ok)
}

/// The report as masterha_check_repl users know it.
pub fn render_repl(r: &ReplReport) -> String {
    let mut out = String::new();
    for w in &r.warnings {
        out.push_str(&format!("[warning] {w}\n"));
    }
    for e in &r.errors {
        out.push_str(&format!("[error] {e}\n"));
    }
    if !r.tree.is_empty() {
        out.push('\n');
        for l in &r.tree {
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
    }
    for c in &r.checks {
        out.push_str(&format!(
            "Checking {} {}: {} ({})\n",
            c.server,
            c.check,
            if c.ok { "ok" } else { "NOT OK" },
            c.detail
        ));
    }
    out.push('\n');
    out.push_str(if r.ok {
        "MySQL Replication Health is OK.\n"
    } else {
        "MySQL Replication Health is NOT OK!\n"
    });
    out
}

/// masterha_check_status: the line MHA prints and the exit code.
pub fn status_line(r: &crate::proto::admin::ClusterStatusReply, group: &str) -> (String, i32) {
    if !r.has_quorum {
        return (
            format!(
                "{group} is stopped(2:NOT_RUNNING): no manager quorum ({})\n",
                r.quorum_note
            ),
            2,
        );
    }
    match r.groups.iter().find(|g| g.name == group) {
        None => (format!("{group}: no such group (31:CONFIG_ERROR)\n"), 31),
        Some(g) => (
            format!(
                "{group} (leader:{}) is running({}:{}), master:{}{}\n",
                r.leader_id.unwrap_or(0),
                g.status_code,
                g.status,
                g.master,
                g.paused
                    .as_ref()
                    .map(|p| format!(
                        ", automatic failover {} (master {})",
                        super::pause::describe(p),
                        health_word(g)
                    ))
                    .unwrap_or_default()
            ),
            g.status_code as i32,
        ),
    }
}

/// The master's ping state in masterha_check_status's words (shown beside PAUSED, which hides
/// it from the code).
fn health_word(g: &crate::api::pb::GroupLive) -> &'static str {
    use crate::api::pb::health::State;
    match g.health.as_ref().and_then(|h| h.state.as_ref()) {
        Some(State::Alive(_)) | None => "PING_OK",
        Some(State::Suspect(_)) | Some(State::UnreachableButAlive(_)) => "PING_FAILING",
        Some(State::Dead(_)) if g.status_code == 21 => {
            "PING_FAILED: dead while paused, not failed over"
        }
        Some(State::Dead(_)) => "PING_FAILED",
    }
}

/// One arm per check (status, repl, ssh), each a call and its rendering.
pub async fn execute(client: &AdminClient, cmd: &CheckCmd) -> i32 {
    match cmd {
        CheckCmd::Status(a) => match super::cluster_status::fetch(client, &[]).await {
            Ok(r) => {
                let (line, code) = status_line(&r, &a.group);
                if a.json {
                    let g = r.groups.iter().find(|g| g.name == a.group);
                    let v = serde_json::json!({
                        "schema": 1,
                        "group": a.group,
                        "code": code,
                        "status": g.map(|g| g.status.clone()),
                        "master": g.map(|g| g.master.clone()),
                        "leader": r.leader_id,
                        "has_quorum": r.has_quorum,
                        "paused": g.and_then(|g| g.paused.as_ref()).map(super::pause::describe),
                        "line": line.trim_end(),
                    });
                    out(&format!("{v:#}\n"));
                } else {
                    out(&line);
                }
                code
            }
            Err(e) => {
                eprintln!("error: {e}");
                if a.json {
                    let v = serde_json::json!({
                        "schema": 1,
                        "group": a.group,
                        "code": 2,
                        "status": "NOT_RUNNING",
                        "error": e.to_string(),
                    });
                    out(&format!("{v:#}\n"));
                } else {
                    out(&format!("{} is stopped(2:NOT_RUNNING)\n", a.group));
                }
                2
            }
        },
        CheckCmd::Repl(a) => {
            let req = build_request(a);
            match client
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.check_repl(req).await }
                })
                .await
            {
                Ok(r) => {
                    let Some(report) = r.report else {
                        eprintln!("error: bad reply: no report");
                        return exit::ERROR;
                    };
                    if a.json {
                        match json::repl_report(&report) {
                            Ok(v) => out(&format!(
                                "{}\n",
                                serde_json::to_string_pretty(&v).expect("json")
                            )),
                            Err(e) => {
                                eprintln!("error: bad reply: {e}");
                                return exit::ERROR;
                            }
                        }
                    } else {
                        out(&render_repl(&report));
                    }
                    if report.ok {
                        exit::OK
                    } else {
                        exit::ERROR
                    }
                }
                Err(e) => super::fail(e),
            }
        }
        CheckCmd::Ssh(a) => {
            let req = build_request(a);
            match client
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.check_ssh(req).await }
                })
                .await
            {
                Ok(r) => {
                    let (text, ok) = render_ssh(&r);
                    if a.json {
                        let rows: Vec<serde_json::Value> = r
                            .results
                            .iter()
                            .map(|c| {
                                serde_json::json!({"manager": c.manager_id, "zone": c.manager_zone, "server": c.server,
                                "target": c.target, "ok": c.ok, "latency_ms": c.latency_ms,
                                "error": if c.error.is_empty() { None } else { Some(&c.error) }})
                            })
                            .collect();
                        out(&format!(
                            "{}\n",
                            serde_json::to_string_pretty(
                                &serde_json::json!({"ok": ok, "results": rows,
                                "unreachable_managers": r.unreachable_managers})
                            )
                            .expect("json")
                        ));
                    } else {
                        out(&text);
                    }
                    if ok {
                        exit::OK
                    } else {
                        exit::ERROR
                    }
                }
                Err(e) => super::fail(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::admin::SshCheck;

    #[test]
    fn ssh_render_flags_failures() {
        let ok = SshCheck {
            manager_id: 1,
            manager_zone: "a".into(),
            server: "db1".into(),
            target: "root@h:22".into(),
            ok: true,
            latency_ms: 12,
            error: String::new(),
        };
        let bad = SshCheck {
            ok: false,
            error: "host key verification failed: HOST KEY CHANGED".into(),
            ..ok.clone()
        };
        let (t, good) = render_ssh(&CheckSshReply {
            results: vec![ok.clone()],
            unreachable_managers: vec![],
        });
        assert!(good && t.contains("passed successfully"), "{t}");
        let (t, good) = render_ssh(&CheckSshReply {
            results: vec![ok, bad],
            unreachable_managers: vec![],
        });
        assert!(
            !good && t.contains("HOST KEY CHANGED") && t.contains("FAILED"),
            "{t}"
        );
        let (_, good) = render_ssh(&CheckSshReply {
            results: vec![],
            unreachable_managers: vec![],
        });
        assert!(!good);
    }
}
