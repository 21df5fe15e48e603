//! openraft `RaftStateMachine`: applies committed [`Proposal`]s to [`ClusterState`], builds and
//! installs snapshots.
//!
//! The state lives in memory; the last snapshot is persisted in the store. After a restart the
//! node loads the snapshot and openraft re-applies the committed log entries after it (it reads
//! the persisted commit index), so nothing committed is lost and apply never needs its own fsync.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StoredMembership,
};

use super::snapshot_codec::{self, StoredSnapshot};
use super::{io_err, Entry, NodeId, StorageError, TypeConfig};
use crate::state::{ClusterState, CmdResult};
use crate::store::Store;

const KEY_SNAPSHOT: &str = "snapshot";

/// What the rest of the node reads: the applied state and what it was applied up to.
#[derive(Clone, Debug, Default)]
pub struct AppliedState {
    pub last_applied: Option<LogId<NodeId>>,
    pub last_membership: StoredMembership<NodeId, BasicNode>,
    pub cluster: ClusterState,
}

/// Shared read handle on the applied state. Readers copy what they need out; the lock is never
/// held across an await.
pub type SharedState = Arc<RwLock<AppliedState>>;

#[derive(Clone, Debug)]
pub struct StateMachine {
    store: Store,
    state: SharedState,
    snapshot_seq: u64,
}

impl StateMachine {
    pub fn open(store: Store) -> Result<Self, StorageError> {
        let sm = StateMachine {
            store,
            state: SharedState::default(),
            snapshot_seq: 0,
        };
        if let Some(snap) = sm.read_snapshot()? {
            sm.load_snapshot(&snap)?;
        }
        Ok(sm)
    }

    pub fn shared(&self) -> SharedState {
        self.state.clone()
    }

    fn read_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let subject = ErrorSubject::Snapshot(None);
        let Some(bytes) = self
            .store
            .get_meta(KEY_SNAPSHOT)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Read, &e))?
        else {
            return Ok(None);
        };
        snapshot_codec::decode(&bytes)
            .map(Some)
            .map_err(|e| io_err(subject, ErrorVerb::Read, &std::io::Error::other(e)))
    }

    async fn write_snapshot(&self, snap: &StoredSnapshot) -> Result<(), StorageError> {
        let subject = ErrorSubject::Snapshot(Some(snap.meta.signature()));
        // openraft builds snapshots in a task of their own: one can finish after a newer one
        // was installed. Never replace a snapshot with an older one (entries up to the newer
        // one may already be purged).
        // A stored snapshot that no longer decodes is replaced (it was checked at start; a
        // flip since then must not stop every later snapshot). A store that cannot be read
        // is an error, as before.
        let stored = self
            .store
            .get_meta(KEY_SNAPSHOT)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Read, &e))?
            .and_then(|bytes| {
                snapshot_codec::decode(&bytes)
                    .map_err(|e| {
                        tracing::error!(error = %e, "the stored snapshot does not decode: replaced by the new one");
                    })
                    .ok()
            });
        if let Some(stored) = stored {
            if stored.meta.last_log_id > snap.meta.last_log_id {
                tracing::info!(
                    stored = ?stored.meta.last_log_id,
                    built = ?snap.meta.last_log_id,
                    "a snapshot older than the stored one is not kept"
                );
                return Ok(());
            }
        }
        let bytes = snapshot_codec::encode(snap)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Write, &e))?;
        self.store
            .put_meta(KEY_SNAPSHOT, &bytes)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Write, &e))?;
        // Once durable, the store must never lose this snapshot: entries up to it get purged.
        if let Some(l) = &snap.meta.last_log_id {
            self.store
                .stage(|m| m.snapshot = Some(super::codec::log_mark(l)));
        }
        self.store
            .flush()
            .await
            .map_err(|e| io_err(subject, ErrorVerb::Write, &e))
    }

    fn load_snapshot(&self, snap: &StoredSnapshot) -> Result<(), StorageError> {
        let cluster: ClusterState = serde_json::from_slice(&snap.data).map_err(|e| {
            io_err(
                ErrorSubject::Snapshot(Some(snap.meta.signature())),
                ErrorVerb::Read,
                &e,
            )
        })?;
        let mut st = self.state.write().expect("state lock poisoned");
        st.last_applied = snap.meta.last_log_id;
        st.last_membership = snap.meta.last_membership.clone();
        st.cluster = cluster;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (last_applied, last_membership, data) = {
            let st = self.state.read().expect("state lock poisoned");
            let data = serde_json::to_vec(&st.cluster)
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, &e))?;
            (st.last_applied, st.last_membership.clone(), data)
        };
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.snapshot_seq),
            None => format!("0-0-{}", self.snapshot_seq),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.write_snapshot(&stored).await?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = stored.data.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let st = self.state.read().expect("state lock poisoned");
        Ok((st.last_applied, st.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CmdResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut st = self.state.write().expect("state lock poisoned");
        let mut out = Vec::new();
        for entry in entries {
            st.last_applied = Some(entry.log_id);
            let res = match entry.payload {
                EntryPayload::Blank => CmdResult::Unchanged,
                EntryPayload::Normal(p) => {
                    let r = st.cluster.apply(&p.cmd, p.at_ms);
                    tracing::debug!(index = entry.log_id.index, cmd = %p.cmd, result = ?r, "applied");
                    r
                }
                EntryPayload::Membership(m) => {
                    st.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    CmdResult::Ok
                }
            };
            out.push(res);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        // Check it decodes before it replaces anything.
        self.load_snapshot(&stored)?;
        self.write_snapshot(&stored).await?;
        tracing::info!(snapshot = %meta.snapshot_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.read_snapshot()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
