//! One function per command of [`ClusterState::apply`]. Each returns whether the state changed
//! (`Ok(false)`: already in effect) or the rule that refused it. Deterministic: the log entry's
//! time comes in as `at`, nothing here reads a clock or does I/O.

use super::group::{self, Group, GroupSpec, Topology};
use super::journal::{self, FailoverRun, StepName};
use super::rejection::Rejection;
use super::{ClusterState, Cmd, ManagerInfo};
use crate::model::{Health, Verdict, VerdictKind};

/// Whether a command changed the state, or why it was refused.
pub(crate) type Applied = Result<bool, Rejection>;

/// What `Cmd::BeginFailover` asks for.
#[derive(Clone, Copy, Debug)]
pub struct BeginRun<'a> {
    pub group: &'a str,
    pub kind: journal::RunKind,
    pub old_master: &'a str,
    pub verdict_round: Option<u64>,
    pub anti_flap_ms: u64,
    pub forced: Option<&'a str>,
}

impl ClusterState {
    /// The command's rule, applied at the log entry's time `at`.
    pub(super) fn dispatch(&mut self, cmd: &Cmd, at: u64) -> Applied {
        match cmd {
            Cmd::SetClusterName { name } => self.set_cluster_name(name),
            Cmd::RegisterManager {
                id,
                addr,
                zone,
                admin_addr,
                features,
                by_self,
            } => {
                let changed =
                    self.register_manager(*id, addr, zone, admin_addr.as_deref(), features, at)?;
                Ok(self.mark_ran(*id, *by_self) || changed)
            }
            Cmd::ForgetManager { id } => Ok(self.managers.remove(id).is_some()),
            Cmd::PutGroup {
                spec,
                topology,
                replace,
                exclusive,
            } => {
                if *exclusive {
                    if let Some(r) = self.server_conflict(spec) {
                        return Err(r);
                    }
                }
                self.put_group(spec, topology, *replace, at)
            }
            Cmd::RemoveGroup { name } => self.remove_group(name),
            Cmd::OpenSuspicion {
                group,
                round,
                since_ms,
            } => self.open_suspicion(group, *round, *since_ms),
            Cmd::CloseSuspicion { group, round } => Ok(self.close_suspicion(group, *round, at)),
            Cmd::RecordVerdict { group, verdict } => self.record_verdict(group, verdict),
            Cmd::RecordVerdictAndBegin { group, verdict } => {
                self.record_verdict_and_begin(group, verdict, at)
            }
            Cmd::BeginFailover {
                group,
                kind,
                old_master,
                verdict_round,
                anti_flap_ms,
                forced,
            } => self.begin_failover(
                BeginRun {
                    group,
                    kind: *kind,
                    old_master,
                    verdict_round: *verdict_round,
                    anti_flap_ms: *anti_flap_ms,
                    forced: forced.as_deref(),
                },
                at,
            ),
            // The journal's own entries, one rule each for a single entry and for a batch.
            Cmd::StepBegin { run, .. }
            | Cmd::StepEnd { run, .. }
            | Cmd::StepAdvance { run, .. }
            | Cmd::Decide { run, .. }
            | Cmd::RecordRecovery { run, .. } => self.run_mut(*run)?.apply_journal(cmd, at),
            Cmd::JournalBatch { run, entries } => self.journal_batch(*run, entries, at),
            Cmd::FinishFailover { run, failed } => {
                self.finish_failover(*run, failed.as_deref(), at)
            }
            Cmd::AckFailover { group } => Ok(self.ack_failover(group)),
            Cmd::PauseGroup {
                group,
                by,
                reason,
                for_ms,
            } => {
                let pause = super::pause::Pause {
                    by: by.clone(),
                    at_ms: at,
                    reason: reason.clone(),
                    until_ms: for_ms.map(|d| at.saturating_add(d)),
                };
                self.pause_group(group, pause)
            }
            Cmd::ResumeGroup { group } => self.resume_group(group, at),
            Cmd::RejoinReplica {
                group,
                master,
                updated_at_ms,
                server,
            } => self.rejoin_replica(group, master, *updated_at_ms, server, at),
            Cmd::BeginSwitchover {
                group,
                old_master,
                options,
            } => self.begin_switchover(group, old_master, options, at),
            Cmd::RecordSwitch { run, event } => self.record_switch(*run, event),
            Cmd::Audit { entry } => {
                self.audit.push(entry, at);
                Ok(true)
            }
            Cmd::PruneRuns { group, before } => self.prune_runs(group, *before),
        }
    }

