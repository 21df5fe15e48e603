//! The runs history is bounded: the leader drops a group's oldest ended runs once it has more
//! than [`KEEP_RUNS`] of them ([`super::Cmd::PruneRuns`]), so the replicated state and its
//! snapshots do not grow with every failover for ever. What an operator or a later run needs
//! is never dropped: a running run, the newest completed and the newest failed one (what a
//! block names), the run that last changed the master (the position a rejoin reads), and a run
//! that answered the group's current Dead verdict (so that verdict stays handled). The runs
//! dropped are counted per kind and outcome ([`PrunedRuns`]): the runs counters stay counters.

use serde::{Deserialize, Serialize};

use super::apply::Applied;
use super::journal::{FailoverRun, RunKind, RunState};
use super::ClusterState;
use crate::model::Health;

/// Ended runs kept per group (`mhactl failover history` shows them).
pub const KEEP_RUNS: usize = 100;

/// A manager that knows [`super::Cmd::PruneRuns`] registers this feature; the leader prunes
/// only once every member has (an older build cannot decode the command).
pub const FEATURE_PRUNE_RUNS: &str = "prune-runs";

/// How many ended runs of one kind and outcome the history no longer holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedRuns {
    pub kind: RunKind,
    pub completed: bool,
    pub count: u64,
}

impl ClusterState {
    /// The id below which `group`'s ended runs may go so that the newest `keep` (at least 1)
    /// of them stay, if it has more than that.
    pub fn prune_point(&self, group: &str, keep: usize) -> Option<u64> {
        let keep = keep.max(1);
        let ended: Vec<u64> = self
            .runs
            .values()
            .filter(|r| r.group == group && r.state != RunState::Running)
            .map(|r| r.id)
            .collect();
        (ended.len() > keep).then(|| ended[ended.len() - keep])
    }

