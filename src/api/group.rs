//! Replication groups on the wire: the spec as in the group file, the discovered topology, the
//! detector's health with its verdicts.

use super::{enum_map, pb, required, u16_of, ApiError};
use crate::model::{Health, ManagerVote, ReplicaIo, ReplicaPolicy, Verdict, VerdictKind};
use crate::state::group::{
    CredentialRef, DiscoveredServer, FailoverSpec, Group, GroupHealth, GroupSpec, LegacySsh,
    PingSpec, PingType, ReplicationMode, Role, ServerSpec, SshSpec, Topology,
};

enum_map!(PingType, pb::PingType, "ping.ping_type", {
    Connect <=> Connect, Select <=> Select, Insert <=> Insert,
});
enum_map!(ReplicaPolicy, pb::ReplicaPolicy, "ping.replica_policy", {
    NoneConnected <=> NoneConnected, AllMustReport <=> AllMustReport, Ignore <=> Ignore,
});
enum_map!(Role, pb::Role, "topology.servers.role", { Master <=> Master, Replica <=> Replica });
enum_map!(ReplicationMode, pb::ReplicationMode, "mode", {
    MariadbGtid <=> MariadbGtid, MysqlGtid <=> MysqlGtid, FilePos <=> FilePos,
});
enum_map!(VerdictKind, pb::VerdictKind, "verdict.kind", {
    Dead <=> Dead, UnreachableButAlive <=> UnreachableButAlive,
});

impl From<&ServerSpec> for pb::ServerSpec {
    fn from(s: &ServerSpec) -> Self {
        pb::ServerSpec {
            name: s.name.clone(),
            host: s.host.clone(),
            port: s.port.into(),
            candidate_master: s.candidate_master,
            no_master: s.no_master,
            ssh_host: s.ssh_host.clone(),
            ssh_port: s.ssh_port.map(u32::from),
            master_binlog_dir: s.master_binlog_dir.clone(),
            ignore_fail: s.ignore_fail,
        }
    }
}

impl TryFrom<pb::ServerSpec> for ServerSpec {
    type Error = ApiError;
    fn try_from(s: pb::ServerSpec) -> Result<Self, ApiError> {
        Ok(ServerSpec {
            name: s.name,
            host: s.host,
            port: u16_of(s.port, "servers.port")?,
            candidate_master: s.candidate_master,
            no_master: s.no_master,
            ssh_host: s.ssh_host,
            ssh_port: s
                .ssh_port
                .map(|p| u16_of(p, "servers.ssh_port"))
                .transpose()?,
            master_binlog_dir: s.master_binlog_dir,
            ignore_fail: s.ignore_fail,
        })
    }
}

impl From<&GroupSpec> for pb::GroupSpec {
    fn from(s: &GroupSpec) -> Self {
        let f = &s.failover;
        pb::GroupSpec {
            name: s.name.clone(),
            user: s.user.clone(),
            // A spec stored by an older build shows its path or variable here (the wire only
            // carries names; such a spec cannot be sent back as it is).
            password: s.password.name().to_string(),
            repl_user: s.repl_user.clone(),
            repl_password: s.repl_password.name().to_string(),
            ssh: Some(pb::SshSpec {
                user: s.ssh.user.clone(),
                port: s.ssh.port.into(),
                profile: s.ssh.profile.clone(),
            }),
            vip: s.vip.clone(),
            vip_interface: s.vip_interface.clone(),
            ping: Some(pb::PingSpec {
                ping_type: pb::PingType::from(s.ping.ping_type).into(),
                interval_ms: s.ping.interval_ms,
                failure_threshold: s.ping.failure_threshold,
                suspect_interval_ms: s.ping.suspect_interval_ms,
                replica_policy: pb::ReplicaPolicy::from(s.ping.replica_policy).into(),
                replica_heartbeat_ms: Some(s.ping.replica_heartbeat_ms),
            }),
            servers: s.servers.iter().map(Into::into).collect(),
            failover: Some(pb::FailoverSpec {
                shutdown_script: f.shutdown_script.clone(),
                last_failover_minute: f.last_failover_minute,
                apply_timeout_ms: f.apply_timeout_ms,
                replica_timeout_ms: f.replica_timeout_ms,
                master_binlog_dir: f.master_binlog_dir.clone(),
                remote_workdir: f.remote_workdir.clone(),
                latest_priority: f.latest_priority,
                check_repl_delay: f.check_repl_delay,
                master_ip_failover_script: f.master_ip_failover_script.clone(),
                master_ip_online_change_script: f.master_ip_online_change_script.clone(),
                purge_relay_logs_every_m: Some(f.purge_relay_logs_every_m),
                auto_rejoin: Some(f.auto_rejoin),
                check_repl_filter: Some(f.check_repl_filter),
                report_script: f.report_script.clone(),
            }),
        }
    }
}

