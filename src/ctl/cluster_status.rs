//! `mhactl cluster status`: one row per manager, from the leader's point of view.
//!
//! ```text
//! $ mhactl --endpoints 127.0.0.1:7101,127.0.0.1:7102 cluster status
//! cluster: mha  leader: 1 (127.0.0.1:7101)  term: 2  quorum: yes
//! ID  ADDRESS         ZONE    ROLE      TERM  LAST_LOG  APPLIED  LAG  LAST_HEARD
//! 1   127.0.0.1:7101  zone-a  leader    2     12        12       0    -
//! 2   127.0.0.1:7102  zone-b  follower  2     12        12       0    38ms
//! 3   127.0.0.1:7103  zone-c  follower  2     12        12       0    38ms
//! ```
//! Exit 0 with a quorum, 3 without one (the rows still list what could be reached), 1 when no
//! manager answered at all.

use clap::Args;
use serde::Serialize;

use super::table::{opt, render};
use super::{exit, AdminClient, CtlError};
use crate::api::json::{self, mode_name, verdict_kind_name};
use crate::api::pb::{run_state, ClusterStatusReply, ClusterStatusRequest, GroupLive};

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// Print JSON (schema in docs/cli.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show this group in detail, its servers read now (repeatable). Without it: one line per
    /// group from the leader's observations, then the details of every group that is not
    /// PING_OK (a cluster with one group shows it in detail).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
}

/// The groups answered from the leader's observations, except `live` (read now).
pub fn build_request(local: bool, live: &[String]) -> ClusterStatusRequest {
    ClusterStatusRequest {
        local,
        observed: true,
        live_groups: live.to_vec(),
    }
}

/// The stable `--json` schema (version 2: groups may be observed, not read live).
#[derive(Serialize, Debug)]
pub struct StatusJson {
    pub schema_version: u32,
    pub cluster: String,
    pub leader: Option<LeaderJson>,
    pub term: u64,
    pub has_quorum: bool,
    pub quorum_note: Option<String>,
    pub answered_by: u64,
    pub managers: Vec<ManagerJson>,
    /// Each replication group's servers as the leader observed them for this call.
    pub groups: Vec<serde_json::Value>,
}

#[derive(Serialize, Debug)]
pub struct LeaderJson {
    pub id: u64,
    pub addr: String,
}

#[derive(Serialize, Debug)]
pub struct ManagerJson {
    pub id: u64,
    pub addr: String,
    pub zone: String,
    pub role: String,
    pub reachable: bool,
    pub term: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub lag: Option<u64>,
    pub last_heard_ms: Option<u64>,
    pub error: Option<String>,
}

impl From<&ClusterStatusReply> for StatusJson {
    fn from(r: &ClusterStatusReply) -> Self {
        let leader = r.leader_id.map(|id| LeaderJson {
            id,
            addr: r
                .managers
                .iter()
                .find(|m| m.id == id)
                .map(|m| m.addr.clone())
                .unwrap_or_default(),
        });
        StatusJson {
            schema_version: 2,
            cluster: r.cluster.clone(),
            leader,
            term: r.term,
            has_quorum: r.has_quorum,
            quorum_note: Some(r.quorum_note.clone()).filter(|s| !s.is_empty()),
            answered_by: r.answered_by,
            groups: r
                .groups
                .iter()
                .map(|g| {
                    json::group_live(g).unwrap_or_else(
                        |e| serde_json::json!({ "name": g.name, "error": format!("bad reply: {e}") }),
                    )
                })
                .collect(),
            managers: r
                .managers
                .iter()
                .map(|m| ManagerJson {
                    id: m.id,
                    addr: m.addr.clone(),
                    zone: m.zone.clone(),
                    role: m.role.clone(),
                    reachable: m.reachable,
                    term: m.term,
                    last_log_index: m.last_log_index,
                    applied_index: m.applied_index,
                    lag: m.lag,
                    last_heard_ms: m.last_heard_ms,
                    error: Some(m.error.clone()).filter(|s| !s.is_empty()),
                })
                .collect(),
        }
    }
}

