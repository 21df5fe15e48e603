//! openraft `RaftLogStorage` over the sled-backed [`Store`]. Vote and append are flushed to disk
//! before they are acknowledged; entries are checksummed JSON ([`super::codec`], readable with
//! any sled dump when debugging). Every promise is staged in the store's integrity record after
//! it is written and reaches the record with the flush before the acknowledgement; a truncation
//! lowers the record before it deletes anything, so the record never claims more than the store.

use std::fmt::Debug;
use std::ops::RangeBounds;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, Vote};

use super::codec::{decode_entry, encode_entry, log_mark, vote_mark};
use super::{io_err, Entry, NodeId, StorageError, TypeConfig};
use crate::store::Store;

pub(super) const KEY_VOTE: &str = "vote";
pub(super) const KEY_COMMITTED: &str = "committed";
pub(super) const KEY_LAST_PURGED: &str = "last_purged";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Corrupt(String);

#[derive(Clone, Debug)]
pub struct LogStore {
    store: Store,
}

impl LogStore {
    pub fn new(store: Store) -> Self {
        LogStore { store }
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self
            .store
            .get_meta(key)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Read, &e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_err(subject, ErrorVerb::Read, &e))
    }

    fn write_json<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| io_err(subject.clone(), ErrorVerb::Write, &e))?;
        self.store
            .put_meta(key, &bytes)
            .map_err(|e| io_err(subject, ErrorVerb::Write, &e))
    }

    async fn flush(&self, subject: ErrorSubject<NodeId>) -> Result<(), StorageError> {
        self.store
            .flush()
            .await
            .map_err(|e| io_err(subject, ErrorVerb::Write, &e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let rows = self
            .store
            .log_range(range)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        rows.into_iter()
            .map(|(index, bytes)| {
                decode_entry(index, &bytes).map_err(|e| {
                    io_err(
                        ErrorSubject::Log(LogId::new(Default::default(), index)),
                        ErrorVerb::Read,
                        &Corrupt(e),
                    )
                })
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId<NodeId>> =
            self.read_json(KEY_LAST_PURGED, ErrorSubject::Store)?;
        let last = self
            .store
            .last_log()
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        let last_log_id = match last {
            Some((index, bytes)) => {
                let e = decode_entry(index, &bytes)
                    .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, &Corrupt(e)))?;
                Some(e.log_id)
            }
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_json(KEY_VOTE, vote, ErrorSubject::Vote)?;
        self.store.stage(|m| m.vote = Some(vote_mark(vote)));
        // A vote must survive a crash before it is granted, or a node could vote twice in a term.
        self.flush(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_json(KEY_VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        // Not flushed: losing it only means re-applying from the snapshot after a crash, and
        // openraft learns the commit index from the leader again. Staged all the same: the
        // next flush makes it durable, and from then on the store must not lose it.
        self.write_json(KEY_COMMITTED, &committed, ErrorSubject::Store)?;
        if let Some(c) = committed {
            self.store.stage(|m| m.committed = Some(log_mark(&c)));
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self
            .read_json::<Option<LogId<NodeId>>>(KEY_COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut last = None;
        for entry in entries {
            let bytes = encode_entry(&entry)
                .map_err(|e| io_err(ErrorSubject::Log(entry.log_id), ErrorVerb::Write, &e))?;
            self.store
                .put_log(entry.log_id.index, &bytes)
                .map_err(|e| io_err(ErrorSubject::Log(entry.log_id), ErrorVerb::Write, &e))?;
            last = Some(entry.log_id);
        }
        if let Some(l) = last {
            self.store.stage(|m| m.last_log = Some(log_mark(&l)));
        }
        // Acknowledge only once durable (the entries, then the record saying so): a follower
        // that acked then lost the entry could let a committed entry disappear.
        let res = self.store.flush().await.map_err(std::io::Error::other);
        callback.log_io_completed(res);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncate log from");
        // The record first: lowered to the entry before the cut (or the purge point), and
        // durable before anything is deleted, so a crash in between leaves a store that is
        // ahead of its record, never behind. Truncated entries were never committed.
        let before = self
            .store
            .last_log_before(log_id.index)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        let new_last = match before {
            Some((index, bytes)) => Some(
                decode_entry(index, &bytes)
                    .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, &Corrupt(e)))?
                    .log_id,
            ),
            None => self.read_json(KEY_LAST_PURGED, ErrorSubject::Store)?,
        };
        self.store
            .stage(|m| m.last_log = new_last.as_ref().map(log_mark));
        self.flush(ErrorSubject::Logs).await?;
        self.store
            .delete_logs_from(log_id.index)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, &e))?;
        self.flush(ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purge log up to");
        // Record the purge point first so a crash in between never leaves a gap unaccounted for.
        self.write_json(KEY_LAST_PURGED, &log_id, ErrorSubject::Store)?;
        self.store
            .stage(|m| m.last_purged = Some(log_mark(&log_id)));
        self.flush(ErrorSubject::Store).await?;
        self.store
            .delete_logs_upto(log_id.index)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }
}
