//! MHA's `[serverN]` blocks as `[[servers]]` entries, in MHA's order (its candidate priority).

use std::collections::BTreeSet;

use super::{keys, Mapper, ServerBlock, Val};
use crate::state::group::{FailoverSpec, ServerSpec};

/// Every server block as a server; errors go to the mapper.
pub(super) fn map(m: &mut Mapper, group_ssh_port: u16) -> Vec<ServerSpec> {
    let names = server_names(&m.servers);
    let group_binlog_dir = m
        .defaults
        .get("master_binlog_dir")
        .map(|v| v.value.clone())
        .unwrap_or_else(|| FailoverSpec::default().master_binlog_dir);
    let blocks = m.servers.clone();
    let mut out = Vec::new();
    for (b, name) in blocks.iter().zip(names) {
        let get = |k: &str| b.settings.get(k).cloned();
        let Some(host) = get("ip").or_else(|| get("hostname")) else {
            m.errs.push(format!("[{}]: hostname is required", b.block));
            continue;
        };
        let port = number(m, get("port"), 3306);
        let ssh_port = number(m, get("ssh_port"), group_ssh_port);
        let ssh_host = get("ssh_ip")
            .or_else(|| get("ssh_host"))
            .map(|v| v.value)
            .filter(|h| *h != host.value);
        let flag = |m: &mut Mapper, key: &str| -> bool {
            let Some(v) = get(key) else { return false };
            keys::flag(&v.value).unwrap_or_else(|| {
                m.errs.push(format!(
                    "{}:{}: {key} {:?} is not 0 or 1",
                    v.file, v.line, v.value
                ));
                false
            })
        };
        let server = ServerSpec {
            name: name.clone(),
            host: host.value.clone(),
            port,
            candidate_master: flag(m, "candidate_master"),
            no_master: flag(m, "no_master"),
            ssh_host,
            ssh_port: (ssh_port != group_ssh_port).then_some(ssh_port),
            master_binlog_dir: get("master_binlog_dir")
                .map(|v| v.value)
                .filter(|d| *d != group_binlog_dir),
            ignore_fail: flag(m, "ignore_fail"),
        };
        out.push(server);
    }
    for (key, target) in [
        (
            "hostname",
            "servers[].host (and its name), unless ip is given",
        ),
        ("ip", "servers[].host"),
        ("port", "servers[].port"),
        ("ssh_host", "servers[].ssh_host"),
        ("ssh_ip", "servers[].ssh_host"),
        (
            "ssh_port",
            "ssh_port (the group's), or servers[].ssh_port where it differs",
        ),
        ("candidate_master", "servers[].candidate_master"),
        ("no_master", "servers[].no_master"),
        ("ignore_fail", "servers[].ignore_fail"),
        (
            "master_binlog_dir",
            "[failover] master_binlog_dir, or servers[].master_binlog_dir where it differs",
        ),
    ] {
        m.mapped(key, target);
    }
    out
}

fn number(m: &mut Mapper, v: Option<Val>, default: u16) -> u16 {
    let Some(v) = v else { return default };
    v.value.trim().parse().unwrap_or_else(|_| {
        m.errs.push(format!(
            "{}:{}: {:?} is not a port number",
            v.file, v.line, v.value
        ));
        default
    })
}

/// Each server's name: its hostname's first label when every server has a distinct one that is
/// not an IP address (db1.example.com → db1), else its block name ([server1] → server1).
fn server_names(blocks: &[ServerBlock]) -> Vec<String> {
    let from_host: Vec<Option<String>> = blocks
        .iter()
        .map(|b| {
            let h = &b.settings.get("hostname")?.value;
            if h.parse::<std::net::IpAddr>().is_ok() {
                return None;
            }
            let label = h.split('.').next()?.to_string();
            crate::local_config::is_name(&label).then_some(label)
        })
        .collect();
    let distinct: BTreeSet<&String> = from_host.iter().flatten().collect();
    if from_host.iter().all(Option::is_some) && distinct.len() == blocks.len() {
        return from_host.into_iter().flatten().collect();
    }
    blocks
        .iter()
        .map(|b| {
            b.block
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .collect()
}
