//! The journal's rules, table by table (state/journal.rs).

use super::*;
use crate::state::{ClusterState, Cmd, CmdResult, Rejection};

const MIN: u64 = 60_000;

fn state() -> ClusterState {
    use crate::state::group::{tests::spec, ReplicationMode, Topology};
    let mut s = ClusterState::default();
    let topology = Topology {
        master: "db1".into(),
        servers: Default::default(),
        mode: ReplicationMode::MariadbGtid,
        semisync: true,
        warnings: vec![],
        discovered_at_ms: 0,
    };
    s.apply(
        &Cmd::PutGroup {
            spec: Box::new(spec("g")),
            topology: Box::new(topology),
            replace: false,
            exclusive: false,
        },
        0,
    );
    s
}

fn begin(kind: RunKind) -> Cmd {
    Cmd::BeginFailover {
        group: "g".into(),
        kind,
        old_master: "db1".into(),
        // No verdict round: these tests are about the journal, not about which verdict a
        // run answers (state/pause.rs tests an automatic run's round against the health).
        verdict_round: None,
        anti_flap_ms: DEFAULT_ANTI_FLAP_MS,
        forced: None,
    }
}

fn step(s: &mut ClusterState, run: u64, name: StepName, term: u64, at: u64) {
    assert_eq!(
        s.apply(
            &Cmd::StepBegin {
                run,
                step: name,
                term,
                node: 1
            },
            at
        ),
        CmdResult::Ok,
        "{name:?} begin"
    );
    let end = Cmd::StepEnd {
        run,
        step: name,
        term,
        outcome: StepOutcome::Done("ok".into()),
    };
    assert_eq!(s.apply(&end, at + 1), CmdResult::Ok, "{name:?} end");
}

/// Run `run` through phase 1 and into phase 2 (Fence running) in `term`, from time `at`.
fn to_fence(s: &mut ClusterState, run: u64, term: u64, at: u64) {
    step(s, run, StepName::ConfigCheck, term, at);
    let fence = Cmd::StepBegin {
        run,
        step: StepName::Fence,
        term,
        node: 1,
    };
    assert_eq!(s.apply(&fence, at + 1), CmdResult::Ok, "Fence begin");
}

/// The steps a GTID run goes through (3.4 is skipped from the start).
fn gtid_steps() -> impl Iterator<Item = StepName> {
    StepName::ALL
        .into_iter()
        .filter(|n| *n != StepName::GenerateDiffs)
}

fn complete(s: &mut ClusterState, run: u64, term: u64, at: u64) {
    for n in gtid_steps() {
        step(s, run, n, term, at);
    }
    assert_eq!(
        s.apply(&Cmd::FinishFailover { run, failed: None }, at + 2),
        CmdResult::Ok
    );
}

/// Steps run in MHA's order only; one run at a time per group; completing needs every step;
/// each run bumps the group's epoch.
#[test]
fn steps_in_order_one_run_at_a_time() {
    let mut s = state();
    assert_eq!(s.apply(&begin(RunKind::Auto), 10), CmdResult::Ok);
    assert_eq!(s.runs[&1].epoch, 1);
    assert!(
        matches!(
            s.apply(&begin(RunKind::Manual), 11),
            CmdResult::Rejected { .. }
        ),
        "one active run"
    );
    let skip = Cmd::StepBegin {
        run: 1,
        step: StepName::Fence,
        term: 3,
        node: 1,
    };
    assert!(
        matches!(s.apply(&skip, 12), CmdResult::Rejected { .. }),
        "Fence before ConfigCheck"
    );
    step(&mut s, 1, StepName::ConfigCheck, 3, 13);
    assert!(matches!(
        s.apply(
            &Cmd::FinishFailover {
                run: 1,
                failed: None
            },
            14
        ),
        CmdResult::Rejected { .. }
    ));
    for n in gtid_steps().skip(1) {
        step(&mut s, 1, n, 3, 15);
    }
    assert!(matches!(
        s.runs[&1].steps[5].state,
        StepState::Skipped { .. }
    ));
    assert_eq!(
        s.apply(
            &Cmd::FinishFailover {
                run: 1,
                failed: None
            },
            16
        ),
        CmdResult::Ok
    );
    assert_eq!(s.failover["g"].active_run, None);
    assert_eq!(
        s.apply(&Cmd::AckFailover { group: "g".into() }, 17),
        CmdResult::Ok
    );
    assert_eq!(s.apply(&begin(RunKind::Auto), 18), CmdResult::Ok);
    assert_eq!(s.runs[&2].epoch, 2);
}

