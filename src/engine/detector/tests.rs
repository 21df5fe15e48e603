//! Unit tests of the failure detector: every transition, fed events, asserting actions.
use super::*;

fn cfg() -> DetectorConfig {
    DetectorConfig {
        ping_interval_ms: 1000,
        suspect_interval_ms: 200,
        failure_threshold: 3,
        managers: 3,
        replicas: vec!["db2".into(), "db3".into()],
        replica_policy: ReplicaPolicy::NoneConnected,
        corroboration_timeout_ms: 2000,
    }
}

/// A new leader's detector (manager 2) restoring round 7, opened at `since_ms`.
fn restored(since_ms: u64) -> Detector {
    Detector::new(
        cfg(),
        2,
        "zone-2".into(),
        Health::Suspect { round: 7, since_ms },
        8,
    )
}

fn det(c: DetectorConfig) -> Detector {
    Detector::new(c, 1, "zone-1".into(), Health::Alive, 1)
}

fn fail(d: &mut Detector, at: u64) -> Vec<Action> {
    d.handle(Event::PingFailed {
        at_ms: at,
        error: "connect: refused".into(),
        proves_alive: false,
    })
}

fn vote(d: &mut Detector, m: u64, reachable: bool, at: u64) -> Vec<Action> {
    let round = d.open_round().unwrap_or(0);
    d.handle(Event::Vote {
        round,
        vote: ManagerVote {
            manager: m,
            zone: format!("zone-{m}"),
            reachable,
            detail: String::new(),
            at_ms: at,
        },
    })
}

fn replica(d: &mut Detector, n: &str, connected: bool, at: u64) -> Vec<Action> {
    let io = if connected {
        ReplicaIo::Connected {
            detail: "Yes".into(),
        }
    } else {
        ReplicaIo::Disconnected {
            detail: "Connecting".into(),
        }
    };
    let round = d.open_round().unwrap_or(0);
    d.handle(Event::Replica {
        round,
        name: n.into(),
        io,
        at_ms: at,
    })
}

fn verdicts(a: &[Action]) -> Vec<&Verdict> {
    a.iter()
        .filter_map(|x| {
            if let Action::Verdict(v) = x {
                Some(v)
            } else {
                None
            }
        })
        .collect()
}

/// A healthy master: ping again after ping_interval.
#[test]
fn ok_pings_keep_alive() {
    let mut d = det(cfg());
    assert_eq!(d.start(0), vec![Action::Ping { after_ms: 0 }]);
    assert_eq!(
        d.handle(Event::PingOk { at_ms: 1 }),
        vec![Action::Ping { after_ms: 1000 }]
    );
    assert_eq!(d.health(), &Health::Alive);
}

/// The first failure makes the master suspect, starts corroboration at once, and re-probes
/// at suspect_interval.
#[test]
fn first_failure_suspects_and_corroborates_at_once() {
    let mut d = det(cfg());
    let a = fail(&mut d, 100);
    assert_eq!(
        a,
        vec![
            Action::StartCorroboration {
                round: 1,
                since_ms: 100
            },
            Action::Ping { after_ms: 200 }
        ]
    );
    assert_eq!(
        d.health(),
        &Health::Suspect {
            round: 1,
            since_ms: 100
        }
    );
    // A second failure does not open a second round.
    assert_eq!(fail(&mut d, 300), vec![Action::Ping { after_ms: 200 }]);
}

/// Errors that prove the server is up (access denied, too many connections) are not failures.
#[test]
fn alive_proving_errors_do_not_count() {
    let mut d = det(cfg());
    let a = d.handle(Event::PingFailed {
        at_ms: 5,
        error: "1040 too many connections".into(),
        proves_alive: true,
    });
    assert_eq!(a, vec![Action::Ping { after_ms: 1000 }]);
    assert_eq!(d.health(), &Health::Alive);
    assert_eq!(d.failures(), 0);
}

