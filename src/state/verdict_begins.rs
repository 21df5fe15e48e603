//! A Dead verdict that starts its automatic failover in the same log entry.
//!
//! Before it, the leader's monitor committed the verdict, and the failover supervisor, woken by
//! its apply, proposed `BeginFailover`: a second commit (a quorum round trip and a flush on
//! every manager) between the verdict and the run's first step, with nothing learnt in between
//! — the begin's rules read only the replicated state. [`Cmd::RecordVerdictAndBegin`] applies
//! the verdict's rule and then the begin's, exactly as the two entries would in a row:
//! - the verdict refused (its round recorded already): nothing changes;
//! - the begin refused (paused, blocked, within the anti-flap window): the refusal is recorded
//!   as `BeginFailover` records it, the round counts as handled, and the verdict stands;
//! - a run already active (a manual one): the verdict stands, and the supervisor begins the
//!   round's run once that one ended, as before.
//!
//! The begin takes the old master and the anti-flap window from the group's replicated state
//! when the entry applies, as the supervisor read them from it when proposing.

use super::apply::{Applied, BeginRun};
use super::journal::RunKind;
use super::ClusterState;
use crate::model::{Verdict, VerdictKind};

/// A manager that can apply [`super::Cmd::RecordVerdictAndBegin`] registers this feature; the
/// monitor proposes one only when every member did (an older build would refuse the entry and
/// stop applying its log), else the verdict alone.
pub const FEATURE_VERDICT_BEGINS: &str = "verdict-begins";

impl ClusterState {
    pub(super) fn record_verdict_and_begin(
        &mut self,
        group: &str,
        verdict: &Verdict,
        at: u64,
    ) -> Applied {
        let changed = self.record_verdict(group, verdict)?;
        if verdict.kind != VerdictKind::Dead {
            return Ok(changed);
        }
        let Some(g) = self.groups.get(group) else {
            return Ok(changed);
        };
        let (old_master, anti_flap_ms) =
            (g.topology.master.clone(), g.spec.failover.anti_flap_ms());
        // Its refusal is recorded by the rule itself (or is a run already active): the entry
        // stands for its verdict either way.
        let _ = self.begin_failover(
            BeginRun {
                group,
                kind: RunKind::Auto,
                old_master: &old_master,
                verdict_round: Some(verdict.round),
                anti_flap_ms,
                forced: None,
            },
            at,
        );
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Health, Verdict, VerdictKind};
    use crate::state::group::tests::put;
    use crate::state::journal::RunKind;
    use crate::state::{ClusterState, Cmd, CmdResult};

    fn verdict(kind: VerdictKind, round: u64) -> Box<Verdict> {
        Box::new(crate::state::tests::a_verdict(kind, round))
    }

    fn both(kind: VerdictKind, round: u64) -> Cmd {
        Cmd::RecordVerdictAndBegin {
            group: "g".into(),
            verdict: verdict(kind, round),
        }
    }

