//! New-master selection, exactly in MHA's order (MasterFailover.pm select_new_master), from
//! what the surviving servers report. Pure: the caller observes, this decides, and the failover
//! journals the decision once.
//!
//! 1. the forced host (`--new-master`), or abort if it cannot be master;
//! 2. a latest replica that is candidate_master (when latest_priority);
//! 3. any candidate_master;
//! 4. any latest replica (when latest_priority);
//! 5. any replica that may become master;
//! 6. otherwise abort.
//!
//! Excluded: no_master, unreachable, log_bin off, too far behind the latest replica (MHA's
//! check_repl_delay: on an older master binlog file, or more than 100 MB behind), and replicas
//! with errant transactions (MariaDB: GTIDs in their own binlog from their own server_id).

use serde::{Deserialize, Serialize};

use crate::model::{BinlogCoord, Observations, ServerInfo};
use crate::state::group::GroupSpec;

/// MHA's check_repl_delay threshold.
pub const MAX_EXEC_BEHIND_BYTES: u64 = 100_000_000;

#[derive(Clone, Debug)]
pub struct SelectionInput<'a> {
    pub spec: &'a GroupSpec,
    /// The (dead) master being replaced; never a candidate.
    pub old_master: &'a str,
    /// What each other server reported (or why it could not).
    pub observed: &'a Observations,
    pub forced: Option<&'a str>,
    pub latest_priority: bool,
    pub check_repl_delay: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub server: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub new_master: String,
    /// Which of MHA's rules chose it.
    pub rule: String,
    /// The replicas holding the most of the old master's binlog.
    pub latest: Vec<String>,
    /// How far the latest replicas read of the old master's binlog.
    pub latest_position: Option<BinlogCoord>,
    pub excluded: Vec<Excluded>,
    /// Human explanation, one line per step.
    pub explanation: Vec<String>,
}

/// Replicas of the old master that answered, in group-file order.
fn replicas<'a>(input: &SelectionInput<'a>) -> Vec<(&'a str, &'a ServerInfo)> {
    input
        .spec
        .servers
        .iter()
        .filter(|s| s.name != input.old_master)
        .filter_map(|s| match input.observed.get(&s.name) {
            Some(Ok(i)) if i.replica.is_some() => Some((s.name.as_str(), i)),
            _ => None,
        })
        .collect()
}

/// MariaDB errant transactions: GTIDs in the replica's own binlog written under its own
/// server_id (writes made directly on the replica, which the other servers never saw).
fn errant_gtids(i: &ServerInfo) -> Vec<String> {
    i.gtid
        .binlog_pos
        .split(',')
        .map(str::trim)
        .filter(|g| {
            let mut parts = g.split('-');
            let (_d, s, _n) = (parts.next(), parts.next(), parts.next());
            s.and_then(|s| s.parse::<u32>().ok()) == Some(i.server_id)
        })
        .map(str::to_string)
        .collect()
}

