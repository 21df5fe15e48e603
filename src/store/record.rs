//! The integrity record: a small file next to the sled directory (`<data_dir>/raft.hwm`) that
//! holds the last [`Marks`] the node made durable, so that a store rolled back, truncated or
//! replaced underneath it is recognised at start.
//!
//! Format: 8 KiB, two 4 KiB slots. A slot is `magic (8) | seq (u64 LE) | marks (118 bytes) |
//! crc32 (u32 LE, over everything before it)`, zero-padded. Updates overwrite the slot holding
//! the older sequence number in place and `fdatasync` (one small write and one sync per update:
//! the file's size never changes, so no metadata needs syncing); a crash in the middle tears at
//! most the slot being written, and the other still holds the previous, acknowledged state. The
//! slots sit in different pages so a torn page cannot touch both. Creation is atomic: temp
//! file, fsync, rename, fsync of the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::marks::{LogMark, Marks, VoteMark};

const MAGIC: &[u8; 8] = b"MHAHWM\x00\x01";
const SLOT: usize = 4096;
const FILE_LEN: usize = 2 * SLOT;
const BODY: usize = 18 + 4 * 25;
const CRC_AT: usize = 16 + BODY;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({why})")]
    Corrupt { path: PathBuf, why: String },
}

/// One slot's content.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    /// Never written (all zero).
    Empty,
    Valid {
        seq: u64,
        marks: Marks,
    },
    /// Checksum or magic wrong: torn by a crash, or damaged.
    Bad,
}

/// An open record file, ready for updates.
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
    file: File,
    seq: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RecordFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the record at `path`: `None` if there is none, its marks and the open file
    /// otherwise. A file that is not a record, or whose slots all fail their checksum, is
    /// [`RecordError::Corrupt`].
    pub fn load(path: &Path) -> Result<Option<(RecordFile, Marks)>, RecordError> {
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let mut buf = Vec::with_capacity(FILE_LEN);
        file.read_to_end(&mut buf).map_err(io(path))?;
        let corrupt = |why: String| RecordError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        if buf.len() != FILE_LEN {
            return Err(corrupt(format!(
                "{} bytes, a record has {FILE_LEN}",
                buf.len()
            )));
        }
        let slots = [decode_slot(&buf[..SLOT]), decode_slot(&buf[SLOT..])];
        let best = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Valid { seq, marks } => Some((*seq, *marks)),
                _ => None,
            })
            .max_by_key(|(seq, _)| *seq);
        let Some((seq, marks)) = best else {
            return Err(corrupt("no slot passes its checksum".into()));
        };
        if slots.contains(&Slot::Bad) {
            // Expected after a crash in the middle of an update (that update was not yet
            // acknowledged to anyone); also what a damaged newest slot looks like, which then
            // costs at most the one update before it.
            tracing::warn!(record = %path.display(), seq, "one slot of the integrity record fails its checksum; using the other");
        }
        let rec = RecordFile {
            path: path.to_path_buf(),
            file,
            seq,
        };
        Ok(Some((rec, marks)))
    }

    /// Creates (or replaces) the record at `path` holding `marks`, atomically.
    pub fn create(path: &Path, marks: &Marks) -> Result<RecordFile, RecordError> {
        let tmp = path.with_extension("hwm.tmp");
        // Sequence 1 goes to slot 1, so the first update (sequence 2) overwrites slot 0.
        let mut buf = vec![0u8; FILE_LEN];
        buf[SLOT..].copy_from_slice(&encode_slot(1, marks));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(&buf).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        Ok(RecordFile {
            path: path.to_path_buf(),
            file,
            seq: 1,
        })
    }

    /// Makes `marks` the record: overwrites the older slot, then `fdatasync`.
    pub fn write(&mut self, marks: &Marks) -> Result<(), RecordError> {
        let seq = self.seq + 1;
        let at = (seq % 2) * SLOT as u64;
        // Only the meaningful bytes: the padding after them is zero already.
        self.file
            .write_all_at(&encode_slot(seq, marks)[..CRC_AT + 4], at)
            .map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.seq = seq;
        Ok(())
    }
}

