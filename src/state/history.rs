//! The runs history is bounded: the leader drops a group's oldest ended runs once it has more
//! than [`KEEP_RUNS`] of them ([`super::Cmd::PruneRuns`]), so the replicated state and its
//! snapshots do not grow with every failover for ever. What an operator or a later run needs
//! is never dropped: a running run, the newest completed one (the master change a rejoin reads
//! its position from) and the newest failed one (what a block names).

use super::apply::Applied;
use super::journal::RunState;
use super::ClusterState;

/// Ended runs kept per group (`mhactl failover history` shows them).
pub const KEEP_RUNS: usize = 100;

/// A manager that knows [`super::Cmd::PruneRuns`] registers this feature; the leader prunes
/// only once every member has (an older build cannot decode the command).
pub const FEATURE_PRUNE_RUNS: &str = "prune-runs";

impl ClusterState {
    /// The id below which `group`'s ended runs may go so that `keep` of them stay, if it has
    /// more than that.
    pub fn prune_point(&self, group: &str, keep: usize) -> Option<u64> {
        let ended: Vec<u64> = self
            .runs
            .values()
            .filter(|r| r.group == group && r.state != RunState::Running)
            .map(|r| r.id)
            .collect();
        (ended.len() > keep).then(|| ended[ended.len() - keep.max(1)])
    }

    /// Drops `group`'s ended runs with an id below `before`, except the newest completed and the
    /// newest failed one (and never a running one). True if any went.
    pub(super) fn prune_runs(&mut self, group: &str, before: u64) -> Applied {
        let newest = |completed: bool| {
            self.runs
                .values()
                .rev()
                .find(|r| {
                    r.group == group
                        && match &r.state {
                            RunState::Completed { .. } => completed,
                            RunState::Failed { .. } => !completed,
                            RunState::Running => false,
                        }
                })
                .map(|r| r.id)
        };
        let kept = [newest(true), newest(false)];
        let count = self.runs.len();
        self.runs.retain(|id, r| {
            r.group != group
                || *id >= before
                || r.state == RunState::Running
                || kept.contains(&Some(*id))
        });
        Ok(self.runs.len() != count)
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
        s.apply(
            &Cmd::PruneRuns {
                group: "g".into(),
                before: 4,
            },
            0,
        );
        assert_eq!(s.runs.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
    }
}
