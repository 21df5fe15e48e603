//! An online switchover's gates as pure decisions (MHA's MasterRotate phase 1): facts in —
//! what every server reports, the threads running on the old and new master — and either the
//! new master with every gate's line, or why the switch must not start. Nothing is blocked
//! before these pass, so a refusal changes nothing.
//!
//! 1. every server of the group answers (MHA: "should not be started if one or more servers
//!    is down");
//! 2. every replica replicates from the master, IO and SQL threads running, at most
//!    `seconds_behind_master` behind (MHA's check_replication_health(30));
//! 3. no update on the old master running `running_updates_limit` + 1 s or longer (MHA's
//!    get_running_update_threads: a long update would hold the write block open);
//! 4. the new master: the forced one or MHA's selection order, without the delay rule;
//! 5. nothing on the new master running `running_seconds_limit` or longer (10 s by default).

use crate::engine::selection::{self, SelectionInput};
use crate::model::{IoThread, Observations, ServerInfo, Thread};
use crate::state::group::GroupSpec;

/// Gate 3: updates on the old master running `limit_s` + 1 seconds or longer.
pub fn running_updates(threads: &[Thread], limit_s: u64) -> Vec<String> {
    threads
        .iter()
        .filter(|t| !t.is_background() && !t.is_read() && t.time_s > limit_s)
        .map(Thread::describe)
        .collect()
}

/// Gate 5: anything on the new master running `limit_s` or longer.
pub fn long_queries(threads: &[Thread], limit_s: u64) -> Vec<String> {
    threads
        .iter()
        .filter(|t| !t.is_background() && t.time_s >= limit_s)
        .map(Thread::describe)
        .collect()
}

/// What the gates need, read just before.
#[derive(Clone, Debug)]
pub struct GateInput<'a> {
    /// The group's servers (those of its replication: old masters of earlier failovers that
    /// never rejoined are not among them).
    pub spec: &'a GroupSpec,
    pub old_master: &'a str,
    /// Every server, the old master included.
    pub observed: &'a Observations,
    pub master_threads: &'a [Thread],
    pub running_updates_limit_s: u64,
    /// The most a replica may be behind.
    pub seconds_behind_master_s: u64,
    pub forced: Option<&'a str>,
}

/// The gates passed: the new master and what each gate found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    pub new_master: String,
    pub rule: String,
    pub lines: Vec<String>,
}

/// A gate failed: why, with what the earlier gates found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: String,
    pub lines: Vec<String>,
}

