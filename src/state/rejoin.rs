//! A server brought back by `mhactl rejoin` (runtime/rejoin.rs) entering the topology: the
//! replicated rule that takes it only if the group is still as the rejoin read it.

/// A manager that knows [`super::Cmd::RejoinReplica`] registers this feature; `mhactl rejoin`
/// is refused, before it changes anything, until every member has.
pub const FEATURE_REJOIN: &str = "rejoin";

impl super::ClusterState {
    /// A rejoined server enters the topology as a replica of `master`, if the group is still
    /// as the rejoin read it: same master, no change since (a failover or a `group update`
    /// meanwhile leaves the server out, to be rejoined again).
    pub(super) fn rejoin_replica(
        &mut self,
        group: &str,
        master: &str,
        updated_at_ms: u64,
        server: &super::group::DiscoveredServer,
        at: u64,
    ) -> super::apply::Applied {
        // A failover begun meanwhile copied the topology without this server: it would not be
        // repointed, and its completion would record it as the new master's replica.
        let run_active = self
            .failover
            .get(group)
            .is_some_and(|f| f.active_run.is_some());
        let g = self.group_mut(group)?;
        let stale = run_active
            || matches!(g.health.state, crate::model::Health::Dead { .. })
            || g.topology.master != master
            || g.updated_at_ms != updated_at_ms
            || g.spec.server(&server.name).is_none()
            || g.topology.servers.contains_key(&server.name)
            || server.replicates_from.as_deref() != Some(master);
        if stale {
            return Err(super::Rejection::RejoinStale {
                group: group.to_string(),
                server: server.name.clone(),
            });
        }
        let mut s = server.clone();
        s.role = super::group::Role::Replica;
        g.topology.servers.insert(s.name.clone(), s);
        g.updated_at_ms = at;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Health, Verdict, VerdictKind};
    use crate::state::group::tests::put;
    use crate::state::journal::{RunKind, DEFAULT_ANTI_FLAP_MS};
    use crate::state::{ClusterState, Cmd, CmdResult};

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        assert_eq!(s.apply(&put("g"), 1), CmdResult::Ok);
        s
    }

    fn dead(round: u64) -> Cmd {
        Cmd::RecordVerdict {
            group: "g".into(),
            verdict: Box::new(Verdict {
                kind: VerdictKind::Dead,
                round,
                suspected_at_ms: 1,
                at_ms: 2,
                failures: 3,
                votes: vec![],
                replicas: Default::default(),
                reason: "test".into(),
            }),
        }
    }

    fn manual_run() -> Cmd {
        Cmd::BeginFailover {
            group: "g".into(),
            kind: RunKind::Manual,
            old_master: "db1".into(),
            verdict_round: None,
            anti_flap_ms: DEFAULT_ANTI_FLAP_MS,
            forced: None,
        }
    }

    fn rejoin(updated_at_ms: u64, master: &str) -> Cmd {
        Cmd::RejoinReplica {
            group: "g".into(),
            master: master.into(),
            updated_at_ms,
            server: Box::new(crate::state::group::DiscoveredServer {
                name: "db3".into(),
                role: crate::state::group::Role::Replica,
                server_id: 3,
                version: "10.11".into(),
                read_only: true,
                log_bin: true,
                replicates_from: Some(master.into()),
            }),
        }
    }

    /// A rejoined server enters the topology only if the group is as the rejoin read it: same
    /// master, no change since, no run begun, not dead; once only.
    #[test]
    fn a_rejoin_applies_only_to_the_group_it_read() {
        // The test group's discovered topology holds no server but its master: db3 is out.
        let mut s = state();
        let at = s.groups["g"].updated_at_ms;
        assert!(matches!(
            s.apply(&rejoin(at + 1, "db1"), 10),
            CmdResult::Rejected(_)
        ));
        assert!(matches!(
            s.apply(&rejoin(at, "db2"), 10),
            CmdResult::Rejected(_)
        ));
        s.apply(&dead(1), 5);
        assert!(matches!(
            s.apply(&rejoin(at, "db1"), 10),
            CmdResult::Rejected(_)
        ));
        s.groups.get_mut("g").unwrap().health.state = Health::Alive;
        s.apply(&manual_run(), 6);
        assert!(matches!(
            s.apply(&rejoin(at, "db1"), 10),
            CmdResult::Rejected(_)
        ));
        let mut s = state();
        let at = s.groups["g"].updated_at_ms;
        assert_eq!(s.apply(&rejoin(at, "db1"), 10), CmdResult::Ok);
        let t = &s.groups["g"].topology.servers["db3"];
        assert_eq!(t.replicates_from.as_deref(), Some("db1"));
        assert!(matches!(
            s.apply(&rejoin(10, "db1"), 11),
            CmdResult::Rejected(_)
        ));
    }
}
