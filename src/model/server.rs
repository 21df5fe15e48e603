//! What the manager knows about one database server: identity and SQL dialect, read_only,
//! binlog settings, GTID state, binlog coordinates, replica status and semi-sync. Produced by
//! `adapters::mysql` (which parses the server's answers), consumed by `engine` and `state`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// What a server is, as far as SQL syntax is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialect {
    pub flavor: Flavor,
    pub version: Version,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoThread {
    Yes,
    Connecting,
    No,
}

/// Binlog coordinates (file, position). Ordering compares the file's numeric index, not the
/// string: mysql-bin.1000000 is after mysql-bin.999999.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogCoord {
    pub file: String,
    pub pos: u64,
}

impl BinlogCoord {
    /// The numeric suffix of the file name (mysql-bin.000042 → 42).
    pub fn index(&self) -> Option<u64> {
        self.file.rsplit_once('.').and_then(|(_, n)| n.parse().ok())
    }
}

impl PartialOrd for BinlogCoord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some((self.index()?, self.pos).cmp(&(other.index()?, other.pos)))
    }
}

impl std::fmt::Display for BinlogCoord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// The inverse of `Display`: `file:pos` (the last ':' separates them).
impl std::str::FromStr for BinlogCoord {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not binlog coordinates (file:position)");
        let (file, pos) = s.rsplit_once(':').ok_or_else(bad)?;
        if file.is_empty() {
            return Err(bad());
        }
        Ok(BinlogCoord {
            file: file.to_string(),
            pos: pos.parse().map_err(|_| bad())?,
        })
    }
}

/// Optional binlog coordinates in the journal, typed in memory and stored as every build
/// before the typed journal wrote them, so managers of both builds replicate the same log
/// during a rolling upgrade: `optional_coord` as text (`"file:pos"`, `""` for none),
/// `optional_coord::pair` as a `[file, pos]` pair (the new master's coordinates). Both read
/// any of the forms, and `{"file", "pos"}` too; text that is not coordinates (a replica that
/// never connected reports `":4"`) reads as none rather than failing the whole journal.
pub mod optional_coord {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::BinlogCoord;

    pub fn serialize<S: Serializer>(c: &Option<BinlogCoord>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.as_ref().map(|c| c.to_string()).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BinlogCoord>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Coord(BinlogCoord),
            Pair(String, u64),
            Text(String),
        }
        Ok(match Option::<Stored>::deserialize(d)? {
            None => None,
            Some(Stored::Coord(c)) => Some(c),
            Some(Stored::Pair(file, pos)) => Some(BinlogCoord { file, pos }),
            Some(Stored::Text(t)) => t.parse().ok(),
        })
    }

    /// Stored as a `[file, pos]` pair (or null).
    pub mod pair {
        use super::*;

        pub fn serialize<S: Serializer>(c: &Option<BinlogCoord>, s: S) -> Result<S::Ok, S::Error> {
            c.as_ref().map(|c| (&c.file, c.pos)).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<BinlogCoord>, D::Error> {
            super::deserialize(d)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub source_host: String,
    pub source_port: u16,
    pub source_user: String,
    pub source_server_id: Option<u32>,
    pub io_thread: IoThread,
    pub sql_thread: bool,
    /// Master_Log_File:Read_Master_Log_Pos — how far the IO thread has read.
    pub read: BinlogCoord,
    /// Relay_Master_Log_File:Exec_Master_Log_Pos — how far the SQL thread has applied.
    pub exec: BinlogCoord,
    pub relay_log: Option<BinlogCoord>,
    pub seconds_behind: Option<u64>,
    pub last_io_errno: u32,
    pub last_io_error: String,
    pub last_sql_errno: u32,
    pub last_sql_error: String,
    /// MariaDB Using_Gtid (No, Slave_Pos, Current_Pos); MySQL: "auto_position" or "no".
    pub gtid_mode: String,
    /// MariaDB Gtid_IO_Pos; MySQL Retrieved_Gtid_Set.
    pub gtid_io_pos: String,
    /// MySQL Executed_Gtid_Set (MariaDB reports gtid_slave_pos in variables instead).
    pub executed_gtid_set: String,
    pub sql_delay: u64,
    /// Replicate_* filtering rules (SHOW SLAVE STATUS).
    #[serde(default)]
    pub filters: ReplFilters,
}

/// A replica's replication filtering rules, as SHOW SLAVE STATUS lists them (comma-separated,
/// empty when unset). MHA's check_repl_filter: every replica must have the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplFilters {
    pub do_db: String,
    pub ignore_db: String,
    pub do_table: String,
    pub ignore_table: String,
    pub wild_do_table: String,
    pub wild_ignore_table: String,
}

/// A server's binlog filtering rules (SHOW MASTER STATUS Binlog_Do_DB / Binlog_Ignore_DB).
/// MHA's check_repl_filter: every server with log_bin must have the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BinlogFilters {
    pub do_db: String,
    pub ignore_db: String,
}

