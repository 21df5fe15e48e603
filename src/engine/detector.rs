//! The master failure detector, sans-I/O: events in, actions out, time passed in as values.
//!
//! ```text
//!            ping ok                       first failure / connection lost
//!   Alive ◀──────────── Suspect ◀──────────────────────────────── Alive
//!     ▲                  │  (re-probe every suspect_interval; corroboration starts at once)
//!     │ ping ok          │ failures ≥ threshold and the evidence is in (or timed out)
//!     │                  ▼
//!     └──── UnreachableButAlive   or   Dead (verdict: the failover may start)
//! ```
//!
//! Dead requires, by default, that a majority of managers (this leader included) cannot reach
//! the master AND that no reachable replica still has a connected IO thread to it. Anything
//! else is recorded as Unreachable-but-alive and nothing acts on it. Each suspicion is a round
//! with an id; a verdict names its round, so a new leader resuming an open round (restored from
//! the replicated state) produces at most one verdict for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How replica reports weigh in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaPolicy {
    /// Dead only if no reachable replica still has a connected IO thread (default, safe).
    #[default]
    NoneConnected,
    /// Dead only if every replica answered and none is connected.
    AllMustReport,
    /// Replicas are not consulted (managers' majority alone decides).
    Ignore,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    pub ping_interval_ms: u64,
    pub suspect_interval_ms: u64,
    pub failure_threshold: u32,
    /// Voting managers, this leader included.
    pub managers: usize,
    /// Replicas of the master that are asked for their IO thread state.
    pub replicas: Vec<String>,
    pub replica_policy: ReplicaPolicy,
    /// How long to wait for votes and reports before deciding with what arrived.
    pub corroboration_timeout_ms: u64,
}

/// A follower manager's view of the master, from its own zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerVote {
    pub manager: u64,
    pub zone: String,
    pub reachable: bool,
    pub detail: String,
    pub at_ms: u64,
}

/// A replica's IO thread towards the master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReplicaIo {
    /// IO thread running and connected to the master.
    Connected { detail: String },
    /// IO thread not connected (connecting, stopped, error).
    Disconnected { detail: String },
    /// The replica itself could not be asked.
    Unreachable { detail: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Dead,
    UnreachableButAlive,
}

/// The committed outcome of a suspicion round, with every piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub kind: VerdictKind,
    pub round: u64,
    pub suspected_at_ms: u64,
    pub at_ms: u64,
    /// Consecutive failed pings of the leader.
    pub failures: u32,
    /// The leader's own vote first, then the followers'.
    pub votes: Vec<ManagerVote>,
    pub replicas: BTreeMap<String, ReplicaIo>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    #[default]
    Alive,
    Suspect {
        round: u64,
        since_ms: u64,
    },
    UnreachableButAlive {
        round: u64,
        since_ms: u64,
    },
    Dead {
        round: u64,
        at_ms: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ping the master after this many ms.
    Ping { after_ms: u64 },
    /// Ask every follower manager and every replica, for this round; report back by events. The
    /// leader records the open round in the replicated state.
    StartCorroboration { round: u64, since_ms: u64 },
    /// Commit this verdict.
    Verdict(Verdict),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    PingOk {
        at_ms: u64,
    },
    /// `proves_alive`: the server answered with an error that shows it is up (MHA's list).
    PingFailed {
        at_ms: u64,
        error: String,
        proves_alive: bool,
    },
    /// EOF/RST on the persistent monitoring connection: an early, free suspicion signal.
    ConnectionLost {
        at_ms: u64,
    },
    Vote(ManagerVote),
    Replica {
        name: String,
        io: ReplicaIo,
        at_ms: u64,
    },
    /// Called by the runtime when the corroboration timeout of `round` expires.
    CorroborationTimeout {
        round: u64,
        at_ms: u64,
    },
}

#[derive(Clone, Debug)]
struct Round {
    id: u64,
    since_ms: u64,
    started_ms: u64,
    votes: BTreeMap<u64, ManagerVote>,
    replicas: BTreeMap<String, ReplicaIo>,
    timed_out: bool,
}