impl TryFrom<pb::GroupSpec> for GroupSpec {
    type Error = ApiError;
    fn try_from(s: pb::GroupSpec) -> Result<Self, ApiError> {
        let ssh = required(s.ssh, "spec.ssh")?;
        let ping = required(s.ping, "spec.ping")?;
        let f = required(s.failover, "spec.failover")?;
        Ok(GroupSpec {
            name: s.name,
            user: s.user,
            password: CredentialRef::Name(s.password),
            repl_user: s.repl_user,
            repl_password: CredentialRef::Name(s.repl_password),
            ssh: SshSpec {
                user: ssh.user,
                port: u16_of(ssh.port, "ssh.port")?,
                profile: ssh.profile,
                legacy: LegacySsh::default(),
            },
            vip: s.vip,
            vip_interface: s.vip_interface,
            ping: PingSpec {
                ping_type: ping.ping_type.try_into()?,
                interval_ms: ping.interval_ms,
                failure_threshold: ping.failure_threshold,
                suspect_interval_ms: ping.suspect_interval_ms,
                replica_policy: ping.replica_policy.try_into()?,
                // A client from before this field sends none: the default, not "leave as is".
                replica_heartbeat_ms: ping
                    .replica_heartbeat_ms
                    .unwrap_or(PingSpec::default().replica_heartbeat_ms),
            },
            servers: s
                .servers
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            failover: FailoverSpec {
                shutdown_script: f.shutdown_script,
                last_failover_minute: f.last_failover_minute,
                apply_timeout_ms: f.apply_timeout_ms,
                replica_timeout_ms: f.replica_timeout_ms,
                master_binlog_dir: f.master_binlog_dir,
                remote_workdir: f.remote_workdir,
                latest_priority: f.latest_priority,
                check_repl_delay: f.check_repl_delay,
                master_ip_failover_script: f.master_ip_failover_script,
                master_ip_online_change_script: f.master_ip_online_change_script,
                purge_relay_logs_every_m: f
                    .purge_relay_logs_every_m
                    .unwrap_or(FailoverSpec::default().purge_relay_logs_every_m),
                auto_rejoin: f.auto_rejoin.unwrap_or(FailoverSpec::default().auto_rejoin),
                check_repl_filter: f
                    .check_repl_filter
                    .unwrap_or(FailoverSpec::default().check_repl_filter),
                report_script: f.report_script,
            },
        })
    }
}

impl From<&Topology> for pb::Topology {
    fn from(t: &Topology) -> Self {
        pb::Topology {
            master: t.master.clone(),
            servers: t
                .servers
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        pb::DiscoveredServer {
                            name: s.name.clone(),
                            role: pb::Role::from(s.role).into(),
                            server_id: s.server_id,
                            version: s.version.clone(),
                            read_only: s.read_only,
                            log_bin: s.log_bin,
                            replicates_from: s.replicates_from.clone(),
                        },
                    )
                })
                .collect(),
            mode: pb::ReplicationMode::from(t.mode).into(),
            semisync: t.semisync,
            warnings: t.warnings.clone(),
            discovered_at_ms: t.discovered_at_ms,
        }
    }
}

impl TryFrom<pb::Topology> for Topology {
    type Error = ApiError;
    fn try_from(t: pb::Topology) -> Result<Self, ApiError> {
        Ok(Topology {
            master: t.master,
            servers: t
                .servers
                .into_iter()
                .map(|(k, s)| {
                    Ok((
                        k,
                        DiscoveredServer {
                            name: s.name,
                            role: s.role.try_into()?,
                            server_id: s.server_id,
                            version: s.version,
                            read_only: s.read_only,
                            log_bin: s.log_bin,
                            replicates_from: s.replicates_from,
                        },
                    ))
                })
                .collect::<Result<_, ApiError>>()?,
            mode: t.mode.try_into()?,
            semisync: t.semisync,
            warnings: t.warnings,
            discovered_at_ms: t.discovered_at_ms,
        })
    }
}

impl From<&Health> for pb::Health {
    fn from(h: &Health) -> Self {
        use pb::health::{Alive, Dead, Round, State};
        let state = match *h {
            Health::Alive => State::Alive(Alive {}),
            Health::Suspect { round, since_ms } => State::Suspect(Round { round, since_ms }),
            Health::UnreachableButAlive { round, since_ms } => {
                State::UnreachableButAlive(Round { round, since_ms })
            }
            Health::Dead { round, at_ms } => State::Dead(Dead { round, at_ms }),
        };
        pb::Health { state: Some(state) }
    }
}

