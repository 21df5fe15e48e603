//! What a node has promised its peers, as plain numbers: the vote it saved, the last log entry
//! it acknowledged, the commit index, the purge point and the snapshot it holds. The integrity
//! record ([`super::record`]) keeps the last durable copy; at start the store's content must not
//! be behind it (ARCHITECTURE.md invariant 8).
//!
//! The store module knows nothing of openraft's types, so the raft layer converts its `Vote`
//! and `LogId` into these marks; the field order makes the derived ordering openraft's (a vote
//! by term, then candidate, then committed; a log id by term, then leader, then index).

use std::fmt;

/// A saved vote: `term`, the node voted for, and whether a quorum granted it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct VoteMark {
    pub term: u64,
    pub node: u64,
    pub committed: bool,
}

/// A log id: the leader that wrote the entry (`term`, `node`) and its `index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark {
    pub term: u64,
    pub node: u64,
    pub index: u64,
}

impl fmt::Display for LogMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (term {})", self.index, self.term)
    }
}

/// Everything the node has promised. `None` = nothing of that kind yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub vote: Option<VoteMark>,
    pub last_log: Option<LogMark>,
    pub committed: Option<LogMark>,
    pub last_purged: Option<LogMark>,
    pub snapshot: Option<LogMark>,
}

fn show<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

fn show_vote(v: Option<VoteMark>) -> String {
    v.map_or_else(
        || "none".to_string(),
        |v| format!("term {} for node {}", v.term, v.node),
    )
}

impl Marks {
    /// Nothing promised: a store that never voted, logged, purged or snapshotted.
    pub fn is_empty(&self) -> bool {
        *self == Marks::default()
    }

