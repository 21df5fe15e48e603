//! The replicated, deterministic cluster state (ARCHITECTURE.md invariants 1–2).
//!
//! `ClusterState` changes only through [`ClusterState::apply`] of a committed [`Cmd`]. `apply`
//! takes the log entry's time as a value and performs no I/O, so every manager that applies the
//! same log reaches the same state. Later issues add replication groups, detector state and the
//! failover journal as new `Cmd` variants and new fields; the serde representation keeps unknown
//! additions forward-compatible within one data version (fields default when absent).

mod cmd;
pub mod group;
pub mod journal;
pub mod recovery;

pub use cmd::{Cmd, CmdResult, Proposal};
pub use group::{Group, GroupSpec, Topology};

use std::collections::BTreeMap;

use crate::model::{Health, VerdictKind};

use serde::{Deserialize, Serialize};

/// What the cluster knows about one manager beyond Raft membership: where it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerInfo {
    pub id: u64,
    /// Address other managers and mhactl reach it at (`host:port`).
    pub addr: String,
    /// Failure domain (availability zone, rack, data centre). Used to corroborate a master's
    /// death from several zones.
    pub zone: String,
    /// Log time (ms since the Unix epoch) of the last registration.
    pub registered_at_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterState {
    /// Cluster name, set once by the first leader from its configuration.
    pub name: Option<String>,
    /// Managers by id, as they registered themselves (or as `mhactl member add` declared them).
    pub managers: BTreeMap<u64, ManagerInfo>,
    /// Replication groups by name.
    pub groups: BTreeMap<String, Group>,
    /// Failover runs (the journal) by id, and each group's failover bookkeeping.
    pub runs: BTreeMap<u64, journal::FailoverRun>,
    pub failover: BTreeMap<String, journal::GroupFailover>,
    /// The next failover run id (never reused).
    pub next_run_id: u64,
    /// Number of commands applied (Blank and membership entries excluded); a cheap change counter.
    pub applied_cmds: u64,
}