impl TryFrom<pb::Health> for Health {
    type Error = ApiError;
    fn try_from(h: pb::Health) -> Result<Self, ApiError> {
        use pb::health::State;
        Ok(match required(h.state, "health.state")? {
            State::Alive(_) => Health::Alive,
            State::Suspect(r) => Health::Suspect {
                round: r.round,
                since_ms: r.since_ms,
            },
            State::UnreachableButAlive(r) => Health::UnreachableButAlive {
                round: r.round,
                since_ms: r.since_ms,
            },
            State::Dead(d) => Health::Dead {
                round: d.round,
                at_ms: d.at_ms,
            },
        })
    }
}

impl From<&ReplicaIo> for pb::ReplicaIo {
    fn from(r: &ReplicaIo) -> Self {
        let (state, detail) = match r {
            ReplicaIo::Connected { detail } => (pb::IoState::Connected, detail),
            ReplicaIo::Disconnected { detail } => (pb::IoState::Disconnected, detail),
            ReplicaIo::Unreachable { detail } => (pb::IoState::Unreachable, detail),
        };
        pb::ReplicaIo {
            state: state.into(),
            detail: detail.clone(),
        }
    }
}

impl TryFrom<pb::ReplicaIo> for ReplicaIo {
    type Error = ApiError;
    fn try_from(r: pb::ReplicaIo) -> Result<Self, ApiError> {
        let detail = r.detail;
        match pb::IoState::try_from(r.state) {
            Ok(pb::IoState::Connected) => Ok(ReplicaIo::Connected { detail }),
            Ok(pb::IoState::Disconnected) => Ok(ReplicaIo::Disconnected { detail }),
            Ok(pb::IoState::Unreachable) => Ok(ReplicaIo::Unreachable { detail }),
            _ => Err(ApiError::UnknownEnum {
                field: "replicas.state",
                value: r.state,
            }),
        }
    }
}

impl From<&Verdict> for pb::Verdict {
    fn from(v: &Verdict) -> Self {
        pb::Verdict {
            kind: pb::VerdictKind::from(v.kind).into(),
            round: v.round,
            suspected_at_ms: v.suspected_at_ms,
            at_ms: v.at_ms,
            failures: v.failures,
            votes: v
                .votes
                .iter()
                .map(|m| pb::ManagerVote {
                    manager: m.manager,
                    zone: m.zone.clone(),
                    reachable: m.reachable,
                    detail: m.detail.clone(),
                    at_ms: m.at_ms,
                })
                .collect(),
            replicas: v
                .replicas
                .iter()
                .map(|(k, r)| (k.clone(), r.into()))
                .collect(),
            reason: v.reason.clone(),
        }
    }
}

impl TryFrom<pb::Verdict> for Verdict {
    type Error = ApiError;
    fn try_from(v: pb::Verdict) -> Result<Self, ApiError> {
        Ok(Verdict {
            kind: v.kind.try_into()?,
            round: v.round,
            suspected_at_ms: v.suspected_at_ms,
            at_ms: v.at_ms,
            failures: v.failures,
            votes: v
                .votes
                .into_iter()
                .map(|m| ManagerVote {
                    manager: m.manager,
                    zone: m.zone,
                    reachable: m.reachable,
                    detail: m.detail,
                    at_ms: m.at_ms,
                })
                .collect(),
            replicas: v
                .replicas
                .into_iter()
                .map(|(k, r)| Ok((k, r.try_into()?)))
                .collect::<Result<_, ApiError>>()?,
            reason: v.reason,
        })
    }
}

impl From<&Group> for pb::Group {
    fn from(g: &Group) -> Self {
        pb::Group {
            spec: Some((&g.spec).into()),
            topology: Some((&g.topology).into()),
            created_at_ms: g.created_at_ms,
            updated_at_ms: g.updated_at_ms,
            health: Some(pb::GroupHealth {
                state: Some((&g.health.state).into()),
                next_round: g.health.next_round,
                verdicts: g.health.verdicts.iter().map(Into::into).collect(),
            }),
        }
    }
}

impl TryFrom<pb::Group> for Group {
    type Error = ApiError;
    fn try_from(g: pb::Group) -> Result<Self, ApiError> {
        let health = required(g.health, "group.health")?;
        Ok(Group {
            spec: required(g.spec, "group.spec")?.try_into()?,
            topology: required(g.topology, "group.topology")?.try_into()?,
            created_at_ms: g.created_at_ms,
            updated_at_ms: g.updated_at_ms,
            health: GroupHealth {
                state: required(health.state, "health.state")?.try_into()?,
                next_round: health.next_round,
                verdicts: health
                    .verdicts
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<Result<_, _>>()?,
            },
        })
    }
}
