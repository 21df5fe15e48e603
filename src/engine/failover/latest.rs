//! Phase 3.1 (latest replicas) and the start of phase 3.2 (save the dead master's binlog): the
//! latest read position among the survivors is where MHA's "latest slaves" are, where salvage
//! starts, and (file/position, nothing salvaged) the new master's target. Coordinates compare
//! by the binlog file's numeric index, then the position; among equal (or incomparable)
//! coordinates the first one given wins.

use super::PlanError;
use std::cmp::Ordering;

use crate::model::{BinlogCoord, Observations, SalvagePlan};
use crate::state::group::ServerSpec;
use crate::state::recovery::Salvage;

/// The furthest of `coords` (MHA: max Master_Log_File, Read_Master_Log_Pos).
pub fn latest<'a>(coords: impl IntoIterator<Item = &'a BinlogCoord>) -> Option<BinlogCoord> {
    coords
        .into_iter()
        .fold(None, |best: Option<&BinlogCoord>, c| match best {
            Some(b) if c.partial_cmp(b) != Some(Ordering::Greater) => Some(b),
            _ => Some(c),
        })
        .cloned()
}

/// The least advanced of `coords`.
pub fn oldest<'a>(coords: impl IntoIterator<Item = &'a BinlogCoord>) -> Option<BinlogCoord> {
    coords
        .into_iter()
        .fold(None, |best: Option<&BinlogCoord>, c| match best {
            Some(b) if c.partial_cmp(b) != Some(Ordering::Less) => Some(b),
            _ => Some(c),
        })
        .cloned()
}

/// The latest read position among every observed replica (in the observations' order).
pub fn latest_read(obs: &Observations) -> Option<BinlogCoord> {
    latest(
        obs.values()
            .flatten()
            .filter_map(|i| i.replica.as_ref().map(|r| &r.read)),
    )
}

/// Phase 3.1's journal detail: how far each survivor read and applied; Err when no survivor
/// answered as a replica.
pub fn report(survivors: &[ServerSpec], obs: &Observations) -> Result<String, PlanError> {
    let mut lines = Vec::new();
    for s in survivors {
        if let Some(Ok(i)) = obs.get(&s.name) {
            if let Some(r) = &i.replica {
                lines.push(format!(
                    "{}: read {} applied {} gtid received [{}] executed [{}]",
                    s.name, r.read, r.exec, r.gtid_io_pos, i.gtid.executed
                ));
            }
        }
    }
    if lines.is_empty() {
        return Err(PlanError::NoReplicaAnswered);
    }
    Ok(lines.join("; "))
}

/// Phase 3.2: read the dead master's binlog from the latest replica's read position, unless
/// phase 2 found its host unreachable (it is not waited for twice).
pub fn salvage_plan(obs: &Observations, host_unreachable: bool) -> Result<SalvagePlan, PlanError> {
    let from = latest_read(obs).ok_or(PlanError::NoReplicaAnswered)?;
    Ok(SalvagePlan {
        from,
        skip: host_unreachable.then(|| "unreachable in phase 2".to_string()),
    })
}

/// What phase 3.2 journals when the dead master's binlog could not be read.
pub fn salvage_lost(old: &str, from: &BinlogCoord, why: &str) -> Salvage {
    Salvage {
        saved: false,
        from: Some(from.clone()),
        detail: format!(
            "dead master {old} could not be read over SSH ({why}): transactions after {from} \
             (the latest replica's read position) that no replica received are lost"
        ),
        ..Salvage::default()
    }
}

/// Whether phase 3.2's result is journaled: not when the binlog was read and held nothing new
/// (the critical path is spared a commit; a resumed run simply reads again).
pub fn record_salvage(s: &Salvage) -> bool {
    !(s.saved && s.transactions == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::{coord, group, observed, replica, server};
    use crate::model::Flavor;

    /// Latest and oldest, table-driven: numeric file order, position within a file; lagging
    /// replicas; the first of equals wins.
    #[test]
    fn latest_and_oldest() {
        let cases = [
            (vec![coord(1, 100), coord(1, 200), coord(1, 150)], 1, 0),
            // mysql-bin.000010 is after mysql-bin.000009 (not a string compare).
            (vec![coord(9, 900), coord(10, 4), coord(9, 950)], 1, 0),
            (vec![coord(3, 5)], 0, 0),
            (vec![coord(2, 7), coord(1, 9), coord(2, 7)], 0, 1),
        ];
        for (coords, want_latest, want_oldest) in cases {
            assert_eq!(
                latest(&coords),
                Some(coords[want_latest].clone()),
                "{coords:?}"
            );
            assert_eq!(
                oldest(&coords),
                Some(coords[want_oldest].clone()),
                "{coords:?}"
            );
        }
        assert_eq!(latest(&[]), None);
        // Incomparable names (no numeric index): the first stays.
        let odd = [
            BinlogCoord {
                file: "a".into(),
                pos: 1,
            },
            coord(1, 9),
        ];
        assert_eq!(latest(&odd), Some(odd[0].clone()));
    }

    /// Phase 3.1 reports every survivor that answered as a replica, in group order; the latest
    /// read position counts only replicas; without one, the step aborts.
    #[test]
    fn phase_3_1() {
        let g = group(4);
        let obs = observed(vec![
            ("db2", Ok(replica(2, 1, 300, 250))),
            ("db3", Err("timeout")),
            ("db4", Ok(replica(4, 2, 10, 10))),
        ]);
        let text = report(&g.servers[1..], &obs).unwrap();
        assert_eq!(
            text,
            "db2: read mysql-bin.000001:300 applied mysql-bin.000001:250 gtid received [] \
             executed []; db4: read mysql-bin.000002:10 applied mysql-bin.000002:10 gtid \
             received [] executed []"
        );
        assert_eq!(latest_read(&obs), Some(coord(2, 10)));
        let none = observed(vec![
            ("db2", Ok(server(Flavor::MariaDb, 2))),
            ("db3", Err("timeout")),
        ]);
        assert_eq!(
            report(&g.servers[1..], &none),
            Err(PlanError::NoReplicaAnswered)
        );
        assert_eq!(latest_read(&none), None);
    }

    /// Salvage starts at the latest read position; a host phase 2 could not reach is not
    /// tried again; what is lost is said.
    #[test]
    fn phase_3_2() {
        let obs = observed(vec![
            ("db2", Ok(replica(2, 1, 300, 250))),
            ("db3", Ok(replica(3, 1, 500, 100))),
        ]);
        let p = salvage_plan(&obs, false).unwrap();
        assert_eq!((p.from, p.skip), (coord(1, 500), None));
        let p = salvage_plan(&obs, true).unwrap();
        assert_eq!(p.skip.as_deref(), Some("unreachable in phase 2"));
        assert!(salvage_plan(&observed(vec![]), false).is_err());
        let lost = salvage_lost("db1", &coord(1, 500), "unreachable in phase 2");
        assert!(!lost.saved && record_salvage(&lost));
        assert!(
            lost.detail
                .contains("could not be read over SSH (unreachable in phase 2)")
                && lost.detail.contains("after mysql-bin.000001:500")
                && lost.detail.ends_with("are lost"),
            "{}",
            lost.detail
        );
        let nothing_new = Salvage {
            saved: true,
            ..Salvage::default()
        };
        assert!(!record_salvage(&nothing_new));
        let saved = Salvage {
            saved: true,
            transactions: 3,
            ..Salvage::default()
        };
        assert!(record_salvage(&saved));
    }
}
