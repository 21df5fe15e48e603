//! A stored group as the group file that states it (`mhactl group show`), and the line diff
//! between two of them (`mhactl group update` and `group server add|remove` show what they
//! would change before they change it). `group_file::parse(&render(spec))` gives `spec` back
//! for every spec stored with names; settings at their defaults are written out too, so the
//! file says what is in force.

use serde::Serialize;

use crate::model::ReplicaPolicy;
use crate::state::group::{CredentialRef, GroupSpec, PingType};

#[derive(Serialize)]
struct File<'a> {
    name: &'a str,
    user: &'a str,
    password: &'a str,
    repl_user: &'a str,
    repl_password: &'a str,
    ssh_user: &'a str,
    ssh_port: u16,
    ssh_profile: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vip_interface: Option<&'a str>,
    ping: Ping,
    failover: Failover<'a>,
    servers: Vec<Server<'a>>,
}

#[derive(Serialize)]
struct Ping {
    #[serde(rename = "type")]
    ping_type: PingType,
    interval_ms: u64,
    failure_threshold: u32,
    suspect_interval_ms: u64,
    replica_policy: ReplicaPolicy,
    replica_heartbeat_ms: u64,
}

#[derive(Serialize)]
struct Failover<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_script: Option<&'a str>,
    last_failover_minute: u64,
    apply_timeout_ms: u64,
    replica_timeout_ms: u64,
    master_binlog_dir: &'a str,
    remote_workdir: &'a str,
    latest_priority: bool,
    check_repl_delay: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    master_ip_failover_script: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    master_ip_online_change_script: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_script: Option<&'a str>,
    purge_relay_logs_every_m: u64,
    auto_rejoin: bool,
    check_repl_filter: bool,
}

fn not(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct Server<'a> {
    name: &'a str,
    host: &'a str,
    port: u16,
    #[serde(skip_serializing_if = "not")]
    candidate_master: bool,
    #[serde(skip_serializing_if = "not")]
    no_master: bool,
    #[serde(skip_serializing_if = "not")]
    ignore_fail: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh_host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    master_binlog_dir: Option<&'a str>,
}

/// The group file of `spec`. A spec stored by a version before local names (credentials or
/// SSH as paths) gets a first line saying so: its credentials show what was stored, its SSH
/// settings the default profile; edit them into names of each mhad's config file before
/// `group update`.
pub fn render(spec: &GroupSpec) -> String {
    let legacy = matches!(spec.password, CredentialRef::Legacy(_))
        || matches!(spec.repl_password, CredentialRef::Legacy(_))
        || spec.ssh.profile.is_empty();
    let f = &spec.failover;
    let p = &spec.ping;
    let file = File {
        name: &spec.name,
        user: &spec.user,
        password: spec.password.name(),
        repl_user: &spec.repl_user,
        repl_password: spec.repl_password.name(),
        ssh_user: &spec.ssh.user,
        ssh_port: spec.ssh.port,
        ssh_profile: if spec.ssh.profile.is_empty() {
            "default"
        } else {
            &spec.ssh.profile
        },
        vip: spec.vip.as_deref(),
        vip_interface: spec.vip_interface.as_deref(),
        ping: Ping {
            ping_type: p.ping_type,
            interval_ms: p.interval_ms,
            failure_threshold: p.failure_threshold,
            suspect_interval_ms: p.suspect_interval_ms,
            replica_policy: p.replica_policy,
            replica_heartbeat_ms: p.replica_heartbeat_ms,
        },
        failover: Failover {
            shutdown_script: f.shutdown_script.as_deref(),
            last_failover_minute: f.last_failover_minute,
            apply_timeout_ms: f.apply_timeout_ms,
            replica_timeout_ms: f.replica_timeout_ms,
            master_binlog_dir: &f.master_binlog_dir,
            remote_workdir: &f.remote_workdir,
            latest_priority: f.latest_priority,
            check_repl_delay: f.check_repl_delay,
            master_ip_failover_script: f.master_ip_failover_script.as_deref(),
            master_ip_online_change_script: f.master_ip_online_change_script.as_deref(),
            report_script: f.report_script.as_deref(),
            purge_relay_logs_every_m: f.purge_relay_logs_every_m,
            auto_rejoin: f.auto_rejoin,
            check_repl_filter: f.check_repl_filter,
        },
        servers: spec
            .servers
            .iter()
            .map(|s| Server {
                name: &s.name,
                host: &s.host,
                port: s.port,
                candidate_master: s.candidate_master,
                no_master: s.no_master,
                ignore_fail: s.ignore_fail,
                ssh_host: s.ssh_host.as_deref(),
                ssh_port: s.ssh_port,
                master_binlog_dir: s.master_binlog_dir.as_deref(),
            })
            .collect(),
    };
    let body = toml::to_string(&file).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    if legacy {
        format!(
            "# stored by a version before local names: password and repl_password may show old \
             paths, and SSH the default profile; name entries of each mhad's config file before \
             `group update`\n{body}"
        )
    } else {
        body
    }
}

/// The group file of a group as the admin API carries it (mhactl's side).
pub fn render_wire(spec: &crate::api::pb::GroupSpec) -> Result<String, String> {
    let spec = GroupSpec::try_from(spec.clone()).map_err(|e| e.to_string())?;
    Ok(render(&spec))
}

/// Whether a group as the admin API carries it is one a group file could state (Err: why not,
/// every key named).
pub fn validate_wire(spec: &crate::api::pb::GroupSpec) -> Result<(), String> {
    let spec = GroupSpec::try_from(spec.clone()).map_err(|e| e.to_string())?;
    spec.validate().map_err(|e| e.join("; "))
}

/// The lines that differ between `old` and `new`, unified-diff style (`-` old, `+` new, two
/// lines of context around each change); empty when they are the same.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table, from the end.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    const CONTEXT: usize = 2;
    let changed: Vec<usize> = (0..ops.len()).filter(|k| ops[*k].0 != ' ').collect();
    let near = |k: usize| {
        changed
            .iter()
            .any(|c| k + CONTEXT >= *c && k <= c + CONTEXT)
    };
    let mut out = String::new();
    let mut gap = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near(k) {
            if gap && !out.is_empty() {
                out.push_str("  ...\n");
            }
            gap = false;
            out.push_str(&format!("{op} {line}\n"));
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::group::tests::spec;

    #[test]
    fn a_rendered_spec_parses_back_to_itself() {
        let mut s = spec("app1");
        s.servers[1].ignore_fail = true;
        s.servers[2].ssh_port = Some(2222);
        s.failover.report_script = Some("send_report".into());
        let text = render(&s);
        assert_eq!(crate::group_file::parse(&text), Ok(s), "{text}");
    }

    #[test]
    fn the_diff_shows_what_changes_with_context() {
        let s = spec("app1");
        let mut t = s.clone();
        t.ping.interval_ms = 2000;
        let d = diff(&render(&s), &render(&t));
        assert!(
            d.contains("- interval_ms = 1000\n+ interval_ms = 2000\n"),
            "{d}"
        );
        assert!(!d.contains("name = \"db1\""), "far lines left out: {d}");
        assert_eq!(diff(&render(&s), &render(&s)), "");
    }
}