    pub(super) fn run_mut(&mut self, run: u64) -> Result<&mut FailoverRun, Rejection> {
        self.runs.get_mut(&run).ok_or(Rejection::NoSuchRun { run })
    }

    pub(super) fn group_mut(&mut self, group: &str) -> Result<&mut Group, Rejection> {
        self.groups
            .get_mut(group)
            .ok_or_else(|| Rejection::NoSuchGroup {
                group: group.to_string(),
            })
    }

    pub(super) fn set_cluster_name(&mut self, name: &str) -> Applied {
        match &self.name {
            Some(existing) if existing != name => Err(Rejection::ClusterNamed {
                name: existing.clone(),
            }),
            Some(_) => Ok(false),
            None => {
                self.name = Some(name.to_string());
                Ok(true)
            }
        }
    }

    pub(super) fn register_manager(
        &mut self,
        id: u64,
        addr: &str,
        zone: &str,
        admin_addr: Option<&str>,
        features: &[String],
        at: u64,
    ) -> Applied {
        if self.managers.get(&id).is_some_and(|m| {
            m.addr == addr
                && m.zone == zone
                && m.admin_addr.as_deref() == admin_addr
                && m.features == features
        }) {
            return Ok(false);
        }
        let info = ManagerInfo {
            id,
            addr: addr.to_string(),
            zone: zone.to_string(),
            admin_addr: admin_addr.map(str::to_string),
            registered_at_ms: at,
            features: features.to_vec(),
            // Once a manager ran it stays so until it is forgotten (removed).
            ran: self.managers.get(&id).is_some_and(|m| m.ran),
        };
        self.managers.insert(id, info);
        Ok(true)
    }

    /// Records that manager `id` registered itself (`by_self`), so it ran; whether that changed
    /// the state.
    fn mark_ran(&mut self, id: u64, by_self: bool) -> bool {
        match self.managers.get_mut(&id) {
            Some(m) if by_self && !m.ran => {
                m.ran = true;
                true
            }
            _ => false,
        }
    }

    pub(super) fn put_group(
        &mut self,
        spec: &GroupSpec,
        topology: &Topology,
        replace: bool,
        at: u64,
    ) -> Applied {
        let name = &spec.name;
        let prev = self.groups.get(name);
        match (prev, replace) {
            (Some(_), false) => {
                return Err(Rejection::GroupExists {
                    group: name.clone(),
                })
            }
            (None, true) => {
                return Err(Rejection::NoSuchGroup {
                    group: name.clone(),
                })
            }
            // Only an update waits for the run to end (the rule every build applies the
            // same way: a replayed log must give the same state).
            (Some(_), true)
                if self
                    .failover
                    .get(name)
                    .is_some_and(|f| f.active_run.is_some()) =>
            {
                return Err(Rejection::GroupBusy {
                    group: name.clone(),
                });
            }
            _ => {}
        }
        let created_at_ms = prev.map(|g| g.created_at_ms).unwrap_or(at);
        let mut health = prev.map(|g| g.health.clone()).unwrap_or_default();
        // The leader just discovered this topology from a live master: whatever the old
        // master's health was (a Dead verdict that was not failed over, a DBA's repair),
        // monitoring starts afresh. The verdicts stay.
        health.state = Health::Alive;
        let group = Group {
            spec: spec.clone(),
            topology: topology.clone(),
            created_at_ms,
            updated_at_ms: at,
            health,
        };
        self.groups.insert(name.clone(), group);
        Ok(true)
    }

    pub(super) fn remove_group(&mut self, name: &str) -> Applied {
        match self.groups.remove(name) {
            Some(_) => {
                // A pause belongs to the group: one added later under the name is not paused.
                // Its verdict rounds start again at 1, so the round handled last must not make
                // the new group's first Dead verdict look handled. The epoch, the anti-flap
                // clock and a block stay, as MHA's failover-complete file outlives a restart.
                if let Some(f) = self.failover.get_mut(name) {
                    f.paused = None;
                    f.handled_round = None;
                }
                Ok(true)
            }
            None => Err(Rejection::NoSuchGroup {
                group: name.to_string(),
            }),
        }
    }

