//! An online switchover (MHA's `masterha_master_switch --master_state=alive`) in the journal:
//! a run of kind `Switchover` with its own steps (step.rs `StepName::SWITCHOVER`), the
//! operator's options, and what happened that a resuming leader must know — the new master
//! chosen once, the old master's final position once writes were blocked, when the new master
//! became writable (the point of no return) and, before that point, whether the run was rolled
//! back.

use serde::{Deserialize, Serialize};

use super::journal::{RunKind, RunState, StepName};
use super::rejection::Rejection;
use crate::model::{Health, Target};

/// A manager that knows [`super::Cmd::BeginSwitchover`] and [`super::Cmd::RecordSwitch`]
/// registers this feature; `mhactl switchover` is refused, before it changes anything, until
/// every member has.
pub const FEATURE_SWITCHOVER: &str = "switchover";

/// MHA's `--running_updates_limit` default (seconds): an update on the old master running this
/// long or longer (plus one, as MHA counts) refuses the switch.
pub const DEFAULT_RUNNING_UPDATES_LIMIT_S: u64 = 1;
/// MHA's `--seconds_behind_master` default: a replica further behind refuses the switch.
pub const DEFAULT_SECONDS_BEHIND_MASTER_S: u64 = 30;
/// MHA's `--running_seconds_limit` default: a query on the new master running this long or
/// longer refuses the switch.
pub const DEFAULT_RUNNING_SECONDS_LIMIT_S: u64 = 10;

/// What the operator asked for (`mhactl switchover`). A field missing from a stored record
/// reads as MHA's default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwitchOptions {
    /// `--new-master`: promote this server instead of MHA's selection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_master: Option<String>,
    /// `--orig-master-is-new-slave`: the old master replicates from the new one afterwards.
    pub orig_master_is_new_slave: bool,
    /// `--running-updates-limit` (seconds).
    pub running_updates_limit_s: u64,
    /// `--skip-lock-all-tables`: no FLUSH TABLES WITH READ LOCK (MHA then checks that the
    /// binlog stands still instead).
    pub skip_lock_all_tables: bool,
    /// `--seconds-behind-master` (seconds).
    pub seconds_behind_master_s: u64,
    /// `--running-seconds-limit` (seconds).
    pub running_seconds_limit_s: u64,
}

impl Default for SwitchOptions {
    fn default() -> Self {
        SwitchOptions {
            new_master: None,
            orig_master_is_new_slave: false,
            running_updates_limit_s: DEFAULT_RUNNING_UPDATES_LIMIT_S,
            skip_lock_all_tables: false,
            seconds_behind_master_s: DEFAULT_SECONDS_BEHIND_MASTER_S,
            running_seconds_limit_s: DEFAULT_RUNNING_SECONDS_LIMIT_S,
        }
    }
}

/// The old master frozen: when writes were blocked (the acting manager's clock) and where its
/// binlog stood (GTID set, or file:pos in file/position groups).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frozen {
    pub blocked_at_ms: u64,
    pub position: Target,
    /// The old master's session (CONNECTION_ID) holding the global read lock: a leader that
    /// resumes the run kills exactly that one if it still lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_session: Option<u64>,
    /// Phase 2 fenced (or removed) the VIP on the old master's host: a roll-back serves it
    /// there again (and only then).
    #[serde(default)]
    pub vip_fenced: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub at_ms: u64,
    pub detail: String,
}

/// An online switchover's options and progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Switch {
    pub options: SwitchOptions,
    /// The new master phase 1 chose, and by which of MHA's rules (decided once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_master: Option<String>,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen: Option<Frozen>,
    /// When the new master took over (read_only=0, journaled at once, before the VIP moves):
    /// from then on the run only goes forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writable_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<RolledBack>,
}

impl Switch {
    /// How long writes were blocked, by the acting managers' clocks (None: not both known).
    pub fn blocked_ms(&self) -> Option<u64> {
        let f = self.frozen.as_ref()?;
        Some(self.writable_at_ms?.saturating_sub(f.blocked_at_ms))
    }
}

/// What a switchover step records (`Cmd::RecordSwitch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SwitchEvent {
    /// Phase 1 chose the new master (the same again is a no-op, another one is refused).
    Chosen { new_master: String, rule: String },
    /// Phase 2 blocked writes: the old master's final position. A resumed phase 2 records it
    /// again (the first blocking time stays); refused once phase 3 began.
    Frozen(Frozen),
    /// Phase 3 made the new master the writable master (the first time stays).
    Writable { at_ms: u64 },
    /// A failure before the point of no return undid phase 2 (refused after it).
    RolledBack(RolledBack),
}

