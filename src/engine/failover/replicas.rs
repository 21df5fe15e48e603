//! Phase 4, replicas recovery, and the run as a whole. Every other survivor replicates from
//! the new master — GTID: auto-position, waiting for the final target set; file/position: its
//! diff applied, then the new master's coordinates phase 3.5 journaled, waited for with
//! MASTER_POS_WAIT. A replica already replicating from the new master is left alone. A replica
//! that fails is reported and the step is still done (MHA's "recovery on slave partially
//! failed", result 10): the new master already serves writes.

use super::target::final_target;
use super::PlanError;
use crate::model::{
    BinlogCoord, IoThread, ReplicaAction, ReplicaStart, ReplicaStatus, ReplicasOutcome,
    ReplicasPlan, RunOutcome, Target,
};
use crate::state::group::{ReplicationMode, ServerSpec};
use crate::state::journal::{FailoverRun, RunState, StepName, StepState};
use crate::state::recovery::Salvage;

/// Where replicas start on the new master: GTID auto-position, or (file/position) the
/// coordinates phase 3.5 journaled after the new master's apply.
pub fn start(
    mode: ReplicationMode,
    new_master: &str,
    coords: Option<&BinlogCoord>,
) -> Result<ReplicaStart, PlanError> {
    if mode != ReplicationMode::FilePos {
        return Ok(ReplicaStart::AutoPosition);
    }
    let c = coords.ok_or_else(|| PlanError::NoNewMasterCoords(new_master.to_string()))?;
    Ok(ReplicaStart::Coord(c.clone()))
}

/// Phase 4's plan: where every replica starts and what it must reach (an empty GTID target:
/// nothing to wait for).
pub fn plan(
    mode: ReplicationMode,
    new_master: &str,
    decided: &Target,
    salvage: Option<&Salvage>,
    coords: Option<&BinlogCoord>,
) -> Result<ReplicasPlan, PlanError> {
    let start = start(mode, new_master, coords)?;
    let goal = match &start {
        ReplicaStart::Coord(c) => Some(Target::Coord(c.clone())),
        ReplicaStart::AutoPosition => match final_target(mode, decided, salvage) {
            Target::Gtid(set) if set.is_empty() => None,
            t => Some(t),
        },
    };
    Ok(ReplicasPlan { start, goal })
}

/// What to do with one replica, given its replication status.
pub fn action(
    status: Option<&ReplicaStatus>,
    new_master: &ServerSpec,
    start: &ReplicaStart,
) -> ReplicaAction {
    let already = status.is_some_and(|x| {
        x.source_host == new_master.host
            && x.source_port == new_master.port
            && x.io_thread == IoThread::Yes
    });
    if already {
        ReplicaAction::LeaveAlone
    } else {
        ReplicaAction::Repoint {
            apply_diff: matches!(start, ReplicaStart::Coord(_)),
        }
    }
}

