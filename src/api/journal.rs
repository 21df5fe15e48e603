//! The failover journal on the wire: runs with their steps, decisions and recovery facts, and
//! a group's failover bookkeeping.

use super::{enum_map, pb, required, ApiError};
use crate::model::Target;
use crate::state::journal::{
    Decided, FailoverRun, GroupFailover, Refusal, RunKind, RunState, Step, StepName, StepState,
};
use crate::state::pause::Pause;
use crate::state::recovery::{DiffFile, Recovery, Salvage};
use crate::state::switchover::{Frozen, RolledBack, Switch, SwitchOptions};

enum_map!(RunKind, pb::RunKind, "kind", {
    Auto <=> Auto, Manual <=> Manual, Switchover <=> Switchover,
});
enum_map!(StepName, pb::StepName, "steps.name", {
    ConfigCheck <=> ConfigCheck,
    Fence <=> Fence,
    LatestReplicas <=> LatestReplicas,
    SaveMasterBinlog <=> SaveMasterBinlog,
    ChooseNewMaster <=> ChooseNewMaster,
    GenerateDiffs <=> GenerateDiffs,
    PromoteNewMaster <=> PromoteNewMaster,
    ReplicasRecovery <=> ReplicasRecovery,
    NewMasterCleanup <=> NewMasterCleanup,
    SwitchCheck <=> SwitchCheck,
    RejectUpdates <=> RejectUpdates,
    SwitchMaster <=> SwitchMaster,
    SwitchReplicas <=> SwitchReplicas,
    SwitchCleanup <=> SwitchCleanup,
});

impl From<&SwitchOptions> for pb::SwitchOptions {
    fn from(o: &SwitchOptions) -> Self {
        pb::SwitchOptions {
            new_master: o.new_master.clone(),
            orig_master_is_new_slave: o.orig_master_is_new_slave,
            running_updates_limit_s: Some(o.running_updates_limit_s),
            skip_lock_all_tables: o.skip_lock_all_tables,
            seconds_behind_master_s: Some(o.seconds_behind_master_s),
            running_seconds_limit_s: Some(o.running_seconds_limit_s),
        }
    }
}

/// Plain data: nothing to refuse.
impl From<pb::SwitchOptions> for SwitchOptions {
    fn from(o: pb::SwitchOptions) -> Self {
        let d = SwitchOptions::default();
        SwitchOptions {
            new_master: o.new_master.filter(|m| !m.is_empty()),
            orig_master_is_new_slave: o.orig_master_is_new_slave,
            running_updates_limit_s: o
                .running_updates_limit_s
                .unwrap_or(d.running_updates_limit_s),
            skip_lock_all_tables: o.skip_lock_all_tables,
            seconds_behind_master_s: o
                .seconds_behind_master_s
                .unwrap_or(d.seconds_behind_master_s),
            running_seconds_limit_s: o
                .running_seconds_limit_s
                .unwrap_or(d.running_seconds_limit_s),
        }
    }
}

impl From<&Switch> for pb::Switch {
    fn from(s: &Switch) -> Self {
        pb::Switch {
            options: Some((&s.options).into()),
            new_master: s.new_master.clone(),
            rule: s.rule.clone(),
            blocked_at_ms: s.frozen.as_ref().map(|f| f.blocked_at_ms),
            frozen_position: s.frozen.as_ref().map(|f| (&f.position).into()),
            writable_at_ms: s.writable_at_ms,
            rolled_back_at_ms: s.rolled_back.as_ref().map(|r| r.at_ms),
            rolled_back: s.rolled_back.as_ref().map(|r| r.detail.clone()),
            lock_session: s.frozen.as_ref().and_then(|f| f.lock_session),
            vip_fenced: s.frozen.as_ref().is_some_and(|f| f.vip_fenced),
        }
    }
}

impl TryFrom<pb::Switch> for Switch {
    type Error = ApiError;
    fn try_from(s: pb::Switch) -> Result<Self, ApiError> {
        let frozen = match (s.blocked_at_ms, s.frozen_position) {
            (Some(blocked_at_ms), Some(p)) => Some(Frozen {
                blocked_at_ms,
                position: p.try_into()?,
                lock_session: s.lock_session,
                vip_fenced: s.vip_fenced,
            }),
            _ => None,
        };
        Ok(Switch {
            options: s.options.map(Into::into).unwrap_or_default(),
            new_master: s.new_master,
            rule: s.rule,
            frozen,
            writable_at_ms: s.writable_at_ms,
            rolled_back: s.rolled_back.map(|detail| RolledBack {
                at_ms: s.rolled_back_at_ms.unwrap_or_default(),
                detail,
            }),
        })
    }
}

