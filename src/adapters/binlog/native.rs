//! Our own reader of event bodies (the reader recovery had before mysql_common's): since
//! mysql_common reads the MySQL events (see `common`), what recovery still takes from here is
//! what mysql_common lacks — MariaDB's own events (GTID 162 with its standalone flag; the
//! MariaDB event types are unknown to mysql_common) and rotate names whose checksum setting is
//! not the one of the format description in force (relay logs). The rest stays as the second
//! reader the comparison tests hold mysql_common's against (docs/architecture.md, "Binlog").

#[cfg(test)]
use super::decode::{Decoded, Reader};
use super::{kind, Event, Gtid, HEADER_LEN};

/// MariaDB GTID event flags2: the group is one statement with no COMMIT (DDL).
const MARIADB_FL_STANDALONE: u8 = 1;

impl<'a> Event<'a> {
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
                let uuid = super::uuid_text(&body[1..17]);
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

/// What our reader reads from `ev` (`checksum`: the setting of the format description in
/// force). A Transaction_payload event stays one opaque event here: ours cannot open it.
/// Recovery's [`super::Decoder`] calls the parts it takes from ours; this whole reading is
/// what the comparison tests hold mysql_common's against.
#[cfg(test)]
pub fn decode(ev: &Event, checksum: bool) -> Decoded {
    let mut d = Decoded::new(Reader::Native);
    d.gtid = ev.gtid();
    d.query = ev.query(checksum);
    d.rotate = ev.rotate();
    if ev.kind == kind::FORMAT_DESCRIPTION {
        d.checksum = Some(ev.fde_checksum());
    }
    d
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

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::super::Events;
    use super::*;

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
    fn checksum_algorithm_by_version() {
        assert!(version_has_checksum_alg("10.11.6-MariaDB-0+deb12u1-log"));
        assert!(version_has_checksum_alg("8.0.36"));
        assert!(version_has_checksum_alg("5.6.1"));
        assert!(!version_has_checksum_alg("5.5.62-log"));
        assert!(!version_has_checksum_alg("5.1.73"));
    }
}