impl ClusterState {
    /// Applies one committed command. `log_time_ms` is the time the leader stamped on the entry;
    /// it is the only clock the state machine sees.
    pub fn apply(&mut self, cmd: &Cmd, log_time_ms: u64) -> CmdResult {
        self.applied_cmds += 1;
        match cmd {
            Cmd::BeginFailover {
                group,
                kind,
                old_master,
                verdict_round,
                anti_flap_ms,
                forced,
            } => {
                let Some(mode) = self.groups.get(group).map(|g| g.topology.mode) else {
                    return CmdResult::Rejected {
                        reason: format!("group {group} does not exist"),
                    };
                };
                let f = self.failover.entry(group.clone()).or_default();
                if let Some(active) = f.active_run {
                    return CmdResult::Rejected {
                        reason: format!("failover run {active} of group {group} is still active"),
                    };
                }
                if *kind == journal::RunKind::Auto {
                    if verdict_round.is_some() {
                        f.handled_round = *verdict_round;
                    }
                    if let Some(reason) = f.refuse_auto(log_time_ms, *anti_flap_ms) {
                        f.refusals.push(journal::Refusal {
                            at_ms: log_time_ms,
                            kind: *kind,
                            reason: reason.clone(),
                        });
                        if f.refusals.len() > journal::REFUSAL_HISTORY {
                            f.refusals.remove(0);
                        }
                        return CmdResult::Rejected { reason };
                    }
                }
                let id = self.next_run_id.max(1);
                self.next_run_id = id + 1;
                f.epoch += 1;
                f.active_run = Some(id);
                let mut run = journal::FailoverRun::new(
                    id,
                    f.epoch,
                    *kind,
                    group,
                    old_master,
                    *verdict_round,
                    log_time_ms,
                );
                run.forced = forced.clone();
                if mode != group::ReplicationMode::FilePos {
                    // Nothing to cut in GTID groups: skipped from the start, one commit less on
                    // the way to the new master.
                    run.skip(
                        journal::StepName::GenerateDiffs,
                        "GTID replication: relay logs and auto-position bring every replica \
                         level, no diff files",
                    );
                }
                self.runs.insert(id, run);
                CmdResult::Ok
            }
            Cmd::StepBegin {
                run,
                step,
                term,
                node,
            } => match self.runs.get_mut(run) {
                None => CmdResult::Rejected {
                    reason: format!("no failover run {run}"),
                },
                Some(r) => match r.begin_step(*step, *term, *node, log_time_ms) {
                    Ok(()) => CmdResult::Ok,
                    Err(reason) => CmdResult::Rejected { reason },
                },
            },
            Cmd::StepEnd {
                run,
                step,
                term,
                outcome,
            } => match self.runs.get_mut(run) {
                None => CmdResult::Rejected {
                    reason: format!("no failover run {run}"),
                },
                Some(r) => match r.end_step(*step, *term, outcome.clone(), log_time_ms) {
                    Ok(()) => CmdResult::Ok,
                    Err(reason) => CmdResult::Rejected { reason },
                },
            },
            Cmd::StepAdvance {
                run,
                step,
                term,
                outcome,
                node,
            } => match self.runs.get_mut(run) {
                None => CmdResult::Rejected {
                    reason: format!("no failover run {run}"),
                },
                Some(r) => {
                    // All or nothing: the end and the next begin apply together or not at all.
                    let mut next = r.clone();
                    let res = next
                        .end_step(*step, *term, outcome.clone(), log_time_ms)
                        .and_then(|()| match next.first_unfinished() {
                            Some(n) => next.begin_step(n, *term, *node, log_time_ms),
                            None => Err(format!("run {run} has no step after {step:?}")),
                        });
                    match res {
                        Ok(()) => {
                            *r = next;
                            CmdResult::Ok
                        }
                        Err(reason) => CmdResult::Rejected { reason },
                    }
                }
            },
            Cmd::Decide { run, decided } => match self.runs.get_mut(run) {
                None => CmdResult::Rejected {
                    reason: format!("no failover run {run}"),
                },
                Some(r) => match r.decide(decided.clone()) {
                    Ok(true) => CmdResult::Ok,
                    Ok(false) => CmdResult::Unchanged,
                    Err(reason) => CmdResult::Rejected { reason },
                },
            },
            Cmd::RecordRecovery { run, note } => match self.runs.get_mut(run) {
                None => CmdResult::Rejected {
                    reason: format!("no failover run {run}"),
                },
                Some(r) if r.state != journal::RunState::Running => CmdResult::Rejected {
                    reason: format!("run {run} is not running"),
                },
                Some(r) => match r.recovery.record(note) {
                    Ok(true) => CmdResult::Ok,
                    Ok(false) => CmdResult::Unchanged,
                    Err(reason) => CmdResult::Rejected { reason },
                },
            },
            Cmd::FinishFailover { run, failed } => {
                let Some(r) = self.runs.get_mut(run) else {
                    return CmdResult::Rejected {
                        reason: format!("no failover run {run}"),
                    };
                };
                if r.state != journal::RunState::Running {
                    return CmdResult::Unchanged;
                }
                let f = self.failover.entry(r.group.clone()).or_default();
                match failed {
                    None => {
                        if let Some(step) = r.first_unfinished() {
                            return CmdResult::Rejected {
                                reason: format!(
                                    "run {run} cannot complete: {step:?} is unfinished"
                                ),
                            };
                        }
                        r.state = journal::RunState::Completed { at_ms: log_time_ms };
                        f.last_completed_at_ms = Some(log_time_ms);
                        if let (Some(d), Some(g)) = (&r.decided, self.groups.get_mut(&r.group)) {
                            g.promoted(&r.old_master, &d.new_master, log_time_ms);
                        }
                    }
                    Some(reason) => {
                        r.state = journal::RunState::Failed {
                            at_ms: log_time_ms,
                            reason: reason.clone(),
                        };
                        // As MHA (failover.error is written from phase 2 on): a run that failed
                        // in its configuration check changed nothing and blocks nothing.
                        if r.touched_servers() {
                            f.blocked = Some(format!("failover run {run} failed: {reason}"));
                        }
                    }
                }
                f.active_run = None;
                CmdResult::Ok
            }
            Cmd::AckFailover { group } => {
                let f = self.failover.entry(group.clone()).or_default();
                if f.blocked.is_none() && f.last_completed_at_ms.is_none() {
                    return CmdResult::Unchanged;
                }
                f.blocked = None;
                f.last_completed_at_ms = None;
                CmdResult::Ok
            }
            Cmd::SetClusterName { name } => match &self.name {
                Some(existing) if existing != name => CmdResult::Rejected {
                    reason: format!("cluster is already named {existing:?}"),
                },
                Some(_) => CmdResult::Unchanged,
                None => {
                    self.name = Some(name.clone());
                    CmdResult::Ok
                }
            },
            Cmd::RegisterManager { id, addr, zone } => {
                let info = ManagerInfo {
                    id: *id,
                    addr: addr.clone(),
                    zone: zone.clone(),
                    registered_at_ms: log_time_ms,
                };
                match self.managers.get(id) {
                    Some(m) if m.addr == *addr && m.zone == *zone => CmdResult::Unchanged,
                    _ => {
                        self.managers.insert(*id, info);
                        CmdResult::Ok
                    }
                }
            }
            Cmd::ForgetManager { id } => match self.managers.remove(id) {
                Some(_) => CmdResult::Ok,
                None => CmdResult::Unchanged,
            },
            Cmd::PutGroup {
                spec,
                topology,
                replace,
            } => {
                let existing = self.groups.get(&spec.name);
                match (existing, replace) {
                    (Some(_), false) => CmdResult::Rejected {
                        reason: format!("group {} already exists (use update)", spec.name),
                    },
                    (None, true) => CmdResult::Rejected {
                        reason: format!("group {} does not exist", spec.name),
                    },
                    (Some(_), true)
                        if self
                            .failover
                            .get(&spec.name)
                            .is_some_and(|f| f.active_run.is_some()) =>
                    {
                        CmdResult::Rejected {
                            reason: format!(
                                "group {}: a failover run is active; update it when the run ended",
                                spec.name
                            ),
                        }
                    }
                    (prev, _) => {
                        let created_at_ms = prev.map(|g| g.created_at_ms).unwrap_or(log_time_ms);
                        let mut health = prev.map(|g| g.health.clone()).unwrap_or_default();
                        // The leader just discovered this topology from a live master: whatever
                        // the old master's health was (a Dead verdict that was not failed over,
                        // a DBA's repair), monitoring starts afresh. The verdicts stay.
                        health.state = crate::model::Health::Alive;
                        let group = Group {
                            spec: (**spec).clone(),
                            topology: (**topology).clone(),
                            created_at_ms,
                            updated_at_ms: log_time_ms,
                            health,
                        };
                        self.groups.insert(spec.name.clone(), group);
                        CmdResult::Ok
                    }
                }
            }
            Cmd::RemoveGroup { name } => match self.groups.remove(name) {
                Some(_) => CmdResult::Ok,
                None => CmdResult::Rejected {
                    reason: format!("group {name} does not exist"),
                },
            },
            Cmd::OpenSuspicion {
                group,
                round,
                since_ms,
            } => {
                let Some(g) = self.groups.get_mut(group) else {
                    return CmdResult::Rejected {
                        reason: format!("group {group} does not exist"),
                    };
                };
                let h = &mut g.health;
                if *round < h.next_round {
                    return CmdResult::Unchanged;
                }
                h.next_round = round + 1;
                h.state = Health::Suspect {
                    round: *round,
                    since_ms: *since_ms,
                };
                CmdResult::Ok
            }
            Cmd::CloseSuspicion { group, round } => {
                let Some(g) = self.groups.get_mut(group) else {
                    return CmdResult::Unchanged;
                };
                match g.health.state {
                    Health::Suspect { round: r, .. }
                    | Health::UnreachableButAlive { round: r, .. }
                        if r == *round =>
                    {
                        g.health.state = Health::Alive;
                        CmdResult::Ok
                    }
                    _ => CmdResult::Unchanged,
                }
            }
            Cmd::RecordVerdict { group, verdict } => {
                let Some(g) = self.groups.get_mut(group) else {
                    return CmdResult::Rejected {
                        reason: format!("group {group} does not exist"),
                    };
                };
                let h = &mut g.health;
                if h.verdicts.iter().any(|v| v.round == verdict.round) {
                    return CmdResult::Rejected {
                        reason: format!("round {} already has a verdict", verdict.round),
                    };
                }
                h.next_round = h.next_round.max(verdict.round + 1);
                h.state = match verdict.kind {
                    VerdictKind::Dead => Health::Dead {
                        round: verdict.round,
                        at_ms: verdict.at_ms,
                    },
                    VerdictKind::UnreachableButAlive => Health::UnreachableButAlive {
                        round: verdict.round,
                        since_ms: verdict.suspected_at_ms,
                    },
                };
                h.verdicts.push((**verdict).clone());
                if h.verdicts.len() > group::VERDICT_HISTORY {
                    h.verdicts.remove(0);
                }
                CmdResult::Ok
            }
        }
    }

