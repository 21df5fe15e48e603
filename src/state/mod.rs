//! The replicated, deterministic cluster state (ARCHITECTURE.md invariants 1–2).
//!
//! `ClusterState` changes only through [`ClusterState::apply`] of a committed [`Cmd`]. `apply`
//! takes the log entry's time as a value and performs no I/O, so every manager that applies the
//! same log reaches the same state. Later issues add replication groups, detector state and the
//! failover journal as new `Cmd` variants and new fields; the serde representation keeps unknown
//! additions forward-compatible within one data version (fields default when absent).

mod cmd;
pub mod group;

pub use cmd::{Cmd, CmdResult, Proposal};
pub use group::{Group, GroupSpec, Topology};

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
    /// Number of commands applied (Blank and membership entries excluded); a cheap change counter.
    pub applied_cmds: u64,
}

impl ClusterState {
    /// Applies one committed command. `log_time_ms` is the time the leader stamped on the entry;
    /// it is the only clock the state machine sees.
    pub fn apply(&mut self, cmd: &Cmd, log_time_ms: u64) -> CmdResult {
        self.applied_cmds += 1;
        match cmd {
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
                    (prev, _) => {
                        let created_at_ms = prev.map(|g| g.created_at_ms).unwrap_or(log_time_ms);
                        let group = Group {
                            spec: (**spec).clone(),
                            topology: (**topology).clone(),
                            created_at_ms,
                            updated_at_ms: log_time_ms,
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

    /// A state serialised without fields added later still loads (fields default).
    #[test]
    fn missing_fields_default() {
        let s: ClusterState = serde_json::from_str(r#"{"name":"n"}"#).unwrap();
        assert_eq!(s.name.as_deref(), Some("n"));
        assert!(s.managers.is_empty());
    }
}