impl super::ClusterState {
    /// Begins an online switchover of `group`: refused while another run is active, while a
    /// failed run is unacknowledged, and while the master is not known alive (a dead master
    /// is `mhactl failover`'s). Not subject to the anti-flap window: it is planned.
    pub(super) fn begin_switchover(
        &mut self,
        group: &str,
        old_master: &str,
        options: &SwitchOptions,
        at: u64,
    ) -> super::apply::Applied {
        let g = self.group_mut(group)?;
        if g.topology.master != old_master {
            return Err(refused(format!(
                "the master of group {group} is {}, not {old_master}",
                g.topology.master
            )));
        }
        if !matches!(g.health.state, Health::Alive) {
            return Err(refused(format!(
                "the master {old_master} is not known alive (health: {:?}); a dead master is \
                 replaced with mhactl failover",
                g.health.state
            )));
        }
        if let Some(m) = &options.new_master {
            if m == old_master || !g.topology.servers.contains_key(m) {
                return Err(refused(format!(
                    "--new-master {m}: not a replica in group {group}"
                )));
            }
        }
        let f = self.failover.entry(group.to_string()).or_default();
        if let Some(run) = f.active_run {
            return Err(Rejection::RunActive {
                group: group.to_string(),
                run,
            });
        }
        if let Some(b) = &f.blocked {
            return Err(refused(format!(
                "{b}; acknowledge it first with: mhactl failover ack --group {group}"
            )));
        }
        let mut run = self.new_run(RunKind::Switchover, group, old_master, None, at);
        run.forced = options.new_master.clone();
        run.switch = Some(Switch {
            options: options.clone(),
            ..Switch::default()
        });
        self.runs.insert(run.id, run);
        Ok(true)
    }

    pub(super) fn record_switch(&mut self, run: u64, event: &SwitchEvent) -> super::apply::Applied {
        let r = self.run_mut(run)?;
        if r.state != RunState::Running {
            return Err(super::JournalError::RunNotRunning { run }.into());
        }
        let phase3_begun = r.steps.iter().any(|s| {
            s.name == StepName::SwitchMaster
                && !matches!(s.state, super::journal::StepState::Pending)
        });
        let Some(sw) = r.switch.as_mut() else {
            return Err(refused(format!("run {run} is not a switchover")));
        };
        match event {
            SwitchEvent::Chosen { new_master, rule } => match &sw.new_master {
                Some(m) if m == new_master => Ok(false),
                Some(m) => Err(refused(format!(
                    "run {run} already chose {m} as the new master"
                ))),
                None => {
                    sw.new_master = Some(new_master.clone());
                    sw.rule = rule.clone();
                    Ok(true)
                }
            },
            SwitchEvent::Frozen(fz) => {
                if phase3_begun {
                    return Err(refused(format!(
                        "run {run}: the old master's final position is fixed once phase 3 began"
                    )));
                }
                let blocked_at_ms = sw
                    .frozen
                    .as_ref()
                    .map_or(fz.blocked_at_ms, |f| f.blocked_at_ms.min(fz.blocked_at_ms));
                sw.frozen = Some(Frozen {
                    blocked_at_ms,
                    ..fz.clone()
                });
                Ok(true)
            }
            SwitchEvent::Writable { at_ms } => {
                if sw.rolled_back.is_some() {
                    return Err(refused(format!("run {run} was rolled back")));
                }
                if sw.writable_at_ms.is_some() {
                    return Ok(false);
                }
                sw.writable_at_ms = Some(*at_ms);
                Ok(true)
            }
            SwitchEvent::RolledBack(rb) => {
                if sw.writable_at_ms.is_some() {
                    return Err(refused(format!(
                        "run {run}: the new master took over; the switch only goes forward"
                    )));
                }
                if sw.rolled_back.is_some() {
                    return Ok(false);
                }
                sw.rolled_back = Some(rb.clone());
                Ok(true)
            }
        }
    }
}

