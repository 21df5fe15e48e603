//! mhactl's documented `--json` (docs/cli.md) of the admin messages. Each view is the JSON of
//! the domain value the message carries, so the schema stays what it was documented as when
//! the API carried those values as JSON strings; the tests below hold the two directions of
//! the conversions to that.

use serde::Serialize;
use serde_json::Value;

use super::{pb, ApiError};
use crate::engine::selection::{Excluded, Selection};
use crate::engine::topology::ReplReport;
use crate::runtime::groups::GroupLive;
use crate::state::journal::{FailoverRun, GroupFailover, StepName};
use crate::state::{AuditRecord, Group};

fn value<T: Serialize>(v: &T) -> Value {
    // Serializing plain data (no maps with non-string keys) cannot fail.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub fn group(g: &pb::Group) -> Result<Value, ApiError> {
    Ok(value(&Group::try_from(g.clone())?))
}

pub fn run(r: &pb::FailoverRun) -> Result<Value, ApiError> {
    Ok(value(&FailoverRun::try_from(r.clone())?))
}

pub fn group_failover(f: &pb::GroupFailover) -> Result<Value, ApiError> {
    Ok(value(&GroupFailover::try_from(f.clone())?))
}

pub fn group_live(g: &pb::GroupLive) -> Result<Value, ApiError> {
    Ok(value(&GroupLive::try_from(g.clone())?))
}

pub fn repl_report(r: &pb::ReplReport) -> Result<Value, ApiError> {
    Ok(value(&ReplReport::try_from(r.clone())?))
}

pub fn audit_record(r: &pb::AuditRecord) -> Value {
    value(&AuditRecord::from(r.clone()))
}

pub fn selection(s: &pb::Selection) -> Value {
    value(&Selection::from(s.clone()))
}

pub fn excluded(e: &[pb::Excluded]) -> Value {
    value(
        &e.iter()
            .cloned()
            .map(Excluded::from)
            .collect::<Vec<Excluded>>(),
    )
}

/// A replication mode as MHA users read it (MariadbGtid, MysqlGtid, FilePos).
pub fn mode_name(mode: i32) -> String {
    crate::state::group::ReplicationMode::try_from(mode)
        .map(|m| format!("{m:?}"))
        .unwrap_or_else(|_| "unknown".into())
}

/// A verdict's kind as the status line shows it (Dead, UnreachableButAlive).
pub fn verdict_kind_name(kind: i32) -> String {
    crate::model::VerdictKind::try_from(kind)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| "unknown".into())
}

/// The banner MHA users know for a step ("Phase 3.3: Determining New Master Phase").
pub fn phase(step: i32) -> String {
    StepName::try_from(step)
        .map(|s| s.phase().to_string())
        .unwrap_or_else(|_| format!("unknown step {step}"))
}

#[cfg(test)]
mod tests {
    //! Every message round-trips (domain → wire → domain) unchanged, and its JSON view is the
    //! domain value's JSON: the wire loses nothing and `--json` keeps its documented schema.
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{BinlogCoord, Health, ManagerVote, ReplicaIo, Target, Verdict, VerdictKind};
    use crate::runtime::groups::ServerLive;
    use crate::runtime::monitor::CountersSnapshot;
    use crate::state::group::{
        DiscoveredServer, FailoverSpec, GroupHealth, GroupSpec, ReplicationMode, Role, Topology,
    };
    use crate::state::journal::{Decided, Refusal, RunKind, RunState, Step, StepState};
    use crate::state::recovery::{DiffFile, Recovery, Salvage};

    fn coord(file: &str, pos: u64) -> BinlogCoord {
        BinlogCoord {
            file: file.into(),
            pos,
        }
    }

    /// The state's test group, with every optional field set somewhere (a server with its own
    /// SSH address, port and binlog dir, one excluded, hook scripts).
    fn spec() -> GroupSpec {
        let mut g = crate::state::group::tests::spec("lab");
        g.servers[0].candidate_master = true;
        g.servers[0].ssh_host = Some("10.0.0.1".into());
        g.servers[0].ssh_port = Some(2222);
        g.servers[0].master_binlog_dir = Some("/var/lib/mysql".into());
        g.servers[1].no_master = true;
        g.failover = FailoverSpec {
            shutdown_script: Some("power_off".into()),
            report_script: Some("report".into()),
            ..FailoverSpec::default()
        };
        g
    }