/// The managers, then the groups: those in `focus` in detail; without focus, a line per group
/// and the details of those not PING_OK (all of them when there is only one).
pub fn render_human(r: &ClusterStatusReply, focus: &[String]) -> String {
    let j = StatusJson::from(r);
    let mut out = String::new();
    if !r.has_quorum {
        out.push_str(&format!("NO QUORUM: {}\n", r.quorum_note));
    }
    let leader = j
        .leader
        .as_ref()
        .map(|l| format!("{} ({})", l.id, l.addr))
        .unwrap_or_else(|| "none".into());
    out.push_str(&format!(
        "cluster: {}  leader: {}  term: {}  quorum: {}\n",
        if j.cluster.is_empty() {
            "(unnamed)"
        } else {
            &j.cluster
        },
        leader,
        j.term,
        if r.has_quorum { "yes" } else { "NO" }
    ));
    let rows: Vec<Vec<String>> = j
        .managers
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.addr.clone(),
                if m.zone.is_empty() {
                    "-".into()
                } else {
                    m.zone.clone()
                },
                m.role.clone(),
                opt(m.term),
                opt(m.last_log_index),
                opt(m.applied_index),
                opt(m.lag),
                m.last_heard_ms
                    .map(|v| format!("{v}ms"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out.push_str(&render(
        &[
            "ID",
            "ADDRESS",
            "ZONE",
            "ROLE",
            "TERM",
            "LAST_LOG",
            "APPLIED",
            "LAG",
            "LAST_HEARD",
        ],
        &rows,
    ));
    for m in j.managers.iter().filter(|m| m.error.is_some()) {
        out.push_str(&format!(
            "  {} ({}): {}\n",
            m.id,
            m.addr,
            m.error.as_deref().unwrap_or_default()
        ));
    }
    if focus.is_empty() && r.groups.len() > 1 {
        out.push_str(&super::group_summary::render(&r.groups));
    }
    for g in r.groups.iter().filter(|g| {
        if focus.is_empty() {
            r.groups.len() == 1 || g.status_code != 0
        } else {
            focus.contains(&g.name)
        }
    }) {
        out.push_str(&render_group(g));
    }
    out
}

/// One replication group as a table under the managers: the header, health and verdict line,
/// the failover, then the server table (a sequence of sections, hence its length).
pub fn render_group(g: &GroupLive) -> String {
    let mut out = format!(
        "\ngroup {}: master {} ({}{})\n",
        g.name,
        g.master,
        mode_name(g.mode),
        if g.semisync { ", semi-sync" } else { "" }
    );
    out.push_str(&format!("health: {}:{}", g.status_code, g.status));
    if let Some(p) = &g.paused {
        out.push_str(&format!(
            " — automatic failover {}",
            super::pause::describe(p)
        ));
    }
    if let Some(v) = &g.last_verdict {
        let votes: Vec<String> = v
            .votes
            .iter()
            .map(|x| {
                format!(
                    "{}({}):{}",
                    x.manager,
                    x.zone,
                    if x.reachable {
                        "reaches"
                    } else {
                        "cannot reach"
                    }
                )
            })
            .collect();
        out.push_str(&format!(
            "  last verdict: {} (round {}) — {}; votes {}",
            verdict_kind_name(v.kind),
            v.round,
            v.reason,
            votes.join(", ")
        ));
    }
    out.push('\n');
    out.push_str(&render_failover(g));
    if g.observed {
        out.push_str(&format!(
            "servers as the leader's monitor last saw them (read now: mhactl cluster status \
             --group {}):\n",
            g.name
        ));
    }
    if let Some(e) = &g.error {
        out.push_str(&format!("  cannot observe: {e}\n"));
        return out;
    }
    let flag = |b: Option<bool>| match b {
        Some(true) => "1".to_string(),
        Some(false) => "0".to_string(),
        None => "-".to_string(),
    };
    let rows: Vec<Vec<String>> = g
        .servers
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.address.clone(),
                s.role.clone(),
                flag(s.read_only),
                if s.position.is_empty() {
                    "-".into()
                } else {
                    s.position.clone()
                },
                s.io_thread.clone().unwrap_or_else(|| "-".into()),
                s.sql_thread
                    .map(|b| if b { "Yes" } else { "No" }.to_string())
                    .unwrap_or_else(|| "-".into()),
                opt(s.seconds_behind),
            ]
        })
        .collect();
    out.push_str(&render(
        &[
            "SERVER",
            "ADDRESS",
            "ROLE",
            "READ_ONLY",
            "POSITION",
            "IO",
            "SQL",
            "LAG_S",
        ],
        &rows,
    ));
    for s in g.servers.iter().filter(|s| s.error.is_some()) {
        out.push_str(&format!(
            "  {}: {}\n",
            s.name,
            s.error.as_deref().unwrap_or_default()
        ));
    }
    let now = crate::clock::now_ms();
    for p in &g.relay_purges {
        out.push_str(&format!(
            "  relay logs on {}: {} {} ago: {}\n",
            p.server,
            if p.purged { "purged" } else { "kept" },
            crate::errors::human_duration(std::time::Duration::from_millis(
                now.saturating_sub(p.at_ms)
            )),
            p.detail
        ));
    }
    for a in &g.auto_rejoins {
        out.push_str(&format!(
            "  auto-rejoin of {}: {} {} ago: {}\n",
            a.server,
            a.outcome.as_str(),
            crate::errors::human_duration(std::time::Duration::from_millis(
                now.saturating_sub(a.at_ms)
            )),
            a.detail
        ));
    }
    out
}

