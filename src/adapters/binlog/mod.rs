//! Binlog and relay-log files, read on the manager (format v4: MySQL 5.0+ and MariaDB), so a
//! failover needs nothing on the DB hosts but what they already have (a shell, `mysqlbinlog`,
//! the `mysql` client). [`Events`] cuts a file or a byte range into whole events (ours: it
//! tells an incomplete last event from a corrupt one); [`Decoder`] reads the few bodies a
//! failover needs (format description, rotate, GTID, query text, MySQL 8's Transaction_payload)
//! with mysql_common where it knows the event and with our reader where it does not (MariaDB's
//! own events; see `decode`); [`MasterLog`] places the events at their coordinates in the
//! master's binlog and cuts them into a file `mysqlbinlog` can replay.

mod common;
mod decode;
mod master_log;
mod native;

pub use common::{Common, Fde};
pub use decode::{Decoded, Decoder, Flavour, InnerEvent, Reader};
pub use master_log::{assemble, Assembled, MasterEvent, MasterLog};

/// Every binlog and relay-log file starts with these four bytes.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// Event header length in format v4.
pub const HEADER_LEN: usize = 19;

/// Event type codes (the ones a failover looks at).
/// A 16-byte source uuid as MySQL prints it (8-4-4-4-12 lowercase hex).
pub(crate) fn uuid_text(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub mod kind {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const HEARTBEAT: u8 = 27;
    pub const MYSQL_GTID: u8 = 33;
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    pub const MYSQL_PREVIOUS_GTIDS: u8 = 35;
    pub const MYSQL_XA_PREPARE: u8 = 38;
    /// MySQL 8.0.20+: a transaction's events, compressed (zstd) or not.
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    /// MySQL 8.4: a GTID with a tag (uuid:tag:gno).
    pub const MYSQL_GTID_TAGGED: u8 = 42;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_START_ENCRYPTION: u8 = 164;
}

/// Header flag: an event the server generated rather than logged (e.g. the fake rotate a
/// master sends when a replica connects).
pub const FLAG_ARTIFICIAL: u16 = 0x20;
/// Header flag: an event a replica wrote into its relay log itself (not the master's).
pub const FLAG_RELAY_LOG: u16 = 0x40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BinlogError {
    #[error("{0}: not a binlog file (no magic number)")]
    NoMagic(String),
    #[error("{file}: bad event at offset {offset}: {why}")]
    Corrupt {
        file: String,
        offset: u64,
        why: String,
    },
    #[error("{0}: encrypted binlogs cannot be read by the manager")]
    Encrypted(String),
}

/// A global transaction id as the binlog carries it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Gtid {
    /// domain-server-seq.
    Mariadb { domain: u32, server: u32, seq: u64 },
    /// uuid:gno.
    Mysql { uuid: String, gno: u64 },
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gtid::Mariadb {
                domain,
                server,
                seq,
            } => write!(f, "{domain}-{server}-{seq}"),
            Gtid::Mysql { uuid, gno } => write!(f, "{uuid}:{gno}"),
        }
    }
}

/// One event, borrowed from the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Offset of the event in its file.
    pub offset: u64,
    pub kind: u8,
    pub server_id: u32,
    /// The writer's end position of the event (for a master's events: in the master's binlog,
    /// also inside a replica's relay log).
    pub end_log_pos: u64,
    pub flags: u16,
    /// The whole event: header, body and checksum.
    pub bytes: &'a [u8],
}

impl<'a> Event<'a> {
    /// The body without the header and without the checksum (when `checksum`).
    pub fn body(&self, checksum: bool) -> &'a [u8] {
        let end = self.bytes.len() - if checksum { 4 } else { 0 };
        &self.bytes[HEADER_LEN.min(end)..end]
    }

    /// Whether the event is the replica's own (relay-log bookkeeping), not the master's.
    pub fn is_relay_own(&self) -> bool {
        self.flags & FLAG_RELAY_LOG != 0
    }
}

/// The events of `data`, which starts at offset `base` of its file (an event boundary). An
/// incomplete event at the end (a file still being written, or cut by a crash) ends the
/// iteration; [`Events::tail`] tells how many bytes it had.
pub struct Events<'a> {
    file: String,
    data: &'a [u8],
    at: usize,
    base: u64,
    failed: bool,
}