impl From<&StepState> for pb::StepState {
    fn from(s: &StepState) -> Self {
        use pb::step_state::{Done, Failed, Pending, Running, Skipped, State};
        let state = match s.clone() {
            StepState::Pending => State::Pending(Pending {}),
            StepState::Running {
                term,
                node,
                started_at_ms,
                attempts,
            } => State::Running(Running {
                term,
                node,
                started_at_ms,
                attempts,
            }),
            StepState::Done {
                term,
                node,
                started_at_ms,
                finished_at_ms,
                detail,
                attempts,
                statement,
                failed_replicas,
            } => State::Done(Done {
                term,
                node,
                started_at_ms,
                finished_at_ms,
                detail,
                attempts,
                statement,
                failed_replicas,
            }),
            StepState::Failed {
                term,
                node,
                finished_at_ms,
                detail,
            } => State::Failed(Failed {
                term,
                node,
                finished_at_ms,
                detail,
            }),
            StepState::Skipped { detail } => State::Skipped(Skipped { detail }),
        };
        pb::StepState { state: Some(state) }
    }
}

impl TryFrom<pb::StepState> for StepState {
    type Error = ApiError;
    fn try_from(s: pb::StepState) -> Result<Self, ApiError> {
        use pb::step_state::State;
        Ok(match required(s.state, "steps.state")? {
            State::Pending(_) => StepState::Pending,
            State::Running(r) => StepState::Running {
                term: r.term,
                node: r.node,
                started_at_ms: r.started_at_ms,
                attempts: r.attempts,
            },
            State::Done(d) => StepState::Done {
                term: d.term,
                node: d.node,
                started_at_ms: d.started_at_ms,
                finished_at_ms: d.finished_at_ms,
                detail: d.detail,
                attempts: d.attempts,
                statement: d.statement,
                failed_replicas: d.failed_replicas,
            },
            State::Failed(f) => StepState::Failed {
                term: f.term,
                node: f.node,
                finished_at_ms: f.finished_at_ms,
                detail: f.detail,
            },
            State::Skipped(s) => StepState::Skipped { detail: s.detail },
        })
    }
}

impl From<&RunState> for pb::RunState {
    fn from(s: &RunState) -> Self {
        use pb::run_state::{Completed, Failed, Running, State};
        let state = match s {
            RunState::Running => State::Running(Running {}),
            RunState::Completed { at_ms } => State::Completed(Completed { at_ms: *at_ms }),
            RunState::Failed { at_ms, reason } => State::Failed(Failed {
                at_ms: *at_ms,
                reason: reason.clone(),
            }),
        };
        pb::RunState { state: Some(state) }
    }
}

impl TryFrom<pb::RunState> for RunState {
    type Error = ApiError;
    fn try_from(s: pb::RunState) -> Result<Self, ApiError> {
        use pb::run_state::State;
        Ok(match required(s.state, "run.state")? {
            State::Running(_) => RunState::Running,
            State::Completed(c) => RunState::Completed { at_ms: c.at_ms },
            State::Failed(f) => RunState::Failed {
                at_ms: f.at_ms,
                reason: f.reason,
            },
        })
    }
}

impl From<&Target> for pb::Target {
    fn from(t: &Target) -> Self {
        use pb::target::At;
        pb::Target {
            at: Some(match t {
                Target::Gtid(set) => At::Gtid(set.clone()),
                Target::Coord(c) => At::Coord(c.into()),
            }),
        }
    }
}

impl TryFrom<pb::Target> for Target {
    type Error = ApiError;
    fn try_from(t: pb::Target) -> Result<Self, ApiError> {
        use pb::target::At;
        Ok(match required(t.at, "decided.target (gtid or coord)")? {
            At::Gtid(set) => Target::Gtid(set),
            At::Coord(c) => Target::Coord(c.into()),
        })
    }
}

fn salvage_to_wire(s: &Salvage) -> pb::Salvage {
    pb::Salvage {
        saved: s.saved,
        from: s.from.as_ref().map(Into::into),
        to: s.to.as_ref().map(Into::into),
        bytes: s.bytes,
        transactions: s.transactions,
        first_gtid: s.first_gtid.clone(),
        last_gtid: s.last_gtid.clone(),
        copies: s.copies.clone(),
        detail: s.detail.clone(),
    }
}

fn salvage_from_wire(s: pb::Salvage) -> Salvage {
    Salvage {
        saved: s.saved,
        from: s.from.map(Into::into),
        to: s.to.map(Into::into),
        bytes: s.bytes,
        transactions: s.transactions,
        first_gtid: s.first_gtid,
        last_gtid: s.last_gtid,
        copies: s.copies,
        detail: s.detail,
    }
}

impl From<&Recovery> for pb::Recovery {
    fn from(r: &Recovery) -> Self {
        pb::Recovery {
            salvage: r.salvage.as_ref().map(salvage_to_wire),
            diffs: r
                .diffs
                .iter()
                .map(|(k, d)| {
                    (
                        k.clone(),
                        pb::DiffFile {
                            path: d.path.clone(),
                            from: d.from.as_ref().map(Into::into),
                            source: d.source.clone(),
                            bytes: d.bytes,
                            transactions: d.transactions,
                            last_gtid: d.last_gtid.clone(),
                            error: d.error.clone(),
                        },
                    )
                })
                .collect(),
            applied: r.applied.clone(),
            new_master_coords: r.new_master_coords.as_ref().map(Into::into),
        }
    }
}