fn refused(reason: String) -> Rejection {
    Rejection::FailoverRefused {
        kind: RunKind::Switchover,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::group::tests::put;
    use crate::state::journal::StepOutcome;
    use crate::state::{ClusterState, Cmd, CmdResult};

    /// Group g: db1 master of db2 and db3.
    fn state() -> ClusterState {
        use crate::state::group::{DiscoveredServer, Role};
        let mut s = ClusterState::default();
        assert_eq!(s.apply(&put("g"), 1), CmdResult::Ok);
        let t = &mut s.groups.get_mut("g").unwrap().topology;
        for (i, name) in ["db1", "db2", "db3"].into_iter().enumerate() {
            let master = i == 0;
            let server = DiscoveredServer {
                name: name.into(),
                role: if master { Role::Master } else { Role::Replica },
                server_id: i as u32 + 1,
                version: "10.11".into(),
                read_only: !master,
                log_bin: true,
                replicates_from: (!master).then(|| "db1".to_string()),
            };
            t.servers.insert(name.into(), server);
        }
        s
    }

    fn says(r: &CmdResult, what: &str) -> bool {
        matches!(r, CmdResult::Rejected(x) if x.to_string().contains(what))
    }

    fn begin(opts: SwitchOptions) -> Cmd {
        Cmd::BeginSwitchover {
            group: "g".into(),
            old_master: "db1".into(),
            options: opts,
        }
    }

    fn record(run: u64, event: SwitchEvent) -> Cmd {
        Cmd::RecordSwitch { run, event }
    }

    fn frozen(at: u64, pos: &str) -> SwitchEvent {
        SwitchEvent::Frozen(Frozen {
            blocked_at_ms: at,
            position: Target::Gtid(pos.into()),
            lock_session: Some(7),
            vip_fenced: true,
        })
    }

    /// Runs step `name` of run 1 to done in term 1.
    fn done(s: &mut ClusterState, name: StepName, at: u64) {
        let begin = Cmd::StepBegin {
            run: 1,
            step: name,
            term: 1,
            node: 1,
        };
        assert_eq!(s.apply(&begin, at), CmdResult::Ok, "{name:?}");
        let end = Cmd::StepEnd {
            run: 1,
            step: name,
            term: 1,
            outcome: StepOutcome::Done("ok".into()),
        };
        assert_eq!(s.apply(&end, at), CmdResult::Ok, "{name:?}");
    }

    #[test]
    fn a_switchover_has_its_own_steps_and_options() {
        let mut s = state();
        let opts = SwitchOptions {
            orig_master_is_new_slave: true,
            running_updates_limit_s: 3,
            ..SwitchOptions::default()
        };
        assert_eq!(s.apply(&begin(opts.clone()), 10), CmdResult::Ok);
        let r = &s.runs[&1];
        assert_eq!(r.kind, RunKind::Switchover);
        let names: Vec<StepName> = r.steps.iter().map(|s| s.name).collect();
        assert_eq!(names, StepName::SWITCHOVER.to_vec());
        assert_eq!(r.switch.as_ref().unwrap().options, opts);
        assert_eq!(s.failover["g"].epoch, 1);
        // One run at a time.
        assert!(matches!(
            s.apply(&begin(SwitchOptions::default()), 11),
            CmdResult::Rejected(_)
        ));
    }

    #[test]
    fn refused_when_the_master_is_not_alive_or_not_the_master() {
        let mut s = state();
        let wrong = Cmd::BeginSwitchover {
            group: "g".into(),
            old_master: "db2".into(),
            options: SwitchOptions::default(),
        };
        assert!(says(&s.apply(&wrong, 10), "not db2"));
        let forced_unknown = begin(SwitchOptions {
            new_master: Some("db9".into()),
            ..SwitchOptions::default()
        });
        assert!(says(&s.apply(&forced_unknown, 10), "db9"));
        s.groups.get_mut("g").unwrap().health.state = Health::Suspect {
            round: 1,
            since_ms: 5,
        };
        assert!(says(
            &s.apply(&begin(SwitchOptions::default()), 10),
            "mhactl failover"
        ));
        assert!(s.runs.is_empty());
    }

    #[test]
    fn chosen_once_frozen_until_phase_3_writable_is_the_point_of_no_return() {
        let mut s = state();
        s.apply(&begin(SwitchOptions::default()), 10);
        let chose = |m: &str| {
            record(
                1,
                SwitchEvent::Chosen {
                    new_master: m.into(),
                    rule: "candidate_master".into(),
                },
            )
        };
        assert_eq!(s.apply(&chose("db2"), 11), CmdResult::Ok);
        assert_eq!(s.apply(&chose("db2"), 11), CmdResult::Unchanged);
        assert!(matches!(s.apply(&chose("db3"), 11), CmdResult::Rejected(_)));
        done(&mut s, StepName::SwitchCheck, 12);
        // A resumed phase 2 records again; the first blocking time stays.
        assert_eq!(s.apply(&record(1, frozen(20, "0-1-5")), 20), CmdResult::Ok);
        assert_eq!(s.apply(&record(1, frozen(30, "0-1-6")), 30), CmdResult::Ok);
        let f = s.runs[&1].switch.as_ref().unwrap().frozen.clone().unwrap();
        assert_eq!(
            (f.blocked_at_ms, f.position),
            (20, Target::Gtid("0-1-6".into()))
        );
        done(&mut s, StepName::RejectUpdates, 31);
        let begin3 = Cmd::StepBegin {
            run: 1,
            step: StepName::SwitchMaster,
            term: 1,
            node: 1,
        };
        assert_eq!(s.apply(&begin3, 32), CmdResult::Ok);
        assert!(matches!(
            s.apply(&record(1, frozen(40, "0-1-7")), 40),
            CmdResult::Rejected(_)
        ));
        assert_eq!(
            s.apply(&record(1, SwitchEvent::Writable { at_ms: 45 }), 45),
            CmdResult::Ok
        );
        let sw = s.runs[&1].switch.clone().unwrap();
        assert_eq!(sw.blocked_ms(), Some(25));
        let rb = SwitchEvent::RolledBack(RolledBack {
            at_ms: 50,
            detail: "x".into(),
        });
        assert!(says(&s.apply(&record(1, rb), 50), "forward"));
    }

    #[test]
    fn a_rolled_back_switchover_blocks_nothing_a_completed_one_sets_no_anti_flap() {
        let mut s = state();
        s.apply(&begin(SwitchOptions::default()), 10);
        done(&mut s, StepName::SwitchCheck, 11);
        done(&mut s, StepName::RejectUpdates, 12);
        let rb = SwitchEvent::RolledBack(RolledBack {
            at_ms: 13,
            detail: "old master writable again".into(),
        });
        assert_eq!(s.apply(&record(1, rb), 13), CmdResult::Ok);
        // Writable is refused after a roll-back.
        assert!(matches!(
            s.apply(&record(1, SwitchEvent::Writable { at_ms: 14 }), 14),
            CmdResult::Rejected(_)
        ));
        let fail = Cmd::FinishFailover {
            run: 1,
            failed: Some("phase 3: timed out".into()),
        };
        assert_eq!(s.apply(&fail, 15), CmdResult::Ok);
        assert_eq!(s.failover["g"].blocked, None);
        assert_eq!(s.groups["g"].topology.master, "db1");

        // A switchover that completes moves the master, keeps the old one as a replica when
        // asked, and leaves the anti-flap clock alone.
        s.apply(
            &begin(SwitchOptions {
                orig_master_is_new_slave: true,
                ..SwitchOptions::default()
            }),
            20,
        );
        let run = 2;
        let decided = Cmd::Decide {
            run,
            decided: crate::state::journal::Decided {
                new_master: "db2".into(),
                rule: "candidate_master".into(),
                target: Target::Gtid("0-1-9".into()),
            },
        };
        assert_eq!(s.apply(&decided, 21), CmdResult::Ok);
        for name in StepName::SWITCHOVER {
            for cmd in [
                Cmd::StepBegin {
                    run,
                    step: name,
                    term: 1,
                    node: 1,
                },
                Cmd::StepEnd {
                    run,
                    step: name,
                    term: 1,
                    outcome: StepOutcome::Done("ok".into()),
                },
            ] {
                assert_eq!(s.apply(&cmd, 22), CmdResult::Ok);
            }
        }
        let finish = Cmd::FinishFailover { run, failed: None };
        assert_eq!(s.apply(&finish, 23), CmdResult::Ok);
        assert_eq!(s.failover["g"].blocked, None);
        let t = &s.groups["g"].topology;
        assert_eq!(t.master, "db2");
        assert_eq!(t.servers["db1"].replicates_from.as_deref(), Some("db2"));
        assert_eq!(t.servers["db1"].role, crate::state::group::Role::Replica);
        assert_eq!(s.failover["g"].last_completed_at_ms, None);
    }

    /// Failed after the new master took over: the topology follows the new master (it is the
    /// writable one), automatic failover is blocked until acknowledged, no roll-back.
    #[test]
    fn a_switchover_that_fails_after_the_point_of_no_return_moves_the_master_and_blocks() {
        let mut s = state();
        s.apply(&begin(SwitchOptions::default()), 10);
        for name in [StepName::SwitchCheck, StepName::RejectUpdates] {
            done(&mut s, name, 11);
        }
        let decided = Cmd::Decide {
            run: 1,
            decided: crate::state::journal::Decided {
                new_master: "db2".into(),
                rule: "forced".into(),
                target: Target::Gtid("0-1-9".into()),
            },
        };
        assert_eq!(s.apply(&decided, 12), CmdResult::Ok);
        let begin3 = Cmd::StepBegin {
            run: 1,
            step: StepName::SwitchMaster,
            term: 1,
            node: 1,
        };
        assert_eq!(s.apply(&begin3, 12), CmdResult::Ok);
        assert_eq!(
            s.apply(&record(1, SwitchEvent::Writable { at_ms: 13 }), 13),
            CmdResult::Ok
        );
        let failed = Cmd::StepEnd {
            run: 1,
            step: StepName::SwitchMaster,
            term: 1,
            outcome: StepOutcome::Failed { detail: "x".into() },
        };
        assert_eq!(s.apply(&failed, 14), CmdResult::Ok);
        let fail = Cmd::FinishFailover {
            run: 1,
            failed: Some("Phase 3: x".into()),
        };
        assert_eq!(s.apply(&fail, 15), CmdResult::Ok);
        assert_eq!(s.groups["g"].topology.master, "db2");
        assert!(s.failover["g"].blocked.is_some());
    }
}
