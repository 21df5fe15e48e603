//! The on-disk store: the ONLY module that touches sled (ARCHITECTURE.md invariant 6).
//!
//! Layout (one sled database per node, under `<data_dir>/raft`):
//! - tree `meta`: small named values (`data_version`, `vote`, `committed`, `last_purged`,
//!   `snapshot`, `integrity_record`), each an opaque byte string chosen by the caller;
//! - tree `log`: Raft log entries keyed by big-endian index, so key order is index order.
//!
//! Next to it, `<data_dir>/raft.hwm`: the integrity record ([`record`]) of what the node
//! promised its peers ([`Marks`]). Callers stage a promise after writing it ([`Store::stage`]);
//! [`Store::flush`] makes sled durable and then the record, so the record is never ahead of
//! sled, and callers acknowledge only after that. At start [`Store::arm`] refuses a store that
//! is behind its record (ARCHITECTURE.md invariant 8).
//!
//! Callers serialise values themselves; this module knows keys, trees, durability and the
//! on-disk format version, nothing about Raft types. Swapping sled means rewriting this file.

mod marks;
mod record;

use std::ops::{Bound, RangeBounds};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use marks::{LogMark, Marks, VoteMark};
pub use record::{RecordError, RecordFile};

/// Version of the on-disk format written by this build. Bump it when the layout or the
/// serialisation of stored values changes incompatibly, and add a migration for older versions.
///
/// - 1: everything JSON (the typed journal kept version 1's encodings: its targets and
///   coordinates as text and pairs, a done step's report fields as additions older builds
///   ignore).
/// - 2: the snapshot is framed bytes (`raft/snapshot_codec.rs`) instead of JSON holding the
///   state's JSON as an array of numbers. Log entries are unchanged. A version-1 store is
///   read as it is (its snapshot too) and recorded as version 2 when opened, so a build before
///   it refuses the store from then on instead of failing on the first framed snapshot
///   (tests/store_upgrade.rs loads a store the version-1 build wrote).
pub const DATA_VERSION: u64 = 2;

const KEY_DATA_VERSION: &[u8] = b"data_version";
/// Set once the store has an integrity record: a store with it and without the record file
/// lost its record; a store without it was written by a build before the record existed.
const KEY_INTEGRITY: &[u8] = b"integrity_record";