/// GTID state as each flavour reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtidState {
    /// MariaDB gtid_current_pos / MySQL gtid_executed.
    pub executed: String,
    /// MariaDB gtid_slave_pos (empty on MySQL).
    pub slave_pos: String,
    /// MariaDB gtid_binlog_pos (empty on MySQL).
    pub binlog_pos: String,
    /// MySQL gtid_mode=ON, or MariaDB gtid_strict_mode (MariaDB GTIDs are always on).
    pub enabled: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemiSync {
    pub master_enabled: bool,
    pub slave_enabled: bool,
    pub master_clients: u32,
    pub wait_point: String,
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub dialect: Dialect,
    pub server_id: u32,
    pub read_only: bool,
    /// MySQL only.
    pub super_read_only: Option<bool>,
    pub log_bin: bool,
    pub log_slave_updates: bool,
    pub binlog_format: String,
    pub relay_log_purge: bool,
    pub report_host: String,
    pub gtid: GtidState,
    /// SHOW MASTER STATUS; None when binary logging is off.
    pub binlog: Option<BinlogCoord>,
    /// SHOW MASTER STATUS's filtering rules (empty when binary logging is off).
    #[serde(default)]
    pub binlog_filters: BinlogFilters,
    /// None when the server is not a replica.
    pub replica: Option<ReplicaStatus>,
    pub semisync: SemiSync,
}

impl ServerInfo {
    /// The server's position for display: GTID set, else binlog coordinates.
    pub fn position(&self) -> String {
        if !self.gtid.executed.is_empty() {
            self.gtid.executed.clone()
        } else {
            self.binlog
                .as_ref()
                .map(|b| b.to_string())
                .unwrap_or_default()
        }
    }
}

impl ReplicaStatus {
    /// MHA's check_repl_delay rule: too far behind to be promoted if the SQL thread is on an
    /// older file than the IO thread, or more than 100 MB behind within the file.
    pub fn too_far_behind(&self) -> bool {
        match (self.read.index(), self.exec.index()) {
            (Some(r), Some(e)) if r > e => true,
            _ => self.read.pos > self.exec.pos + 100_000_000,
        }
    }
}

/// One event of a server's binary log, as `SHOW BINLOG EVENTS` lists it (a rejoin reads what a
/// file/position old master wrote past the failover point).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinlogEvent {
    pub file: String,
    pub pos: u64,
    /// `Event_type`: Gtid, Query, Xid, Format_desc, Rotate, …
    pub kind: String,
    /// The server the event was first written on (a replicated event keeps its origin's).
    pub server_id: u32,
    pub end_pos: u64,
    /// `Info`, first characters only (a statement may hold data: never shown whole).
    pub info: String,
}

/// One row of a server's processlist (an online switchover's gates read them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    pub id: u64,
    pub user: String,
    pub command: String,
    pub time_s: u64,
    /// The statement, if any (first characters only: it may hold data, never shown whole).
    pub info: String,
}

impl Thread {
    /// Replication, system and idle threads: not the application's work.
    pub fn is_background(&self) -> bool {
        matches!(
            self.command.as_str(),
            "Sleep"
                | "Connect"
                | "Daemon"
                | "Binlog Dump"
                | "Binlog Dump GTID"
                | "Slave_IO"
                | "Slave_SQL"
                | "Slave_worker"
        ) || matches!(self.user.as_str(), "system user" | "event_scheduler")
    }

    /// A statement that changes nothing (MHA counts SELECT and SHOW as such).
    pub fn is_read(&self) -> bool {
        let head = self.info.trim_start().to_ascii_uppercase();
        head.starts_with("SELECT") || head.starts_with("SHOW") || head.is_empty()
    }

    /// The thread for a refusal: id, user, time and the statement's first word only (the
    /// rest may hold data or a password, and refusals are journaled and audited).
    pub fn describe(&self) -> String {
        let verb: String = self
            .info
            .split_whitespace()
            .next()
            .unwrap_or("")
            .chars()
            .take(20)
            .collect();
        format!(
            "thread {} ({}, {} s): {} …",
            self.id, self.user, self.time_s, verb
        )
    }
}

/// Every server of a group as read at one moment, by name (an unreachable one with the error).
pub type Observations = BTreeMap<String, Result<ServerInfo, String>>;