/// A new leader takes over a running step in a higher term (re-check, attempt 2); the old
/// leader's late end and any stale-term begin are refused.
#[test]
fn resume_in_new_term_refuses_the_old_leader() {
    let mut s = state();
    s.apply(&begin(RunKind::Auto), 10);
    step(&mut s, 1, StepName::ConfigCheck, 5, 11);
    assert_eq!(
        s.apply(
            &Cmd::StepBegin {
                run: 1,
                step: StepName::Fence,
                term: 5,
                node: 1
            },
            12
        ),
        CmdResult::Ok
    );
    // Leader 1 dies mid-step; leader 2 (term 6) resumes the first unfinished step.
    assert_eq!(s.runs[&1].first_unfinished(), Some(StepName::Fence));
    assert_eq!(
        s.apply(
            &Cmd::StepBegin {
                run: 1,
                step: StepName::Fence,
                term: 6,
                node: 2
            },
            13
        ),
        CmdResult::Ok
    );
    assert!(matches!(
        s.runs[&1].steps[1].state,
        StepState::Running {
            term: 6,
            node: 2,
            attempts: 2,
            started_at_ms: 12
        }
    ));
    let late = Cmd::StepEnd {
        run: 1,
        step: StepName::Fence,
        term: 5,
        outcome: StepOutcome::Done("zombie".into()),
    };
    assert!(
        matches!(s.apply(&late, 14), CmdResult::Rejected { .. }),
        "a deposed leader's end is refused"
    );
    let stale = Cmd::StepBegin {
        run: 1,
        step: StepName::Fence,
        term: 4,
        node: 3,
    };
    assert!(matches!(s.apply(&stale, 15), CmdResult::Rejected { .. }));
    let end = Cmd::StepEnd {
        run: 1,
        step: StepName::Fence,
        term: 6,
        outcome: StepOutcome::Done("fenced".into()),
    };
    assert_eq!(s.apply(&end, 16), CmdResult::Ok);
}

/// Within its term the leader may move a running step to another manager (the one it
/// delegated to stopped answering): the step is begun again naming the new actor, whose
/// end is then accepted; an older term still cannot.
#[test]
fn a_step_moves_to_another_actor_within_the_term() {
    let mut s = state();
    s.apply(&begin(RunKind::Auto), 10);
    let begin_on = |node, term| Cmd::StepBegin {
        run: 1,
        step: StepName::ConfigCheck,
        term,
        node,
    };
    assert_eq!(s.apply(&begin_on(2, 7), 11), CmdResult::Ok);
    assert_eq!(s.apply(&begin_on(3, 7), 12), CmdResult::Ok);
    let st = s.runs[&1].steps[0].state.clone();
    assert!(
        matches!(
            st,
            StepState::Running {
                node: 3,
                term: 7,
                attempts: 2,
                started_at_ms: 11
            }
        ),
        "{st:?}"
    );
    assert!(matches!(
        s.apply(&begin_on(2, 6), 13),
        CmdResult::Rejected { .. }
    ));
    let end = Cmd::StepEnd {
        run: 1,
        step: StepName::ConfigCheck,
        term: 7,
        outcome: StepOutcome::Done("checked from zone 3".into()),
    };
    assert_eq!(s.apply(&end, 14), CmdResult::Ok);
    assert!(matches!(
        s.runs[&1].steps[0].state,
        StepState::Done { node: 3, .. }
    ));
}

