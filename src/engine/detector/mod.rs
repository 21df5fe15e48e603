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
//! the replicated state) produces at most one verdict for it — and decides it after one failure
//! of its own ping, the previous leader's failures standing for the rest of the count.
//!
//! A Dead verdict does not wait for every manager's vote: once a majority of the voters (this
//! leader included) cannot reach the master, no missing vote can make a majority reach it, so
//! a dead manager costs no timeout. The replicas' evidence is still waited for.

pub mod bounds;
pub mod pulse;

use std::collections::BTreeMap;

use crate::model::{Health, ManagerVote, ReplicaIo, ReplicaPolicy, Verdict, VerdictKind};

/// A restored round older than this gets no credit for the previous leader's failures.
const RESTORED_CREDIT_MS: u64 = 30_000;

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
    /// A follower's vote, asked for in `round`: one that arrives after its round closed is
    /// evidence of another moment and is dropped.
    Vote {
        round: u64,
        vote: ManagerVote,
    },
    /// A replica's report, asked for in `round` (dropped in another round, as votes).
    Replica {
        round: u64,
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
        // A restored round's credit for the previous leader's failures is set by `start`.
        let failures = 0;
        Detector {
            cfg,
            leader,
            leader_zone,
            health: restored,
            failures,
            last_error: String::new(),
            round,
            next_round,
        }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The open round's id, if a round is open.
    pub fn open_round(&self) -> Option<u64> {
        self.round.as_ref().map(|r| r.id)
    }

    /// The voting managers now (this leader included): the membership may have changed since
    /// the monitor started, and a round's majority is of the voters it asked.
    pub fn set_managers(&mut self, managers: usize) {
        self.cfg.managers = managers.max(1);
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// What to do first: ping now, and re-ask for evidence if a restored round is open.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = vec![Action::Ping { after_ms: 0 }];
        if let Some(r) = &mut self.round {
            // The previous leader's failures count, but for one, which this leader's own first
            // failed ping supplies: the round is then decided on its evidence at once, not
            // after a second full count. Credited only as far as the round's age allows one
            // failure per re-probe interval (a round opened on a lost connection counted none),
            // and not at all for a round older than RESTORED_CREDIT_MS, whose close may have
            // been lost with its leader. A paused master closes no socket: a round on a pause
            // opens only when a ping times out (half the interval into it at the earliest), so
            // a pause of ≤ 0.5 s is over before this leader's first ping.
            let age = now_ms.saturating_sub(r.since_ms);
            self.failures = if age <= RESTORED_CREDIT_MS {
                let per_probe = (age / self.cfg.suspect_interval_ms.max(1)) as u32;
                per_probe.min(self.cfg.failure_threshold.saturating_sub(1))
            } else {
                0
            };
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
            Event::Vote { round, vote } => {
                let at = vote.at_ms;
                match &mut self.round {
                    Some(r) if r.id == round => r.votes.insert(vote.manager, vote),
                    _ => return Vec::new(),
                };
                self.evaluate(Some(at))
            }
            Event::Replica {
                round,
                name,
                io,
                at_ms,
            } => {
                match &mut self.round {
                    Some(r) if r.id == round => r.replicas.insert(name, io),
                    _ => return Vec::new(),
                };
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

    /// Decides when the evidence allows it. `now` is only needed to stamp a verdict. The rules
    /// of a Dead verdict (failures, managers' majority, replica policy, timeout) are weighed
    /// together here, in one place, so that no path to a verdict skips one of them.
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
        let unreachable = 1 + r.votes.values().filter(|v| !v.reachable).count();
        // Once a majority (this leader included) cannot reach the master, the missing votes
        // cannot change the managers' side of the verdict: no majority can say "reachable"
        // any more. A dead manager's vote is then not waited for.
        let votes_settled = r.votes.len() >= followers || unreachable >= majority;
        let all_replicas = self.cfg.replicas.iter().all(|n| r.replicas.contains_key(n));
        let complete = r.timed_out
            || (votes_settled
                && (all_replicas || self.cfg.replica_policy == ReplicaPolicy::Ignore));

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
                let silent = followers.saturating_sub(r.votes.len());
                let unheard = match (silent, r.timed_out) {
                    (0, _) => String::new(),
                    (n, false) => format!(
                        "; {n} manager(s) not heard from, not waited for: the majority was in"
                    ),
                    (n, true) => {
                        format!("; {n} manager(s) not heard from by the corroboration timeout")
                    }
                };
                Some((
                    VerdictKind::Dead,
                    format!(
                        "{unreachable} of {} managers cannot reach the master and no replica is connected to it{unheard}",
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
mod tests;