/// The group's failover: the running (or last) run, with the step table while it runs or
/// when it failed; why automatic failover is blocked or was refused.
fn render_failover(g: &GroupLive) -> String {
    let now = crate::clock::now_ms();
    let mut out = String::new();
    if let Some(r) = &g.failover {
        out.push_str(&format!(
            "failover: {}\n",
            super::journal_view::run_header(r, now)
        ));
        if !matches!(
            super::journal_view::run_state(r),
            run_state::State::Completed(_)
        ) {
            out.push_str(&super::journal_view::steps_table(r, now, false));
        }
    }
    if let Some(b) = &g.failover_blocked {
        out.push_str(&format!(
            "automatic failover BLOCKED: {b} (mhactl failover ack --group {})\n",
            g.name
        ));
    }
    if let Some(x) = &g.last_refusal {
        out.push_str(&format!("last refused automatic failover: {}\n", x.reason));
    }
    out
}

/// Fetches the status (leader's view, else the first reachable node's own view).
/// `live`: the groups whose servers the leader reads for this call (the others come from its
/// observations).
pub async fn fetch(client: &AdminClient, live: &[String]) -> Result<ClusterStatusReply, CtlError> {
    let req = build_request(false, live);
    match client
        .call(move |mut c| {
            let req = req.clone();
            async move { c.cluster_status(req).await }
        })
        .await
    {
        Ok(r) => Ok(r),
        Err(CtlError::Unreachable { .. } | CtlError::NoQuorum { .. } | CtlError::NoLeader(_)) => {
            let req = build_request(true, live);
            client
                .call_any(move |mut c| {
                    let req = req.clone();
                    async move { c.cluster_status(req).await }
                })
                .await
        }
        Err(e) => Err(e),
    }
}

pub async fn execute(client: &AdminClient, args: &StatusArgs) -> i32 {
    match fetch(client, &args.groups).await {
        Ok(mut r) => {
            if !args.groups.is_empty() {
                r.groups.retain(|g| args.groups.contains(&g.name));
            }
            if args.json {
                super::out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&StatusJson::from(&r)).expect("status json")
                ));
            } else {
                super::out(&render_human(&r, &args.groups));
            }
            if r.has_quorum {
                exit::OK
            } else {
                exit::NO_QUORUM
            }
        }
        Err(e) => super::fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::admin::ManagerStatus;

    fn reply(has_quorum: bool) -> ClusterStatusReply {
        ClusterStatusReply {
            cluster: "prod".into(),
            leader_id: has_quorum.then_some(1),
            term: 4,
            has_quorum,
            managers: vec![
                ManagerStatus {
                    id: 1,
                    addr: "a:1".into(),
                    zone: "za".into(),
                    role: "leader".into(),
                    reachable: true,
                    term: Some(4),
                    last_log_index: Some(9),
                    applied_index: Some(9),
                    lag: Some(0),
                    last_heard_ms: None,
                    error: String::new(),
                },
                ManagerStatus {
                    id: 2,
                    addr: "b:1".into(),
                    zone: "zb".into(),
                    role: "unreachable".into(),
                    reachable: false,
                    term: None,
                    last_log_index: None,
                    applied_index: None,
                    lag: Some(7),
                    last_heard_ms: Some(1500),
                    error: "connection refused".into(),
                },
            ],
            answered_by: 1,
            groups: Vec::new(),
            quorum_note: if has_quorum {
                String::new()
            } else {
                "no leader elected".into()
            },
        }
    }

    /// The JSON schema has the documented top-level keys and per-manager fields.
    #[test]
    fn json_schema_is_stable() {
        let v = serde_json::to_value(StatusJson::from(&reply(true))).unwrap();
        for k in [
            "schema_version",
            "cluster",
            "leader",
            "term",
            "has_quorum",
            "managers",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["schema_version"], 2);
        assert_eq!(v["leader"]["addr"], "a:1");
        assert_eq!(v["managers"][1]["role"], "unreachable");
        assert_eq!(v["managers"][1]["error"], "connection refused");
        assert_eq!(v["managers"][0]["error"], serde_json::Value::Null);
    }

    /// Without quorum the human output says so first and still lists every manager.
    #[test]
    fn no_quorum_is_plain() {
        let out = render_human(&reply(false), &[]);
        assert!(out.starts_with("NO QUORUM: no leader elected"), "{out}");
        assert!(
            out.contains("unreachable") && out.contains("a:1") && out.contains("b:1"),
            "{out}"
        );
        assert!(out.contains("leader: none"), "{out}");
    }

    #[test]
    fn request_asks_for_local_view_only_when_told() {
        assert!(!build_request(false, &[]).local);
        assert!(build_request(true, &[]).local);
    }

    #[test]
    fn request_reads_live_only_the_groups_named() {
        let r = build_request(false, &["app2".to_string()]);
        assert!(r.observed);
        assert_eq!(r.live_groups, vec!["app2".to_string()]);
    }
}