/// One entry ends a step and begins the next; it applies entirely or not at all.
#[test]
fn advance_ends_and_begins_atomically() {
    let mut s = state();
    s.apply(&begin(RunKind::Auto), 10);
    s.apply(
        &Cmd::StepBegin {
            run: 1,
            step: StepName::ConfigCheck,
            term: 3,
            node: 1,
        },
        11,
    );
    let adv = |term| Cmd::StepAdvance {
        run: 1,
        step: StepName::ConfigCheck,
        term,
        outcome: StepOutcome::Done("ok".into()),
        node: 1,
    };
    let before = s.clone();
    assert!(matches!(s.apply(&adv(2), 12), CmdResult::Rejected { .. }));
    assert_eq!(s.runs, before.runs, "a refused advance changes nothing");
    assert_eq!(s.apply(&adv(3), 13), CmdResult::Ok);
    assert!(matches!(s.runs[&1].steps[0].state, StepState::Done { .. }));
    assert!(matches!(
        s.runs[&1].steps[1].state,
        StepState::Running {
            term: 3,
            attempts: 1,
            ..
        }
    ));
}

/// The new master is decided once: repeating the same decision is a no-op, another is refused.
#[test]
fn decided_once() {
    let mut s = state();
    s.apply(&begin(RunKind::Auto), 10);
    let d = |m: &str| Decided {
        new_master: m.into(),
        rule: "candidate_master".into(),
        target: Target::Gtid("0-1-9".into()),
    };
    assert_eq!(
        s.apply(
            &Cmd::Decide {
                run: 1,
                decided: d("db2")
            },
            11
        ),
        CmdResult::Ok
    );
    assert_eq!(
        s.apply(
            &Cmd::Decide {
                run: 1,
                decided: d("db2")
            },
            12
        ),
        CmdResult::Unchanged
    );
    assert!(matches!(
        s.apply(
            &Cmd::Decide {
                run: 1,
                decided: d("db3")
            },
            13
        ),
        CmdResult::Rejected { .. }
    ));
    assert_eq!(s.runs[&1].decided.as_ref().unwrap().new_master, "db2");
}