impl<'a> Events<'a> {
    pub fn new(file: &str, data: &'a [u8], base: u64) -> Events<'a> {
        Events {
            file: file.to_string(),
            data,
            at: 0,
            base,
            failed: false,
        }
    }

    /// The events of a whole file (magic number checked).
    pub fn of_file(file: &str, data: &'a [u8]) -> Result<Events<'a>, BinlogError> {
        if data.len() < 4 || data[..4] != MAGIC {
            return Err(BinlogError::NoMagic(file.to_string()));
        }
        Ok(Events {
            file: file.to_string(),
            data: &data[4..],
            at: 0,
            base: 4,
            failed: false,
        })
    }

    /// Bytes after the last complete event.
    pub fn tail(&self) -> usize {
        self.data.len() - self.at
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<Event<'a>, BinlogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = &self.data[self.at..];
        if rest.len() < HEADER_LEN {
            return None;
        }
        let size = u32::from_le_bytes(rest[9..13].try_into().expect("4 bytes")) as usize;
        let offset = self.base + self.at as u64;
        if size < HEADER_LEN {
            self.failed = true;
            return Some(Err(BinlogError::Corrupt {
                file: self.file.clone(),
                offset,
                why: format!("event size {size} is smaller than a header"),
            }));
        }
        if rest.len() < size {
            return None;
        }
        let bytes = &rest[..size];
        let kind = bytes[4];
        if kind == kind::MARIADB_START_ENCRYPTION {
            self.failed = true;
            return Some(Err(BinlogError::Encrypted(self.file.clone())));
        }
        self.at += size;
        Some(Ok(Event {
            offset,
            kind,
            server_id: u32::from_le_bytes(bytes[5..9].try_into().expect("4 bytes")),
            end_log_pos: u32::from_le_bytes(bytes[13..17].try_into().expect("4 bytes")) as u64,
            flags: u16::from_le_bytes([bytes[17], bytes[18]]),
            bytes,
        }))
    }
}

#[cfg(test)]
mod compare_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod mysql8_fixture;

#[cfg(test)]
pub(crate) mod fixtures {
    //! Files captured from MariaDB 10.11 by tests/fixtures/binlog/make.sh: a master wrote
    //! mysql-bin.000001 (CREATE DATABASE, CREATE TABLE, 3 inserts) and, after FLUSH BINARY
    //! LOGS, mysql-bin.000002 (3 inserts, a 2-row transaction, then 2 inserts the replica never
    //! read); the replica's relay logs hold everything up to mysql-bin.000002:1407. And a
    //! MySQL 8.0.32 file with a transaction compressed into a Transaction_payload event, built
    //! by the tests themselves ([`Mysql8`]: no MySQL server runs here).
    pub use super::mysql8_fixture::Mysql8;

    pub const MARIADB: [&str; 6] = [
        "mysql-bin.000001",
        "mysql-bin.000002",
        "relay-bin.000001",
        "relay-bin.000002",
        "relay-bin.000003",
        "relay-bin.000004",
    ];

    pub fn file(name: &str) -> Vec<u8> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/binlog/");
        std::fs::read(format!("{p}{name}")).expect("fixture")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_master_binlog() {
        let data = fixtures::file("mysql-bin.000002");
        let evs: Vec<Event> = Events::of_file("mysql-bin.000002", &data)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(evs[0].kind, kind::FORMAT_DESCRIPTION);
        assert!(evs[0].fde_checksum());
        // A master's own binlog: every event ends where the next begins.
        for e in &evs {
            assert_eq!(e.offset + e.bytes.len() as u64, e.end_log_pos);
        }
        let gtids: Vec<String> = evs
            .iter()
            .filter_map(|e| e.gtid())
            .map(|(g, _)| g.to_string())
            .collect();
        assert_eq!(gtids.first().unwrap(), "0-1-6");
        assert_eq!(gtids.last().unwrap(), "0-1-11");
        assert_eq!(evs.last().unwrap().end_log_pos, data.len() as u64);
    }

    #[test]
    fn a_cut_file_ends_at_the_last_complete_event() {
        let data = fixtures::file("mysql-bin.000002");
        let cut = &data[..data.len() - 10];
        let mut it = Events::of_file("x", cut).unwrap();
        let n = it.by_ref().count();
        assert_eq!(it.tail(), 31 - 10, "the partial last event is left over");
        assert_eq!(n, 36);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            Events::of_file("f", b"hello").err(),
            Some(BinlogError::NoMagic("f".into()))
        );
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&[0u8; 19]);
        let r: Vec<_> = Events::of_file("f", &bad).unwrap().collect();
        assert!(matches!(r[0], Err(BinlogError::Corrupt { offset: 4, .. })));
    }
}
