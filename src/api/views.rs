//! Answers of checks, the dry-run selection and the live per-group view on the wire.

use super::{pb, required, ApiError};
use crate::engine::selection::{Excluded, Selection};
use crate::engine::topology::{CheckItem, ReplReport};
use crate::model::BinlogCoord;
use crate::runtime::groups::{GroupLive, ServerLive};
use crate::runtime::monitor::CountersSnapshot;
use crate::runtime::rejoin::auto::{AutoRejoin, Outcome};
use crate::state::group::ReplicationMode;

impl From<&ReplReport> for pb::ReplReport {
    fn from(r: &ReplReport) -> Self {
        pb::ReplReport {
            group: r.group.clone(),
            master: r.master.clone(),
            tree: r.tree.clone(),
            mode: r
                .mode
                .map(|m| pb::ReplicationMode::from(m).into())
                .unwrap_or_default(),
            checks: r
                .checks
                .iter()
                .map(|c| pb::CheckItem {
                    server: c.server.clone(),
                    check: c.check.clone(),
                    ok: c.ok,
                    detail: c.detail.clone(),
                })
                .collect(),
            errors: r.errors.clone(),
            warnings: r.warnings.clone(),
            ok: r.ok,
        }
    }
}

/// An unset enum field means "none" where the domain value is optional.
fn optional_mode(v: i32) -> Result<Option<ReplicationMode>, ApiError> {
    if v == pb::ReplicationMode::Unspecified as i32 {
        Ok(None)
    } else {
        v.try_into().map(Some)
    }
}

impl TryFrom<pb::ReplReport> for ReplReport {
    type Error = ApiError;
    fn try_from(r: pb::ReplReport) -> Result<Self, ApiError> {
        Ok(ReplReport {
            group: r.group,
            master: r.master,
            tree: r.tree,
            mode: optional_mode(r.mode)?,
            checks: r
                .checks
                .into_iter()
                .map(|c| CheckItem {
                    server: c.server,
                    check: c.check,
                    ok: c.ok,
                    detail: c.detail,
                })
                .collect(),
            errors: r.errors,
            warnings: r.warnings,
            ok: r.ok,
        })
    }
}

impl From<&Excluded> for pb::Excluded {
    fn from(e: &Excluded) -> Self {
        pb::Excluded {
            server: e.server.clone(),
            reason: e.reason.clone(),
        }
    }
}

impl From<pb::Excluded> for Excluded {
    fn from(e: pb::Excluded) -> Self {
        Excluded {
            server: e.server,
            reason: e.reason,
        }
    }
}

impl From<&BinlogCoord> for pb::BinlogCoord {
    fn from(c: &BinlogCoord) -> Self {
        pb::BinlogCoord {
            file: c.file.clone(),
            pos: c.pos,
        }
    }
}

impl From<pb::BinlogCoord> for BinlogCoord {
    fn from(c: pb::BinlogCoord) -> Self {
        BinlogCoord {
            file: c.file,
            pos: c.pos,
        }
    }
}

impl From<&Selection> for pb::Selection {
    fn from(s: &Selection) -> Self {
        pb::Selection {
            new_master: s.new_master.clone(),
            rule: s.rule.clone(),
            latest: s.latest.clone(),
            latest_position: s.latest_position.as_ref().map(Into::into),
            excluded: s.excluded.iter().map(Into::into).collect(),
            explanation: s.explanation.clone(),
        }
    }
}

impl From<pb::Selection> for Selection {
    fn from(s: pb::Selection) -> Self {
        Selection {
            new_master: s.new_master,
            rule: s.rule,
            latest: s.latest,
            latest_position: s.latest_position.map(Into::into),
            excluded: s.excluded.into_iter().map(Into::into).collect(),
            explanation: s.explanation,
        }
    }
}

impl From<&ServerLive> for pb::ServerLive {
    fn from(s: &ServerLive) -> Self {
        pb::ServerLive {
            name: s.name.clone(),
            address: s.address.clone(),
            role: s.role.clone(),
            read_only: s.read_only,
            position: s.position.clone(),
            io_thread: s.io_thread.clone(),
            sql_thread: s.sql_thread,
            seconds_behind: s.seconds_behind,
            error: s.error.clone(),
        }
    }
}