/// Phase 4's outcome and its journal detail from each replica's result (in order).
pub fn outcome(results: Vec<(String, Result<String, String>)>) -> (ReplicasOutcome, String) {
    let mut failed = Vec::new();
    let mut text = Vec::new();
    for (name, r) in results {
        match r {
            Ok(l) => text.push(format!("{name}: {l}")),
            Err(e) => {
                text.push(format!("{name}: FAILED: {e}"));
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        (ReplicasOutcome::AllRecovered, text.join("; "))
    } else {
        let detail = format!(
            "recovery on {} replica(s) partially failed: {}",
            failed.len(),
            text.join("; ")
        );
        (ReplicasOutcome::PartiallyFailed { failed }, detail)
    }
}

/// Whether the run's phase 4 ended with some replica not recovered (its report says which).
pub fn partially_failed(run: &FailoverRun) -> bool {
    run.steps.iter().any(|s| {
        matches!(s.name, StepName::ReplicasRecovery | StepName::SwitchReplicas)
            && matches!(&s.state, StepState::Done { failed_replicas, .. } if !failed_replicas.is_empty())
    })
}

/// The run as a whole, in MHA's terms: completed (0), completed with some replica not
/// recovered (10), failed (1), or still running.
pub fn run_outcome(run: &FailoverRun) -> RunOutcome {
    match &run.state {
        RunState::Running => RunOutcome::Running,
        RunState::Failed { reason, .. } => RunOutcome::Failed(reason.clone()),
        RunState::Completed { .. } if partially_failed(run) => RunOutcome::PartiallyFailed,
        RunState::Completed { .. } => RunOutcome::Completed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::{coord, group, status};
    use crate::state::journal::RunKind;

    /// Start and goal per mode: file/position needs the journaled coordinates; GTID waits for
    /// the decided set plus the salvage, or for nothing when it is empty.
    #[test]
    fn plans() {
        let coords = coord(3, 120);
        let salvaged = Salvage {
            last_gtid: Some("0-1-12".into()),
            transactions: 2,
            ..Salvage::default()
        };
        let fp = ReplicationMode::FilePos;
        let ma = ReplicationMode::MariadbGtid;
        let decided_fp = Target::Coord(coord(1, 500));
        let p = plan(fp, "db2", &decided_fp, Some(&salvaged), Some(&coords)).unwrap();
        assert_eq!(p.start, ReplicaStart::Coord(coord(3, 120)));
        assert_eq!(p.goal, Some(Target::Coord(coord(3, 120))));
        assert_eq!(
            plan(fp, "db2", &decided_fp, None, None),
            Err(PlanError::NoNewMasterCoords("db2".into()))
        );
        let p = plan(
            ma,
            "db2",
            &Target::Gtid("0-1-10".into()),
            Some(&salvaged),
            None,
        )
        .unwrap();
        assert_eq!(p.start, ReplicaStart::AutoPosition);
        assert_eq!(p.goal, Some(Target::Gtid("0-1-12".into())));
        let p = plan(ma, "db2", &Target::Gtid(String::new()), None, None).unwrap();
        assert_eq!(p.goal, None);
        assert_eq!(
            start(ReplicationMode::MysqlGtid, "db2", None),
            Ok(ReplicaStart::AutoPosition)
        );
    }

    /// A replica already replicating from the new master (IO thread running) is left alone;
    /// any other is repointed, after its diff in file/position groups.
    #[test]
    fn actions() {
        let g = group(3);
        let nm = &g.servers[1];
        let mut on_new = status(&nm.host, coord(1, 1), coord(1, 1));
        on_new.io_thread = IoThread::Yes;
        let mut connecting = on_new.clone();
        connecting.io_thread = IoThread::Connecting;
        let on_old = status("10.0.0.1", coord(1, 1), coord(1, 1));
        let gtid = ReplicaStart::AutoPosition;
        let fp = ReplicaStart::Coord(coord(3, 120));
        let cases = [
            (Some(&on_new), &gtid, ReplicaAction::LeaveAlone),
            (Some(&on_new), &fp, ReplicaAction::LeaveAlone),
            (
                Some(&connecting),
                &gtid,
                ReplicaAction::Repoint { apply_diff: false },
            ),
            (
                Some(&on_old),
                &gtid,
                ReplicaAction::Repoint { apply_diff: false },
            ),
            (
                Some(&on_old),
                &fp,
                ReplicaAction::Repoint { apply_diff: true },
            ),
            (None, &fp, ReplicaAction::Repoint { apply_diff: true }),
        ];
        for (st, start, want) in cases {
            assert_eq!(action(st, nm, start), want, "{st:?} {start:?}");
        }
    }

    /// A completed run whose phase 4 reported `failed` replicas.
    fn finished(failed: &[&str]) -> FailoverRun {
        let mut r = FailoverRun::new(1, 1, RunKind::Auto, "g", "db1", None, 0);
        for s in r.steps.iter_mut() {
            let phase4 = s.name == StepName::ReplicasRecovery;
            s.state = StepState::Done {
                term: 1,
                node: 1,
                started_at_ms: 0,
                finished_at_ms: 1,
                detail: "ok".into(),
                attempts: 1,
                statement: None,
                failed_replicas: if phase4 {
                    failed.iter().map(|f| f.to_string()).collect()
                } else {
                    Vec::new()
                },
            };
        }
        r.state = RunState::Completed { at_ms: 2 };
        r
    }

    /// All recovered, some failed, none to recover; and the run as a whole.
    #[test]
    fn outcomes() {
        let ok = |n: &str| {
            (
                n.to_string(),
                Ok("now replicating from db2, reached 0-1-9".into()),
            )
        };
        let bad = |n: &str| (n.to_string(), Err("connect timed out".into()));
        let (o, all) = outcome(vec![ok("db3"), ok("db4")]);
        assert_eq!(o, ReplicasOutcome::AllRecovered);
        assert_eq!(
            all,
            "db3: now replicating from db2, reached 0-1-9; db4: now replicating from db2, reached 0-1-9"
        );
        let (o, some) = outcome(vec![ok("db3"), bad("db4"), bad("db5")]);
        assert_eq!(
            o,
            ReplicasOutcome::PartiallyFailed {
                failed: vec!["db4".into(), "db5".into()]
            }
        );
        assert!(some.starts_with(
            "recovery on 2 replica(s) partially failed: db3: now replicating from db2, reached \
             0-1-9; db4: FAILED: connect timed out"
        ));
        assert_eq!(
            outcome(vec![]),
            (ReplicasOutcome::AllRecovered, String::new())
        );

        assert_eq!(run_outcome(&finished(&[])), RunOutcome::Completed);
        assert!(!partially_failed(&finished(&[])));
        assert_eq!(
            run_outcome(&finished(&["db4"])),
            RunOutcome::PartiallyFailed
        );
        let mut failed = finished(&[]);
        failed.state = RunState::Failed {
            at_ms: 3,
            reason: "Phase 3.5: timed out".into(),
        };
        assert_eq!(
            run_outcome(&failed),
            RunOutcome::Failed("Phase 3.5: timed out".into())
        );
        let mut running = finished(&["db4"]);
        running.state = RunState::Running;
        assert_eq!(run_outcome(&running), RunOutcome::Running);
        assert!(
            partially_failed(&running),
            "phase 4's outcome is known before the end"
        );
    }
}
