//! At start, before openraft sees the store: read everything it will rely on (vote, commit
//! index, purge point, snapshot, every log entry), check it is whole, and check it against the
//! integrity record (ARCHITECTURE.md invariant 8). Whatever fails is refused with the store's
//! path and what to do, never a panic and never a silent start on older state.

use std::collections::HashMap;

use openraft::{EntryPayload, ErrorSubject, LogId, Vote};

use super::codec::{decode_entry, log_mark, vote_mark};
use super::log_store::{KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE};
use super::{LogStore, NodeId, StateMachine};
use crate::store::{Armed, LogMark, Marks, Store, StoreError};

/// What the store holds, as read at start.
struct Found {
    marks: Marks,
    /// Log id of each entry, by index.
    ids: HashMap<u64, LogMark>,
    /// Voters of the last membership (log or snapshot), for the start-up log line.
    voters: Vec<NodeId>,
}

fn read(log: &LogStore, sm: &StateMachine) -> Result<Found, String> {
    let store = log.store();
    let err = |e: openraft::StorageError<NodeId>| e.to_string();
    let vote: Option<Vote<NodeId>> = log.read_json(KEY_VOTE, ErrorSubject::Vote).map_err(err)?;
    let committed: Option<Option<LogId<NodeId>>> = log
        .read_json(KEY_COMMITTED, ErrorSubject::Store)
        .map_err(err)?;
    let purged: Option<LogId<NodeId>> = log
        .read_json(KEY_LAST_PURGED, ErrorSubject::Store)
        .map_err(err)?;
    let (snapshot, mut membership) = {
        let st = sm.shared();
        let st = st.read().expect("state lock poisoned");
        (st.last_applied, st.last_membership.membership().clone())
    };
    let rows = store.log_range(..).map_err(|e| e.to_string())?;
    let mut ids = HashMap::with_capacity(rows.len());
    let mut prev: Option<u64> = None;
    for (index, bytes) in &rows {
        let entry = decode_entry(*index, bytes)?;
        if let Some(p) = prev {
            if *index != p + 1 {
                return Err(format!(
                    "log entries {} to {} are missing",
                    p + 1,
                    index - 1
                ));
            }
        }
        prev = Some(*index);
        if let EntryPayload::Membership(m) = entry.payload {
            membership = m;
        }
        ids.insert(*index, log_mark(&entry.log_id));
    }
    let first = rows.first().map(|r| r.0);
    if let (Some(p), Some(first)) = (purged, first) {
        if first > p.index + 1 {
            return Err(format!(
                "log entries {} to {} are missing after the purge point",
                p.index + 1,
                first - 1
            ));
        }
    }
    if let Some(p) = purged {
        if snapshot.is_none_or(|s| s.index < p.index) {
            return Err(format!(
                "the log is purged up to {} but the snapshot is at {}",
                p.index,
                snapshot.map_or("none".to_string(), |s| s.index.to_string())
            ));
        }
    }
    let last_log = rows
        .last()
        .and_then(|r| ids.get(&r.0).copied())
        .or(purged.as_ref().map(log_mark));
    Ok(Found {
        marks: Marks {
            vote: vote.as_ref().map(vote_mark),
            last_log,
            committed: committed.flatten().as_ref().map(log_mark),
            last_purged: purged.as_ref().map(log_mark),
            snapshot: snapshot.as_ref().map(log_mark),
        },
        ids,
        voters: membership.voter_ids().collect(),
    })
}

/// Reads and checks the store, then arms its integrity record.
pub fn verify(log: &LogStore, sm: &StateMachine) -> Result<Armed, StoreError> {
    let store: &Store = log.store();
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(log, sm)))
        .unwrap_or_else(|_| Err("reading it panicked".to_string()))
        .map_err(|detail| StoreError::Damaged {
            path: store.path().to_path_buf(),
            detail,
        })?;
    let armed = store.arm(found.marks, |i| found.ids.get(&i).copied())?;
    let m = &found.marks;
    tracing::info!(
        store = %store.path().display(),
        ?armed,
        vote_term = m.vote.map(|v| v.term),
        last_log = m.last_log.map(|l| l.index),
        last_log_term = m.last_log.map(|l| l.term),
        committed = m.committed.map(|l| l.index),
        snapshot = m.snapshot.map(|l| l.index),
        voters = ?found.voters,
        "store opened"
    );
    Ok(armed)
}
