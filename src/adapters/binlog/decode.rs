//! What recovery reads from each event, and which reader reads it. Our framing
//! ([`super::Events`]) cuts every file into whole events (offsets, an incomplete last event,
//! corrupt sizes, encryption); the bodies are then read by mysql_common ([`super::common`])
//! wherever it knows the event, and by our reader ([`super::native`]) for what it lacks:
//!
//! | event                                   | read by                                 |
//! |-----------------------------------------|-----------------------------------------|
//! | format description (version, checksum)  | mysql_common                            |
//! | query text, MySQL GTID, Transaction_payload (its inner events) | mysql_common     |
//! | MariaDB GTID (162), GTID list, checkpoint, annotate rows | ours (unknown to mysql_common) |
//! | rotate (next file and position)         | ours: the checksum setting is read from the name, since in a relay log a rotate may be written with the master's setting while the replica's format description is in force |
//!
//! The flavour comes from the server version in the format description event: MariaDB's own
//! event types (160 and up) are read only in a MariaDB file.

use super::common::Common;
use super::{kind, BinlogError, Event, Gtid};

/// Which reader read an event's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    MysqlCommon,
    Native,
    /// Nothing recovery needs from the body (rows, table maps, XID, ...): type and bytes only.
    None,
}

/// The server that wrote a file, from its format description event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavour {
    #[default]
    Mysql,
    Mariadb,
}

impl Flavour {
    pub fn of_version(server_version: &str) -> Flavour {
        if server_version.contains("MariaDB") {
            Flavour::Mariadb
        } else {
            Flavour::Mysql
        }
    }
}

/// An event inside a MySQL 8 Transaction_payload event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InnerEvent {
    pub kind: u8,
    pub server_id: u32,
    pub end_log_pos: u64,
    pub len: u64,
    /// A query event's statement (BEGIN, COMMIT, ...).
    pub query: Option<String>,
}

/// What recovery reads from one event's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub reader: Reader,
    /// The transaction a GTID event opens, and whether it is a standalone statement.
    pub gtid: Option<(Gtid, bool)>,
    /// A query event's statement.
    pub query: Option<String>,
    /// A rotate event's (position, next file name).
    pub rotate: Option<(u64, String)>,
    /// A format description event: whether the events it describes end with a CRC32.
    pub checksum: Option<bool>,
    /// A Transaction_payload event's events.
    pub inner: Vec<InnerEvent>,
}

impl Decoded {
    pub fn new(reader: Reader) -> Decoded {
        Decoded {
            reader,
            gtid: None,
            query: None,
            rotate: None,
            checksum: None,
            inner: Vec::new(),
        }
    }
}

/// Reads the events of one file (or stream) in order: the format description events it meets
/// decide the checksum setting and the flavour of the events that follow.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    file: String,
    common: Common,
    flavour: Flavour,
}

impl Decoder {
    pub fn new(file: &str) -> Decoder {
        Decoder {
            file: file.to_string(),
            ..Decoder::default()
        }
    }

    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// Whether the events now being read end with a CRC32 checksum.
    pub fn checksum(&self) -> bool {
        self.common.checksum()
    }

    pub fn decode(&mut self, ev: &Event) -> Result<Decoded, BinlogError> {
        match ev.kind {
            kind::FORMAT_DESCRIPTION => {
                let fde = self.common.format_description(&self.file, ev)?;
                self.flavour = Flavour::of_version(&fde.server_version);
                let mut d = Decoded::new(Reader::MysqlCommon);
                d.checksum = Some(fde.checksum);
                Ok(d)
            }
            kind::ROTATE => {
                let mut d = Decoded::new(Reader::Native);
                d.rotate = ev.rotate();
                Ok(d)
            }
            kind::MARIADB_GTID if self.flavour == Flavour::Mariadb => {
                let mut d = Decoded::new(Reader::Native);
                d.gtid = ev.gtid();
                Ok(d)
            }
            kind::QUERY
            | kind::MYSQL_GTID
            | kind::MYSQL_GTID_TAGGED
            | kind::TRANSACTION_PAYLOAD => Ok(self
                .common
                .decode(&self.file, ev)?
                .unwrap_or_else(|| Decoded::new(Reader::None))),
            _ => Ok(Decoded::new(Reader::None)),
        }
    }
}
