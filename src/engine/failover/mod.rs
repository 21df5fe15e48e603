//! The failover planner: MHA's phases as pure decisions. The runtime's failover steps gather
//! the facts (what the old master did when knocked on, what each survivor reports, how far its
//! relay logs reach), call the planner, act on its decisions through the adapters and journal
//! what happened. Nothing here touches a server, a clock or the journal: facts in, decisions
//! (`crate::model::failover` values) out, table-tested.
//!
//! | phase | module | decides |
//! |---|---|---|
//! | 1 configuration check | [`check`] | the old master is still dead; every survivor replicates from it; file/position needs SSH |
//! | 2 dead-master shutdown | [`fence`] | VIP removal or SSH check; master_ip_failover_script / shutdown_script `stop` vs `stopssh`; the script's verdict |
//! | 3.1 latest replicas, 3.2 salvage | [`latest`] | the latest read position (and the oldest applied one); where salvage starts |
//! | 3.3 new master | [`target`] | MHA's selection and the [`Target`](crate::model::Target) per mode; the final GTID target; a catch-up donor |
//! | 3.4 diff generation | [`diffs`] | the relay-log source, each survivor's range, lack_relay_log |
//! | 4 replicas, the run | [`replicas`] | where replicas start and what they wait for; done / partially failed / failed |
//! | every step | [`actor`] | who acts: the leader, or the member that reaches what it cannot |
//! | 5 cleanup, a failed run | [`workfiles`] | the run's work files on the DB hosts: which, where; removed or kept |

pub mod actor;
pub mod check;
pub mod diffs;
mod error;
pub mod fence;
pub mod latest;
pub mod replicas;
pub mod target;
pub mod workfiles;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod target_tests;

pub use self::error::PlanError;
use crate::engine::gtid::{self, GtidError};
use crate::model::TargetKind;
use crate::state::group::ReplicationMode;

/// The kind of target a replication mode calls for.
pub fn target_kind(mode: ReplicationMode) -> TargetKind {
    match mode {
        ReplicationMode::FilePos => TargetKind::Coord,
        ReplicationMode::MariadbGtid | ReplicationMode::MysqlGtid => TargetKind::Gtid,
    }
}

/// Merges GTID positions in the group's flavour: MariaDB positions for MariaDB GTID groups,
/// MySQL sets otherwise.
pub fn merge_gtid<'a>(
    mode: ReplicationMode,
    sets: impl IntoIterator<Item = &'a str>,
) -> Result<String, GtidError> {
    match mode {
        ReplicationMode::MariadbGtid => gtid::merge_mariadb(sets),
        _ => gtid::merge_mysql(sets),
    }
}

/// Normalised merge that never fails: an unparseable set merges to empty.
pub fn merge_or_empty(mode: ReplicationMode, sets: &[&str]) -> String {
    merge_gtid(mode, sets.iter().copied()).unwrap_or_default()
}

/// Whether the GTID position `have` already holds everything in `want`. An unreadable position
/// proves nothing: false (a server whose GTID state cannot be read is neither taken as caught
/// up nor as a donor).
pub fn includes(mode: ReplicationMode, have: &str, want: &str) -> bool {
    match (merge_gtid(mode, [have, want]), merge_gtid(mode, [have])) {
        (Ok(both), Ok(had)) => both == had,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Containment per flavour: MariaDB per domain, MySQL by intervals.
    #[test]
    fn includes_per_flavour() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let cases = [
            (ReplicationMode::MariadbGtid, "0-1-10", "0-1-9", true),
            (ReplicationMode::MariadbGtid, "0-1-9", "0-1-10", false),
            (ReplicationMode::MariadbGtid, "0-1-9", "0-1-9,1-2-3", false),
            (
                ReplicationMode::MysqlGtid,
                &format!("{u}:1-10"),
                &format!("{u}:3-7"),
                true,
            ),
            (
                ReplicationMode::MysqlGtid,
                &format!("{u}:1-5"),
                &format!("{u}:1-6"),
                false,
            ),
            // An unreadable position proves nothing, either way round.
            (ReplicationMode::MariadbGtid, "garbage", "0-1-9", false),
            (ReplicationMode::MariadbGtid, "0-1-9", "0-x-9", false),
            (
                ReplicationMode::MysqlGtid,
                "not-a-uuid:1-9",
                &format!("{u}:1"),
                false,
            ),
        ];
        for (mode, have, want, expect) in cases {
            assert_eq!(
                includes(mode, have, want),
                expect,
                "{mode:?} {have} ⊇ {want}"
            );
        }
        assert_eq!(target_kind(ReplicationMode::FilePos), TargetKind::Coord);
        assert_eq!(target_kind(ReplicationMode::MysqlGtid), TargetKind::Gtid);
    }
}