/// What an operator does about a store that cannot be trusted (docs/operations.md).
pub const REJOIN_ADVICE: &str = "Do not start this node on it: remove it from the cluster \
     (`mhactl member remove --id N`) and add it back with an empty data dir (docs/operations.md \
     \"Replacing a manager whose disk died\")";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error(
        "store at {path} has data version {found}, newer than {supported} supported by this \
         mhad build; run a newer mhad (refusing to touch it)"
    )]
    NewerDataVersion {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("store at {path} has an unreadable data version record")]
    CorruptDataVersion { path: PathBuf },
    #[error(
        "store at {store} is behind its integrity record {record} ({gaps}): the store was \
         rolled back or damaged. {REJOIN_ADVICE}"
    )]
    Behind {
        store: PathBuf,
        record: PathBuf,
        gaps: String,
    },
    #[error("store at {path} is damaged ({detail}). {REJOIN_ADVICE}")]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "integrity record of the store at {store} cannot be used: {source}. The record says \
         what this node promised its peers; without it the store cannot be trusted. \
         {REJOIN_ADVICE}"
    )]
    Record { store: PathBuf, source: RecordError },
    #[error(
        "integrity record {record} is missing, but the store at {store} had one: the data dir \
         was partly deleted or replaced. {REJOIN_ADVICE}"
    )]
    RecordMissing { store: PathBuf, record: PathBuf },
    #[error("store I/O error: {0}")]
    Io(#[from] sled::Error),
    #[error("cannot make {path} private to mhad: {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The data directory and the store directory: created if missing, mode 0700 either way. The
/// store holds group specs, the failover journal and the audit trail: nobody but mhad's user
/// reads them.
fn make_private(data_dir: &Path, store: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    for d in [data_dir, store] {
        let err = |source| StoreError::Permissions {
            path: d.to_path_buf(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(d)
            .map_err(err)?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Every file under `dir` mode 0600, every directory 0700.
fn restrict_files(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Permissions { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(err(dir))? {
        let entry = entry.map_err(err(dir))?;
        let path = entry.path();
        let is_dir = entry.file_type().map_err(err(&path))?.is_dir();
        let mode = if is_dir { 0o700 } else { 0o600 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(err(&path))?;
        if is_dir {
            restrict_files(&path)?;
        }
    }
    Ok(())
}

/// The promises staged since the store was armed; `seq` counts changes.
#[derive(Debug, Default)]
struct Staged {
    marks: Marks,
    seq: u64,
}

/// The record file and the `seq` of the staged state it holds, so concurrent flushes never
/// write an older state over a newer one. A lock of its own: staging never waits on a sync.
#[derive(Debug, Default)]
struct Writer {
    record: Option<RecordFile>,
    written: u64,
}

/// How [`Store::arm`] found the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Armed {
    /// Nothing promised yet (a new or wiped node).
    Fresh,
    /// Its content keeps every promise of its record.
    Verified,
    /// A store written before the record existed: accepted once, record created.
    Adopted,
}

/// Runs `f`, turning a panic inside sled (it has `unreachable!`s and slice indexing that
/// corrupted files can reach) into an error message.
fn unpanic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        format!(
            "sled panicked reading it: {}",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )
    })
}

/// Runs a sled read at open: a sled error or a panic is [`StoreError::Damaged`].
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, sled::Error>) -> Result<T, StoreError> {
    let damaged = |detail| StoreError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    unpanic(f)
        .map_err(damaged)?
        .map_err(|e| damaged(e.to_string()))
}

/// Handle to a node's store. Cheap to clone: every clone shares one sled database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    log: sled::Tree,
    path: PathBuf,
    record_path: PathBuf,
    staged: Arc<Mutex<Staged>>,
    writer: Arc<Mutex<Writer>>,
}

impl Store {
    /// Opens (or creates) the store under `dir`, checking the data version first. Corrupted
    /// data sled notices (or panics on) is [`StoreError::Damaged`], naming the path.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("raft");
        make_private(dir, &path)?;
        let db = Self::open_db(&path)?;
        // Files sled created before (or, in an older version, with a looser umask).
        restrict_files(&path)?;
        let (meta, log) = guarded(&path, || Ok((db.open_tree("meta")?, db.open_tree("log")?)))?;
        let store = Store {
            db,
            meta,
            log,
            record_path: dir.join("raft.hwm"),
            path: path.clone(),
            staged: Default::default(),
            writer: Default::default(),
        };
        unpanic(|| store.check_data_version(&path)).map_err(|detail| StoreError::Damaged {
            path: path.clone(),
            detail,
        })??;
        Ok(store)
    }

    /// The sled directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The integrity record's file.
    pub fn record_path(&self) -> &Path {
        &self.record_path
    }

    /// Checks what the store holds (`found`, read by the caller, with `log_at(i)` the id of
    /// its entry at index `i`) against the integrity record, and from then on keeps the record
    /// with every [`Store::flush`]. A store behind its record, a damaged record, or a missing
    /// record of a store that had one is refused. A non-empty store that never had a record
    /// (written by an earlier build) is adopted: the record is created from its content.
    pub fn arm(
        &self,
        found: Marks,
        log_at: impl Fn(u64) -> Option<LogMark>,
    ) -> Result<Armed, StoreError> {
        let record_err = |source| StoreError::Record {
            store: self.path.clone(),
            source,
        };
        let had_record = guarded(&self.path, || self.meta.get(KEY_INTEGRITY))?.is_some();
        let (file, armed) = match RecordFile::load(&self.record_path).map_err(record_err)? {
            Some((mut file, promised)) => {
                let gaps = promised.gaps(&found, log_at);
                if !gaps.is_empty() {
                    return Err(StoreError::Behind {
                        store: self.path.clone(),
                        record: self.record_path.clone(),
                        gaps: gaps.join("; "),
                    });
                }
                // The store may be ahead (a crash between its flush and the record's): what
                // it holds is durable, so it becomes the record.
                if found != promised {
                    file.write(&found).map_err(record_err)?;
                }
                let armed = if found.is_empty() {
                    Armed::Fresh
                } else {
                    Armed::Verified
                };
                (file, armed)
            }
            None if had_record => {
                return Err(StoreError::RecordMissing {
                    store: self.path.clone(),
                    record: self.record_path.clone(),
                })
            }
            None => {
                let file = RecordFile::create(&self.record_path, &found).map_err(record_err)?;
                if found.is_empty() {
                    (file, Armed::Fresh)
                } else {
                    tracing::info!(
                        store = %self.path.display(),
                        record = %self.record_path.display(),
                        "store written by an earlier build has no integrity record: accepted \
                         as it is, record created"
                    );
                    (file, Armed::Adopted)
                }
            }
        };
        if !had_record {
            // After the record exists: a crash in between leaves a record and no marker,
            // which the next start reads as above.
            self.meta.insert(KEY_INTEGRITY, &[1u8])?;
            self.db.flush()?;
        }
        *self.staged.lock().expect("staged lock") = Staged {
            marks: found,
            seq: 0,
        };
        *self.writer.lock().expect("writer lock") = Writer {
            record: Some(file),
            written: 0,
        };
        Ok(armed)
    }

    /// Whether the store, as armed and since, holds no promise at all.
    pub fn promised_nothing(&self) -> bool {
        self.staged.lock().expect("staged lock").marks.is_empty()
    }

    /// Records a promise the caller just wrote to sled (or, lowering the last log before a
    /// truncation, is about to). It reaches the record with the next [`Store::flush`].
    pub fn stage(&self, f: impl FnOnce(&mut Marks)) {
        let mut g = self.staged.lock().expect("staged lock");
        let before = g.marks;
        f(&mut g.marks);
        if g.marks != before {
            g.seq += 1;
        }
    }

    /// Opens the sled database. A just-closed handle in this process (a restart) can hold the
    /// file lock for a moment while sled's flusher thread exits, so lock contention is retried
    /// for up to 2 s; a lock held longer means another process owns the directory.
    fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let res = unpanic(|| {
                sled::Config::new()
                    .path(path)
                    // Durability comes from explicit flushes before acknowledging Raft writes;
                    // the background flush only bounds what an unclean exit of other writes
                    // costs.
                    .flush_every_ms(Some(500))
                    .open()
            })
            .map_err(|detail| StoreError::Damaged {
                path: path.to_path_buf(),
                detail,
            })?;
            match res {
                Ok(db) => return Ok(db),
                // sled reports lock contention as ErrorKind::Other with this message.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                // The environment, not the files: the lock held by another process, no access.
                Err(source @ sled::Error::Io(_)) => {
                    return Err(StoreError::Open {
                        path: path.to_path_buf(),
                        source,
                    })
                }
                // Corruption, "Unsupported" (what a damaged `conf` reads as), a reported bug:
                // the files are not a store sled can trust.
                Err(e) => {
                    return Err(StoreError::Damaged {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    })
                }
            }
        }
    }

    fn check_data_version(&self, path: &Path) -> Result<(), StoreError> {
        match self.meta.get(KEY_DATA_VERSION)? {
            None => {
                self.meta
                    .insert(KEY_DATA_VERSION, &DATA_VERSION.to_be_bytes())?;
                self.db.flush()?;
                Ok(())
            }
            Some(v) => {
                let found = decode_version(&v).ok_or_else(|| StoreError::CorruptDataVersion {
                    path: path.to_path_buf(),
                })?;
                if found > DATA_VERSION {
                    return Err(StoreError::NewerDataVersion {
                        path: path.to_path_buf(),
                        found,
                        supported: DATA_VERSION,
                    });
                }
                if found < DATA_VERSION {
                    // Every older version reads as it is (see DATA_VERSION): only the mark moves.
                    self.meta
                        .insert(KEY_DATA_VERSION, &DATA_VERSION.to_be_bytes())?;
                    self.db.flush()?;
                    tracing::info!(
                        path = %path.display(),
                        from = found,
                        to = DATA_VERSION,
                        "store upgraded: older mhad builds refuse it from now on"
                    );
                }
                Ok(())
            }
        }
    }

    /// The data version recorded on disk (0 when none is recorded, or it is malformed).
    pub fn data_version(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(KEY_DATA_VERSION)?
            .as_deref()
            .and_then(decode_version)
            .unwrap_or(0))
    }

    /// Overwrites the recorded data version. Exists for tests of the version check.
    pub fn force_data_version(&self, version: u64) -> Result<(), StoreError> {
        self.meta.insert(KEY_DATA_VERSION, &version.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key.as_bytes(), value)?;
        Ok(())
    }

    pub fn put_log(&self, index: u64, value: &[u8]) -> Result<(), StoreError> {
        self.log.insert(index.to_be_bytes(), value)?;
        Ok(())
    }

    /// Entries whose index lies in `range`, in index order.
    pub fn log_range<R: RangeBounds<u64>>(
        &self,
        range: R,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(i.to_be_bytes()),
            Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(i.to_be_bytes()),
            Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in self.log.range::<[u8; 8], _>((start, end)) {
            let (k, v) = kv?;
            out.push((decode_index(&k), v.to_vec()));
        }
        Ok(out)
    }

    /// The entry with the highest index, if any.
    pub fn last_log(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .log
            .last()?
            .map(|(k, v)| (decode_index(&k), v.to_vec())))
    }

    /// Deletes every entry with index >= `from` (conflicting suffix truncation).
    pub fn delete_logs_from(&self, from: u64) -> Result<(), StoreError> {
        self.delete_keys(self.log.range(from.to_be_bytes()..))
    }

    /// Deletes every entry with index <= `upto` (purge after a snapshot).
    pub fn delete_logs_upto(&self, upto: u64) -> Result<(), StoreError> {
        self.delete_keys(self.log.range(..=upto.to_be_bytes()))
    }

    fn delete_keys(&self, iter: sled::Iter) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for kv in iter.keys() {
            batch.remove(kv?);
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }

    /// The entry with the highest index below `index`, if any.
    pub fn last_log_before(&self, index: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .log
            .range(..index.to_be_bytes())
            .next_back()
            .transpose()?
            .map(|(k, v)| (decode_index(&k), v.to_vec())))
    }

    /// Makes every write so far durable, then the promises staged before it in the integrity
    /// record. Called before a Raft append or vote is acknowledged. Both syncs run on one
    /// blocking thread, one after the other: sled first, so the record is never ahead of it
    /// (a crash in between leaves the store ahead, which is fine).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (db, staged, writer) = (self.db.clone(), self.staged.clone(), self.writer.clone());
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let (marks, seq) = {
                let g = staged.lock().expect("staged lock");
                (g.marks, g.seq)
            };
            let t0 = std::time::Instant::now();
            db.flush()?;
            let t1 = t0.elapsed();
            let mut g = writer.lock().expect("writer lock");
            if seq > g.written {
                if let Some(rec) = g.record.as_mut() {
                    rec.write(&marks).map_err(|source| StoreError::Record {
                        store: path.clone(),
                        source,
                    })?;
                }
                g.written = seq;
            }
            tracing::debug!(
                sled_us = t1.as_micros() as u64,
                total_us = t0.elapsed().as_micros() as u64,
                "store flush"
            );
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Damaged {
            path: self.path.clone(),
            detail: format!("flush task failed: {e}"),
        })?
    }

    /// Number of entries currently held in the log tree (for tests and status).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
}

