//! The replicated, deterministic cluster state (ARCHITECTURE.md invariants 1–2).
//!
//! `ClusterState` changes only through [`ClusterState::apply`] of a committed [`Cmd`]. `apply`
//! takes the log entry's time as a value and performs no I/O, so every manager that applies the
//! same log reaches the same state: the managers, the replication groups with their detector
//! health, and the failover journal. New capabilities come as new `Cmd` variants and new fields;
//! fields default when absent, so an older snapshot still loads within one data version.

mod apply;
pub mod audit;
pub mod batch;
mod cmd;
pub mod group;
pub mod history;
pub mod journal;
pub mod ownership;
pub mod pause;
mod ping;
pub mod recovery;
mod rejection;
pub mod rejoin;
mod step;
pub mod switchover;
pub mod verdict_begins;

pub use apply::BeginRun;
pub use audit::{AuditEntry, AuditLog, AuditRecord};
pub use cmd::{Cmd, CmdResult, Proposal};
pub use group::{Group, GroupSpec, Topology};
pub use rejection::{JournalError, Rejection};

use std::collections::BTreeMap;

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
    /// Where mhactl reaches it when it has a separate admin listener (`admin_listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_addr: Option<String>,
    /// What its build can apply beyond the commands every build knows ([`audit::FEATURES`]);
    /// empty for an older build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// It registered itself, which a manager does only after it saved a leader's term: it has
    /// a vote and a log to keep. A leader tells such a voter so on every Raft call, and a node
    /// whose store is empty refuses to be one (raft/fresh_gate.rs). Set by an older build's
    /// registration only from its next one on (false until then, which refuses nothing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ran: bool,
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
    /// The admin API's audit trail (the last [`audit::AUDIT_HISTORY`] writes). Not written
    /// while empty, so a state without one serialises as an older build wrote it.
    #[serde(skip_serializing_if = "AuditLog::is_empty")]
    pub audit: AuditLog,
}

impl ClusterState {
    /// Applies one committed command. `log_time_ms` is the time the leader stamped on the entry;
    /// it is the only clock the state machine sees.
    pub fn apply(&mut self, cmd: &Cmd, log_time_ms: u64) -> CmdResult {
        self.applied_cmds += 1;
        let res = self.dispatch(cmd, log_time_ms);
        match res {
            Ok(true) => CmdResult::Ok,
            Ok(false) => CmdResult::Unchanged,
            Err(rejection) => CmdResult::Rejected(rejection),
        }
    }

    /// Whether every one of `members` registered `feature` (see [`audit::FEATURE_AUDIT`]); the
    /// first that did not, otherwise.
    pub fn lacking_feature(
        &self,
        members: impl IntoIterator<Item = u64>,
        feature: &str,
    ) -> Option<u64> {
        members.into_iter().find(|id| {
            !self
                .managers
                .get(id)
                .is_some_and(|m| m.features.iter().any(|f| f == feature))
        })
    }

