//! Phase 1, configuration check: the verdict on what was gathered before anything is touched.
//! The old master must still be dead (a fresh connection fails without an error only a running
//! server gives), every survivor must answer and replicate from it (MHA's rule: a
//! half-recoverable group is a human's decision) — except a server marked `ignore_fail`, which
//! is left out of the failover and reported instead — and a binlog file/position group needs
//! SSH (relay-log diffs are read and placed over it).

use super::PlanError;
use crate::model::{MasterProbe, Observations, ServerInfo};
use crate::state::group::{ReplicationMode, ServerSpec};

/// Checked before the old master is probed: file/position recovery cannot go without SSH.
pub fn ssh_needed(mode: ReplicationMode, ssh: Result<(), &str>) -> Result<(), PlanError> {
    match (mode, ssh) {
        (ReplicationMode::FilePos, Err(e)) => Err(PlanError::SshNeeded(e.to_string())),
        _ => Ok(()),
    }
}

/// What phase 1 gathered.
#[derive(Clone, Debug)]
pub struct CheckFacts<'a> {
    pub old: &'a ServerSpec,
    /// Every other server of the failover, in group order.
    pub survivors: &'a [ServerSpec],
    pub probe: &'a MasterProbe,
    /// What the survivors reported, or why they could not be read at all.
    pub observed: Result<&'a Observations, &'a str>,
    /// The operator's `--new-master`, if any: it cannot be left out.
    pub forced: Option<&'a str>,
    /// MHA's check_repl_filter: the survivors' filtering rules are compared (a difference is
    /// said, loudly, but does not stop the failover: see [`verdict`]).
    pub check_repl_filter: bool,
}

/// Phase 1's verdict when the failover may go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The journal's detail.
    pub detail: String,
    /// `ignore_fail` servers that were not ready: left out of every later phase.
    pub left_out: Vec<String>,
}