    /// The zone recorded for a manager, if it registered one.
    pub fn zone_of(&self, id: u64) -> Option<&str> {
        self.managers.get(&id).map(|m| m.zone.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applying the same commands yields the same state, and time comes only from the argument.
    #[test]
    fn apply_is_deterministic() {
        let cmds = [
            Cmd::SetClusterName {
                name: "prod".into(),
            },
            Cmd::RegisterManager {
                id: 1,
                addr: "10.0.0.1:7101".into(),
                zone: "a".into(),
            },
            Cmd::RegisterManager {
                id: 2,
                addr: "10.0.0.2:7101".into(),
                zone: "b".into(),
            },
            Cmd::ForgetManager { id: 2 },
        ];
        let mut a = ClusterState::default();
        let mut b = ClusterState::default();
        for (i, c) in cmds.iter().enumerate() {
            a.apply(c, 1000 + i as u64);
            b.apply(c, 1000 + i as u64);
        }
        assert_eq!(a, b);
        assert_eq!(a.name.as_deref(), Some("prod"));
        assert_eq!(a.managers.len(), 1);
        assert_eq!(a.managers[&1].registered_at_ms, 1001);
        assert_eq!(a.zone_of(1), Some("a"));
    }

    /// The cluster name is set once; a different name later is rejected, the same is a no-op.
    #[test]
    fn cluster_name_is_set_once() {
        let mut s = ClusterState::default();
        assert_eq!(
            s.apply(&Cmd::SetClusterName { name: "x".into() }, 1),
            CmdResult::Ok
        );
        assert_eq!(
            s.apply(&Cmd::SetClusterName { name: "x".into() }, 2),
            CmdResult::Unchanged
        );
        assert!(matches!(
            s.apply(&Cmd::SetClusterName { name: "y".into() }, 3),
            CmdResult::Rejected { .. }
        ));
        assert_eq!(s.name.as_deref(), Some("x"));
    }

    /// Re-registering with identical data changes nothing (keeps the original registration time).
    #[test]
    fn reregistration_is_idempotent() {
        let mut s = ClusterState::default();
        let c = Cmd::RegisterManager {
            id: 3,
            addr: "h:1".into(),
            zone: "z".into(),
        };
        assert_eq!(s.apply(&c, 10), CmdResult::Ok);
        assert_eq!(s.apply(&c, 20), CmdResult::Unchanged);
        assert_eq!(s.managers[&3].registered_at_ms, 10);
        let moved = Cmd::RegisterManager {
            id: 3,
            addr: "h:2".into(),
            zone: "z".into(),
        };
        assert_eq!(s.apply(&moved, 30), CmdResult::Ok);
        assert_eq!(s.managers[&3].addr, "h:2");
    }

    fn with_group() -> ClusterState {
        use crate::state::group::{tests::spec, ReplicationMode, Topology};
        let mut s = ClusterState::default();
        let topology = Topology {
            master: "db1".into(),
            servers: Default::default(),
            mode: ReplicationMode::MariadbGtid,
            semisync: false,
            warnings: vec![],
            discovered_at_ms: 0,
        };
        let put = Cmd::PutGroup {
            spec: Box::new(spec("g")),
            topology: Box::new(topology),
            replace: false,
        };
        assert_eq!(s.apply(&put, 1), CmdResult::Ok);
        s
    }

    fn verdict(round: u64, kind: crate::model::VerdictKind) -> Cmd {
        Cmd::RecordVerdict {
            group: "g".into(),
            verdict: Box::new(crate::model::Verdict {
                kind,
                round,
                suspected_at_ms: 10,
                at_ms: 20,
                failures: 3,
                votes: vec![],
                replicas: Default::default(),
                reason: "test".into(),
            }),
        }
    }

    /// A suspicion round opens once; a verdict is recorded at most once per round (a resumed
    /// leader cannot double it); the health follows; round ids never go back.
    #[test]
    fn suspicion_and_verdict_once_per_round() {
        use crate::model::{Health, VerdictKind};
        let mut s = with_group();
        let open = Cmd::OpenSuspicion {
            group: "g".into(),
            round: 1,
            since_ms: 10,
        };
        assert_eq!(s.apply(&open, 10), CmdResult::Ok);
        assert_eq!(s.apply(&open, 11), CmdResult::Unchanged);
        assert_eq!(
            s.groups["g"].health.state,
            Health::Suspect {
                round: 1,
                since_ms: 10
            }
        );
        assert_eq!(s.groups["g"].health.status_code(), (20, "PING_FAILING"));
        assert_eq!(s.apply(&verdict(1, VerdictKind::Dead), 20), CmdResult::Ok);
        assert!(matches!(
            s.apply(&verdict(1, VerdictKind::Dead), 21),
            CmdResult::Rejected { .. }
        ));
        assert_eq!(s.groups["g"].health.verdicts.len(), 1);
        assert_eq!(s.groups["g"].health.status_code(), (21, "PING_FAILED"));
        // A stale open of an old round is a no-op.
        assert_eq!(
            s.apply(
                &Cmd::OpenSuspicion {
                    group: "g".into(),
                    round: 1,
                    since_ms: 30
                },
                30
            ),
            CmdResult::Unchanged
        );
        assert_eq!(s.groups["g"].health.next_round, 2);
    }

    /// `group update` (a topology discovered from a live master) resets a Dead health to Alive
    /// and keeps the verdicts; it is refused while a failover run is active.
    #[test]
    fn update_resets_dead_health_unless_a_run_is_active() {
        use crate::model::{Health, VerdictKind};
        let mut s = with_group();
        s.apply(
            &Cmd::OpenSuspicion {
                group: "g".into(),
                round: 1,
                since_ms: 5,
            },
            5,
        );
        s.apply(&verdict(1, VerdictKind::Dead), 20);
        assert!(matches!(s.groups["g"].health.state, Health::Dead { .. }));
        let g = s.groups["g"].clone();
        let update = Cmd::PutGroup {
            spec: Box::new(g.spec),
            topology: Box::new(g.topology),
            replace: true,
        };
        let mut during = s.clone();
        during.apply(
            &Cmd::BeginFailover {
                group: "g".into(),
                kind: journal::RunKind::Manual,
                old_master: "db1".into(),
                verdict_round: None,
                anti_flap_ms: 0,
                forced: None,
            },
            30,
        );
        assert!(matches!(
            during.apply(&update, 31),
            CmdResult::Rejected { .. }
        ));
        assert_eq!(s.apply(&update, 40), CmdResult::Ok);
        assert_eq!(s.groups["g"].health.state, Health::Alive);
        assert_eq!(s.groups["g"].health.verdicts.len(), 1);
    }

    /// A suspicion that ends with the master answering closes without a verdict; history is
    /// bounded.
    #[test]
    fn close_suspicion_and_bounded_history() {
        use crate::model::{Health, VerdictKind};
        let mut s = with_group();
        s.apply(
            &Cmd::OpenSuspicion {
                group: "g".into(),
                round: 1,
                since_ms: 1,
            },
            1,
        );
        assert_eq!(
            s.apply(
                &Cmd::CloseSuspicion {
                    group: "g".into(),
                    round: 1
                },
                2
            ),
            CmdResult::Ok
        );
        assert_eq!(s.groups["g"].health.state, Health::Alive);
        // Unreachable-but-alive also ends when the master answers the leader again.
        s.apply(&verdict(2, VerdictKind::UnreachableButAlive), 3);
        assert!(matches!(
            s.groups["g"].health.state,
            Health::UnreachableButAlive { round: 2, .. }
        ));
        assert_eq!(
            s.apply(
                &Cmd::CloseSuspicion {
                    group: "g".into(),
                    round: 2
                },
                4
            ),
            CmdResult::Ok
        );
        assert_eq!(s.groups["g"].health.state, Health::Alive);
        for r in 3..41 {
            s.apply(&verdict(r, VerdictKind::UnreachableButAlive), r);
        }
        assert_eq!(
            s.groups["g"].health.verdicts.len(),
            crate::state::group::VERDICT_HISTORY
        );
        assert_eq!(s.groups["g"].health.verdicts.last().unwrap().round, 40);
    }

    /// A state serialised without fields added later still loads (fields default).
    #[test]
    fn missing_fields_default() {
        let s: ClusterState = serde_json::from_str(r#"{"name":"n"}"#).unwrap();
        assert_eq!(s.name.as_deref(), Some("n"));
        assert!(s.managers.is_empty());
    }
}
