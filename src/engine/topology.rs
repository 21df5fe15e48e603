//! From what each server reports ([`ServerInfo`]) to the group's topology: who is master, who
//! replicates from whom, which replication mode is in use, and the MHA-style checks of
//! `masterha_check_repl`. Pure: the caller gathers the facts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Flavor, IoThread, Observations, ServerInfo};
use crate::state::group::{DiscoveredServer, GroupSpec, ReplicationMode, Role, Topology};

/// MHA's masterha_check_repl default (--seconds_behind_master 30).
pub const MAX_SECONDS_BEHIND: u64 = 30;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckItem {
    pub server: String,
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// The outcome of `check repl`, rendered by mhactl like masterha_check_repl.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplReport {
    pub group: String,
    pub master: Option<String>,
    /// "db1 (10.0.0.1:3306) (current master)" then " +--db2 (10.0.0.2:3306)" lines.
    pub tree: Vec<String>,
    pub mode: Option<ReplicationMode>,
    pub checks: Vec<CheckItem>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub ok: bool,
}

struct Analysis {
    master: Option<String>,
    sources: BTreeMap<String, Option<String>>,
    mode: Option<ReplicationMode>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// Which group server a replica's Master_Host:Master_Port points at.
fn source_name(spec: &GroupSpec, host: &str, port: u16) -> Option<String> {
    spec.servers
        .iter()
        .find(|s| (s.host == host || s.name == host) && s.port == port)
        .map(|s| s.name.clone())
}

/// Who is master, who replicates from whom, in which mode, and what is wrong with it. Long on
/// purpose: MHA's structural rules in the order masterha_check_repl applies them, read top to
/// bottom, each adding its finding; split up they would pass the same half-built analysis along.
fn analyze(spec: &GroupSpec, obs: &Observations) -> Analysis {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut infos: BTreeMap<&str, &ServerInfo> = BTreeMap::new();
    for s in &spec.servers {
        match obs.get(&s.name) {
            Some(Ok(i)) => {
                infos.insert(&s.name, i);
            }
            Some(Err(e)) => errors.push(format!("{} ({}): {e}", s.name, s.endpoint())),
            None => errors.push(format!("{} ({}): not checked", s.name, s.endpoint())),
        }
    }

    let not_replicating: Vec<&str> = infos
        .iter()
        .filter(|(_, i)| i.replica.is_none())
        .map(|(n, _)| *n)
        .collect();
    let master = match not_replicating.as_slice() {
        [m] => Some(m.to_string()),
        [] if infos.len() == spec.servers.len() => {
            errors.push("no master found: every server is a replica".into());
            None
        }
        [] => None,
        many => {
            errors.push(format!(
                "more than one server is not replicating (masters?): {}",
                many.join(", ")
            ));
            None
        }
    };

    let mut sources = BTreeMap::new();
    for (name, info) in &infos {
        let src = info
            .replica
            .as_ref()
            .map(|r| source_name(spec, &r.source_host, r.source_port));
        match (&src, &master) {
            (Some(None), _) => {
                let r = info.replica.as_ref().expect("replica");
                errors.push(format!(
                    "{name} replicates from {}:{}, which is not a server of group {}",
                    r.source_host, r.source_port, spec.name
                ));
            }
            (Some(Some(s)), Some(m)) if s != m => errors.push(format!(
                "{name} replicates from {s}, not from the master {m} (multi-tier is not supported)"
            )),
            _ => {}
        }
        sources.insert(name.to_string(), src.flatten());
    }

    let mut ids: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for (name, info) in &infos {
        ids.entry(info.server_id).or_default().push(name);
    }
    for (id, names) in ids.iter().filter(|(_, n)| n.len() > 1) {
        errors.push(format!("duplicate server_id {id}: {}", names.join(", ")));
    }

    // Replication mode, which must be the same on every replica.
    let modes: BTreeMap<&str, ReplicationMode> = infos
        .iter()
        .filter_map(|(n, i)| {
            let r = i.replica.as_ref()?;
            let m = match (i.dialect.flavor, r.gtid_mode.as_str()) {
                (Flavor::MariaDb, "Slave_Pos" | "Current_Pos") => ReplicationMode::MariadbGtid,
                (Flavor::MySql, "auto_position") => ReplicationMode::MysqlGtid,
                _ => ReplicationMode::FilePos,
            };
            Some((*n, m))
        })
        .collect();
    let distinct: BTreeSet<ReplicationMode> = modes.values().copied().collect();
    let mode = match distinct.len() {
        0 => None,
        1 => distinct.into_iter().next(),
        _ => {
            let detail: Vec<String> = modes.iter().map(|(n, m)| format!("{n}={m:?}")).collect();
            errors.push(format!(
                "inconsistent replication mode across replicas: {}",
                detail.join(", ")
            ));
            None
        }
    };

    // MHA's check_repl_filter.
    if spec.failover.check_repl_filter {
        let m = master
            .as_deref()
            .and_then(|m| infos.get(m).map(|i| (m, *i)));
        let replicas: Vec<(&str, &ServerInfo)> = infos
            .iter()
            .filter(|(n, i)| Some(**n) != master.as_deref() && i.replica.is_some())
            .map(|(n, i)| (*n, *i))
            .collect();
        errors.extend(crate::engine::repl_filter::problems(m, &replicas));
    }

    // MHA-style warnings.
    let repl_users: BTreeSet<&str> = infos
        .values()
        .filter_map(|i| i.replica.as_ref().map(|r| r.source_user.as_str()))
        .collect();
    if repl_users.len() > 1 {
        warnings.push(format!(
            "replicas use different replication users: {}",
            repl_users.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    for s in &spec.servers {
        let Some(i) = infos.get(s.name.as_str()) else {
            continue;
        };
        if i.relay_log_purge && mode == Some(ReplicationMode::FilePos) {
            warnings.push(format!(
                "{}: relay_log_purge=1; relay logs needed to recover lagging replicas may be purged (MHA recommends 0)",
                s.name
            ));
        }
        if !i.log_bin && !s.no_master {
            warnings.push(format!(
                "{}: log_bin is off, it cannot become master",
                s.name
            ));
        }
        if i.log_bin && !i.log_slave_updates && !s.no_master {
            warnings.push(format!(
                "{}: log_slave_updates is off; its binlog lacks replicated events",
                s.name
            ));
        }
    }
    if let Some(m) = master.as_deref().and_then(|m| infos.get(m)) {
        if m.semisync.master_enabled {
            if !m.semisync.wait_point.eq_ignore_ascii_case("AFTER_SYNC") {
                warnings.push(format!(
                    "semi-sync wait point is {}; only AFTER_SYNC guarantees acknowledged writes survive a master crash",
                    m.semisync.wait_point
                ));
            }
            if m.semisync.timeout_ms < 60_000 {
                warnings.push(format!(
                    "semi-sync timeout {} ms: the master silently falls back to async replication after it",
                    m.semisync.timeout_ms
                ));
            }
        }
    }
    Analysis {
        master,
        sources,
        mode,
        errors,
        warnings,
    }
}

/// The topology to commit for a group, or why it cannot be accepted.
pub fn discover(
    spec: &GroupSpec,
    obs: &Observations,
    now_ms: u64,
) -> Result<Topology, Vec<String>> {
    let a = analyze(spec, obs);
    let (Some(master), Some(mode), true) = (a.master.clone(), a.mode, a.errors.is_empty()) else {
        let mut errs = a.errors;
        if errs.is_empty() {
            errs.push("could not determine the master and replication mode".into());
        }
        return Err(errs);
    };
    let servers = spec
        .servers
        .iter()
        .filter_map(|s| {
            let i = obs.get(&s.name)?.as_ref().ok()?;
            Some((
                s.name.clone(),
                DiscoveredServer {
                    name: s.name.clone(),
                    role: if s.name == master {
                        Role::Master
                    } else {
                        Role::Replica
                    },
                    server_id: i.server_id,
                    version: i.version.clone(),
                    read_only: i.read_only,
                    log_bin: i.log_bin,
                    replicates_from: a.sources.get(&s.name).cloned().flatten(),
                },
            ))
        })
        .collect();
    let semisync = obs
        .get(&master)
        .and_then(|r| r.as_ref().ok())
        .is_some_and(|i| i.semisync.master_enabled);
    Ok(Topology {
        master,
        servers,
        mode,
        semisync,
        warnings: a.warnings,
        discovered_at_ms: now_ms,
    })
}

/// masterha_check_repl: structure plus the live state of every replica (one check per row of
/// MHA's report, in its order: longer than most functions for that reason).
pub fn check_repl(spec: &GroupSpec, obs: &Observations) -> ReplReport {
    let a = analyze(spec, obs);
    let mut checks = Vec::new();
    let mut tree = Vec::new();
    if let Some(m) = &a.master {
        let ms = spec.server(m).expect("master is a group server");
        tree.push(format!("{} ({}) (current master)", ms.name, ms.endpoint()));
        for s in spec
            .servers
            .iter()
            .filter(|s| a.sources.get(&s.name).cloned().flatten().as_deref() == Some(m))
        {
            tree.push(format!(" +--{} ({})", s.name, s.endpoint()));
        }
    }
    for s in &spec.servers {
        let Some(Ok(i)) = obs.get(&s.name) else {
            continue;
        };
        let mut item = |check: &str, ok: bool, detail: String| {
            checks.push(CheckItem {
                server: s.name.clone(),
                check: check.into(),
                ok,
                detail,
            })
        };
        if Some(&s.name) == a.master.as_ref() {
            item("log_bin", i.log_bin, format!("log_bin={}", i.log_bin as u8));
            continue;
        }
        let Some(r) = &i.replica else { continue };
        item(
            "io_thread",
            r.io_thread == IoThread::Yes,
            match r.io_thread {
                IoThread::Yes => "running".into(),
                other => format!("{other:?}{}", err_suffix(r.last_io_errno, &r.last_io_error)),
            },
        );
        item(
            "sql_thread",
            r.sql_thread,
            if r.sql_thread {
                "running".into()
            } else {
                format!("stopped{}", err_suffix(r.last_sql_errno, &r.last_sql_error))
            },
        );
        let lag_ok = r.seconds_behind.is_some_and(|l| l <= MAX_SECONDS_BEHIND);
        item(
            "lag",
            lag_ok,
            match r.seconds_behind {
                Some(l) => format!("{l}s behind (limit {MAX_SECONDS_BEHIND}s)"),
                None => "unknown (a replication thread is not running)".into(),
            },
        );
        item(
            "read_only",
            i.read_only,
            format!("read_only={}", i.read_only as u8),
        );
        if !s.no_master {
            item("log_bin", i.log_bin, format!("log_bin={}", i.log_bin as u8));
            item(
                "log_slave_updates",
                i.log_slave_updates,
                format!("log_slave_updates={}", i.log_slave_updates as u8),
            );
        }
    }
    let ok = a.errors.is_empty() && checks.iter().all(|c| c.ok);
    ReplReport {
        group: spec.name.clone(),
        master: a.master,
        tree,
        mode: a.mode,
        checks,
        errors: a.errors,
        warnings: a.warnings,
        ok,
    }
}

fn err_suffix(errno: u32, msg: &str) -> String {
    if errno == 0 {
        String::new()
    } else {
        format!(" (error {errno}: {msg})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::{mariadb, running_status};
    use crate::state::group::tests::spec;

    fn server(id: u32, replica_of: Option<&str>) -> ServerInfo {
        ServerInfo {
            replica: replica_of.map(running_status),
            ..mariadb(id, replica_of.is_some(), "0-1-5")
        }
    }

    fn healthy() -> Observations {
        BTreeMap::from([
            ("db1".to_string(), Ok(server(1, None))),
            ("db2".to_string(), Ok(server(2, Some("10.0.0.1")))),
            ("db3".to_string(), Ok(server(3, Some("10.0.0.1")))),
        ])
    }

    #[test]
    fn discovers_master_and_mode() {
        let t = discover(&spec("g"), &healthy(), 42).unwrap();
        assert_eq!(t.master, "db1");
        assert_eq!(t.mode, ReplicationMode::MariadbGtid);
        assert_eq!(t.servers["db2"].replicates_from.as_deref(), Some("db1"));
        assert_eq!(t.servers["db1"].role, Role::Master);
        assert_eq!(t.discovered_at_ms, 42);
    }

    #[test]
    fn healthy_report_is_ok_with_mha_tree() {
        let r = check_repl(&spec("g"), &healthy());
        assert!(r.ok, "{r:?}");
        assert_eq!(
            r.tree,
            [
                "db1 (10.0.0.1:3306) (current master)",
                " +--db2 (10.0.0.2:3306)",
                " +--db3 (10.0.0.3:3306)"
            ],
        );
    }

    #[test]
    fn stopped_sql_thread_writable_replica_and_duplicate_id_are_caught() {
        let mut obs = healthy();
        if let Ok(i) = obs.get_mut("db2").unwrap() {
            let r = i.replica.as_mut().unwrap();
            r.sql_thread = false;
            r.seconds_behind = None;
        }
        if let Ok(i) = obs.get_mut("db3").unwrap() {
            i.read_only = false;
            i.server_id = 1;
        }
        let r = check_repl(&spec("g"), &obs);
        assert!(!r.ok);
        let failed: Vec<(String, String)> = r
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| (c.server.clone(), c.check.clone()))
            .collect();
        assert!(
            failed.contains(&("db2".into(), "sql_thread".into())),
            "{failed:?}"
        );
        assert!(
            failed.contains(&("db3".into(), "read_only".into())),
            "{failed:?}"
        );
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains("duplicate server_id 1: db1, db3")),
            "{:?}",
            r.errors
        );
        assert!(discover(&spec("g"), &obs, 0).is_err());
    }

    /// MHA's check_repl_filter: a replica with its own replication filter makes the group
    /// inconsistent (check repl NOT OK, discovery refused) unless the group turns it off.
    #[test]
    fn different_replication_filters_are_an_error_unless_turned_off() {
        let mut obs = healthy();
        if let Some(Ok(i)) = obs.get_mut("db3") {
            i.replica.as_mut().unwrap().filters.wild_ignore_table = "tmp.%".into();
        }
        let r = check_repl(&spec("g"), &obs);
        assert!(!r.ok);
        assert!(
            r.errors.iter().any(
                |e| e.starts_with("replication filtering check failed on db3")
                    && e.contains("db3: replicate_wild_ignore_table=tmp.%")
            ),
            "{:?}",
            r.errors
        );
        assert!(discover(&spec("g"), &obs, 0).is_err());
        let mut lenient = spec("g");
        lenient.failover.check_repl_filter = false;
        assert!(check_repl(&lenient, &obs).ok);
    }

    #[test]
    fn structural_errors() {
        // Two non-replicating servers.
        let mut obs = healthy();
        obs.insert("db3".into(), Ok(server(3, None)));
        assert!(discover(&spec("g"), &obs, 0).unwrap_err()[0]
            .contains("more than one server is not replicating"));
        // A replica of a foreign server.
        let mut obs = healthy();
        obs.insert("db3".into(), Ok(server(3, Some("192.168.9.9"))));
        assert!(discover(&spec("g"), &obs, 0)
            .unwrap_err()
            .iter()
            .any(|e| e.contains("not a server of group")));
        // Unreachable server.
        let mut obs = healthy();
        obs.insert("db2".into(), Err("cannot connect: refused".into()));
        assert!(discover(&spec("g"), &obs, 0).unwrap_err()[0]
            .starts_with("db2 (10.0.0.2:3306): cannot connect"));
        // Mixed modes.
        let mut obs = healthy();
        if let Ok(i) = obs.get_mut("db3").unwrap() {
            i.replica.as_mut().unwrap().gtid_mode = "No".into();
        }
        assert!(
            discover(&spec("g"), &obs, 0).unwrap_err()[0].contains("inconsistent replication mode")
        );
    }

    #[test]
    fn warnings_follow_mha() {
        let mut obs = healthy();
        for n in ["db1", "db2", "db3"] {
            if let Ok(i) = obs.get_mut(n).unwrap() {
                i.relay_log_purge = true;
                if let Some(r) = i.replica.as_mut() {
                    r.gtid_mode = "No".into();
                }
            }
        }
        if let Ok(i) = obs.get_mut("db1").unwrap() {
            i.semisync.master_enabled = true;
            i.semisync.wait_point = "AFTER_COMMIT".into();
            i.semisync.timeout_ms = 10_000;
        }
        let t = discover(&spec("g"), &obs, 0).unwrap();
        assert_eq!(t.mode, ReplicationMode::FilePos);
        assert!(t.semisync);
        let w = t.warnings.join("\n");
        assert!(w.contains("relay_log_purge=1"), "{w}");
        assert!(w.contains("AFTER_COMMIT"), "{w}");
        assert!(w.contains("falls back to async"), "{w}");
    }
}