    fn verdict() -> Verdict {
        Verdict {
            kind: VerdictKind::Dead,
            round: 3,
            suspected_at_ms: 10,
            at_ms: 20,
            failures: 3,
            votes: vec![ManagerVote {
                manager: 2,
                zone: "zone-2".into(),
                reachable: false,
                detail: "refused".into(),
                at_ms: 15,
            }],
            replicas: BTreeMap::from([
                (
                    "db2".to_string(),
                    ReplicaIo::Disconnected {
                        detail: "Connecting".into(),
                    },
                ),
                (
                    "db3".to_string(),
                    ReplicaIo::Unreachable {
                        detail: "timeout".into(),
                    },
                ),
            ]),
            reason: "dead".into(),
        }
    }

    fn group_value() -> Group {
        Group {
            spec: spec(),
            topology: Topology {
                master: "db1".into(),
                servers: BTreeMap::from([(
                    "db2".to_string(),
                    DiscoveredServer {
                        name: "db2".into(),
                        role: Role::Replica,
                        server_id: 2,
                        version: "10.11.6-MariaDB".into(),
                        read_only: true,
                        log_bin: true,
                        replicates_from: Some("db1".into()),
                    },
                )]),
                mode: ReplicationMode::FilePos,
                semisync: true,
                warnings: vec!["relay_log_purge=1".into()],
                discovered_at_ms: 5,
            },
            created_at_ms: 1,
            updated_at_ms: 2,
            health: GroupHealth {
                state: Health::UnreachableButAlive {
                    round: 2,
                    since_ms: 9,
                },
                next_round: 4,
                verdicts: vec![verdict()],
            },
        }
    }

    fn run_value() -> FailoverRun {
        let steps = vec![
            StepState::Done {
                term: 2,
                node: 1,
                started_at_ms: 3,
                finished_at_ms: 4,
                detail: "ok".into(),
                attempts: 2,
                statement: Some("All other slaves should start replication from here.".into()),
                failed_replicas: vec!["db3".into()],
            },
            StepState::Failed {
                term: 2,
                node: 1,
                finished_at_ms: 5,
                detail: "no".into(),
            },
            StepState::Running {
                term: 3,
                node: 2,
                started_at_ms: 6,
                attempts: 1,
            },
            StepState::Skipped {
                detail: "gtid".into(),
            },
            StepState::Pending,
        ];
        FailoverRun {
            id: 7,
            epoch: 2,
            kind: RunKind::Manual,
            group: "lab".into(),
            old_master: "db1".into(),
            verdict_round: Some(3),
            forced: Some("db3".into()),
            decided: Some(Decided {
                new_master: "db3".into(),
                rule: "forced".into(),
                target: Target::Coord(coord("mysql-bin.000001", 120)),
            }),
            recovery: Recovery {
                salvage: Some(Salvage {
                    saved: true,
                    from: Some(coord("a.000001", 1)),
                    to: Some(coord("a.000001", 9)),
                    bytes: 8,
                    transactions: 1,
                    first_gtid: Some("0-1-5".into()),
                    last_gtid: None,
                    copies: vec!["db2:/var/tmp/x".into()],
                    detail: "saved".into(),
                }),
                diffs: BTreeMap::from([(
                    "db2".to_string(),
                    DiffFile {
                        path: "/var/tmp/d".into(),
                        error: Some("lack_relay_log".into()),
                        ..DiffFile::default()
                    },
                )]),
                applied: BTreeMap::from([("db2".to_string(), "3 transactions".to_string())]),
                new_master_coords: Some(coord("mysql-bin.000002", 4)),
            },
            steps: StepName::ALL
                .iter()
                .zip(steps.into_iter().cycle())
                .map(|(n, s)| Step { name: *n, state: s })
                .collect(),
            state: RunState::Failed {
                at_ms: 30,
                reason: "Phase 2: x".into(),
            },
            started_at_ms: 1,
            switch: Some(crate::state::switchover::Switch {
                options: crate::state::switchover::SwitchOptions {
                    new_master: Some("db3".into()),
                    orig_master_is_new_slave: true,
                    running_updates_limit_s: 2,
                    skip_lock_all_tables: true,
                    seconds_behind_master_s: 45,
                    running_seconds_limit_s: 20,
                },
                new_master: Some("db3".into()),
                rule: "forced".into(),
                frozen: Some(crate::state::switchover::Frozen {
                    blocked_at_ms: 10,
                    position: Target::Gtid("0-1-9".into()),
                    lock_session: Some(42),
                    vip_fenced: true,
                }),
                writable_at_ms: None,
                rolled_back: Some(crate::state::switchover::RolledBack {
                    at_ms: 12,
                    detail: "db1 writable again".into(),
                }),
            }),
        }
    }

