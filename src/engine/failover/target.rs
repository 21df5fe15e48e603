//! Phase 3.3, determining the new master: MHA's selection (`engine::selection`) and the
//! [`Target`] every survivor must reach, decided once and journaled. GTID groups: the union of
//! what any survivor received or executed, so nothing a replica already has is given up.
//! Binlog file/position groups: the end of the salvaged binlog when phase 3.2 saved
//! transactions, else the latest replica's read position (the new master's own coordinates
//! after its apply are taken in phase 3.5). Also the final GTID target of phases 3.5 / 4 (the
//! decided set plus the salvage) and the donor a lagging GTID new master catches up from.

use super::latest::latest_read;
use super::{includes, merge_gtid, merge_or_empty, PlanError};
use crate::engine::gtid::GtidError;
use crate::engine::selection::{self, Selection, SelectionInput};
use crate::model::{Observations, Target};
use crate::state::group::{ReplicationMode, ServerSpec};
use crate::state::recovery::Salvage;

/// What phase 3.3 decides on.
#[derive(Clone, Debug)]
pub struct ChooseInput<'a> {
    pub selection: SelectionInput<'a>,
    pub mode: ReplicationMode,
    /// Phase 3.2's journaled result, if any.
    pub salvage: Option<&'a Salvage>,
}

/// Phase 3.3's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub selection: Selection,
    pub target: Target,
}

/// MHA's selection, then the target; Err(why no server can be promoted, with each exclusion).
pub fn choose(input: &ChooseInput) -> Result<Choice, PlanError> {
    let selection = selection::select(&input.selection)
        .map_err(|(reason, excluded)| PlanError::NoNewMaster { reason, excluded })?;
    let target = target(input.mode, input.selection.observed, input.salvage)?;
    Ok(Choice { selection, target })
}

/// The target per mode (see the module's documentation).
pub fn target(
    mode: ReplicationMode,
    obs: &Observations,
    salvage: Option<&Salvage>,
) -> Result<Target, PlanError> {
    match mode {
        ReplicationMode::FilePos => match salvage {
            Some(Salvage {
                to: Some(to),
                transactions: 1..,
                ..
            }) => Ok(Target::Coord(to.clone())),
            _ => latest_read(obs)
                .map(Target::Coord)
                .ok_or(PlanError::NoReadPosition),
        },
        ReplicationMode::MariadbGtid | ReplicationMode::MysqlGtid => {
            Ok(gtid_target(mode, obs).map(Target::Gtid)?)
        }
    }
}

/// Everything any observed server received (replicas: MariaDB Gtid_IO_Pos / MySQL
/// Retrieved_Gtid_Set) or executed (MariaDB gtid_slave_pos / MySQL gtid_executed), merged.
pub fn gtid_target(mode: ReplicationMode, obs: &Observations) -> Result<String, GtidError> {
    let mut sets = Vec::new();
    for i in obs.values().flatten() {
        if let Some(r) = &i.replica {
            sets.push(r.gtid_io_pos.as_str());
        }
        match mode {
            ReplicationMode::MariadbGtid => sets.push(i.gtid.slave_pos.as_str()),
            _ => sets.push(i.gtid.executed.as_str()),
        }
    }
    merge_gtid(mode, sets)
}

/// What every replica must reach after phase 3.5 (GTID groups): the decided set plus the last
/// transaction phase 3.5 applied from the salvaged binlog. File/position: the decided target.
pub fn final_target(mode: ReplicationMode, decided: &Target, salvage: Option<&Salvage>) -> Target {
    match salvage.and_then(|s| s.last_gtid.as_ref()) {
        Some(g) if mode != ReplicationMode::FilePos => {
            Target::Gtid(merge_or_empty(mode, &[&decided.to_string(), g]))
        }
        _ => decided.clone(),
    }
}

/// GTID groups, phase 3.5: the new master's relay log cannot bring it to `target` (it did not
/// receive all of it: it is not a latest replica), so it first replicates from a donor.
pub fn needs_donor(mode: ReplicationMode, received: &str, target: &str) -> bool {
    !target.is_empty() && !includes(mode, received, target)
}

/// The first server (in group order, not the new master) whose binlog holds all of `target`:
/// MariaDB gtid_binlog_pos, MySQL gtid_executed, with log_bin on.
pub fn donor(
    mode: ReplicationMode,
    new_master: &str,
    servers: &[ServerSpec],
    obs: &Observations,
    target: &str,
) -> Result<String, PlanError> {
    servers
        .iter()
        .filter(|x| x.name != new_master)
        .find(|x| match obs.get(&x.name) {
            Some(Ok(i)) => {
                let have = match mode {
                    ReplicationMode::MariadbGtid => &i.gtid.binlog_pos,
                    _ => &i.gtid.executed,
                };
                i.log_bin && includes(mode, have, target)
            }
            _ => false,
        })
        .map(|x| x.name.clone())
        .ok_or_else(|| PlanError::NoDonor {
            new_master: new_master.to_string(),
            target: target.to_string(),
        })
}