impl From<pb::Recovery> for Recovery {
    fn from(r: pb::Recovery) -> Self {
        Recovery {
            salvage: r.salvage.map(salvage_from_wire),
            diffs: r
                .diffs
                .into_iter()
                .map(|(k, d)| {
                    (
                        k,
                        DiffFile {
                            path: d.path,
                            from: d.from.map(Into::into),
                            source: d.source,
                            bytes: d.bytes,
                            transactions: d.transactions,
                            last_gtid: d.last_gtid,
                            error: d.error,
                        },
                    )
                })
                .collect(),
            applied: r.applied,
            new_master_coords: r.new_master_coords.map(Into::into),
        }
    }
}

impl From<&FailoverRun> for pb::FailoverRun {
    fn from(r: &FailoverRun) -> Self {
        pb::FailoverRun {
            id: r.id,
            epoch: r.epoch,
            kind: pb::RunKind::from(r.kind).into(),
            group: r.group.clone(),
            old_master: r.old_master.clone(),
            verdict_round: r.verdict_round,
            forced: r.forced.clone(),
            decided: r.decided.as_ref().map(|d| pb::Decided {
                new_master: d.new_master.clone(),
                rule: d.rule.clone(),
                target: Some((&d.target).into()),
            }),
            recovery: Some((&r.recovery).into()),
            steps: r
                .steps
                .iter()
                .map(|s| pb::Step {
                    name: pb::StepName::from(s.name).into(),
                    state: Some((&s.state).into()),
                })
                .collect(),
            state: Some((&r.state).into()),
            started_at_ms: r.started_at_ms,
            switch: r.switch.as_ref().map(Into::into),
        }
    }
}

impl TryFrom<pb::FailoverRun> for FailoverRun {
    type Error = ApiError;
    fn try_from(r: pb::FailoverRun) -> Result<Self, ApiError> {
        Ok(FailoverRun {
            id: r.id,
            epoch: r.epoch,
            kind: r.kind.try_into()?,
            group: r.group,
            old_master: r.old_master,
            verdict_round: r.verdict_round,
            forced: r.forced,
            decided: r
                .decided
                .map(|d| {
                    Ok::<_, ApiError>(Decided {
                        new_master: d.new_master,
                        rule: d.rule,
                        target: required(d.target, "decided.target")?.try_into()?,
                    })
                })
                .transpose()?,
            recovery: r.recovery.map(Into::into).unwrap_or_default(),
            steps: r
                .steps
                .into_iter()
                .map(|s| {
                    Ok(Step {
                        name: s.name.try_into()?,
                        state: required(s.state, "steps.state")?.try_into()?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            state: required(r.state, "run.state")?.try_into()?,
            started_at_ms: r.started_at_ms,
            switch: r.switch.map(TryInto::try_into).transpose()?,
        })
    }
}

impl From<&Refusal> for pb::Refusal {
    fn from(r: &Refusal) -> Self {
        pb::Refusal {
            at_ms: r.at_ms,
            kind: pb::RunKind::from(r.kind).into(),
            reason: r.reason.clone(),
        }
    }
}

impl TryFrom<pb::Refusal> for Refusal {
    type Error = ApiError;
    fn try_from(r: pb::Refusal) -> Result<Self, ApiError> {
        Ok(Refusal {
            at_ms: r.at_ms,
            kind: r.kind.try_into()?,
            reason: r.reason,
        })
    }
}

impl From<&GroupFailover> for pb::GroupFailover {
    fn from(f: &GroupFailover) -> Self {
        pb::GroupFailover {
            epoch: f.epoch,
            active_run: f.active_run,
            last_completed_at_ms: f.last_completed_at_ms,
            blocked: f.blocked.clone(),
            refusals: f.refusals.iter().map(Into::into).collect(),
            handled_round: f.handled_round,
            paused: f.paused.as_ref().map(Into::into),
        }
    }
}

impl From<&Pause> for pb::Pause {
    fn from(p: &Pause) -> Self {
        pb::Pause {
            by: p.by.clone(),
            at_ms: p.at_ms,
            reason: p.reason.clone(),
            until_ms: p.until_ms,
        }
    }
}

/// Plain data: nothing to refuse.
impl From<pb::Pause> for Pause {
    fn from(p: pb::Pause) -> Self {
        Pause {
            by: p.by,
            at_ms: p.at_ms,
            reason: p.reason,
            until_ms: p.until_ms,
        }
    }
}

impl TryFrom<pb::GroupFailover> for GroupFailover {
    type Error = ApiError;
    fn try_from(f: pb::GroupFailover) -> Result<Self, ApiError> {
        Ok(GroupFailover {
            epoch: f.epoch,
            active_run: f.active_run,
            last_completed_at_ms: f.last_completed_at_ms,
            blocked: f.blocked,
            refusals: f
                .refusals
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            handled_round: f.handled_round,
            paused: f.paused.map(Into::into),
            // Only each manager's metrics read it, from its own replicated state: mhactl has
            // no use for it, so it is not on the wire.
            pruned: Vec::new(),
        })
    }
}