/// An 8-byte big-endian version; None if the record is malformed.
fn decode_version(v: &[u8]) -> Option<u64> {
    v.try_into().ok().map(u64::from_be_bytes)
}

fn decode_index(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data directory and everything the store writes are private to mhad's user, also
    /// when the directory existed with looser modes.
    #[test]
    fn data_dir_0700_store_files_0600() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for _ in 0..2 {
            let s = Store::open(&dir).unwrap();
            s.force_data_version(DATA_VERSION).unwrap();
            drop(s);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _s = Store::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let mut files = 0;
        let mut stack = vec![dir.join("raft")];
        while let Some(d) = stack.pop() {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    assert_eq!(mode(&p), 0o600, "{}", p.display());
                    files += 1;
                }
            }
        }
        assert!(files >= 2, "sled wrote {files} files");
    }

    /// A store written by a newer build is refused with an error that says so.
    #[test]
    fn newer_data_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            assert_eq!(s.data_version().unwrap(), DATA_VERSION);
            s.force_data_version(DATA_VERSION + 1).unwrap();
        }
        let err = Store::open(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, StoreError::NewerDataVersion { found, .. } if found == DATA_VERSION + 1)
        );
        assert!(msg.contains("newer"), "{msg}");
    }

    /// A store of an older data version is read as it is and recorded as this version, so
    /// the older build refuses it from then on.
    #[test]
    fn older_data_version_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.put_meta("kept", b"value").unwrap();
            s.force_data_version(1).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.data_version().unwrap(), DATA_VERSION);
        assert_eq!(s.get_meta("kept").unwrap().as_deref(), Some(&b"value"[..]));
    }

    /// A reopen right after the previous handle is dropped (a restart in the same process)
    /// waits for the lock instead of failing.
    #[test]
    fn reopen_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(first);
        });
        let second = Store::open(dir.path());
        dropper.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
    }

    /// Range reads, truncation and purge work on index order, not byte order of decimal strings.
    #[test]
    fn log_range_truncate_purge() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 1..=300u64 {
            s.put_log(i, &i.to_le_bytes()).unwrap();
        }
        assert_eq!(
            s.log_range(255..=257)
                .unwrap()
                .iter()
                .map(|e| e.0)
                .collect::<Vec<_>>(),
            vec![255, 256, 257]
        );
        s.delete_logs_from(201).unwrap();
        assert_eq!(s.last_log().unwrap().unwrap().0, 200);
        s.delete_logs_upto(100).unwrap();
        assert_eq!(s.log_range(..).unwrap().first().unwrap().0, 101);
        assert_eq!(s.log_len(), 100);
    }
}