    pub(super) fn open_suspicion(&mut self, group: &str, round: u64, since_ms: u64) -> Applied {
        let h = &mut self.group_mut(group)?.health;
        if round < h.next_round {
            return Ok(false);
        }
        // Saturating: the last round id (only a corrupt or hostile entry carries it) must not
        // overflow (a panic in apply, or a wrap to round 0 in a release build).
        h.next_round = round.saturating_add(1);
        h.state = Health::Suspect { round, since_ms };
        Ok(true)
    }

    /// The master answers the leader again. A removed group has nothing to close: unchanged,
    /// not refused. A Dead round closes only while the group is paused and nothing acted on
    /// that death (the master came back from a planned restart); otherwise a Dead verdict is
    /// the failover's to resolve.
    pub(super) fn close_suspicion(&mut self, group: &str, round: u64, at: u64) -> bool {
        let paused_idle = self
            .failover
            .get(group)
            .is_some_and(|f| f.pause_at(at).is_some())
            && self.dead_round_untouched(group, round);
        let Some(g) = self.groups.get_mut(group) else {
            return false;
        };
        match g.health.state {
            Health::Suspect { round: r, .. } | Health::UnreachableButAlive { round: r, .. }
                if r == round =>
            {
                g.health.state = Health::Alive;
                true
            }
            Health::Dead { round: r, .. } if r == round && paused_idle => {
                g.health.state = Health::Alive;
                true
            }
            _ => false,
        }
    }

    pub(super) fn pause_group(&mut self, group: &str, pause: super::pause::Pause) -> Applied {
        self.group_mut(group)?;
        let f = self.failover.entry(group.to_string()).or_default();
        f.paused = Some(pause.bounded());
        Ok(true)
    }

    /// A master still Dead from a verdict taken while paused, with no run active, goes back
    /// to Alive: the leader's monitor then suspects it afresh and corroborates as usual, and a
    /// new verdict starts the usual failover (the old round was refused, and stays handled).
    pub(super) fn resume_group(&mut self, group: &str, at: u64) -> Applied {
        let untouched = match self.group_mut(group)?.health.state {
            Health::Dead { round, .. } => self.dead_round_untouched(group, round),
            _ => false,
        };
        let Some(f) = self.failover.get_mut(group) else {
            return Ok(false);
        };
        if f.paused.take().is_none() {
            return Ok(false);
        }
        if untouched {
            if let Some(g) = self.groups.get_mut(group) {
                g.health.state = Health::Alive;
                g.updated_at_ms = at;
            }
        }
        Ok(true)
    }

    pub(super) fn record_verdict(&mut self, group: &str, verdict: &Verdict) -> Applied {
        let h = &mut self.group_mut(group)?.health;
        if h.verdicts.iter().any(|v| v.round == verdict.round) {
            return Err(Rejection::VerdictExists {
                round: verdict.round,
            });
        }
        h.next_round = h.next_round.max(verdict.round.saturating_add(1));
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
        h.verdicts.push(verdict.clone());
        if h.verdicts.len() > group::VERDICT_HISTORY {
            h.verdicts.remove(0);
        }
        Ok(true)
    }

    pub(super) fn begin_failover(&mut self, b: BeginRun<'_>, at: u64) -> Applied {
        let g = self.group_mut(b.group)?;
        let mode = g.topology.mode;
        // An automatic run answers the Dead verdict that still stands: a resume (or the master
        // back while paused) may have ended it after the leader proposed the run.
        if b.kind == journal::RunKind::Auto
            && b.verdict_round.is_some()
            && !matches!(g.health.state, Health::Dead { round, .. } if Some(round) == b.verdict_round)
        {
            return Err(Rejection::FailoverRefused {
                kind: b.kind,
                reason: format!(
                    "the Dead verdict of round {} no longer stands (health: {:?})",
                    b.verdict_round.unwrap_or_default(),
                    g.health.state
                ),
            });
        }
        let f = self.failover.entry(b.group.to_string()).or_default();
        if let Some(run) = f.active_run {
            return Err(Rejection::RunActive {
                group: b.group.to_string(),
                run,
            });
        }
        if b.kind == journal::RunKind::Auto {
            if b.verdict_round.is_some() {
                f.handled_round = b.verdict_round;
            }
            if let Some(reason) = f.refuse_auto(at, b.anti_flap_ms) {
                f.refusals.push(journal::Refusal {
                    at_ms: at,
                    kind: b.kind,
                    reason: reason.clone(),
                });
                if f.refusals.len() > journal::REFUSAL_HISTORY {
                    f.refusals.remove(0);
                }
                return Err(Rejection::FailoverRefused {
                    kind: b.kind,
                    reason,
                });
            }
        }
        let mut run = self.new_run(b.kind, b.group, b.old_master, b.verdict_round, at);
        run.forced = b.forced.map(str::to_string);
        if mode != group::ReplicationMode::FilePos {
            // Nothing to cut in GTID groups: skipped from the start, one commit less on the
            // way to the new master.
            run.skip(
                StepName::GenerateDiffs,
                "GTID replication: relay logs and auto-position bring every replica level, no \
                 diff files",
            );
        }
        self.runs.insert(run.id, run);
        Ok(true)
    }