impl From<pb::ServerLive> for ServerLive {
    fn from(s: pb::ServerLive) -> Self {
        ServerLive {
            name: s.name,
            address: s.address,
            role: s.role,
            read_only: s.read_only,
            position: s.position,
            io_thread: s.io_thread,
            sql_thread: s.sql_thread,
            seconds_behind: s.seconds_behind,
            error: s.error,
        }
    }
}

impl From<&GroupLive> for pb::GroupLive {
    fn from(g: &GroupLive) -> Self {
        pb::GroupLive {
            name: g.name.clone(),
            master: g.master.clone(),
            mode: pb::ReplicationMode::from(g.mode).into(),
            semisync: g.semisync,
            status_code: g.status_code.into(),
            status: g.status.clone(),
            health: Some((&g.health).into()),
            last_verdict: g.last_verdict.as_ref().map(Into::into),
            counters: g.counters.as_ref().map(|c| pb::MonitorCounters {
                pings: c.pings,
                ping_failures: c.ping_failures,
                probes: c.probes,
                probe_latency_ms_avg: c.probe_latency_ms_avg,
                verdicts: c.verdicts,
            }),
            failover: g.failover.as_ref().map(Into::into),
            failover_blocked: g.failover_blocked.clone(),
            last_refusal: g.last_refusal.as_ref().map(Into::into),
            paused: g.paused.as_ref().map(Into::into),
            relay_purges: g
                .relay_purges
                .iter()
                .map(|p| pb::RelayPurge {
                    server: p.server.clone(),
                    at_ms: p.at_ms,
                    purged: p.purged,
                    detail: p.detail.clone(),
                })
                .collect(),
            auto_rejoins: g
                .auto_rejoins
                .iter()
                .map(|a| pb::AutoRejoin {
                    server: a.server.clone(),
                    at_ms: a.at_ms,
                    outcome: a.outcome.as_str().to_string(),
                    detail: a.detail.clone(),
                })
                .collect(),
            servers: g.servers.iter().map(Into::into).collect(),
            error: g.error.clone(),
            observed: g.observed,
        }
    }
}

impl TryFrom<pb::GroupLive> for GroupLive {
    type Error = ApiError;
    fn try_from(g: pb::GroupLive) -> Result<Self, ApiError> {
        Ok(GroupLive {
            name: g.name,
            master: g.master,
            mode: g.mode.try_into()?,
            semisync: g.semisync,
            status_code: u8::try_from(g.status_code).map_err(|_| ApiError::OutOfRange {
                field: "status_code",
                value: g.status_code.into(),
            })?,
            status: g.status,
            health: required(g.health, "health")?.try_into()?,
            last_verdict: g.last_verdict.map(TryInto::try_into).transpose()?,
            counters: g.counters.map(|c| CountersSnapshot {
                pings: c.pings,
                ping_failures: c.ping_failures,
                probes: c.probes,
                probe_latency_ms_avg: c.probe_latency_ms_avg,
                verdicts: c.verdicts,
            }),
            failover: g.failover.map(TryInto::try_into).transpose()?,
            failover_blocked: g.failover_blocked,
            last_refusal: g.last_refusal.map(TryInto::try_into).transpose()?,
            paused: g.paused.map(Into::into),
            relay_purges: g
                .relay_purges
                .into_iter()
                .map(|p| crate::runtime::relay_purge::RelayPurge {
                    server: p.server,
                    at_ms: p.at_ms,
                    purged: p.purged,
                    detail: p.detail,
                })
                .collect(),
            auto_rejoins: g
                .auto_rejoins
                .into_iter()
                .map(|a| AutoRejoin {
                    server: a.server,
                    at_ms: a.at_ms,
                    outcome: Outcome::parse(&a.outcome),
                    detail: a.detail,
                })
                .collect(),
            observed: g.observed,
            servers: g.servers.into_iter().map(Into::into).collect(),
            error: g.error,
        })
    }
}