    /// The verdict, then the begin the supervisor would propose, in two entries.
    fn apart(s: &mut ClusterState, kind: VerdictKind, round: u64, at: u64) {
        s.apply(
            &Cmd::RecordVerdict {
                group: "g".into(),
                verdict: verdict(kind, round),
            },
            at,
        );
        if kind == VerdictKind::Dead {
            let g = &s.groups["g"];
            let begin = Cmd::BeginFailover {
                group: "g".into(),
                kind: RunKind::Auto,
                old_master: g.topology.master.clone(),
                verdict_round: Some(round),
                anti_flap_ms: g.spec.failover.anti_flap_ms(),
                forced: None,
            };
            s.apply(&begin, at);
        }
    }

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        assert_eq!(s.apply(&put("g"), 1), CmdResult::Ok);
        s
    }

    /// The same state as the two entries in a row (but for the count of applied commands):
    /// from an idle group, a paused one, a blocked one, one within the anti-flap window (each
    /// refusal recorded), one with a run active, and for a verdict of unreachable-but-alive; a
    /// verdict of a round recorded before is refused whole.
    #[test]
    fn one_entry_is_the_verdict_then_the_begin() {
        let pause = Cmd::PauseGroup {
            group: "g".into(),
            by: "alice (operator)".into(),
            reason: "upgrade".into(),
            for_ms: None,
        };
        let manual = Cmd::BeginFailover {
            group: "g".into(),
            kind: RunKind::Manual,
            old_master: "db1".into(),
            verdict_round: None,
            anti_flap_ms: 0,
            forced: None,
        };
        // A failover completed 60 ms before the entry (the window is minutes long), and a failed
        // run waiting for its acknowledgement.
        let mut flapped = state();
        flapped
            .failover
            .entry("g".into())
            .or_default()
            .last_completed_at_ms = Some(40);
        let mut blocked = state();
        blocked.failover.entry("g".into()).or_default().blocked = Some("run 1 failed".into());
        // (name, the state before, the verdict, what the begin's refusal says if refused)
        let cases: Vec<(&str, ClusterState, VerdictKind, Option<&str>)> = vec![
            ("idle", state(), VerdictKind::Dead, None),
            (
                "paused",
                with(state(), &pause),
                VerdictKind::Dead,
                Some("paused"),
            ),
            (
                "blocked",
                blocked,
                VerdictKind::Dead,
                Some("blocked until acknowledged"),
            ),
            (
                "within the anti-flap window",
                flapped,
                VerdictKind::Dead,
                Some("anti-flap window"),
            ),
            (
                "a manual run active",
                with(state(), &manual),
                VerdictKind::Dead,
                None,
            ),
            ("alive", state(), VerdictKind::UnreachableButAlive, None),
        ];
        for (name, before, kind, refused) in cases {
            let mut one = before.clone();
            let r = one.apply(&both(kind, 7), 100);
            assert_eq!(r, CmdResult::Ok, "{name}");
            let mut two = before.clone();
            apart(&mut two, kind, 7, 100);
            two.applied_cmds = one.applied_cmds;
            assert_eq!(one, two, "{name}");
            let f = one.failover.get("g").cloned().unwrap_or_default();
            match refused {
                Some(why) => {
                    let last = f.refusals.last().map(|r| r.reason.as_str());
                    assert!(last.is_some_and(|r| r.contains(why)), "{name}: {last:?}");
                    assert_eq!(f.handled_round, Some(7), "{name}");
                }
                None => assert!(f.refusals.is_empty(), "{name}: {:?}", f.refusals),
            }
            let again = one.apply(&both(kind, 7), 101);
            assert!(matches!(again, CmdResult::Rejected(_)), "{name}: {again:?}");
        }
        // What the idle case did: Dead, and the run of round 7 begun at the entry's time.
        let mut s = state();
        s.apply(&both(VerdictKind::Dead, 7), 100);
        assert!(matches!(
            s.groups["g"].health.state,
            Health::Dead { round: 7, .. }
        ));
        let run = &s.runs[&s.failover["g"].active_run.unwrap()];
        assert_eq!(
            (
                run.kind,
                run.verdict_round,
                run.old_master.as_str(),
                run.started_at_ms
            ),
            (RunKind::Auto, Some(7), "db1", 100)
        );
        // Paused: the refusal recorded, the round handled, the verdict standing.
        let mut s = with(state(), &pause);
        s.apply(&both(VerdictKind::Dead, 7), 100);
        let f = &s.failover["g"];
        assert_eq!((f.active_run, f.handled_round), (None, Some(7)));
        assert!(f.refusals.last().unwrap().reason.contains("paused"));
        assert!(matches!(
            s.groups["g"].health.state,
            Health::Dead { round: 7, .. }
        ));
    }

    fn with(mut s: ClusterState, cmd: &Cmd) -> ClusterState {
        assert_eq!(s.apply(cmd, 5), CmdResult::Ok);
        s
    }

    #[test]
    fn round_trips_through_serde() {
        let c = both(VerdictKind::Dead, 3);
        let back: Cmd = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