    /// How `found` (what the store holds) is behind `self` (what was promised), one phrase per
    /// promise it no longer keeps; empty when it keeps them all. `log_at(i)` is the id of the
    /// store's entry at index `i`, if it has one: the recorded last entry must still be there,
    /// unchanged, unless it was purged since.
    pub fn gaps(&self, found: &Marks, log_at: impl Fn(u64) -> Option<LogMark>) -> Vec<String> {
        let mut gaps = Vec::new();
        if let Some(rec) = self.vote {
            // openraft's own order (without `single-term-leader`): term, then the candidate's
            // id, then committed. A node may legitimately move its vote in a term to a
            // candidate with a higher id (a split vote), so a store whose flush got that far
            // before a crash is ahead of the record, not behind it.
            let covered = found.vote.is_some_and(|f| f >= rec);
            if !covered {
                gaps.push(format!(
                    "vote {} recorded, {} found",
                    show_vote(Some(rec)),
                    show_vote(found.vote)
                ));
            }
        }
        if let Some(rec) = self.last_log {
            let purged_past = found.last_purged.is_some_and(|p| p.index >= rec.index);
            let kept = found.last_log.is_some_and(|l| l.index >= rec.index)
                && log_at(rec.index) == Some(rec);
            if !(purged_past || kept) {
                let at = log_at(rec.index)
                    .filter(|l| *l != rec)
                    .map(|l| format!(", entry {} differs (term {})", l.index, l.term))
                    .unwrap_or_default();
                gaps.push(format!(
                    "last log {rec} recorded, {} found{at}",
                    show(found.last_log)
                ));
            }
        }
        let mut monotonic = |what: &str, rec: Option<LogMark>, found: Option<LogMark>| {
            if rec.is_some() && found < rec {
                gaps.push(format!(
                    "{what} {} recorded, {} found",
                    show(rec),
                    show(found)
                ));
            }
        };
        monotonic("committed", self.committed, found.committed);
        monotonic("purged up to", self.last_purged, found.last_purged);
        monotonic("snapshot at", self.snapshot, found.snapshot);
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(term: u64, index: u64) -> LogMark {
        LogMark {
            term,
            node: 1,
            index,
        }
    }

    fn vote(term: u64, node: u64, committed: bool) -> VoteMark {
        VoteMark {
            term,
            node,
            committed,
        }
    }

    fn marks(v: VoteMark, last: LogMark, committed: LogMark) -> Marks {
        Marks {
            vote: Some(v),
            last_log: Some(last),
            committed: Some(committed),
            last_purged: None,
            snapshot: None,
        }
    }

    /// The store's own log, as a lookup: entries 1..=last of `term`.
    fn log_of(term: u64, last: u64) -> impl Fn(u64) -> Option<LogMark> {
        move |i| (i >= 1 && i <= last).then(|| log(term, i))
    }

    /// Equal or ahead keeps every promise; nothing recorded promises nothing.
    #[test]
    fn equal_or_ahead_is_fine() {
        let rec = marks(vote(5, 1, true), log(5, 75), log(5, 70));
        assert!(rec.gaps(&rec, log_of(5, 75)).is_empty());
        let ahead = marks(vote(6, 2, false), log(5, 80), log(5, 78));
        assert!(rec.gaps(&ahead, log_of(5, 80)).is_empty());
        assert!(Marks::default()
            .gaps(&Marks::default(), |_| None)
            .is_empty());
        assert!(Marks::default().gaps(&ahead, log_of(5, 80)).is_empty());
    }

    /// The reported case: term 1041 → 12, last log 75 → 52; every gap is named.
    #[test]
    fn rolled_back_is_named() {
        let rec = marks(vote(1041, 1, true), log(1041, 75), log(1041, 75));
        let found = marks(vote(12, 1, true), log(12, 52), log(12, 50));
        let gaps = rec.gaps(&found, log_of(12, 52));
        assert_eq!(gaps.len(), 3, "{gaps:?}");
        assert_eq!(
            gaps[0],
            "vote term 1041 for node 1 recorded, term 12 for node 1 found"
        );
        assert_eq!(
            gaps[1],
            "last log 75 (term 1041) recorded, 52 (term 12) found"
        );
        assert!(gaps[2].starts_with("committed 75"), "{gaps:?}");
    }

    /// Votes ordered as openraft orders them: the same term for a higher candidate is ahead
    /// (a split vote moves it there), a lower candidate is behind; a committed vote that became
    /// uncommitted went back too.
    #[test]
    fn votes_compare_as_openraft_orders_them() {
        let rec = Marks {
            vote: Some(vote(7, 2, false)),
            ..Marks::default()
        };
        let higher = Marks {
            vote: Some(vote(7, 3, false)),
            ..Marks::default()
        };
        assert!(rec.gaps(&higher, |_| None).is_empty());
        let lower = Marks {
            vote: Some(vote(7, 1, false)),
            ..Marks::default()
        };
        assert_eq!(rec.gaps(&lower, |_| None).len(), 1);
        let rec = Marks {
            vote: Some(vote(7, 2, true)),
            ..Marks::default()
        };
        let uncommitted = Marks {
            vote: Some(vote(7, 2, false)),
            ..Marks::default()
        };
        assert_eq!(rec.gaps(&uncommitted, |_| None).len(), 1);
        assert_eq!(rec.gaps(&Marks::default(), |_| None).len(), 1);
    }

    /// The recorded last entry replaced by another one at the same index (a different term):
    /// the store is not the one that made the promise, even if it is as long.
    #[test]
    fn same_index_other_entry_is_behind() {
        let rec = marks(vote(5, 1, true), log(5, 75), log(5, 70));
        let found = marks(vote(5, 1, true), log(4, 80), log(5, 70));
        let gaps = rec.gaps(&found, log_of(4, 80));
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].contains("entry 75 differs (term 4)"), "{gaps:?}");
    }

    /// After a truncation the record was lowered first (the raft layer does that), so a
    /// shorter log whose last entry is the recorded one is fine; purged entries need not be
    /// there any more.
    #[test]
    fn truncated_and_purged_logs() {
        let rec = marks(vote(5, 1, true), log(5, 60), log(5, 50));
        let found = marks(vote(5, 1, true), log(5, 60), log(5, 55));
        assert!(rec.gaps(&found, log_of(5, 60)).is_empty());
        let purged = Marks {
            last_purged: Some(log(5, 70)),
            last_log: Some(log(5, 70)),
            ..found
        };
        assert!(rec.gaps(&purged, |_| None).is_empty());
        let rec_purge = Marks {
            last_purged: Some(log(5, 40)),
            snapshot: Some(log(5, 40)),
            ..rec
        };
        let lost = Marks {
            last_purged: Some(log(5, 30)),
            snapshot: None,
            ..found
        };
        let gaps = rec_purge.gaps(&lost, log_of(5, 60));
        assert_eq!(gaps.len(), 2, "{gaps:?}");
        assert!(gaps[0].starts_with("purged up to 40"), "{gaps:?}");
        assert_eq!(gaps[1], "snapshot at 40 (term 5) recorded, none found");
    }
}
