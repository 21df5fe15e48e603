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
use crate::engine::topology::ReplReport;
use crate::proto::admin::{CheckGroupRequest, CheckSshReply};

#[derive(Subcommand, Debug, Clone)]
pub enum CheckCmd {
    /// Replication health (masterha_check_repl).
    Repl(GroupArgs),
    /// SSH from every manager to every host of the group (masterha_check_ssh).
    Ssh(GroupArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GroupArgs {
    #[arg(long)]
    pub group: String,
    #[arg(long)]
    pub json: bool,
}

pub fn build_request(a: &GroupArgs) -> CheckGroupRequest {
    CheckGroupRequest {
        group: a.group.clone(),
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

pub async fn execute(client: &AdminClient, cmd: &CheckCmd) -> i32 {
    match cmd {
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
                    let report: ReplReport = match serde_json::from_str(&r.report_json) {
                        Ok(x) => x,
                        Err(e) => {
                            eprintln!("error: bad reply: {e}");
                            return exit::ERROR;
                        }
                    };
                    if a.json {
                        out(&format!(
                            "{}\n",
                            serde_json::to_string_pretty(&report).expect("json")
                        ));
                    } else {
                        out(&report.render());
                    }
                    if report.ok {
                        exit::OK
                    } else {
                        exit::ERROR
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::ERROR
                }
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
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::ERROR
                }
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
