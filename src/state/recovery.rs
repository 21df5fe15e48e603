//! What a run's binlog recovery did, journaled as it happens (phases 3.2, 3.4, 3.5 and 4): the
//! salvaged binlog and where its copies are, the diff file placed on each server, which servers
//! have applied theirs, and the new master's coordinates every replica starts from. A new leader
//! reads this instead of redoing work: a diff is never generated twice from moved positions and
//! the coordinates are taken once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rejection::JournalError;
use crate::model::server::optional_coord;
use crate::model::BinlogCoord;

/// Phase 3.2's result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Salvage {
    /// Whether the dead master's host answered and its binlog was read.
    pub saved: bool,
    /// From where (the latest replica's read position) to where (end of the binlog; none when
    /// it could not be read).
    #[serde(with = "optional_coord")]
    pub from: Option<BinlogCoord>,
    #[serde(with = "optional_coord")]
    pub to: Option<BinlogCoord>,
    pub bytes: u64,
    pub transactions: u64,
    pub first_gtid: Option<String>,
    pub last_gtid: Option<String>,
    /// `server:path` of each copy on a survivor (the manager keeps none of its own).
    pub copies: Vec<String>,
    /// What was saved, or why nothing could be and what may be lost.
    pub detail: String,
}

/// A diff file placed on a server in phase 3.4: everything that server lacks, from its own
/// applied position through the latest replica's relay logs and the salvaged binlog.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiffFile {
    /// Path on the server's host; empty when nothing was missing.
    pub path: String,
    /// The server's applied position the diff starts after.
    #[serde(with = "optional_coord")]
    pub from: Option<BinlogCoord>,
    /// The latest replica whose relay logs it was cut from.
    pub source: String,
    pub bytes: u64,
    pub transactions: u64,
    pub last_gtid: Option<String>,
    /// Set when no diff could be made (relay logs do not reach back): the server is left out.
    pub error: Option<String>,
}

/// One journaled fact of a run's recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum RecoveryNote {
    Salvage(Salvage),
    Diff {
        server: String,
        diff: DiffFile,
    },
    /// A server applied its diff to the end (detail: transactions applied / already present).
    Applied {
        server: String,
        detail: String,
    },
    /// The new master's binlog coordinates after its apply (file/position groups).
    NewMasterCoords {
        file: String,
        pos: u64,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recovery {
    pub salvage: Option<Salvage>,
    pub diffs: BTreeMap<String, DiffFile>,
    pub applied: BTreeMap<String, String>,
    #[serde(with = "optional_coord::pair")]
    pub new_master_coords: Option<BinlogCoord>,
}

impl Recovery {
    /// Records a note. Facts are set once: repeating one changes nothing (Ok(false)), a
    /// different value for something already recorded is refused.
    pub fn record(&mut self, note: &RecoveryNote) -> Result<bool, JournalError> {
        fn once<T: PartialEq + Clone + std::fmt::Debug>(
            slot: &mut Option<T>,
            v: &T,
            what: &str,
        ) -> Result<bool, JournalError> {
            match slot {
                None => {
                    *slot = Some(v.clone());
                    Ok(true)
                }
                Some(x) if x == v => Ok(false),
                Some(x) => Err(JournalError::AlreadyRecorded {
                    what: what.to_string(),
                    was: format!("{x:?}"),
                }),
            }
        }
        match note {
            RecoveryNote::Salvage(s) => once(&mut self.salvage, s, "the salvage"),
            RecoveryNote::Diff { server, diff } => {
                let mut slot = self.diffs.get(server).cloned();
                let r = once(&mut slot, diff, &format!("{server}'s diff"))?;
                self.diffs.insert(server.clone(), diff.clone());
                Ok(r)
            }
            RecoveryNote::Applied { server, detail } => {
                if self.applied.contains_key(server) {
                    return Ok(false);
                }
                self.applied.insert(server.clone(), detail.clone());
                Ok(true)
            }
            RecoveryNote::NewMasterCoords { file, pos } => once(
                &mut self.new_master_coords,
                &BinlogCoord {
                    file: file.clone(),
                    pos: *pos,
                },
                "the new master's coordinates",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_recorded_once() {
        let mut r = Recovery::default();
        let c = |p| RecoveryNote::NewMasterCoords {
            file: "mysql-bin.000003".into(),
            pos: p,
        };
        assert_eq!(r.record(&c(120)), Ok(true));
        assert_eq!(r.record(&c(120)), Ok(false));
        assert!(r.record(&c(999)).is_err(), "coordinates are taken once");
        let d = |b| RecoveryNote::Diff {
            server: "db3".into(),
            diff: DiffFile {
                bytes: b,
                ..DiffFile::default()
            },
        };
        assert_eq!(r.record(&d(10)), Ok(true));
        assert!(r.record(&d(11)).is_err());
        assert_eq!(r.diffs["db3"].bytes, 10);
        let a = RecoveryNote::Applied {
            server: "db3".into(),
            detail: "3 transactions".into(),
        };
        assert_eq!(r.record(&a), Ok(true));
        assert_eq!(r.record(&a), Ok(false));
    }
}
