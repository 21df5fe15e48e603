//! `mhactl audit`: who changed what through the admin API, from where, and how it ended;
//! newest last. Answered from the replicated state of the first manager that answers (any
//! manager: a follower may lag by a few entries). Needs role operator or higher.
//!
//! ```text
//! $ mhactl audit --limit 3
//! TIME (UTC)               MANAGER  WHO               FROM             RPC            WHAT                     RESULT
//! 2025-03-02 10:14:07.120  1        admin (admin)     10.77.0.1:52814  AddGroup       group lab (db1,db2,db3)  ok: master db1
//! 2025-03-02 10:20:31.006  1        alice (operator)  10.77.0.1:52990  StartFailover  group lab                ok: run 1
//! 2025-03-02 10:21:02.441  1        alice (operator)  10.77.0.1:53012  AckFailover    group nope               NOT_FOUND: group nope does not exist
//! 3 of 3 records (the cluster keeps the last 1000), answered by manager 1
//! ```

use clap::Args;
use serde::Serialize;

use super::table::render;
use super::{exit, out, AdminClient};
use crate::api::json;
use crate::api::pb::{AuditRecord, AuditReply, AuditRequest};

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// The newest N records (0 = all the cluster keeps, the last 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print JSON (schema in docs/cli.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print `what` and `detail` uncut.
    #[arg(long)]
    pub wide: bool,
}

pub fn build_request(a: &AuditArgs) -> AuditRequest {
    AuditRequest { limit: a.limit }
}

/// The stable `--json` schema (version 1).
#[derive(Serialize, Debug)]
pub struct AuditJson {
    pub schema_version: u32,
    pub answered_by: u64,
    pub total: u64,
    /// Oldest first; each is the replicated state's record (docs/cli.md).
    pub records: Vec<serde_json::Value>,
}

impl From<&AuditReply> for AuditJson {
    fn from(r: &AuditReply) -> Self {
        AuditJson {
            schema_version: 1,
            answered_by: r.answered_by,
            total: r.total,
            records: r.records.iter().map(json::audit_record).collect(),
        }
    }
}

pub use crate::clock::utc;

fn cut(s: &str, max: usize, wide: bool) -> String {
    if wide || s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

pub fn render_human(r: &AuditReply, wide: bool) -> String {
    let rows: Vec<Vec<String>> = r
        .records
        .iter()
        .map(|e: &AuditRecord| {
            let result = if e.detail.is_empty() {
                e.result.clone()
            } else {
                format!("{}: {}", e.result, e.detail)
            };
            vec![
                utc(e.at_ms),
                e.manager.to_string(),
                e.who.clone(),
                if e.from.is_empty() {
                    "-".into()
                } else {
                    e.from.clone()
                },
                e.rpc.clone(),
                cut(&e.what, 40, wide),
                cut(&result, 80, wide),
            ]
        })
        .collect();
    let mut s = render(
        &[
            "TIME (UTC)",
            "MANAGER",
            "WHO",
            "FROM",
            "RPC",
            "WHAT",
            "RESULT",
        ],
        &rows,
    );
    s.push_str(&format!(
        "{} of {} records (the cluster keeps the last {}), answered by manager {}\n",
        r.records.len(),
        r.total,
        crate::api::AUDIT_HISTORY,
        r.answered_by
    ));
    s
}

pub async fn execute(client: &AdminClient, a: &AuditArgs) -> i32 {
    let req = build_request(a);
    match client.call(|mut c| async move { c.audit(req).await }).await {
        Ok(r) => {
            if a.json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&AuditJson::from(&r)).expect("json")
                ));
            } else {
                out(&render_human(&r, a.wide));
            }
            exit::OK
        }
        Err(e) => super::fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> AuditReply {
        AuditReply {
            records: vec![
                AuditRecord {
                    seq: 7,
                    at_ms: 1_740_910_447_120,
                    manager: 1,
                    who: "admin (admin)".into(),
                    from: "10.77.0.1:52814".into(),
                    rpc: "AddGroup".into(),
                    what: "group lab (db1,db2,db3)".into(),
                    result: "ok".into(),
                    detail: "master db1".into(),
                },
                AuditRecord {
                    seq: 8,
                    at_ms: 1_740_910_862_441,
                    manager: 1,
                    who: "alice (operator)".into(),
                    from: String::new(),
                    rpc: "AckFailover".into(),
                    what: "group nope".into(),
                    result: "NOT_FOUND".into(),
                    detail: "group nope does not exist".into(),
                },
            ],
            total: 8,
            answered_by: 2,
        }
    }

    #[test]
    fn request_carries_the_limit() {
        let a = AuditArgs {
            limit: 5,
            json: false,
            wide: false,
        };
        assert_eq!(build_request(&a).limit, 5);
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_740_910_447_120), "2025-03-02 10:14:07.120");
        assert_eq!(utc(u64::MAX), format!("{} ms", u64::MAX));
    }

    #[test]
    fn renders_newest_last_with_results() {
        let t = render_human(&reply(), false);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TIME (UTC)"), "{t}");
        assert!(
            lines[1].contains("admin (admin)") && lines[1].contains("ok: master db1"),
            "{t}"
        );
        assert!(
            lines[2].contains("  -  ") && lines[2].contains("NOT_FOUND: group nope"),
            "{t}"
        );
        assert_eq!(
            lines[3],
            "2 of 8 records (the cluster keeps the last 1000), answered by manager 2"
        );
    }

    #[test]
    fn json_schema_version_1() {
        let v = serde_json::to_value(AuditJson::from(&reply())).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["answered_by"], 2);
        assert_eq!(v["total"], 8);
        let r = &v["records"][1];
        for k in [
            "seq", "at_ms", "manager", "who", "from", "rpc", "what", "result", "detail",
        ] {
            assert!(r.get(k).is_some(), "{k} missing: {r}");
        }
        assert_eq!(r["result"], "NOT_FOUND");
    }
}