/// Ok when the failover may go on; Err(why it must not, nothing changed).
pub fn verdict(f: &CheckFacts) -> Result<Checked, PlanError> {
    let old = f.old;
    let master_state = match f.probe {
        MasterProbe::Answered => {
            return Err(PlanError::MasterAnswers {
                name: old.name.clone(),
                endpoint: old.endpoint(),
            })
        }
        MasterProbe::ProvesAlive(e) => {
            return Err(PlanError::MasterProvesAlive {
                name: old.name.clone(),
                endpoint: old.endpoint(),
                error: e.clone(),
            })
        }
        MasterProbe::Unreachable(e) => e,
    };
    let obs = f
        .observed
        .map_err(|e| PlanError::NotObserved(e.to_string()))?;
    let mut lines = vec![format!(
        "master {} still unreachable: {master_state}",
        old.name
    )];
    let mut problems = Vec::new();
    let mut left_out = Vec::new();
    for s in f.survivors {
        let problem = match obs.get(&s.name) {
            Some(Ok(i)) => match &i.replica {
                Some(r) if r.source_host == old.host && r.source_port == old.port => {
                    lines.push(format!("{}: replica of {}, ok", s.name, old.name));
                    continue;
                }
                Some(r) => format!(
                    "{} replicates from {}:{}, not from the dead master",
                    s.name, r.source_host, r.source_port
                ),
                None => format!("{} is not a replica", s.name),
            },
            Some(Err(e)) => format!("{} is unreachable: {e}", s.name),
            None => format!("{} was not observed", s.name),
        };
        if s.ignore_fail {
            lines.push(format!(
                "{problem}: left out of this failover (ignore_fail); recover it by hand"
            ));
            left_out.push(s.name.clone());
        } else {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(PlanError::SurvivorsNotReady(problems));
    }
    if let Some(forced) = f.forced.filter(|n| left_out.iter().any(|l| l == n)) {
        return Err(PlanError::SurvivorsNotReady(vec![format!(
            "{forced}, the new master asked for, is not ready (ignore_fail does not apply to it)"
        )]));
    }
    if !left_out.is_empty() && left_out.len() == f.survivors.len() {
        return Err(PlanError::SurvivorsNotReady(vec![format!(
            "no server left to promote: every survivor is left out ({})",
            left_out.join(", ")
        )]));
    }
    if f.check_repl_filter {
        let ready: Vec<(&str, &ServerInfo)> = f
            .survivors
            .iter()
            .filter(|s| !left_out.contains(&s.name))
            .filter_map(|s| match obs.get(&s.name) {
                Some(Ok(i)) => Some((s.name.as_str(), i)),
                _ => None,
            })
            .collect();
        // MHA stops here. Not this: the group's rules were checked when it was added or
        // updated and by every `check repl`; a difference showing up only now (filters are
        // dynamic on MariaDB) cannot be fixed during the outage — a group update needs the
        // dead master — and a dead master left dead loses more than a replica filtering
        // differently. Said, in the step's detail, for the operator to mend.
        let bad = crate::engine::repl_filter::problems(None, &ready);
        if bad.is_empty() {
            lines.push("replication filtering check ok".into());
        } else {
            lines.push(format!(
                "WARNING: {}; failing over anyway (the new master may hold, or lack, tables the \
                 others do not: mend the filters after the run)",
                bad.join("; ")
            ));
        }
    }
    Ok(Checked {
        detail: lines.join("; "),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::{group, observed, replica, server};
    use crate::model::Flavor;

    fn run(
        probe: MasterProbe,
        obs: Result<Observations, &str>,
        mode: ReplicationMode,
        ssh: Result<(), &str>,
    ) -> Result<String, String> {
        let g = group(3);
        ssh_needed(mode, ssh).map_err(|e| e.to_string())?;
        verdict(&CheckFacts {
            old: &g.servers[0],
            survivors: &g.servers[1..],
            probe: &probe,
            observed: obs.as_ref().map_err(|e| *e),
            forced: None,
            check_repl_filter: true,
        })
        .map(|c| c.detail)
        .map_err(|e| e.to_string())
    }

    /// The verdict, table-driven: (case, probe, db3's report, mode, SSH, Ok / Err substring).
    #[test]
    fn verdicts() {
        let dead = || MasterProbe::Unreachable("connect timed out".into());
        let mut elsewhere = replica(3, 1, 10, 10);
        elsewhere.replica.as_mut().unwrap().source_host = "10.0.0.9".into();
        let mut other_port = replica(3, 1, 10, 10);
        other_port.replica.as_mut().unwrap().source_port = 3307;
        type Case<'a> = (
            &'a str,
            MasterProbe,
            Option<Result<crate::model::ServerInfo, &'a str>>,
            ReplicationMode,
            Result<(), &'a str>,
            Result<&'a str, &'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "dead master, healthy replicas",
                dead(),
                Some(Ok(replica(3, 1, 10, 10))),
                ReplicationMode::MariadbGtid,
                Ok(()),
                Ok("master db1 still unreachable: connect timed out; db2: replica of db1, ok; db3: replica of db1, ok"),
            ),
            (
                "master answers again",
                MasterProbe::Answered,
                Some(Ok(replica(3, 1, 10, 10))),
                ReplicationMode::MariadbGtid,
                Ok(()),
                Err("master db1 (10.0.0.1:3306) answers again: it is not dead, nothing to fail over"),
            ),
            (
                "an error only a live server gives",
                MasterProbe::ProvesAlive("1040 Too many connections".into()),
                Some(Ok(replica(3, 1, 10, 10))),
                ReplicationMode::MariadbGtid,
                Ok(()),
                Err("answers (with an error that proves it is up: 1040 Too many connections): not dead"),
            ),
            (
                "a survivor replicating from elsewhere",
                dead(),
                Some(Ok(elsewhere)),
                ReplicationMode::MariadbGtid,
                Ok(()),
                Err("db3 replicates from 10.0.0.9:3306, not from the dead master; nothing was changed"),
            ),
            (
                "same host, another port",
                dead(),
                Some(Ok(other_port)),
                ReplicationMode::MariadbGtid,
                Ok(()),
                Err("db3 replicates from 10.0.0.1:3307"),
            ),
            (
                "a survivor that is not a replica",
                dead(),
                Some(Ok(server(Flavor::MariaDb, 3))),
                ReplicationMode::MariadbGtid,
                Ok(()),
                Err("db3 is not a replica; nothing was changed"),
            ),
            (
                "an unreachable survivor",
                dead(),
                Some(Err("timeout")),
                ReplicationMode::MariadbGtid,
                Ok(()),
                Err("db3 is unreachable: timeout; nothing was changed"),
            ),
            (
                "a survivor not observed",
                dead(),
                None,
                ReplicationMode::MariadbGtid,
                Ok(()),
                Err("db3 was not observed"),
            ),
            (
                "file/position without SSH",
                dead(),
                Some(Ok(replica(3, 1, 10, 10))),
                ReplicationMode::FilePos,
                Err("no ssh key"),
                Err("binlog file/position recovery needs SSH to every server (relay-log diffs): no ssh key; nothing was changed"),
            ),
            (
                "GTID does not need SSH",
                dead(),
                Some(Ok(replica(3, 1, 10, 10))),
                ReplicationMode::MysqlGtid,
                Err("no ssh key"),
                Ok("db3: replica of db1, ok"),
            ),
            (
                "file/position with SSH",
                dead(),
                Some(Ok(replica(3, 1, 10, 10))),
                ReplicationMode::FilePos,
                Ok(()),
                Ok("db3: replica of db1, ok"),
            ),
        ];
        for (case, probe, db3, mode, ssh, want) in cases {
            let mut entries = vec![("db2", Ok(replica(2, 1, 10, 10)))];
            if let Some(r) = db3 {
                entries.push(("db3", r));
            }
            let got = run(probe, Ok(observed(entries)), mode, ssh);
            match (&got, want) {
                (Ok(text), Ok(w)) | (Err(text), Err(w)) => {
                    assert!(text.contains(w), "{case}: {text}")
                }
                _ => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// The old master is judged first; then a failed observation aborts with its own error.
    #[test]
    fn master_first_then_observation() {
        let r = run(
            MasterProbe::Answered,
            Err("cannot resolve"),
            ReplicationMode::MariadbGtid,
            Ok(()),
        );
        assert!(r.unwrap_err().contains("answers again"));
        let r = run(
            MasterProbe::Unreachable("refused".into()),
            Err("cannot resolve"),
            ReplicationMode::MariadbGtid,
            Ok(()),
        );
        assert_eq!(r, Err("cannot resolve".into()));
    }

    /// An `ignore_fail` server that is not ready is left out, reported, and the failover goes
    /// on; without the flag the same server stops it; with every survivor left out, nothing
    /// is left to promote.
    #[test]
    fn ignore_fail_leaves_a_server_out() {
        let mut g = group(3);
        g.servers[2].ignore_fail = true;
        let dead = MasterProbe::Unreachable("refused".into());
        let obs = observed(vec![
            ("db2", Ok(replica(2, 1, 10, 10))),
            ("db3", Err("connect timed out")),
        ]);
        let both = vec![g.servers[1].clone(), g.servers[2].clone()];
        let c = verdict(&CheckFacts {
            old: &g.servers[0],
            survivors: &both,
            probe: &dead,
            observed: Ok(&obs),
            forced: None,
            check_repl_filter: true,
        })
        .unwrap();
        assert_eq!(c.left_out, vec!["db3".to_string()]);
        assert!(
            c.detail.contains(
                "db3 is unreachable: connect timed out: left out of this failover (ignore_fail)"
            ),
            "{}",
            c.detail
        );
        let only = vec![g.servers[2].clone()];
        let e = verdict(&CheckFacts {
            old: &g.servers[0],
            survivors: &only,
            probe: &dead,
            observed: Ok(&obs),
            forced: None,
            check_repl_filter: true,
        })
        .unwrap_err();
        assert!(e.to_string().contains("no server left to promote"), "{e}");
        let forced = verdict(&CheckFacts {
            old: &g.servers[0],
            survivors: &both,
            probe: &dead,
            observed: Ok(&obs),
            forced: Some("db3"),
            check_repl_filter: true,
        })
        .unwrap_err();
        assert!(
            forced
                .to_string()
                .contains("db3, the new master asked for, is not ready"),
            "{forced}"
        );
        let mut strict = both.clone();
        strict[1].ignore_fail = false;
        assert!(verdict(&CheckFacts {
            old: &g.servers[0],
            survivors: &strict,
            probe: &dead,
            observed: Ok(&obs),
            forced: None,
            check_repl_filter: true,
        })
        .is_err());
    }

    /// MHA's check_repl_filter in phase 1: survivors with other replication filtering rules
    /// are said, loudly, in the step's detail, but do not stop the failover (the rule cannot be
    /// changed during the outage); an ignore_fail server left out does not count; off, nothing
    /// is compared.
    #[test]
    fn survivors_with_different_filters_are_said_in_phase_1() {
        let mut g = group(4);
        g.servers[3].ignore_fail = true;
        let dead = MasterProbe::Unreachable("refused".into());
        let filtered = |id, host: &str| {
            let mut r = replica(id, 1, 10, 10);
            let st = r.replica.as_mut().unwrap();
            st.filters.ignore_db = "scratch".into();
            st.source_host = host.into();
            r
        };
        let obs = observed(vec![
            ("db2", Ok(replica(2, 1, 10, 10))),
            ("db3", Ok(filtered(3, "10.0.0.1"))),
            // Answers, but replicates from elsewhere: left out (ignore_fail).
            ("db4", Ok(filtered(4, "192.168.9.9"))),
        ]);
        let facts = |survivors, check_repl_filter| CheckFacts {
            old: &g.servers[0],
            survivors,
            probe: &dead,
            observed: Ok(&obs),
            forced: None,
            check_repl_filter,
        };
        let c = verdict(&facts(&g.servers[1..], true)).unwrap();
        assert!(
            c.detail
                .contains("WARNING: replication filtering check failed on db3")
                && c.detail.contains("failing over anyway"),
            "{}",
            c.detail
        );
        assert_eq!(c.left_out, vec!["db4".to_string()]);
        let off = verdict(&facts(&g.servers[1..], false)).unwrap();
        assert!(!off.detail.contains("filtering"), "{}", off.detail);
        // Without db3, db4's own filters do not count: it is left out.
        let without_db3 = vec![g.servers[1].clone(), g.servers[3].clone()];
        let c = verdict(&facts(&without_db3, true)).unwrap();
        assert!(
            c.detail.contains("replication filtering check ok"),
            "{}",
            c.detail
        );
    }
}