/// Anti-flap, replicated: a second automatic failover within last_failover_minute is refused
/// and recorded; a manual one is not subject to it; `failover ack` clears the window.
#[test]
fn anti_flap_window() {
    let mut s = state();
    s.apply(&begin(RunKind::Auto), 0);
    complete(&mut s, 1, 2, 1);
    let again = s.apply(&begin(RunKind::Auto), 60 * MIN);
    match again {
        CmdResult::Rejected(Rejection::FailoverRefused { reason, .. }) => {
            assert!(reason.contains("anti-flap window of 480 min"), "{reason}")
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    assert_eq!(s.failover["g"].refusals.len(), 1);
    // After the window, automatic failover is allowed again.
    let mut later = s.clone();
    assert_eq!(later.apply(&begin(RunKind::Auto), 481 * MIN), CmdResult::Ok);
    // Within it, a manual run is allowed; after ack, an automatic one too.
    let mut manual = s.clone();
    assert_eq!(
        manual.apply(&begin(RunKind::Manual), 61 * MIN),
        CmdResult::Ok
    );
    assert_eq!(
        s.apply(&Cmd::AckFailover { group: "g".into() }, 62 * MIN),
        CmdResult::Ok
    );
    assert_eq!(s.apply(&begin(RunKind::Auto), 63 * MIN), CmdResult::Ok);
}

/// A failed run blocks automatic failover until acknowledged, once it touched servers
/// (phase 2 on); one that failed its configuration check blocks nothing (MHA).
#[test]
fn failed_run_blocks_until_ack() {
    let mut s = state();
    s.apply(&begin(RunKind::Manual), 0);
    assert_eq!(
        s.apply(
            &Cmd::FinishFailover {
                run: 1,
                failed: Some("master answers again".into())
            },
            1
        ),
        CmdResult::Ok
    );
    assert_eq!(
        s.failover["g"].blocked, None,
        "phase 1 failure blocks nothing"
    );
    s.apply(&begin(RunKind::Auto), 0);
    to_fence(&mut s, 2, 1, 1);
    assert_eq!(
        s.apply(
            &Cmd::FinishFailover {
                run: 2,
                failed: Some("promotion timed out".into())
            },
            5
        ),
        CmdResult::Ok
    );
    assert!(matches!(s.runs[&2].state, RunState::Failed { .. }));
    let r = s.apply(&begin(RunKind::Auto), 1000 * MIN);
    assert!(
        matches!(r, CmdResult::Rejected(Rejection::FailoverRefused { reason, .. }) if reason.contains("blocked until acknowledged"))
    );
    s.apply(&Cmd::AckFailover { group: "g".into() }, 1001 * MIN);
    assert_eq!(s.apply(&begin(RunKind::Auto), 1002 * MIN), CmdResult::Ok);
}

/// Phase names read like MHA's log.
#[test]
fn phase_banners() {
    assert_eq!(
        StepName::Fence.phase(),
        "Phase 2: Dead Master Shutdown Phase"
    );
    assert_eq!(StepName::ALL.len(), 9);
    let phases: Vec<&str> = StepName::ALL.iter().map(|s| s.phase()).collect();
    assert!(phases[3].starts_with("Phase 3.2") && phases[5].starts_with("Phase 3.4"));
}

/// A run journaled before phases 3.2 and 3.4 existed (seven steps, no recovery) still
/// reads, and resumes along its own step list.
#[test]
fn older_runs_still_read() {
    let mut r = FailoverRun::new(1, 1, RunKind::Auto, "g", "db1", None, 0);
    r.steps
        .retain(|s| !matches!(s.name, StepName::SaveMasterBinlog | StepName::GenerateDiffs));
    let mut v = serde_json::to_value(&r).unwrap();
    v.as_object_mut().unwrap().remove("recovery");
    let back: FailoverRun = serde_json::from_value(v).unwrap();
    assert_eq!(back.steps.len(), 7);
    assert_eq!(back.recovery, Default::default());
    assert_eq!(back.first_unfinished(), Some(StepName::ConfigCheck));
}

/// A step of the other kind of run (a failover's in a switchover, or the reverse) is refused
/// like any wrong step — never a panic in apply (found by tests/hostile_input.rs).
#[test]
fn a_step_the_run_does_not_have_is_refused() {
    let mut r = FailoverRun::new(1, 1, RunKind::Switchover, "g", "db1", None, 0);
    let failed = StepOutcome::Failed { detail: "x".into() };
    assert!(matches!(
        r.end_step(StepName::ConfigCheck, 1, failed.clone(), 5),
        Err(JournalError::NoSuchStep { run: 1, .. })
    ));
    let mut f = FailoverRun::new(2, 1, RunKind::Auto, "g", "db1", None, 0);
    assert!(matches!(
        f.end_step(StepName::SwitchCheck, 1, failed, 5),
        Err(JournalError::NoSuchStep { run: 2, .. })
    ));
    assert!(f.begin_step(StepName::SwitchCheck, 1, 1, 5).is_err());
}

/// Phases 3.1–3.3 gathered with 3.5's begin (state/batch.rs): one entry ends the fence, runs
/// 3.1–3.3, decides and begins 3.5 — the same run as the entries one by one.
#[test]
fn a_batch_is_its_entries_in_one() {
    let d = Decided {
        new_master: "db2".into(),
        rule: "candidate_master".into(),
        target: Target::Gtid("0-1-9".into()),
    };
    let adv = |step| Cmd::StepAdvance {
        run: 1,
        step,
        term: 3,
        outcome: StepOutcome::Done("ok".into()),
        node: 1,
    };
    let entries = vec![
        adv(StepName::Fence),
        adv(StepName::LatestReplicas),
        adv(StepName::SaveMasterBinlog),
        Cmd::Decide {
            run: 1,
            decided: d.clone(),
        },
        adv(StepName::ChooseNewMaster),
    ];
    let up_to_fence = || {
        let mut s = state();
        s.apply(&begin(RunKind::Auto), 10);
        to_fence(&mut s, 1, 3, 11);
        s
    };
    let mut one_by_one = up_to_fence();
    for e in &entries {
        assert_eq!(one_by_one.apply(e, 20), CmdResult::Ok, "{e}");
    }
    let mut batched = up_to_fence();
    let batch = Cmd::JournalBatch {
        run: 1,
        entries: entries.clone(),
    };
    assert_eq!(batched.apply(&batch, 20), CmdResult::Ok);
    assert_eq!(batched.runs[&1], one_by_one.runs[&1]);
    let run = &batched.runs[&1];
    assert_eq!(run.decided.as_ref(), Some(&d));
    assert_eq!(run.first_unfinished(), Some(StepName::PromoteNewMaster));
    assert!(matches!(
        run.steps
            .iter()
            .find(|s| s.name == StepName::PromoteNewMaster)
            .unwrap()
            .state,
        StepState::Running {
            term: 3,
            node: 1,
            attempts: 1,
            ..
        }
    ));
    // The log's form: a batch survives serde as it was written.
    let json = serde_json::to_string(&batch).unwrap();
    assert_eq!(serde_json::from_str::<Cmd>(&json).unwrap(), batch);
    // Applied again (a leader that lost track of its commit): refused whole, nothing changes.
    let before = batched.runs[&1].clone();
    assert!(matches!(batched.apply(&batch, 21), CmdResult::Rejected(_)));
    assert_eq!(batched.runs[&1], before);
}

/// All or nothing: a batch whose last entry is refused leaves the run as it was, so a journal
/// never shows 3.3 ended without its decision, nor a step begun that the batch did not end.
#[test]
fn a_batch_applies_all_or_nothing() {
    let mut s = state();
    s.apply(&begin(RunKind::Auto), 10);
    step(&mut s, 1, StepName::ConfigCheck, 3, 11);
    let d = |m: &str| Decided {
        new_master: m.into(),
        rule: "candidate_master".into(),
        target: Target::Gtid("0-1-9".into()),
    };
    // A decision taken before (a resumed run): a batch deciding otherwise is refused whole.
    s.apply(
        &Cmd::Decide {
            run: 1,
            decided: d("db3"),
        },
        12,
    );
    let before = s.runs[&1].clone();
    let fence_begin = |run| Cmd::StepBegin {
        run,
        step: StepName::Fence,
        term: 3,
        node: 1,
    };
    let refused = Cmd::JournalBatch {
        run: 1,
        entries: vec![
            fence_begin(1),
            Cmd::Decide {
                run: 1,
                decided: d("db2"),
            },
        ],
    };
    assert!(matches!(
        s.apply(&refused, 13),
        CmdResult::Rejected(Rejection::Journal(JournalError::AlreadyDecided { .. }))
    ));
    assert_eq!(
        s.runs[&1], before,
        "the Fence's begin is not applied either"
    );
    // Only this run's journal entries: another run's, or any other command, refuse the batch.
    for stranger in [fence_begin(2), Cmd::AckFailover { group: "g".into() }] {
        let batch = Cmd::JournalBatch {
            run: 1,
            entries: vec![fence_begin(1), stranger],
        };
        assert!(matches!(
            s.apply(&batch, 14),
            CmdResult::Rejected(Rejection::Journal(JournalError::NotInBatch { run: 1, .. }))
        ));
        assert_eq!(s.runs[&1], before);
    }
    // A batch of a run that does not exist.
    assert!(matches!(
        s.apply(
            &Cmd::JournalBatch {
                run: 9,
                entries: vec![]
            },
            15
        ),
        CmdResult::Rejected(Rejection::NoSuchRun { run: 9 })
    ));
}