    /// A new run of `group`: the next run id, the group's next epoch (the fencing token), and
    /// the group's active run. The caller checked that none is active.
    pub(super) fn new_run(
        &mut self,
        kind: journal::RunKind,
        group: &str,
        old_master: &str,
        verdict_round: Option<u64>,
        at: u64,
    ) -> FailoverRun {
        let id = self.next_run_id.max(1);
        self.next_run_id = id + 1;
        let f = self.failover.entry(group.to_string()).or_default();
        f.epoch += 1;
        f.active_run = Some(id);
        FailoverRun::new(id, f.epoch, kind, group, old_master, verdict_round, at)
    }

    pub(super) fn finish_failover(&mut self, run: u64, failed: Option<&str>, at: u64) -> Applied {
        let r = self
            .runs
            .get_mut(&run)
            .ok_or(Rejection::NoSuchRun { run })?;
        if r.state != journal::RunState::Running {
            return Ok(false);
        }
        let f = self.failover.entry(r.group.clone()).or_default();
        match failed {
            None => {
                if let Some(step) = r.first_unfinished() {
                    return Err(Rejection::RunUnfinished { run, step });
                }
                r.state = journal::RunState::Completed { at_ms: at };
                // The anti-flap window follows failovers, not a planned switch.
                if r.kind != journal::RunKind::Switchover {
                    f.last_completed_at_ms = Some(at);
                }
                if let (Some(d), Some(g)) = (&r.decided, self.groups.get_mut(&r.group)) {
                    let left_out = r.left_out();
                    let old = g.topology.servers.get(&r.old_master).cloned();
                    g.promoted(&r.old_master, &d.new_master, &left_out, at);
                    // --orig-master-is-new-slave: the old master stays, as a replica of the new
                    // one (unless phase 4 reported it could not be repointed).
                    if let (Some(mut old), Some(sw)) = (old, &r.switch) {
                        if sw.options.orig_master_is_new_slave
                            && !r
                                .failed_replicas_of(StepName::SwitchReplicas)
                                .contains(&r.old_master)
                        {
                            old.role = group::Role::Replica;
                            old.replicates_from = Some(d.new_master.clone());
                            old.read_only = true;
                            g.topology.servers.insert(old.name.clone(), old);
                        }
                    }
                }
            }
            Some(reason) => {
                r.state = journal::RunState::Failed {
                    at_ms: at,
                    reason: reason.to_string(),
                };
                // As MHA (failover.error is written from phase 2 on): a run that failed in
                // its configuration check changed nothing and blocks nothing; nor does a
                // switchover that was rolled back.
                let rolled_back = r.switch.as_ref().is_some_and(|s| s.rolled_back.is_some());
                if r.touched_servers() && !rolled_back {
                    f.blocked = Some(format!("failover run {run} failed: {reason}"));
                }
                // A switchover that failed after its new master took over: that server is the
                // master now (the old one stays read_only), whatever else is left to do — the
                // monitor must watch it and a later failover must replace it, not the old one.
                let took_over = r
                    .switch
                    .as_ref()
                    .is_some_and(|s| s.writable_at_ms.is_some());
                if let (true, Some(d), Some(g)) =
                    (took_over, &r.decided, self.groups.get_mut(&r.group))
                {
                    let left_out = r.left_out();
                    g.promoted(&r.old_master, &d.new_master, &left_out, at);
                }
            }
        }
        f.active_run = None;
        Ok(true)
    }

    /// Nothing to acknowledge without bookkeeping: no empty entry is created (an unchanged
    /// command leaves the state as it was; every reader takes a missing entry as the default).
    pub(super) fn ack_failover(&mut self, group: &str) -> bool {
        let Some(f) = self.failover.get_mut(group) else {
            return false;
        };
        if f.blocked.is_none() && f.last_completed_at_ms.is_none() {
            return false;
        }
        f.blocked = None;
        f.last_completed_at_ms = None;
        true
    }
}
