//! Maintenance mode: a paused group is monitored and checked as always, but automatic
//! failover is off — a master death is recorded and shown, not acted on. Manual `failover`
//! still works. Who paused it, when, why and until when are replicated with it, so every
//! manager (and every leader after) shows and honours the same pause.

use serde::{Deserialize, Serialize};

/// A manager that knows [`super::Cmd::PauseGroup`] / [`super::Cmd::ResumeGroup`] registers this
/// feature; the leader takes a pause only once every member has (an older build could not
/// decode the command and would stop replicating).
pub const FEATURE_PAUSE: &str = "pause";

/// The most characters kept of a pause's `by` and `reason`.
pub const PAUSE_TEXT_MAX: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// The operator's identity as the leader authenticated it (certificate name and role).
    pub by: String,
    /// Log time it was paused (ms since the Unix epoch).
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Log time it ends by itself (None: until `mhactl resume`). A forgotten pause is a
    /// failover that never comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl Pause {
    /// Whether the pause holds at `now_ms` (log time, or the leader's clock for display).
    pub fn holds_at(&self, now_ms: u64) -> bool {
        self.until_ms.is_none_or(|u| now_ms < u)
    }

    /// The pause with its texts bounded (an entry must stay small whatever a client sends).
    pub fn bounded(mut self) -> Pause {
        self.by = bound(&self.by);
        self.reason = bound(&self.reason);
        self
    }
}

fn bound(s: &str) -> String {
    s.chars().take(PAUSE_TEXT_MAX).collect()
}