/// Dead: threshold reached, a majority of managers cannot reach it, no replica connected.
/// The verdict carries every vote (the leader's first) and comes exactly once.
#[test]
fn dead_with_majority_and_no_replica() {
    let mut d = det(cfg());
    fail(&mut d, 0);
    assert!(verdicts(&vote(&mut d, 2, false, 10)).is_empty());
    assert!(verdicts(&replica(&mut d, "db2", false, 20)).is_empty());
    assert!(verdicts(&replica(&mut d, "db3", false, 30)).is_empty());
    assert!(
        verdicts(&fail(&mut d, 200)).is_empty(),
        "threshold not reached"
    );
    assert!(
        verdicts(&vote(&mut d, 3, false, 250)).is_empty(),
        "threshold not reached"
    );
    let a = fail(&mut d, 400);
    let v = verdicts(&a);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, VerdictKind::Dead);
    assert_eq!(v[0].round, 1);
    assert_eq!(v[0].failures, 3);
    assert_eq!(
        v[0].votes.iter().map(|x| x.manager).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(!v[0].votes[0].reachable);
    assert_eq!(v[0].replicas.len(), 2);
    assert_eq!(
        d.health(),
        &Health::Dead {
            round: 1,
            at_ms: 400
        }
    );
    // Nothing more comes out for this master while it stays down.
    assert!(verdicts(&fail(&mut d, 600)).is_empty());
    assert!(verdicts(&vote(&mut d, 2, false, 700)).is_empty());
}

/// Two of three managers suffice; the third's vote is not needed once its replica reports
/// and the majority are in — but missing evidence is waited for until the timeout.
#[test]
fn waits_for_evidence_then_decides_at_timeout() {
    let mut d = det(cfg());
    fail(&mut d, 0);
    fail(&mut d, 200);
    fail(&mut d, 400);
    assert_eq!(
        d.health(),
        &Health::Suspect {
            round: 1,
            since_ms: 0
        }
    );
    assert!(
        verdicts(&vote(&mut d, 2, false, 450)).is_empty(),
        "replicas have not reported"
    );
    replica(&mut d, "db2", false, 460);
    // db3 never answers; manager 3 never votes: decide at the timeout with what arrived.
    let a = d.handle(Event::CorroborationTimeout {
        round: 1,
        at_ms: 2000,
    });
    let v = verdicts(&a);
    assert_eq!(v[0].kind, VerdictKind::Dead, "{}", v[0].reason);
    assert_eq!(v[0].at_ms, 2000);
}

/// The leader's zone alone is cut off: both followers reach the master → no Dead, at once.
#[test]
fn leader_zone_cut_off_is_not_death() {
    let mut d = det(cfg());
    fail(&mut d, 0);
    assert!(
        verdicts(&vote(&mut d, 2, true, 10)).is_empty(),
        "one reachable vote cannot veto a majority yet"
    );
    let v = verdicts(&vote(&mut d, 3, true, 20))
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, VerdictKind::UnreachableButAlive);
    assert!(
        v[0].reason.contains("still reach the master"),
        "{}",
        v[0].reason
    );
    // Back to watching: the next success is plain Alive, the next failure a new round.
    d.handle(Event::PingOk { at_ms: 30 });
    assert_eq!(d.health(), &Health::Alive);
    let a = fail(&mut d, 40);
    assert!(a.contains(&Action::StartCorroboration {
        round: 2,
        since_ms: 40
    }));
}

/// The master is cut off from every manager but its replicas still replicate from it.
#[test]
fn replicas_connected_means_unreachable_but_alive() {
    let mut d = det(cfg());
    fail(&mut d, 0);
    vote(&mut d, 2, false, 1);
    vote(&mut d, 3, false, 2);
    replica(&mut d, "db2", true, 3);
    replica(&mut d, "db3", false, 4);
    fail(&mut d, 200);
    let a = fail(&mut d, 400);
    let v = verdicts(&a);
    assert_eq!(v[0].kind, VerdictKind::UnreachableButAlive);
    assert!(v[0].reason.contains("db2"), "{}", v[0].reason);
}

/// With replicas ignored, the managers' majority alone decides.
#[test]
fn policy_ignore_replicas() {
    let mut d = det(DetectorConfig {
        replica_policy: ReplicaPolicy::Ignore,
        ..cfg()
    });
    fail(&mut d, 0);
    vote(&mut d, 2, false, 1);
    vote(&mut d, 3, false, 2);
    replica(&mut d, "db2", true, 3);
    fail(&mut d, 200);
    assert_eq!(verdicts(&fail(&mut d, 400))[0].kind, VerdictKind::Dead);
}