    /// Drops `group`'s ended runs with an id below `before`, except those the module says stay,
    /// and counts them. True if any went.
    pub(super) fn prune_runs(&mut self, group: &str, before: u64) -> Applied {
        let newest = |f: &dyn Fn(&FailoverRun) -> bool| {
            self.runs
                .values()
                .rev()
                .find(|r| r.group == group && f(r))
                .map(|r| r.id)
        };
        let dead_round = self.groups.get(group).and_then(|g| match g.health.state {
            Health::Dead { round, .. } => Some(round),
            _ => None,
        });
        let kept = [
            newest(&|r| matches!(r.state, RunState::Completed { .. })),
            newest(&|r| matches!(r.state, RunState::Failed { .. })),
            newest(&FailoverRun::changed_master),
        ];
        let stays = |id: u64, r: &FailoverRun| {
            r.group != group
                || id >= before
                || r.state == RunState::Running
                || kept.contains(&Some(id))
                || (dead_round.is_some() && r.verdict_round == dead_round)
        };
        let gone: Vec<u64> = self
            .runs
            .iter()
            .filter(|(id, r)| !stays(**id, r))
            .map(|(id, _)| *id)
            .collect();
        if gone.is_empty() {
            return Ok(false);
        }
        let f = self.failover.entry(group.to_string()).or_default();
        for id in gone {
            let r = self.runs.remove(&id).expect("listed above");
            let completed = matches!(r.state, RunState::Completed { .. });
            match f
                .pruned
                .iter_mut()
                .find(|p| p.kind == r.kind && p.completed == completed)
            {
                Some(p) => p.count += 1,
                None => f.pruned.push(PrunedRuns {
                    kind: r.kind,
                    completed,
                    count: 1,
                }),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::journal::{FailoverRun, RunKind};
    use crate::state::Cmd;

    fn run(id: u64, group: &str, state: RunState) -> FailoverRun {
        let mut r = FailoverRun::new(id, id, RunKind::Manual, group, "db1", None, id);
        r.state = state;
        r
    }

    fn completed(id: u64, group: &str) -> FailoverRun {
        run(id, group, RunState::Completed { at_ms: id })
    }

    fn failed(id: u64, group: &str) -> FailoverRun {
        run(
            id,
            group,
            RunState::Failed {
                at_ms: id,
                reason: "x".into(),
            },
        )
    }

    fn state(runs: Vec<FailoverRun>) -> ClusterState {
        let mut s = ClusterState::default();
        for r in runs {
            s.runs.insert(r.id, r);
        }
        s
    }

    #[test]
    fn the_point_keeps_the_newest_ended_runs_of_the_group() {
        let s = state(vec![
            completed(1, "g"),
            completed(2, "h"),
            failed(3, "g"),
            completed(4, "g"),
            run(5, "g", RunState::Running),
        ]);
        assert_eq!(s.prune_point("g", 3), None, "3 ended runs of g");
        assert_eq!(s.prune_point("g", 2), Some(3));
        assert_eq!(s.prune_point("g", 1), Some(4));
        assert_eq!(s.prune_point("h", 1), None);
    }

    #[test]
    fn pruning_keeps_running_newest_completed_newest_failed_and_other_groups() {
        let mut s = state(vec![
            completed(1, "g"),
            failed(2, "g"),
            completed(3, "h"),
            completed(4, "g"),
            failed(5, "g"),
            run(6, "g", RunState::Running),
            completed(7, "g"),
        ]);
        let r = s.apply(
            &Cmd::PruneRuns {
                group: "g".into(),
                before: 7,
            },
            0,
        );
        assert_eq!(r, crate::state::CmdResult::Ok);
        // 1, 2 and 4 go; 5 is g's newest failed run, 6 runs, 7 is kept by the point.
        assert_eq!(s.runs.keys().copied().collect::<Vec<_>>(), vec![3, 5, 6, 7]);
        let pruned = &s.failover["g"].pruned;
        assert_eq!(
            pruned,
            &vec![
                PrunedRuns {
                    kind: RunKind::Manual,
                    completed: true,
                    count: 2
                },
                PrunedRuns {
                    kind: RunKind::Manual,
                    completed: false,
                    count: 1
                },
            ]
        );
        let again = s.apply(
            &Cmd::PruneRuns {
                group: "g".into(),
                before: 7,
            },
            0,
        );
        assert_eq!(again, crate::state::CmdResult::Unchanged);
    }

    #[test]
    fn the_newest_completed_run_stays_even_below_the_point() {
        let mut s = state(vec![completed(1, "g"), failed(2, "g"), failed(3, "g")]);
        prune(&mut s, 4);
        assert_eq!(s.runs.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn the_last_master_change_stays_even_when_a_failed_switchover_made_it() {
        let mut switched = failed(2, "g");
        switched.kind = RunKind::Switchover;
        switched.decided = completed_run_decided();
        switched.switch = Some(crate::state::switchover::Switch {
            writable_at_ms: Some(2),
            ..Default::default()
        });
        let mut s = state(vec![
            completed(1, "g"),
            switched,
            failed(3, "g"),
            failed(4, "g"),
        ]);
        s.runs.get_mut(&1).unwrap().decided = completed_run_decided();
        prune(&mut s, 5);
        assert_eq!(s.runs.keys().copied().collect::<Vec<_>>(), vec![1, 2, 4]);
    }

    #[test]
    fn a_run_that_answered_the_current_dead_verdict_stays() {
        let mut s = state(vec![failed(1, "g"), failed(2, "g"), failed(3, "g")]);
        s.runs.get_mut(&1).unwrap().verdict_round = Some(7);
        s.groups.insert("g".into(), dead_group(7));
        prune(&mut s, 4);
        assert_eq!(s.runs.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
    }

    fn completed_run_decided() -> Option<crate::state::journal::Decided> {
        Some(crate::state::journal::Decided {
            new_master: "db2".into(),
            rule: "latest".into(),
            target: crate::model::Target::Gtid(String::new()),
        })
    }

    fn dead_group(round: u64) -> crate::state::group::Group {
        use crate::state::group::{tests::spec, Group, GroupHealth, ReplicationMode, Topology};
        Group {
            spec: spec("g"),
            topology: Topology {
                master: "db1".into(),
                servers: Default::default(),
                mode: ReplicationMode::MariadbGtid,
                semisync: true,
                warnings: vec![],
                discovered_at_ms: 0,
            },
            created_at_ms: 0,
            updated_at_ms: 0,
            health: GroupHealth {
                state: Health::Dead { round, at_ms: 0 },
                ..Default::default()
            },
        }
    }

    fn prune(s: &mut ClusterState, before: u64) {
        s.apply(
            &Cmd::PruneRuns {
                group: "g".into(),
                before,
            },
            0,
        );
    }
}