impl std::fmt::Display for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "paused by {} at {} UTC",
            self.by,
            crate::clock::utc(self.at_ms)
        )?;
        if let Some(u) = self.until_ms {
            write!(f, " until {} UTC", crate::clock::utc(u))?;
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

impl super::ClusterState {
    /// Whether nothing acted on the Dead verdict of `round`: no run is active, none failed and
    /// blocks the group, and no run was begun for that round. Only then may a pause's Dead
    /// round close (the master back) or a resume put the group back to Alive; a death some run
    /// answered is that run's to resolve.
    pub(crate) fn dead_round_untouched(&self, group: &str, round: u64) -> bool {
        let idle = self
            .failover
            .get(group)
            .is_none_or(|f| f.active_run.is_none() && f.blocked.is_none());
        idle && !self
            .runs
            .values()
            .any(|r| r.group == group && r.verdict_round == Some(round))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Health, VerdictKind};
    use crate::state::group::tests::put;
    use crate::state::journal::{RunKind, DEFAULT_ANTI_FLAP_MS};
    use crate::state::{ClusterState, Cmd, CmdResult};

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        assert_eq!(s.apply(&put("g"), 1), CmdResult::Ok);
        s
    }

    fn pause(for_ms: Option<u64>) -> Cmd {
        Cmd::PauseGroup {
            group: "g".into(),
            by: "alice (operator)".into(),
            reason: "mysqld upgrade".into(),
            for_ms,
        }
    }

    fn dead(round: u64) -> Cmd {
        Cmd::RecordVerdict {
            group: "g".into(),
            verdict: Box::new(crate::state::tests::a_verdict(VerdictKind::Dead, round)),
        }
    }

    fn begin(kind: RunKind, round: u64) -> Cmd {
        Cmd::BeginFailover {
            group: "g".into(),
            kind,
            old_master: "db1".into(),
            verdict_round: Some(round),
            anti_flap_ms: DEFAULT_ANTI_FLAP_MS,
            forced: None,
        }
    }

    /// Paused: a Dead verdict is recorded, the automatic run refused (and the refusal kept,
    /// naming the pause); the master coming back closes the Dead round; a manual run still
    /// starts.
    #[test]
    fn a_paused_group_records_a_death_and_does_not_act() {
        let mut s = state();
        assert_eq!(s.apply(&pause(None), 100), CmdResult::Ok);
        let p = s.failover["g"].paused.clone().unwrap();
        assert_eq!(
            (p.at_ms, p.until_ms),
            (100, None),
            "times from the log entry"
        );
        s.apply(&dead(1), 200);
        assert!(matches!(s.groups["g"].health.state, Health::Dead { .. }));
        let r = s.apply(&begin(RunKind::Auto, 1), 201);
        assert!(
            matches!(&r, CmdResult::Rejected(x) if x.to_string().contains("paused by alice")),
            "{r:?}"
        );
        let f = &s.failover["g"];
        assert!(f.active_run.is_none());
        assert_eq!(
            f.handled_round,
            Some(1),
            "the verdict starts no second attempt"
        );
        assert!(f.refusals.last().unwrap().reason.contains("mysqld upgrade"));
        // The master is back (a planned restart): the Dead round closes.
        let close = Cmd::CloseSuspicion {
            group: "g".into(),
            round: 1,
        };
        assert_eq!(s.apply(&close, 300), CmdResult::Ok);
        assert_eq!(s.groups["g"].health.state, Health::Alive);
        // Manual failover is not paused.
        assert_eq!(s.apply(&begin(RunKind::Manual, 1), 400), CmdResult::Ok);
    }

    /// Not paused, a Dead round is the failover's: the master answering does not close it.
    #[test]
    fn a_dead_round_closes_only_while_paused() {
        let mut s = state();
        s.apply(&dead(1), 200);
        let close = Cmd::CloseSuspicion {
            group: "g".into(),
            round: 1,
        };
        assert_eq!(s.apply(&close, 300), CmdResult::Unchanged);
        assert!(matches!(s.groups["g"].health.state, Health::Dead { .. }));
    }

    /// Resume with the master still dead: Alive again, so that the monitor suspects and
    /// corroborates afresh; the next verdict's automatic run starts.
    #[test]
    fn resume_while_dead_leads_to_the_usual_failover() {
        let mut s = state();
        s.apply(&pause(None), 100);
        s.apply(&dead(1), 200);
        s.apply(&begin(RunKind::Auto, 1), 201);
        let resume = Cmd::ResumeGroup { group: "g".into() };
        assert_eq!(s.apply(&resume, 300), CmdResult::Ok);
        assert!(s.failover["g"].paused.is_none());
        assert_eq!(s.groups["g"].health.state, Health::Alive);
        assert_eq!(s.apply(&resume, 301), CmdResult::Unchanged, "not paused");
        s.apply(&dead(2), 400);
        assert_eq!(s.apply(&begin(RunKind::Auto, 2), 401), CmdResult::Ok);
    }

    /// A pause with an end refuses until then, not after.
    #[test]
    fn an_expired_pause_refuses_nothing() {
        let mut s = state();
        s.apply(&pause(Some(1_000)), 100);
        s.apply(&dead(1), 200);
        assert!(matches!(
            s.apply(&begin(RunKind::Auto, 1), 500),
            CmdResult::Rejected(_)
        ));
        s.apply(&dead(2), 1_200);
        assert_eq!(s.apply(&begin(RunKind::Auto, 2), 1_200), CmdResult::Ok);
    }

    /// A resume that lands between a paused Dead verdict and the leader's automatic begin
    /// for it: the begin is refused (the verdict no longer stands), nothing runs on it.
    #[test]
    fn an_automatic_run_needs_its_verdict_to_stand() {
        let mut s = state();
        s.apply(&pause(None), 100);
        s.apply(&dead(1), 200);
        s.apply(&Cmd::ResumeGroup { group: "g".into() }, 250);
        let r = s.apply(&begin(RunKind::Auto, 1), 260);
        assert!(
            matches!(&r, CmdResult::Rejected(x) if x.to_string().contains("no longer stands")),
            "{r:?}"
        );
        assert!(s.runs.is_empty());
    }

    /// A death a run answered is that run's: pausing after a failed run neither closes its
    /// Dead round when the (fenced) old master answers, nor lets a resume reset it.
    #[test]
    fn a_death_a_run_answered_stays_the_runs() {
        let mut s = state();
        s.apply(&dead(1), 200);
        assert_eq!(s.apply(&begin(RunKind::Auto, 1), 201), CmdResult::Ok);
        let run = s.failover["g"].active_run.unwrap();
        let fail = Cmd::FinishFailover {
            run,
            failed: Some("Phase 2: x".into()),
        };
        assert_eq!(s.apply(&fail, 300), CmdResult::Ok);
        s.apply(&pause(None), 400);
        let close = Cmd::CloseSuspicion {
            group: "g".into(),
            round: 1,
        };
        assert_eq!(s.apply(&close, 500), CmdResult::Unchanged);
        s.apply(&Cmd::ResumeGroup { group: "g".into() }, 600);
        assert!(matches!(s.groups["g"].health.state, Health::Dead { .. }));
    }

    /// A removed group's pause goes with it: a group added again under the name is not paused.
    #[test]
    fn a_pause_goes_with_its_group() {
        let mut s = state();
        s.apply(&pause(Some(1_000)), 100);
        assert_eq!(
            s.apply(&Cmd::RemoveGroup { name: "g".into() }, 200),
            CmdResult::Ok
        );
        assert!(s.failover.get("g").is_none_or(|f| f.paused.is_none()));
    }

    #[test]
    fn a_group_added_again_has_no_handled_round() {
        let mut s = state();
        s.failover.entry("g".into()).or_default().handled_round = Some(1);
        s.apply(&Cmd::RemoveGroup { name: "g".into() }, 200);
        assert_eq!(s.failover["g"].handled_round, None);
    }

    #[test]
    fn pausing_an_unknown_group_is_refused() {
        let mut s = ClusterState::default();
        assert!(matches!(s.apply(&pause(None), 1), CmdResult::Rejected(_)));
        assert!(s.failover.is_empty());
    }

    #[test]
    fn a_pause_with_an_end_ends() {
        let p = Pause {
            by: "alice (operator)".into(),
            at_ms: 1_000,
            reason: "mysqld upgrade".into(),
            until_ms: Some(61_000),
        };
        assert!(p.holds_at(60_999));
        assert!(!p.holds_at(61_000));
        assert!(Pause {
            until_ms: None,
            ..p.clone()
        }
        .holds_at(u64::MAX));
        let long = Pause {
            reason: "x".repeat(10_000),
            ..p
        }
        .bounded();
        assert_eq!(long.reason.len(), PAUSE_TEXT_MAX);
    }
}