/// With AllMustReport, a replica that could not be asked blocks a Dead verdict.
#[test]
fn policy_all_replicas_must_report() {
    let mut d = det(DetectorConfig {
        replica_policy: ReplicaPolicy::AllMustReport,
        ..cfg()
    });
    fail(&mut d, 0);
    vote(&mut d, 2, false, 1);
    vote(&mut d, 3, false, 2);
    replica(&mut d, "db2", false, 3);
    d.handle(Event::Replica {
        round: 1,
        name: "db3".into(),
        io: ReplicaIo::Unreachable {
            detail: "timeout".into(),
        },
        at_ms: 4,
    });
    fail(&mut d, 200);
    let v = fail(&mut d, 400);
    assert_eq!(verdicts(&v)[0].kind, VerdictKind::UnreachableButAlive);
}

/// Flapping pings never accumulate to a verdict: each success resets the count and closes
/// the round.
#[test]
fn flapping_never_kills() {
    let mut d = det(cfg());
    let mut all = Vec::new();
    for i in 0..20u64 {
        all.extend(fail(&mut d, i * 100));
        all.extend(fail(&mut d, i * 100 + 10));
        all.extend(d.handle(Event::PingOk {
            at_ms: i * 100 + 20,
        }));
    }
    assert!(verdicts(&all).is_empty());
    assert_eq!(d.health(), &Health::Alive);
    let rounds = all
        .iter()
        .filter(|a| matches!(a, Action::StartCorroboration { .. }))
        .count();
    assert_eq!(rounds, 20);
}

/// EOF on the monitoring connection suspects at once (and re-pings immediately) without
/// counting as a failed ping.
#[test]
fn connection_lost_is_an_early_signal() {
    let mut d = det(cfg());
    let a = d.handle(Event::ConnectionLost { at_ms: 7 });
    assert_eq!(
        a,
        vec![
            Action::StartCorroboration {
                round: 1,
                since_ms: 7
            },
            Action::Ping { after_ms: 0 }
        ]
    );
    assert_eq!(d.failures(), 0);
}

/// A new leader restores an open round from the replicated state: it re-asks for evidence
/// for the SAME round, and its verdict names that round.
#[test]
fn restored_round_is_resumed_not_restarted() {
    let mut d = restored(50);
    let a = d.start(1000);
    assert_eq!(
        a,
        vec![
            Action::Ping { after_ms: 0 },
            Action::StartCorroboration {
                round: 7,
                since_ms: 50
            }
        ]
    );
    let mut out = Vec::new();
    for t in [1001, 1201, 1401] {
        out.extend(fail(&mut d, t));
    }
    out.extend(vote(&mut d, 1, false, 1402));
    out.extend(replica(&mut d, "db2", false, 1403));
    out.extend(replica(&mut d, "db3", false, 1404));
    out.extend(vote(&mut d, 3, false, 1405));
    let v = verdicts(&out);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].round, 7);
    assert_eq!(v[0].suspected_at_ms, 50);
    assert!(!out
        .iter()
        .any(|a| matches!(a, Action::StartCorroboration { round, .. } if *round != 7)));
}

/// A dead master that answers again is Alive again.
#[test]
fn dead_master_recovers_on_ping_ok() {
    let mut d = Detector::new(cfg(), 1, "z".into(), Health::Dead { round: 3, at_ms: 9 }, 4);
    assert!(verdicts(&fail(&mut d, 10)).is_empty());
    d.handle(Event::PingOk { at_ms: 11 });
    assert_eq!(d.health(), &Health::Alive);
}

/// Evidence for a round that is not open (late or stale) changes nothing.
#[test]
fn stale_evidence_is_ignored() {
    let mut d = det(cfg());
    assert!(vote(&mut d, 2, false, 1).is_empty());
    assert!(d
        .handle(Event::CorroborationTimeout { round: 9, at_ms: 2 })
        .is_empty());
    fail(&mut d, 3);
    assert!(d
        .handle(Event::CorroborationTimeout { round: 9, at_ms: 4 })
        .is_empty());
    assert_eq!(
        d.health(),
        &Health::Suspect {
            round: 1,
            since_ms: 3
        }
    );
}

/// A single-manager cluster decides on its own evidence.
#[test]
fn single_manager() {
    let mut d = det(DetectorConfig {
        managers: 1,
        replicas: vec![],
        ..cfg()
    });
    fail(&mut d, 0);
    fail(&mut d, 1);
    assert_eq!(verdicts(&fail(&mut d, 2))[0].kind, VerdictKind::Dead);
}