    #[test]
    fn group_round_trips_and_keeps_its_json() {
        let g = group_value();
        let wire = pb::Group::from(&g);
        assert_eq!(Group::try_from(wire.clone()).unwrap(), g);
        assert_eq!(group(&wire).unwrap(), serde_json::to_value(&g).unwrap());
        let spec = pb::GroupSpec::from(&g.spec);
        assert_eq!(GroupSpec::try_from(spec.clone()).unwrap(), g.spec);
        // A client that does not know the purge key (unset on the wire) gets no purge.
        let mut old = spec;
        if let Some(f) = old.failover.as_mut() {
            f.purge_relay_logs_every_m = None;
            f.auto_rejoin = None;
            f.check_repl_filter = None;
        }
        let back = GroupSpec::try_from(old).unwrap().failover;
        assert_eq!(back.purge_relay_logs_every_m, 0);
        assert!(!back.auto_rejoin);
        assert!(back.check_repl_filter);
    }

    #[test]
    fn run_and_bookkeeping_round_trip_and_keep_their_json() {
        let r = run_value();
        let wire = pb::FailoverRun::from(&r);
        assert_eq!(FailoverRun::try_from(wire.clone()).unwrap(), r);
        assert_eq!(run(&wire).unwrap(), serde_json::to_value(&r).unwrap());
        let f = GroupFailover {
            epoch: 2,
            active_run: Some(7),
            last_completed_at_ms: Some(4),
            blocked: Some("Phase 2: x".into()),
            refusals: vec![Refusal {
                at_ms: 1,
                kind: RunKind::Auto,
                reason: "anti-flap".into(),
            }],
            handled_round: Some(3),
            paused: Some(crate::state::pause::Pause {
                by: "alice (operator)".into(),
                at_ms: 5,
                reason: "upgrade".into(),
                until_ms: Some(9),
            }),
            pruned: vec![],
        };
        let wire = pb::GroupFailover::from(&f);
        assert_eq!(GroupFailover::try_from(wire.clone()).unwrap(), f);
        assert_eq!(
            group_failover(&wire).unwrap(),
            serde_json::to_value(&f).unwrap()
        );
    }

    #[test]
    fn live_view_round_trips_and_keeps_its_json() {
        let g = GroupLive {
            name: "lab".into(),
            master: "db1".into(),
            mode: ReplicationMode::MariadbGtid,
            semisync: false,
            status_code: 51,
            status: "FAILOVER_ERROR".into(),
            health: Health::Dead {
                round: 3,
                at_ms: 20,
            },
            last_verdict: Some(verdict()),
            counters: Some(CountersSnapshot {
                pings: 9,
                ping_failures: 3,
                probes: 2,
                probe_latency_ms_avg: 4,
                verdicts: 1,
            }),
            failover: Some(run_value()),
            failover_blocked: Some("Phase 2: x".into()),
            last_refusal: None,
            paused: Some(crate::state::pause::Pause {
                by: "alice (operator)".into(),
                at_ms: 5,
                reason: String::new(),
                until_ms: None,
            }),
            relay_purges: vec![crate::runtime::relay_purge::RelayPurge {
                server: "db2".into(),
                at_ms: 7,
                purged: true,
                detail: "applied relay logs before relay-bin.000004 purged".into(),
            }],
            auto_rejoins: vec![crate::runtime::rejoin::auto::AutoRejoin {
                server: "db1".into(),
                at_ms: 8,
                outcome: crate::runtime::rejoin::auto::Outcome::Refused,
                detail: "db1 holds transactions the master db2 lacks (errant): 0-1-9".into(),
            }],
            observed: true,
            servers: vec![ServerLive {
                name: "db2".into(),
                address: "10.77.0.12:3306".into(),
                role: "replica".into(),
                read_only: Some(true),
                position: "0-1-5".into(),
                io_thread: Some("Connecting".into()),
                sql_thread: Some(true),
                seconds_behind: None,
                error: None,
            }],
            error: None,
        };
        let wire = pb::GroupLive::from(&g);
        assert_eq!(GroupLive::try_from(wire.clone()).unwrap(), g);
        let json = group_live(&wire).unwrap();
        assert_eq!(json, serde_json::to_value(&g).unwrap());
        // The documented display name of the mode, not the snake_case of the group file.
        assert_eq!(json["mode"], "MariadbGtid");
        assert_eq!(json["health"]["state"], "dead");
    }