#[derive(Clone, Debug)]
pub struct Detector {
    cfg: DetectorConfig,
    leader: u64,
    leader_zone: String,
    health: Health,
    failures: u32,
    last_error: String,
    round: Option<Round>,
    next_round: u64,
}

impl Detector {
    /// A detector for a master; `restored` is the group's health as last committed (a new leader
    /// continues an open round instead of starting blind), `next_round` the first unused round id.
    pub fn new(
        cfg: DetectorConfig,
        leader: u64,
        leader_zone: String,
        restored: Health,
        next_round: u64,
    ) -> Detector {
        let round = match &restored {
            Health::Suspect { round, since_ms } => Some(Round {
                id: *round,
                since_ms: *since_ms,
                started_ms: *since_ms,
                votes: BTreeMap::new(),
                replicas: BTreeMap::new(),
                timed_out: false,
            }),
            _ => None,
        };
        Detector {
            cfg,
            leader,
            leader_zone,
            health: restored,
            failures: 0,
            last_error: String::new(),
            round,
            next_round,
        }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// What to do first: ping now, and re-ask for evidence if a restored round is open.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = vec![Action::Ping { after_ms: 0 }];
        if let Some(r) = &mut self.round {
            r.started_ms = now_ms;
            out.push(Action::StartCorroboration {
                round: r.id,
                since_ms: r.since_ms,
            });
        }
        out
    }

    pub fn handle(&mut self, ev: Event) -> Vec<Action> {
        match ev {
            Event::PingOk { .. } => self.ping_ok(),
            Event::PingFailed {
                proves_alive: true, ..
            } => self.ping_ok(),
            Event::PingFailed {
                at_ms,
                error,
                proves_alive: false,
            } => {
                self.last_error = error;
                self.failed(at_ms, true)
            }
            Event::ConnectionLost { at_ms } => {
                self.last_error = "monitoring connection lost".into();
                self.failed(at_ms, false)
            }
            Event::Vote(v) => {
                let at = v.at_ms;
                if let Some(r) = &mut self.round {
                    r.votes.insert(v.manager, v);
                }
                self.evaluate(Some(at))
            }
            Event::Replica { name, io, at_ms } => {
                if let Some(r) = &mut self.round {
                    r.replicas.insert(name, io);
                }
                self.evaluate(Some(at_ms))
            }
            Event::CorroborationTimeout { round, at_ms } => {
                match &mut self.round {
                    Some(r) if r.id == round => r.timed_out = true,
                    _ => return Vec::new(),
                }
                self.evaluate(Some(at_ms))
            }
        }
    }

    fn ping_ok(&mut self) -> Vec<Action> {
        self.failures = 0;
        self.round = None;
        self.health = Health::Alive;
        vec![Action::Ping {
            after_ms: self.cfg.ping_interval_ms,
        }]
    }

    fn failed(&mut self, at_ms: u64, counts: bool) -> Vec<Action> {
        if matches!(self.health, Health::Dead { .. }) {
            return vec![Action::Ping {
                after_ms: self.cfg.ping_interval_ms,
            }];
        }
        if counts {
            self.failures += 1;
        }
        let mut out = Vec::new();
        if self.round.is_none() {
            let id = self.next_round;
            self.next_round += 1;
            self.round = Some(Round {
                id,
                since_ms: at_ms,
                started_ms: at_ms,
                votes: BTreeMap::new(),
                replicas: BTreeMap::new(),
                timed_out: false,
            });
            self.health = Health::Suspect {
                round: id,
                since_ms: at_ms,
            };
            // Corroboration starts with the first failure, in parallel with the count.
            out.push(Action::StartCorroboration {
                round: id,
                since_ms: at_ms,
            });
        }
        out.extend(self.evaluate(Some(at_ms)));
        let after = if counts {
            self.cfg.suspect_interval_ms
        } else {
            0
        };
        out.push(Action::Ping { after_ms: after });
        out
    }