/// A dead manager's vote is not waited for: once a majority of the voters (the leader
/// included) cannot reach the master and the replicas reported, the verdict comes at once,
/// without the corroboration timeout. Five managers: the leader and one follower are not yet
/// a majority; a second follower makes it.
#[test]
fn dead_managers_vote_is_not_waited_for() {
    let mut d = det(DetectorConfig {
        managers: 5,
        ..cfg()
    });
    for t in [0, 200, 400] {
        fail(&mut d, t);
    }
    replica(&mut d, "db2", false, 410);
    replica(&mut d, "db3", false, 420);
    assert!(
        verdicts(&vote(&mut d, 2, false, 430)).is_empty(),
        "2 of 5 is no majority"
    );
    let a = vote(&mut d, 3, false, 440);
    let v = verdicts(&a);
    assert_eq!(v.len(), 1, "managers 4 and 5 are not waited for");
    assert_eq!(v[0].kind, VerdictKind::Dead, "{}", v[0].reason);
    assert_eq!(v[0].at_ms, 440);
    assert_eq!(
        v[0].reason,
        "3 of 5 managers cannot reach the master and no replica is connected to it; 2 \
         manager(s) not heard from, not waited for: the majority was in"
    );
    // A late vote changes nothing.
    assert!(verdicts(&vote(&mut d, 4, true, 450)).is_empty());
}

/// The majority alone does not skip the replicas' evidence.
#[test]
fn majority_still_waits_for_replicas() {
    let mut d = det(cfg());
    for t in [0, 200, 400] {
        fail(&mut d, t);
    }
    assert!(verdicts(&vote(&mut d, 2, false, 410)).is_empty());
    assert!(verdicts(&replica(&mut d, "db2", false, 420)).is_empty());
    let v = verdicts(&replica(&mut d, "db3", true, 430))
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        v[0].kind,
        VerdictKind::UnreachableButAlive,
        "{}",
        v[0].reason
    );
}

/// A new leader finishes a restored round on its first failed ping: the previous leader's
/// failures stand for the rest of the count.
#[test]
fn restored_round_is_decided_after_one_own_failure() {
    let mut d = restored(50);
    d.start(1000);
    let mut out = vote(&mut d, 3, false, 1001);
    out.extend(replica(&mut d, "db2", false, 1002));
    out.extend(replica(&mut d, "db3", false, 1003));
    assert!(verdicts(&out).is_empty(), "no failure of its own yet");
    let a = fail(&mut d, 1004);
    let v = verdicts(&a);
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].kind, v[0].round, v[0].failures),
        (VerdictKind::Dead, 7, 3)
    );
    // Credit only as far as the round's age allows (one failure per re-probe interval), and
    // none for a round too old to trust.
    for (since, start, credit) in [(900, 1000, 0), (700, 1000, 1), (0, 1000, 2), (0, 40_000, 0)] {
        let mut d = restored(since);
        d.start(start);
        assert_eq!(
            d.failures(),
            credit,
            "round since {since}, leader from {start}"
        );
    }
    // A fresh detector still needs the whole count.
    let mut fresh = det(cfg());
    vote(&mut fresh, 2, false, 0);
    replica(&mut fresh, "db2", false, 1);
    replica(&mut fresh, "db3", false, 2);
    assert!(verdicts(&fail(&mut fresh, 3)).is_empty());
}

/// A vote or a replica report asked for in an earlier round is evidence of another moment:
/// dropped, it counts toward nothing (a late "down" vote must not settle the next round).
#[test]
fn evidence_from_another_round_is_dropped() {
    let mut d = det(cfg());
    fail(&mut d, 0);
    assert!(d
        .handle(Event::PingOk { at_ms: 100 })
        .iter()
        .all(|a| !matches!(a, Action::Verdict(_))));
    fail(&mut d, 200);
    assert_eq!(d.open_round(), Some(2));
    let stale = |d: &mut Detector| {
        d.handle(Event::Vote {
            round: 1,
            vote: ManagerVote {
                manager: 2,
                zone: "zone-2".into(),
                reachable: false,
                detail: String::new(),
                at_ms: 210,
            },
        });
        d.handle(Event::Replica {
            round: 1,
            name: "db2".into(),
            io: ReplicaIo::Disconnected {
                detail: "Connecting".into(),
            },
            at_ms: 211,
        })
    };
    assert!(stale(&mut d).is_empty());
    replica(&mut d, "db3", false, 220);
    fail(&mut d, 400);
    assert!(
        verdicts(&fail(&mut d, 600)).is_empty(),
        "the stale vote and report did not count"
    );
    vote(&mut d, 2, false, 610);
    let v = verdicts(&replica(&mut d, "db2", false, 620))
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!((v[0].kind, v[0].round), (VerdictKind::Dead, 2));
}