fn put_log(out: &mut Vec<u8>, m: Option<LogMark>) {
    let m = m.map_or((0u8, LogMark::default()), |m| (1, m));
    out.push(m.0);
    for v in [m.1.term, m.1.node, m.1.index] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn encode_slot(seq: u64, marks: &Marks) -> Vec<u8> {
    let mut out = Vec::with_capacity(SLOT);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    let (has, v) = marks.vote.map_or((0u8, VoteMark::default()), |v| (1, v));
    out.push(has);
    out.extend_from_slice(&v.term.to_le_bytes());
    out.extend_from_slice(&v.node.to_le_bytes());
    out.push(v.committed as u8);
    for m in [
        marks.last_log,
        marks.committed,
        marks.last_purged,
        marks.snapshot,
    ] {
        put_log(&mut out, m);
    }
    debug_assert_eq!(out.len(), CRC_AT);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.resize(SLOT, 0);
    out
}

/// Reads fixed-width fields from a slot.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        let v = self.0[0];
        self.0 = &self.0[1..];
        v
    }

    fn u64(&mut self) -> u64 {
        let (v, rest) = self.0.split_at(8);
        self.0 = rest;
        u64::from_le_bytes(v.try_into().expect("8 bytes"))
    }

    fn log(&mut self) -> Option<Option<LogMark>> {
        let has = self.u8();
        let m = LogMark {
            term: self.u64(),
            node: self.u64(),
            index: self.u64(),
        };
        match has {
            0 => Some(None),
            1 => Some(Some(m)),
            _ => None,
        }
    }
}

fn decode_slot(b: &[u8]) -> Slot {
    if b.iter().all(|x| *x == 0) {
        return Slot::Empty;
    }
    let crc = u32::from_le_bytes(b[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
    if &b[..8] != MAGIC || crc32fast::hash(&b[..CRC_AT]) != crc {
        return Slot::Bad;
    }
    let mut c = Cursor(&b[8..CRC_AT]);
    let seq = c.u64();
    let has_vote = c.u8();
    let vote = VoteMark {
        term: c.u64(),
        node: c.u64(),
        committed: c.u8() == 1,
    };
    let vote = match has_vote {
        0 => None,
        1 => Some(vote),
        _ => return Slot::Bad,
    };
    let (Some(last_log), Some(committed), Some(last_purged), Some(snapshot)) =
        (c.log(), c.log(), c.log(), c.log())
    else {
        return Slot::Bad;
    };
    Slot::Valid {
        seq,
        marks: Marks {
            vote,
            last_log,
            committed,
            last_purged,
            snapshot,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(term: u64) -> Marks {
        let log = |index| LogMark {
            term,
            node: 2,
            index,
        };
        Marks {
            vote: Some(VoteMark {
                term,
                node: 2,
                committed: true,
            }),
            last_log: Some(log(75)),
            committed: Some(log(70)),
            last_purged: None,
            snapshot: Some(log(60)),
        }
    }

    /// Encode → decode is the identity, for empty and full marks; the newest slot wins.
    #[test]
    fn round_trip_and_newest_slot_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("raft.hwm");
        assert!(RecordFile::load(&path).unwrap().is_none());
        let mut rec = RecordFile::create(&path, &Marks::default()).unwrap();
        assert_eq!(
            RecordFile::load(&path).unwrap().unwrap().1,
            Marks::default()
        );
        for term in 1..=5 {
            rec.write(&sample(term)).unwrap();
            let (again, marks) = RecordFile::load(&path).unwrap().unwrap();
            assert_eq!(marks, sample(term));
            assert_eq!(again.seq, rec.seq);
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_LEN as u64);
    }

    /// A torn newest slot (a crash during an update) leaves the previous state; both slots
    /// damaged, a cut or an emptied file are refused, naming the file.
    #[test]
    fn checksum_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("raft.hwm");
        let mut rec = RecordFile::create(&path, &sample(1)).unwrap();
        rec.write(&sample(2)).unwrap();
        let flip = |at: usize| {
            let mut b = std::fs::read(&path).unwrap();
            b[at] ^= 0x40;
            std::fs::write(&path, b).unwrap();
        };
        // seq 2 lives in slot 0.
        flip(40);
        let (_, marks) = RecordFile::load(&path).unwrap().unwrap();
        assert_eq!(marks, sample(1));
        flip(SLOT + 20);
        let err = RecordFile::load(&path).unwrap_err();
        assert!(matches!(err, RecordError::Corrupt { .. }));
        assert!(err.to_string().contains("raft.hwm"), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");

        let mut rec = RecordFile::create(&path, &sample(1)).unwrap();
        rec.write(&sample(2)).unwrap();
        let b = std::fs::read(&path).unwrap();
        std::fs::write(&path, &b[..5000]).unwrap();
        let err = RecordFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("5000 bytes"), "{err}");
        std::fs::write(&path, vec![0u8; FILE_LEN]).unwrap();
        assert!(RecordFile::load(&path).is_err());
    }

    /// Every single-bit flip inside a slot's meaningful bytes is caught by the checksum.
    #[test]
    fn every_bit_flip_is_caught() {
        let slot = encode_slot(9, &sample(3));
        for byte in 0..CRC_AT + 4 {
            for bit in 0..8 {
                let mut b = slot.clone();
                b[byte] ^= 1 << bit;
                assert_eq!(decode_slot(&b), Slot::Bad, "byte {byte} bit {bit}");
            }
        }
        assert_eq!(
            decode_slot(&slot),
            Slot::Valid {
                seq: 9,
                marks: sample(3)
            }
        );
    }
}