    /// Decides when the evidence allows it. `now` is only needed to stamp a verdict.
    fn evaluate(&mut self, now: Option<u64>) -> Vec<Action> {
        let Some(r) = &self.round else {
            return Vec::new();
        };
        if !matches!(self.health, Health::Suspect { .. }) {
            return Vec::new();
        }
        let majority = self.cfg.managers / 2 + 1;
        let followers = self.cfg.managers.saturating_sub(1);
        let reachable = r.votes.values().filter(|v| v.reachable).count();
        let replica_connected: Vec<&String> = r
            .replicas
            .iter()
            .filter(|(_, io)| matches!(io, ReplicaIo::Connected { .. }))
            .map(|(n, _)| n)
            .collect();
        let all_votes = r.votes.len() >= followers;
        let all_replicas = self.cfg.replicas.iter().all(|n| r.replicas.contains_key(n));
        let complete = r.timed_out
            || (all_votes && (all_replicas || self.cfg.replica_policy == ReplicaPolicy::Ignore));

        // Alive evidence that no further vote can overturn: enough managers reach the master
        // that a majority can no longer say it is unreachable, or a replica is connected to it.
        let majority_impossible = reachable > self.cfg.managers - majority;
        let replica_veto =
            self.cfg.replica_policy != ReplicaPolicy::Ignore && !replica_connected.is_empty();
        let at_threshold = self.failures >= self.cfg.failure_threshold;
        let verdict = if majority_impossible || (replica_veto && at_threshold) {
            let reason = if majority_impossible {
                format!("{reachable} of {followers} other managers still reach the master")
            } else {
                format!(
                    "replica IO thread still connected: {}",
                    replica_connected
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Some((VerdictKind::UnreachableButAlive, reason))
        } else if at_threshold && complete {
            let unreachable = 1 + r.votes.values().filter(|v| !v.reachable).count();
            let replicas_ok = match self.cfg.replica_policy {
                ReplicaPolicy::Ignore => true,
                ReplicaPolicy::NoneConnected => replica_connected.is_empty(),
                ReplicaPolicy::AllMustReport => {
                    replica_connected.is_empty()
                        && self.cfg.replicas.iter().all(|n| {
                            matches!(r.replicas.get(n), Some(ReplicaIo::Disconnected { .. }))
                        })
                }
            };
            if unreachable >= majority && replicas_ok {
                Some((
                    VerdictKind::Dead,
                    format!(
                        "{unreachable} of {} managers cannot reach the master and no replica is connected to it",
                        self.cfg.managers
                    ),
                ))
            } else if unreachable < majority {
                Some((
                    VerdictKind::UnreachableButAlive,
                    format!("only {unreachable} of {} managers cannot reach the master (majority {majority})", self.cfg.managers),
                ))
            } else {
                Some((
                    VerdictKind::UnreachableButAlive,
                    "replica evidence is missing or not conclusive".into(),
                ))
            }
        } else {
            None
        };
        let Some((kind, reason)) = verdict else {
            return Vec::new();
        };
        let at_ms = now.unwrap_or(r.started_ms);
        let own = ManagerVote {
            manager: self.leader,
            zone: self.leader_zone.clone(),
            reachable: false,
            detail: format!(
                "{} consecutive failures: {}",
                self.failures, self.last_error
            ),
            at_ms,
        };
        let v = Verdict {
            kind,
            round: r.id,
            suspected_at_ms: r.since_ms,
            at_ms,
            failures: self.failures,
            votes: std::iter::once(own)
                .chain(r.votes.values().cloned())
                .collect(),
            replicas: r.replicas.clone(),
            reason,
        };
        self.health = match kind {
            VerdictKind::Dead => Health::Dead { round: r.id, at_ms },
            VerdictKind::UnreachableButAlive => Health::UnreachableButAlive {
                round: r.id,
                since_ms: r.since_ms,
            },
        };
        if kind == VerdictKind::UnreachableButAlive {
            // Keep watching: a later run of failures opens a new round.
            self.failures = 0;
            self.round = None;
        }
        vec![Action::Verdict(v)]
    }
}

#[cfg(test)]
mod tests {
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
        d.handle(Event::Vote(ManagerVote {
            manager: m,
            zone: format!("zone-{m}"),
            reachable,
            detail: String::new(),
            at_ms: at,
        }))
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
        d.handle(Event::Replica {
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
        let mut d = Detector::new(
            cfg(),
            2,
            "zone-2".into(),
            Health::Suspect {
                round: 7,
                since_ms: 50,
            },
            8,
        );
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
}
