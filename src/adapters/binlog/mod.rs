//! Binlog and relay-log files, read natively (format v4: MySQL 5.0+ and MariaDB), so a failover
//! needs nothing on the DB hosts but what they already have (a shell, `mysqlbinlog`, the `mysql`
//! client). This module reads event headers and the few bodies a failover needs (format
//! description, rotate, GTID, query text); [`MasterLog`] places the events at their coordinates
//! in the master's binlog and cuts them into a file `mysqlbinlog` can replay.

mod master_log;

pub use master_log::{assemble, Assembled, MasterEvent, MasterLog};

/// Every binlog and relay-log file starts with these four bytes.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// Event header length in format v4.
pub const HEADER_LEN: usize = 19;

/// Event type codes (the ones a failover looks at).
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
/// MariaDB GTID event flags2: the group is one statement with no COMMIT (DDL).
const MARIADB_FL_STANDALONE: u8 = 1;

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

    /// A rotate event's (position, next file name). The checksum is detected from the name:
    /// rotates arrive written by the master or by the replica, with either one's setting.
    pub fn rotate(&self) -> Option<(u64, String)> {
        if self.kind != kind::ROTATE || self.bytes.len() < HEADER_LEN + 8 {
            return None;
        }
        let body = &self.bytes[HEADER_LEN..];
        let pos = u64::from_le_bytes(body[..8].try_into().ok()?);
        let name_ok =
            |b: &[u8]| !b.is_empty() && b.iter().all(|c| c.is_ascii_graphic()) && b.contains(&b'.');
        let full = &body[8..];
        let name = if full.len() > 4 && name_ok(&full[..full.len() - 4]) && !name_ok(full) {
            &full[..full.len() - 4]
        } else if name_ok(full) {
            full
        } else {
            return None;
        };
        Some((pos, String::from_utf8_lossy(name).into_owned()))
    }

    /// The GTID this event opens a transaction with, and whether that transaction is a single
    /// statement without COMMIT (MariaDB's standalone flag).
    pub fn gtid(&self) -> Option<(Gtid, bool)> {
        let body = self.bytes.get(HEADER_LEN..)?;
        match self.kind {
            kind::MARIADB_GTID if body.len() >= 13 => Some((
                Gtid::Mariadb {
                    domain: u32::from_le_bytes(body[8..12].try_into().ok()?),
                    server: self.server_id,
                    seq: u64::from_le_bytes(body[..8].try_into().ok()?),
                },
                body[12] & MARIADB_FL_STANDALONE != 0,
            )),
            kind::MYSQL_GTID if body.len() >= 25 => {
                let u = &body[1..17];
                let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
                let uuid = format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                );
                Some((
                    Gtid::Mysql {
                        uuid,
                        gno: u64::from_le_bytes(body[17..25].try_into().ok()?),
                    },
                    false,
                ))
            }
            _ => None,
        }
    }

    /// A query event's statement text.
    pub fn query(&self, checksum: bool) -> Option<String> {
        if self.kind != kind::QUERY {
            return None;
        }
        let body = self.body(checksum);
        // Post-header: thread id 4, exec time 4, db length 1, error code 2, status-vars length 2.
        if body.len() < 13 {
            return None;
        }
        let db_len = body[8] as usize;
        let vars_len = u16::from_le_bytes([body[11], body[12]]) as usize;
        let start = 13 + vars_len + db_len + 1;
        body.get(start..)
            .map(|q| String::from_utf8_lossy(q).into_owned())
    }

    /// For a format description event: whether the events it describes end with a CRC32
    /// checksum (the FDE's own last five bytes are the algorithm and its checksum).
    pub fn fde_checksum(&self) -> bool {
        if self.kind != kind::FORMAT_DESCRIPTION || self.bytes.len() < HEADER_LEN + 57 {
            return false;
        }
        let version = &self.bytes[HEADER_LEN + 2..HEADER_LEN + 52];
        let version = String::from_utf8_lossy(version);
        let version = version.trim_end_matches('\0');
        if !version_has_checksum_alg(version) {
            return false;
        }
        self.bytes[self.bytes.len() - 5] == 1
    }
}

/// Servers that write the checksum algorithm into the FDE: MySQL 5.6.1+, MariaDB 5.3+.
fn version_has_checksum_alg(v: &str) -> bool {
    let nums: Vec<u32> = v
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let (a, b, c) = (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
        nums.get(2).copied().unwrap_or(0),
    );
    if v.contains("MariaDB") {
        (a, b) >= (5, 3)
    } else {
        (a, b, c) >= (5, 6, 1)
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
pub(crate) mod fixtures {
    //! Files captured from MariaDB 10.11 by tests/fixtures/binlog/make.sh: a master wrote
    //! mysql-bin.000001 (CREATE DATABASE, CREATE TABLE, 3 inserts) and, after FLUSH BINARY
    //! LOGS, mysql-bin.000002 (3 inserts, a 2-row transaction, then 2 inserts the replica never
    //! read); the replica's relay logs hold everything up to mysql-bin.000002:1407.
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
    fn reads_rotates_and_queries() {
        let data = fixtures::file("mysql-bin.000001");
        let evs: Vec<Event> = Events::of_file("x", &data)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        let last = evs.last().unwrap();
        assert_eq!(last.rotate(), Some((4, "mysql-bin.000002".to_string())));
        let ddl: Vec<String> = evs.iter().filter_map(|e| e.query(true)).collect();
        assert!(ddl.iter().any(|q| q == "CREATE DATABASE t"), "{ddl:?}");
        let (g, standalone) = evs.iter().find_map(|e| e.gtid()).unwrap();
        assert_eq!(g.to_string(), "0-1-1");
        assert!(standalone, "a DDL is a standalone group");
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

    #[test]
    fn checksum_algorithm_by_version() {
        assert!(version_has_checksum_alg("10.11.6-MariaDB-0+deb12u1-log"));
        assert!(version_has_checksum_alg("8.0.36"));
        assert!(version_has_checksum_alg("5.6.1"));
        assert!(!version_has_checksum_alg("5.5.62-log"));
        assert!(!version_has_checksum_alg("5.1.73"));
    }
}