    #[test]
    fn checks_and_selection_round_trip_and_keep_their_json() {
        let r = ReplReport {
            group: "lab".into(),
            master: Some("db1".into()),
            tree: vec!["db1 (current master)".into()],
            mode: None,
            checks: vec![crate::engine::topology::CheckItem {
                server: "db2".into(),
                check: "io_thread".into(),
                ok: false,
                detail: "No".into(),
            }],
            errors: vec!["e".into()],
            warnings: vec![],
            ok: false,
        };
        let wire = pb::ReplReport::from(&r);
        assert_eq!(ReplReport::try_from(wire.clone()).unwrap(), r);
        assert_eq!(
            repl_report(&wire).unwrap(),
            serde_json::to_value(&r).unwrap()
        );
        let s = Selection {
            new_master: "db2".into(),
            rule: "latest".into(),
            latest: vec!["db2".into()],
            latest_position: Some(BinlogCoord {
                file: "mysql-bin.000001".into(),
                pos: 4,
            }),
            excluded: vec![Excluded {
                server: "db3".into(),
                reason: "no_master".into(),
            }],
            explanation: vec!["x".into()],
        };
        let wire = pb::Selection::from(&s);
        assert_eq!(Selection::from(wire.clone()), s);
        assert_eq!(selection(&wire), serde_json::to_value(&s).unwrap());
        assert_eq!(
            excluded(&wire.excluded),
            serde_json::to_value(&s.excluded).unwrap()
        );
    }

    #[test]
    fn audit_records_round_trip_and_keep_their_json() {
        let r = AuditRecord {
            seq: 12,
            at_ms: 1_700_000_000_123,
            entry: crate::state::AuditEntry {
                manager: 2,
                who: "alice (operator)".into(),
                from: "10.0.0.9:51234".into(),
                rpc: "StartFailover".into(),
                what: "group lab, new master db3".into(),
                result: "FAILED_PRECONDITION".into(),
                detail: "failover run 3 of group lab is still active".into(),
            },
        };
        let wire = pb::AuditRecord::from(&r);
        assert_eq!(AuditRecord::from(wire.clone()), r);
        let json = audit_record(&wire);
        assert_eq!(json, serde_json::to_value(&r).unwrap());
        // Flat, as documented in docs/cli.md.
        assert_eq!(json["seq"], 12);
        assert_eq!(json["who"], "alice (operator)");
        assert_eq!(json["result"], "FAILED_PRECONDITION");
        assert_eq!(json.as_object().unwrap().len(), 9, "{json}");
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let mut wire = pb::GroupSpec::from(&spec());
        wire.ssh = None;
        assert_eq!(
            GroupSpec::try_from(wire).unwrap_err(),
            ApiError::Missing("spec.ssh")
        );
        let mut wire = pb::GroupSpec::from(&spec());
        wire.servers[0].port = 70000;
        assert!(matches!(
            GroupSpec::try_from(wire),
            Err(ApiError::OutOfRange { .. })
        ));
        let mut wire = pb::FailoverRun::from(&run_value());
        wire.kind = 99;
        assert!(matches!(
            FailoverRun::try_from(wire),
            Err(ApiError::UnknownEnum { field: "kind", .. })
        ));
        assert_eq!(phase(99), "unknown step 99");
    }
}