/// Gates 1–4 (gate 5 needs the new master's threads: [`long_queries`]).
pub fn check<'a>(input: &'a GateInput<'a>) -> Result<Passed, Refused> {
    let mut lines = Vec::new();
    let refuse = |reason: String, lines: &Vec<String>| Refused {
        reason,
        lines: lines.clone(),
    };
    let Some(old) = input.spec.server(input.old_master) else {
        return Err(refuse(
            format!("{} is not in the group", input.old_master),
            &lines,
        ));
    };
    match input.observed.get(input.old_master) {
        Some(Ok(i)) if !i.read_only => lines.push(format!("{}: master, writable", old.name)),
        Some(Ok(_)) => {
            return Err(refuse(
                format!(
                    "the master {} is read_only: a switch already under way, or one that \
                     stopped half way (see mhactl failover history)",
                    old.name
                ),
                &lines,
            ))
        }
        Some(Err(e)) => {
            return Err(refuse(
                format!("the master {} is unreachable: {e}", old.name),
                &lines,
            ))
        }
        None => return Err(refuse(format!("{} was not observed", old.name), &lines)),
    }
    let mut problems = Vec::new();
    for s in input.spec.servers.iter().filter(|s| s.name != old.name) {
        match input.observed.get(&s.name) {
            Some(Ok(i)) => match &i.replica {
                Some(r) if r.source_host != old.host || r.source_port != old.port => {
                    problems.push(format!(
                        "{} replicates from {}:{}, not from the master",
                        s.name, r.source_host, r.source_port
                    ))
                }
                Some(r) if r.io_thread != IoThread::Yes || !r.sql_thread => problems.push(format!(
                    "{}: replication not running (IO {:?}, SQL {}){}",
                    s.name,
                    r.io_thread,
                    if r.sql_thread { "Yes" } else { "No" },
                    [&r.last_io_error, &r.last_sql_error]
                        .iter()
                        .find(|e| !e.is_empty())
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )),
                Some(r) => match r.seconds_behind {
                    Some(lag) if lag <= input.seconds_behind_master_s => {
                        lines.push(format!("{}: replicating, {lag} s behind", s.name))
                    }
                    Some(lag) => problems.push(format!(
                        "{}: {lag} s behind the master (more than {} s)",
                        s.name, input.seconds_behind_master_s
                    )),
                    None => problems.push(format!("{}: lag unknown", s.name)),
                },
                None => problems.push(format!("{} is not a replica", s.name)),
            },
            Some(Err(e)) => problems.push(format!("{} is unreachable: {e}", s.name)),
            None => problems.push(format!("{} was not observed", s.name)),
        }
    }
    if !problems.is_empty() {
        return Err(refuse(problems.join("; "), &lines));
    }
    if input.spec.failover.check_repl_filter {
        let observed = |n: &'a str| match input.observed.get(n) {
            Some(Ok(i)) => Some((n, i)),
            _ => None,
        };
        let replicas: Vec<(&str, &ServerInfo)> = input
            .spec
            .servers
            .iter()
            .filter(|s| s.name != old.name)
            .filter_map(|s| observed(&s.name))
            .collect();
        let bad = crate::engine::repl_filter::problems(observed(&old.name), &replicas);
        if !bad.is_empty() {
            return Err(refuse(bad.join("; "), &lines));
        }
        lines.push("replication filtering check ok".into());
    }
    let long = running_updates(input.master_threads, input.running_updates_limit_s);
    if !long.is_empty() {
        return Err(refuse(
            format!(
                "updates on the master {} running longer than --running-updates-limit {} s: {}",
                old.name,
                input.running_updates_limit_s,
                long.join("; ")
            ),
            &lines,
        ));
    }
    lines.push(format!(
        "{}: no update running {} s or longer",
        old.name,
        input.running_updates_limit_s + 1
    ));
    let sel = selection::select(&SelectionInput {
        spec: input.spec,
        old_master: input.old_master,
        observed: input.observed,
        forced: input.forced,
        latest_priority: input.spec.failover.latest_priority,
        // The replicas are live and within the lag limit: the delay rule is MHA's for dead
        // masters only.
        check_repl_delay: false,
    })
    .map_err(|(reason, excluded)| {
        let mut r = reason;
        for e in excluded {
            r.push_str(&format!(
                "; {} cannot be the new master: {}",
                e.server, e.reason
            ));
        }
        refuse(r, &lines)
    })?;
    lines.push(format!("new master: {} ({})", sel.new_master, sel.rule));
    Ok(Passed {
        new_master: sel.new_master,
        rule: sel.rule,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::{group, mariadb, running_status};
    use crate::model::ServerInfo;

    fn live_replica(id: u32) -> ServerInfo {
        ServerInfo {
            replica: Some(running_status("10.0.0.1")),
            ..mariadb(id, true, "0-1-10")
        }
    }

    fn thread(id: u64, command: &str, time_s: u64, info: &str) -> Thread {
        Thread {
            id,
            user: "app".into(),
            command: command.into(),
            time_s,
            info: info.into(),
        }
    }

    #[test]
    fn long_updates_and_queries() {
        let threads = [
            thread(1, "Query", 5, "UPDATE t SET a = 1"),
            thread(2, "Query", 9, "select * from t"),
            thread(3, "Sleep", 99, ""),
            thread(4, "Binlog Dump GTID", 999, ""),
            thread(5, "Query", 1, "INSERT INTO t VALUES (1)"),
            thread(6, "Query", 2, "DELETE FROM t"),
        ];
        let ids = |v: Vec<String>| -> Vec<String> {
            v.iter()
                .map(|l| l.split(' ').nth(1).unwrap().to_string())
                .collect()
        };
        // MHA: an update running limit + 1 s or longer.
        assert_eq!(ids(running_updates(&threads, 1)), ["1", "6"]);
        assert_eq!(ids(running_updates(&threads, 5)), Vec::<String>::new());
        assert_eq!(ids(long_queries(&threads, 5)), ["1", "2"]);
        // A refusal names the statement's first word only (the rest may hold data).
        let secret = thread(8, "Query", 9, "ALTER USER app IDENTIFIED BY 'hunter2'");
        let said = running_updates(&[secret], 1).join("");
        assert!(
            said.contains("ALTER") && !said.contains("hunter2"),
            "{said}"
        );
        let mut system = thread(7, "Query", 50, "UPDATE x");
        system.user = "system user".into();
        assert!(running_updates(&[system], 1).is_empty());
    }

    #[test]
    fn gates() {
        let spec = group(3);
        let mut observed = Observations::new();
        observed.insert("db1".into(), Ok(mariadb(1, false, "0-1-10")));
        observed.insert("db2".into(), Ok(live_replica(2)));
        observed.insert("db3".into(), Ok(live_replica(3)));
        let with_lag_limit = |obs: &Observations, lag_s: u64| -> Result<Passed, Refused> {
            check(&GateInput {
                spec: &spec,
                old_master: "db1",
                observed: obs,
                master_threads: &[],
                running_updates_limit_s: 1,
                seconds_behind_master_s: lag_s,
                forced: None,
            })
        };
        let input = |obs: &Observations| with_lag_limit(obs, 30);
        let ok = input(&observed).expect("passes");
        assert!(
            ok.lines.iter().any(|l| l.starts_with("new master:")),
            "{ok:?}"
        );

        let mut lagging = observed.clone();
        if let Some(Ok(i)) = lagging.get_mut("db3") {
            i.replica.as_mut().unwrap().seconds_behind = Some(31);
        }
        assert!(input(&lagging)
            .unwrap_err()
            .reason
            .contains("31 s behind the master (more than 30 s)"));
        // --seconds-behind-master 60 lets it pass; 5 refuses a replica 6 s behind.
        assert!(with_lag_limit(&lagging, 60).is_ok());
        if let Some(Ok(i)) = lagging.get_mut("db3") {
            i.replica.as_mut().unwrap().seconds_behind = Some(6);
        }
        assert!(with_lag_limit(&lagging, 5)
            .unwrap_err()
            .reason
            .contains("(more than 5 s)"));

        let mut stopped = observed.clone();
        if let Some(Ok(i)) = stopped.get_mut("db2") {
            i.replica.as_mut().unwrap().sql_thread = false;
        }
        assert!(input(&stopped).unwrap_err().reason.contains("not running"));

        let mut down = observed.clone();
        down.insert("db3".into(), Err("connect timed out".into()));
        assert!(input(&down).unwrap_err().reason.contains("unreachable"));

        let mut filtered = observed.clone();
        if let Some(Ok(i)) = filtered.get_mut("db2") {
            i.replica.as_mut().unwrap().filters.do_db = "app".into();
        }
        assert!(input(&filtered)
            .unwrap_err()
            .reason
            .starts_with("replication filtering check failed on"));

        let mut ro = observed.clone();
        if let Some(Ok(i)) = ro.get_mut("db1") {
            i.read_only = true;
        }
        assert!(input(&ro).unwrap_err().reason.contains("read_only"));

        let long = [thread(9, "Query", 3, "UPDATE big SET x = x + 1")];
        let r = check(&GateInput {
            spec: &spec,
            old_master: "db1",
            observed: &observed,
            master_threads: &long,
            running_updates_limit_s: 1,
            seconds_behind_master_s: 30,
            forced: None,
        });
        assert!(r.unwrap_err().reason.contains("thread 9"));

        let forced = check(&GateInput {
            spec: &spec,
            old_master: "db1",
            observed: &observed,
            master_threads: &[],
            running_updates_limit_s: 1,
            seconds_behind_master_s: 30,
            forced: Some("db3"),
        })
        .unwrap();
        assert_eq!(forced.new_master, "db3");
    }
}