/// MHA's select_new_master: exclusions first, then the forced host, latest + candidate,
/// candidate, latest, any allowed — in that order, with the explanation written as it goes.
/// Kept as one function (over the usual length) so the order of MHA's rules is the order of the
/// code.
pub fn select(input: &SelectionInput) -> Result<Selection, (String, Vec<Excluded>)> {
    let mut explanation = Vec::new();
    let mut excluded = Vec::new();
    for s in input
        .spec
        .servers
        .iter()
        .filter(|s| s.name != input.old_master)
    {
        match input.observed.get(&s.name) {
            Some(Ok(i)) if i.replica.is_none() => excluded.push(Excluded {
                server: s.name.clone(),
                reason: "not a replica of the old master".into(),
            }),
            Some(Ok(_)) => {}
            Some(Err(e)) => excluded.push(Excluded {
                server: s.name.clone(),
                reason: format!("unreachable: {e}"),
            }),
            None => excluded.push(Excluded {
                server: s.name.clone(),
                reason: "not observed".into(),
            }),
        }
    }
    let reps = replicas(input);
    let latest_position = crate::engine::failover::latest::latest(
        reps.iter()
            .map(|(_, i)| &i.replica.as_ref().expect("replica").read),
    );
    let latest: Vec<String> = reps
        .iter()
        .filter(|(_, i)| {
            Some(&i.replica.as_ref().expect("replica").read) == latest_position.as_ref()
        })
        .map(|(n, _)| n.to_string())
        .collect();
    if let Some(p) = &latest_position {
        explanation.push(format!(
            "The latest binary log file/position on all slaves is {p} ({})",
            latest.join(", ")
        ));
    }

    // Who may become master at all.
    let mut allowed = Vec::new();
    for (name, i) in &reps {
        let spec = input.spec.server(name).expect("group server");
        let r = i.replica.as_ref().expect("replica");
        let reason = if spec.no_master {
            Some("no_master is set".to_string())
        } else if !i.log_bin {
            Some("log_bin is off".to_string())
        } else if input.check_repl_delay
            && latest_position.as_ref().is_some_and(|l| {
                l.index()
                    .zip(r.exec.index())
                    .is_some_and(|(li, ei)| li > ei)
                    || l.pos > r.exec.pos + MAX_EXEC_BEHIND_BYTES
            })
        {
            Some(format!(
                "too far behind (check_repl_delay): applied up to {} while the latest replica read {}",
                r.exec,
                latest_position.as_ref().expect("checked")
            ))
        } else {
            let errant = errant_gtids(i);
            (!errant.is_empty())
                .then(|| format!("errant transactions in its binlog: {}", errant.join(",")))
        };
        match reason {
            Some(reason) => excluded.push(Excluded {
                server: name.to_string(),
                reason,
            }),
            None => allowed.push(*name),
        }
    }
    for e in &excluded {
        explanation.push(format!(
            "{} cannot be the new master: {}",
            e.server, e.reason
        ));
    }
    let cand = |n: &&str| input.spec.server(n).is_some_and(|s| s.candidate_master);
    let is_latest = |n: &&str| latest.iter().any(|l| l == n);

    let pick = |rule: &str, name: &str, mut explanation: Vec<String>, excluded: Vec<Excluded>| {
        explanation.push(format!("New master is {name} ({rule})"));
        Ok(Selection {
            new_master: name.to_string(),
            rule: rule.to_string(),
            latest: latest.clone(),
            latest_position: latest_position.clone(),
            excluded,
            explanation,
        })
    };
    if let Some(f) = input.forced {
        return match allowed.iter().find(|n| **n == f) {
            Some(n) => pick("forced by --new-master", n, explanation, excluded),
            None => {
                let why = excluded
                    .iter()
                    .find(|e| e.server == f)
                    .map(|e| e.reason.clone())
                    .unwrap_or_else(|| {
                        if f == input.old_master {
                            "it is the master being replaced".into()
                        } else {
                            "not a server of the group".into()
                        }
                    });
                Err((
                    format!("the requested new master {f} cannot be master: {why}"),
                    excluded,
                ))
            }
        };
    }
    if input.latest_priority {
        if let Some(n) = allowed.iter().find(|n| is_latest(n) && cand(n)) {
            return pick(
                "latest replica with candidate_master",
                n,
                explanation,
                excluded,
            );
        }
    }
    if let Some(n) = allowed.iter().find(|n| cand(n)) {
        return pick("candidate_master", n, explanation, excluded);
    }
    if input.latest_priority {
        if let Some(n) = allowed.iter().find(|n| is_latest(n)) {
            return pick("latest replica", n, explanation, excluded);
        }
    }
    if let Some(n) = allowed.first() {
        return pick(
            "first replica that may become master",
            n,
            explanation,
            excluded,
        );
    }
    Err(("no replica can become the new master".into(), excluded))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::failover::fixtures::{mariadb, running_status};
    use crate::state::group::tests::spec;

    /// A replica that read up to `read` and applied up to `exec` of mysql-bin.<file>.
    fn rep(id: u32, file: u32, read: u64, exec: u64) -> ServerInfo {
        let mut r = running_status("10.77.0.11");
        r.read = BinlogCoord {
            file: format!("mysql-bin.{file:06}"),
            pos: read,
        };
        r.exec = BinlogCoord {
            file: format!("mysql-bin.{file:06}"),
            pos: exec,
        };
        ServerInfo {
            replica: Some(r),
            ..mariadb(id, true, "0-1-9")
        }
    }

    /// A four-server group: db1 (old master), db2..db4; candidate flags set per case.
    fn group(cands: &[&str], no_master: &[&str]) -> GroupSpec {
        let mut g = spec("g");
        g.servers.push(crate::state::group::ServerSpec {
            name: "db4".into(),
            host: "10.0.0.4".into(),
            ..g.servers[1].clone()
        });
        for s in g.servers.iter_mut() {
            s.candidate_master = cands.contains(&s.name.as_str());
            s.no_master = no_master.contains(&s.name.as_str());
        }
        g
    }

    fn obs(entries: Vec<(&str, ServerInfo)>) -> Observations {
        let mut o: Observations = entries
            .into_iter()
            .map(|(n, i)| (n.to_string(), Ok(i)))
            .collect();
        o.insert("db1".into(), Err("dead".into()));
        o
    }

    fn run(
        g: &GroupSpec,
        o: &Observations,
        forced: Option<&str>,
    ) -> Result<Selection, (String, Vec<Excluded>)> {
        select(&SelectionInput {
            spec: g,
            old_master: "db1",
            observed: o,
            forced,
            latest_priority: true,
            check_repl_delay: true,
        })
    }

    /// MHA's order, table-driven: (candidates, positions, expected new master, rule).
    #[test]
    fn mha_order() {
        type Case<'a> = (&'a [&'a str], [(u32, u64); 3], &'a str, &'a str);
        let cases: Vec<Case> = vec![
            // db3 is latest and candidate → rule 2.
            (
                &["db2", "db3"],
                [(1, 100), (1, 200), (1, 150)],
                "db3",
                "latest replica with candidate_master",
            ),
            // The latest (db4) is not a candidate; db2 is → rule 3.
            (
                &["db2"],
                [(1, 100), (1, 150), (1, 200)],
                "db2",
                "candidate_master",
            ),
            // No candidates → the latest (rule 4), numeric file order: 000010 > 000009.
            (&[], [(9, 900), (10, 4), (9, 950)], "db3", "latest replica"),
        ];
        for (cands, pos, want, rule) in cases {
            let g = group(cands, &[]);
            let o = obs(vec![
                ("db2", rep(2, pos[0].0, pos[0].1, pos[0].1)),
                ("db3", rep(3, pos[1].0, pos[1].1, pos[1].1)),
                ("db4", rep(4, pos[2].0, pos[2].1, pos[2].1)),
            ]);
            let s = run(&g, &o, None).unwrap();
            assert_eq!(
                (s.new_master.as_str(), s.rule.as_str()),
                (want, rule),
                "{cands:?} {pos:?}"
            );
        }
    }

    /// Exclusions: no_master, log_bin off, too far behind the latest, errant GTIDs, unreachable;
    /// with everything excluded the selection aborts and says why for each.
    #[test]
    fn exclusions() {
        let g = group(&["db2", "db3", "db4"], &["db2"]);
        let mut nolog = rep(3, 1, 500, 500);
        nolog.log_bin = false;
        let mut errant = rep(4, 1, 500, 500);
        errant.gtid.binlog_pos = "0-1-9,0-4-2".into();
        let o = obs(vec![
            ("db2", rep(2, 1, 500, 500)),
            ("db3", nolog),
            ("db4", errant),
        ]);
        let (why, ex) = run(&g, &o, None).unwrap_err();
        assert!(why.contains("no replica"), "{why}");
        let reasons: BTreeMap<String, String> =
            ex.into_iter().map(|e| (e.server, e.reason)).collect();
        assert!(reasons["db2"].contains("no_master"));
        assert!(reasons["db3"].contains("log_bin"));
        assert!(
            reasons["db4"].contains("errant transactions in its binlog: 0-4-2"),
            "{reasons:?}"
        );

        // check_repl_delay: db3 applied only an older file than the latest replica read.
        let g = group(&["db3"], &[]);
        let o = obs(vec![
            ("db2", rep(2, 2, 100, 100)),
            ("db3", rep(3, 1, 900, 900)),
            ("db4", rep(4, 2, 50, 50)),
        ]);
        let s = run(&g, &o, None).unwrap();
        assert_eq!(
            s.new_master, "db2",
            "db3 is too far behind; db2 is the latest"
        );
        assert!(s
            .excluded
            .iter()
            .any(|e| e.server == "db3" && e.reason.contains("check_repl_delay")));
        // ... and 100 MB behind within one file.
        let o = obs(vec![
            ("db2", rep(2, 1, 200_000_000, 200_000_000)),
            ("db3", rep(3, 1, 200_000_000, 1_000)),
            ("db4", rep(4, 1, 5, 5)),
        ]);
        assert!(run(&g, &o, None)
            .unwrap()
            .excluded
            .iter()
            .any(|e| e.server == "db3"));

        // Unreachable replicas are excluded, not fatal.
        let mut o = obs(vec![("db2", rep(2, 1, 10, 10)), ("db4", rep(4, 1, 10, 10))]);
        o.insert("db3".into(), Err("timeout".into()));
        let s = run(&group(&[], &[]), &o, None).unwrap();
        assert!(s
            .excluded
            .iter()
            .any(|e| e.server == "db3" && e.reason.contains("unreachable")));
    }

    /// A forced new master wins if it may be master, and aborts with its reason if not.
    #[test]
    fn forced_host() {
        let g = group(&["db2"], &["db4"]);
        let o = obs(vec![
            ("db2", rep(2, 1, 10, 10)),
            ("db3", rep(3, 1, 20, 20)),
            ("db4", rep(4, 1, 30, 30)),
        ]);
        assert_eq!(
            run(&g, &o, Some("db3")).unwrap().rule,
            "forced by --new-master"
        );
        let (why, _) = run(&g, &o, Some("db4")).unwrap_err();
        assert!(why.contains("db4 cannot be master: no_master"), "{why}");
        let (why, _) = run(&g, &o, Some("db1")).unwrap_err();
        assert!(why.contains("it is the master being replaced"), "{why}");
        let (why, _) = run(&g, &o, Some("db9")).unwrap_err();
        assert!(why.contains("not a server of the group"), "{why}");
    }

    /// Without latest_priority, a candidate wins over the latest, and the first allowed server
    /// wins when there is no candidate.
    #[test]
    fn without_latest_priority() {
        let g = group(&[], &[]);
        let o = obs(vec![
            ("db2", rep(2, 1, 10, 10)),
            ("db3", rep(3, 1, 30, 30)),
            ("db4", rep(4, 1, 20, 20)),
        ]);
        let s = select(&SelectionInput {
            spec: &g,
            old_master: "db1",
            observed: &o,
            forced: None,
            latest_priority: false,
            check_repl_delay: true,
        })
        .unwrap();
        assert_eq!(
            (s.new_master.as_str(), s.rule.as_str()),
            ("db2", "first replica that may become master")
        );
        assert_eq!(s.latest, vec!["db3"]);
        assert!(s.explanation[0].starts_with(
            "The latest binary log file/position on all slaves is mysql-bin.000001:30"
        ));
    }
}