    /// The zone recorded for a manager, if it registered one.
    pub fn zone_of(&self, id: u64) -> Option<&str> {
        self.managers.get(&id).map(|m| m.zone.as_str())
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
                admin_addr: None,
                features: vec![],
                by_self: false,
            },
            Cmd::RegisterManager {
                id: 2,
                addr: "10.0.0.2:7101".into(),
                zone: "b".into(),
                admin_addr: None,
                features: vec![],
                by_self: false,
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
            admin_addr: None,
            features: vec![],
            by_self: false,
        };
        assert_eq!(s.apply(&c, 10), CmdResult::Ok);
        assert_eq!(s.apply(&c, 20), CmdResult::Unchanged);
        assert_eq!(s.managers[&3].registered_at_ms, 10);
        let moved = Cmd::RegisterManager {
            id: 3,
            addr: "h:2".into(),
            zone: "z".into(),
            admin_addr: None,
            features: vec![],
            by_self: false,
        };
        assert_eq!(s.apply(&moved, 30), CmdResult::Ok);
        assert_eq!(s.managers[&3].addr, "h:2");
    }

    /// `ran` is set by the manager's own registration only, survives registrations by others
    /// (`member add` of the same id) and goes with the record.
    #[test]
    fn ran_comes_from_the_manager_itself() {
        let mut s = ClusterState::default();
        let reg = |addr: &str, by_self| Cmd::RegisterManager {
            id: 4,
            addr: addr.into(),
            zone: "z".into(),
            admin_addr: None,
            features: vec![],
            by_self,
        };
        assert_eq!(s.apply(&reg("h:1", false), 1), CmdResult::Ok);
        assert!(!s.managers[&4].ran, "added, never heard from");
        assert_eq!(s.apply(&reg("h:1", true), 2), CmdResult::Ok);
        assert!(s.managers[&4].ran);
        assert_eq!(s.apply(&reg("h:1", true), 3), CmdResult::Unchanged);
        assert_eq!(s.apply(&reg("h:2", false), 4), CmdResult::Ok);
        assert!(s.managers[&4].ran, "a new address by member add keeps it");
        assert_eq!(s.apply(&Cmd::ForgetManager { id: 4 }, 5), CmdResult::Ok);
        s.apply(&reg("h:2", false), 6);
        assert!(!s.managers[&4].ran, "forgotten with the record");
    }

    fn with_group() -> ClusterState {
        let mut s = ClusterState::default();
        assert_eq!(
            s.apply(&crate::state::group::tests::put("g"), 1),
            CmdResult::Ok
        );
        s
    }

    /// A verdict of `kind` for `round` (the tests' fixed times and failures).
    pub(crate) fn a_verdict(kind: crate::model::VerdictKind, round: u64) -> crate::model::Verdict {
        crate::model::Verdict {
            kind,
            round,
            suspected_at_ms: 10,
            at_ms: 20,
            failures: 3,
            votes: vec![],
            replicas: Default::default(),
            reason: "test".into(),
        }
    }

    fn verdict(round: u64, kind: crate::model::VerdictKind) -> Cmd {
        Cmd::RecordVerdict {
            group: "g".into(),
            verdict: Box::new(a_verdict(kind, round)),
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
            exclusive: false,
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

    /// Found by tests/hostile_input.rs: a round id at the end of the range (only a corrupt or
    /// hostile log entry carries one) is applied without an overflow panic.
    #[test]
    fn last_round_id_does_not_overflow() {
        use crate::model::{Health, VerdictKind};
        let mut s = with_group();
        let open = Cmd::OpenSuspicion {
            group: "g".into(),
            round: u64::MAX,
            since_ms: 1,
        };
        assert_eq!(s.apply(&open, 1), CmdResult::Ok);
        assert_eq!(s.groups["g"].health.next_round, u64::MAX);
        assert_eq!(
            s.apply(&verdict(u64::MAX, VerdictKind::Dead), 2),
            CmdResult::Ok
        );
        assert!(matches!(
            s.groups["g"].health.state,
            Health::Dead {
                round: u64::MAX,
                ..
            }
        ));
        assert_eq!(s.groups["g"].health.next_round, u64::MAX);
    }

    /// Found by tests/hostile_input.rs: acknowledging a group with nothing to acknowledge (no
    /// failover bookkeeping, or no such group) is a no-op that leaves the state as it was.
    #[test]
    fn ack_without_bookkeeping_changes_nothing() {
        let mut s = with_group();
        for group in ["g", "nope"] {
            let before = s.clone();
            let ack = Cmd::AckFailover {
                group: group.into(),
            };
            assert_eq!(s.apply(&ack, 5), CmdResult::Unchanged);
            assert!(s.failover.is_empty(), "{:?}", s.failover);
            assert_eq!(s.applied_cmds, before.applied_cmds + 1);
        }
    }

    fn audit(n: u64) -> Cmd {
        Cmd::Audit {
            entry: Box::new(AuditEntry {
                manager: 1,
                who: "alice (admin)".into(),
                from: "10.0.0.9:50000".into(),
                rpc: "RemoveGroup".into(),
                what: format!("group g{n}"),
                result: "NOT_FOUND".into(),
                detail: format!("group g{n} does not exist"),
            }),
        }
    }

    /// The trail keeps the last AUDIT_HISTORY records in log order, each stamped with its
    /// entry's time and a sequence number that keeps counting past the bound.
    #[test]
    fn audit_is_a_bounded_ring_in_log_order() {
        use audit::AUDIT_HISTORY;
        let mut s = ClusterState::default();
        assert!(s.audit.is_empty());
        let n = AUDIT_HISTORY as u64 + 5;
        for i in 1..=n {
            assert_eq!(s.apply(&audit(i), 1000 + i), CmdResult::Ok);
        }
        assert_eq!(s.audit.total, n);
        assert_eq!(s.audit.records.len(), AUDIT_HISTORY);
        let first = &s.audit.records[0];
        assert_eq!((first.seq, first.at_ms), (6, 1006));
        assert_eq!(first.entry.what, "group g6");
        let last = s.audit.records.back().unwrap();
        assert_eq!((last.seq, last.at_ms), (n, 1000 + n));
        assert!(s
            .audit
            .records
            .iter()
            .zip(s.audit.records.iter().skip(1))
            .all(|(a, b)| a.seq + 1 == b.seq));
        let tail = s.audit.last(3);
        assert_eq!(
            tail.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [n - 2, n - 1, n]
        );
        assert_eq!(s.audit.last(0).len(), AUDIT_HISTORY);
        assert_eq!(s.audit.last(5000).len(), AUDIT_HISTORY);
    }

    /// A record is bounded and single-line whatever the proposer sent; the state's JSON keeps
    /// it flat, and a state without a trail serialises without the field (as before).
    #[test]
    fn audit_records_are_bounded_and_clean() {
        let mut s = ClusterState::default();
        assert!(!serde_json::to_string(&s).unwrap().contains("audit"));
        let entry = AuditEntry {
            who: "evil\nINFO forged line (admin)".into(),
            what: "x".repeat(10_000),
            ..AuditEntry::default()
        };
        s.apply(
            &Cmd::Audit {
                entry: Box::new(entry),
            },
            7,
        );
        let r = &s.audit.records[0];
        assert!(!r.entry.who.contains('\n'), "{:?}", r.entry.who);
        assert_eq!(r.entry.what.chars().count(), audit::AUDIT_TEXT_MAX);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["audit"]["records"][0]["seq"], 1);
        assert_eq!(json["audit"]["records"][0]["at_ms"], 7);
        assert!(json["audit"]["records"][0]["who"].is_string());
        let back: ClusterState = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    /// A manager's features come with its registration; a changed set re-registers; the
    /// leader asks whether every member has one.
    #[test]
    fn features_are_registered_per_manager() {
        let mut s = ClusterState::default();
        let reg = |id, features: &[&str]| Cmd::RegisterManager {
            id,
            addr: format!("h:{id}"),
            zone: "z".into(),
            admin_addr: None,
            features: features.iter().map(|f| f.to_string()).collect(),
            by_self: false,
        };
        s.apply(&reg(1, &[]), 1);
        s.apply(&reg(2, &["audit"]), 1);
        assert_eq!(s.lacking_feature([1, 2, 3], "audit"), Some(1));
        assert_eq!(s.apply(&reg(1, &["audit"]), 2), CmdResult::Ok);
        assert_eq!(s.apply(&reg(1, &["audit"]), 3), CmdResult::Unchanged);
        assert_eq!(s.lacking_feature([1, 2, 3], "audit"), Some(3));
        assert_eq!(s.lacking_feature([1, 2], "audit"), None);
        // An older build's registration (no features) is written as that build wrote it.
        let old = serde_json::to_value(reg(4, &[])).unwrap();
        assert!(old.get("features").is_none(), "{old}");
    }

    /// A state serialised without fields added later still loads (fields default).
    #[test]
    fn missing_fields_default() {
        let s: ClusterState = serde_json::from_str(r#"{"name":"n"}"#).unwrap();
        assert_eq!(s.name.as_deref(), Some("n"));
        assert!(s.managers.is_empty());
    }
}
