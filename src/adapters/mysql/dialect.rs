//! SQL dialects: MariaDB 10.x, MySQL 5.7/8.0 (SLAVE/MASTER words), MySQL 8.0.22+ / 8.4
//! (REPLICA/SOURCE words). Pure: builds statement text, never runs it.

use serde::{Deserialize, Serialize};

use crate::model::{Dialect, Flavor, Version};
use crate::secret::Secret;

impl Dialect {
    /// From `SELECT @@version` (e.g. "10.11.19-MariaDB-0+deb12u1-log", "8.0.36", "8.4.0").
    pub fn from_version_string(v: &str) -> Option<Dialect> {
        let flavor = if v.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        let numeric: String = v
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut it = numeric.split('.').map(|p| p.parse::<u32>().ok());
        let major = it.next()??;
        let minor = it.next().flatten().unwrap_or(0);
        let patch = it.next().flatten().unwrap_or(0);
        Some(Dialect {
            flavor,
            version: Version {
                major,
                minor,
                patch,
            },
        })
    }

    fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.version
            >= Version {
                major,
                minor,
                patch,
            }
    }

    /// The replica status row with the heartbeat counters in it: MariaDB's SHOW ALL SLAVES
    /// STATUS has Slave_received_heartbeats and Slave_heartbeat_period (one row per
    /// connection; the default one is named ''); MySQL keeps them in performance_schema
    /// ([`Dialect::heartbeat_query`]).
    pub fn pulse_status(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "SHOW ALL SLAVES STATUS",
            Flavor::MySql => self.show_replica_status(),
        }
    }

    /// MySQL (5.7+): the default channel's received heartbeats and heartbeat period.
    pub fn heartbeat_query(&self) -> Option<&'static str> {
        match self.flavor {
            Flavor::MariaDb => None,
            Flavor::MySql => Some(
                "SELECT s.COUNT_RECEIVED_HEARTBEATS, c.HEARTBEAT_INTERVAL \
                 FROM performance_schema.replication_connection_status s \
                 JOIN performance_schema.replication_connection_configuration c \
                 ON c.CHANNEL_NAME = s.CHANNEL_NAME WHERE s.CHANNEL_NAME = ''",
            ),
        }
    }

    /// MySQL 8.0.22+ has SHOW REPLICA STATUS / START REPLICA; 8.0.23+ CHANGE REPLICATION SOURCE.
    pub fn replica_words(&self) -> bool {
        self.flavor == Flavor::MySql && self.at_least(8, 0, 22)
    }

    fn source_words(&self) -> bool {
        self.flavor == Flavor::MySql && self.at_least(8, 0, 23)
    }

    pub fn show_replica_status(&self) -> &'static str {
        if self.replica_words() {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }

    /// SHOW BINARY LOG STATUS on 8.4 (SHOW MASTER STATUS was removed in 8.4).
    pub fn show_binlog_status(&self) -> &'static str {
        if self.flavor == Flavor::MySql && self.at_least(8, 4, 0) {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        }
    }

    pub fn stop_replica(&self, io_thread_only: bool) -> &'static str {
        match (self.replica_words(), io_thread_only) {
            (true, true) => "STOP REPLICA IO_THREAD",
            (true, false) => "STOP REPLICA",
            (false, true) => "STOP SLAVE IO_THREAD",
            (false, false) => "STOP SLAVE",
        }
    }

    pub fn start_replica(&self) -> &'static str {
        if self.replica_words() {
            "START REPLICA"
        } else {
            "START SLAVE"
        }
    }

    pub fn reset_replica_all(&self) -> &'static str {
        if self.replica_words() {
            "RESET REPLICA ALL"
        } else {
            "RESET SLAVE ALL"
        }
    }

    /// A query returning one number: 0 once this server has executed every transaction of the
    /// GTID set `target`, non-zero (-1 or 1) when `timeout_s` passed first. MariaDB:
    /// MASTER_GTID_WAIT on a domain-seq position; MySQL: WAIT_FOR_EXECUTED_GTID_SET.
    pub fn wait_gtid(&self, target: &str, timeout_s: u64) -> String {
        let q = literal_body(target);
        match self.flavor {
            Flavor::MariaDb => format!("SELECT MASTER_GTID_WAIT('{q}', {timeout_s}) AS r"),
            Flavor::MySql => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{q}', {timeout_s}) AS r"),
        }
    }

    /// Waits until the SQL thread applied up to the source's binlog coordinates (0 or more:
    /// reached; -1: timeout; NULL: replication not running). MySQL 8.0.26 renamed it.
    pub fn wait_pos(&self, file: &str, pos: u64, timeout_s: u64) -> String {
        let f = literal_body(file);
        let func = if self.flavor == Flavor::MySql && self.at_least(8, 0, 26) {
            "SOURCE_POS_WAIT"
        } else {
            "MASTER_POS_WAIT"
        };
        format!("SELECT {func}('{f}', {pos}, {timeout_s}) AS r")
    }

    /// Turns on source-side (master-side) semi-sync waiting on a promoted server, so the new
    /// master is lossless like the old one. MySQL 8.0.26+ renamed the plugin's variables.
    pub fn enable_semisync_source(&self) -> &'static str {
        if self.flavor == Flavor::MySql && self.at_least(8, 0, 26) {
            "SET GLOBAL rpl_semi_sync_source_enabled=ON"
        } else {
            "SET GLOBAL rpl_semi_sync_master_enabled=ON"
        }
    }

    /// Turns source-side semi-sync waiting off on a master that becomes a replica: with it on,
    /// its SQL thread would wait, at every commit, for acknowledgements from replicas it does
    /// not have.
    pub fn disable_semisync_source(&self) -> &'static str {
        if self.flavor == Flavor::MySql && self.at_least(8, 0, 26) {
            "SET GLOBAL rpl_semi_sync_source_enabled=OFF"
        } else {
            "SET GLOBAL rpl_semi_sync_master_enabled=OFF"
        }
    }

    /// The variables that make a server refuse writes. MySQL also has super_read_only, which
    /// blocks SUPER users too; MariaDB 10.x has no equivalent (read_only does not stop SUPER).
    pub fn set_read_only(&self, on: bool) -> Vec<String> {
        let v = if on { "ON" } else { "OFF" };
        match (self.flavor, on) {
            (Flavor::MySql, true) => vec![
                format!("SET GLOBAL read_only={v}"),
                format!("SET GLOBAL super_read_only={v}"),
            ],
            (Flavor::MySql, false) => vec![
                format!("SET GLOBAL super_read_only={v}"),
                format!("SET GLOBAL read_only={v}"),
            ],
            (Flavor::MariaDb, _) => vec![format!("SET GLOBAL read_only={v}")],
        }
    }

    /// CHANGE MASTER / CHANGE REPLICATION SOURCE. The text contains the password: never log it.
    pub fn change_master(&self, c: &ChangeMaster) -> String {
        let q = literal_body;
        let (kw, host, port, user, pw, file, pos, retry, heartbeat) = if self.source_words() {
            (
                "CHANGE REPLICATION SOURCE TO",
                "SOURCE_HOST",
                "SOURCE_PORT",
                "SOURCE_USER",
                "SOURCE_PASSWORD",
                "SOURCE_LOG_FILE",
                "SOURCE_LOG_POS",
                "SOURCE_CONNECT_RETRY",
                "SOURCE_HEARTBEAT_PERIOD",
            )
        } else {
            (
                "CHANGE MASTER TO",
                "MASTER_HOST",
                "MASTER_PORT",
                "MASTER_USER",
                "MASTER_PASSWORD",
                "MASTER_LOG_FILE",
                "MASTER_LOG_POS",
                "MASTER_CONNECT_RETRY",
                "MASTER_HEARTBEAT_PERIOD",
            )
        };
        let mut s = format!(
            "{kw} {host}='{}', {port}={}, {user}='{}', {pw}='{}', {retry}=1",
            q(&c.host),
            c.port,
            q(&c.user),
            q(c.password.expose())
        );
        // Seconds with millisecond decimals, as both servers take it. None: the replica keeps
        // the period it has (CHANGE MASTER leaves an unnamed option as it is).
        if let Some(ms) = c.heartbeat_ms.filter(|ms| *ms > 0) {
            s.push_str(&format!(", {heartbeat}={}.{:03}", ms / 1000, ms % 1000));
        }
        match (&c.position, self.flavor) {
            (ReplicaPosition::FilePos { file: f, pos: p }, Flavor::MariaDb) => s.push_str(
                &format!(", {file}='{}', {pos}={}, MASTER_USE_GTID=no", q(f), p),
            ),
            (ReplicaPosition::FilePos { file: f, pos: p }, Flavor::MySql) => {
                let auto = if self.source_words() {
                    "SOURCE_AUTO_POSITION"
                } else {
                    "MASTER_AUTO_POSITION"
                };
                s.push_str(&format!(", {file}='{}', {pos}={}, {auto}=0", q(f), p))
            }
            (ReplicaPosition::Gtid, Flavor::MariaDb) => s.push_str(", MASTER_USE_GTID=slave_pos"),
            (ReplicaPosition::Gtid, Flavor::MySql) => {
                let auto = if self.source_words() {
                    "SOURCE_AUTO_POSITION"
                } else {
                    "MASTER_AUTO_POSITION"
                };
                s.push_str(&format!(", {auto}=1"))
            }
        }
        s
    }
}

/// The inside of a single-quoted SQL string literal holding `s`. A quote is doubled, which
/// means one quote in every sql_mode, so the literal ends where it should even under
/// NO_BACKSLASH_ESCAPES (a backslash-escaped quote would not, and the server's syntax error
/// would quote the rest of the statement back, a password included). A backslash is doubled
/// for the default mode; [`super::Session::change_master`] clears NO_BACKSLASH_ESCAPES for its
/// session first, so a backslash in a password means the same there.
pub fn literal_body(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// Where a replica starts reading from its new master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaPosition {
    FilePos {
        file: String,
        pos: u64,
    },
    /// MariaDB master_use_gtid=slave_pos, MySQL auto-position.
    Gtid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeMaster {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub position: ReplicaPosition,
    /// MASTER_HEARTBEAT_PERIOD in ms: how often an idle master tells this replica it is alive
    /// (what the detector reads to tell a hung master). None: left as the replica has it.
    pub heartbeat_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: &str) -> Dialect {
        Dialect::from_version_string(v).unwrap()
    }

    /// A quote is doubled (one quote in every sql_mode), a backslash doubled.
    #[test]
    fn literal_body_quotes_for_every_mode() {
        assert_eq!(literal_body("a'b"), "a''b");
        assert_eq!(literal_body("a\\b"), "a\\\\b");
        assert_eq!(literal_body("it\\'s"), "it\\\\''s");
    }

    #[test]
    fn versions_and_flavors() {
        assert_eq!(d("10.11.19-MariaDB-0+deb12u1-log").flavor, Flavor::MariaDb);
        assert_eq!(
            d("10.11.19-MariaDB-0+deb12u1-log").version,
            Version {
                major: 10,
                minor: 11,
                patch: 19
            }
        );
        assert_eq!(d("5.7.44-log").flavor, Flavor::MySql);
        assert_eq!(d("8.4.0").version.major, 8);
        assert!(Dialect::from_version_string("garbage").is_none());
    }

    /// The statement words per dialect, table-driven.
    #[test]
    fn words_per_dialect() {
        let cases = [
            (
                "10.11.19-MariaDB",
                "SHOW SLAVE STATUS",
                "STOP SLAVE IO_THREAD",
                "RESET SLAVE ALL",
                "SHOW MASTER STATUS",
            ),
            (
                "5.7.44",
                "SHOW SLAVE STATUS",
                "STOP SLAVE IO_THREAD",
                "RESET SLAVE ALL",
                "SHOW MASTER STATUS",
            ),
            (
                "8.0.21",
                "SHOW SLAVE STATUS",
                "STOP SLAVE IO_THREAD",
                "RESET SLAVE ALL",
                "SHOW MASTER STATUS",
            ),
            (
                "8.0.22",
                "SHOW REPLICA STATUS",
                "STOP REPLICA IO_THREAD",
                "RESET REPLICA ALL",
                "SHOW MASTER STATUS",
            ),
            (
                "8.4.3",
                "SHOW REPLICA STATUS",
                "STOP REPLICA IO_THREAD",
                "RESET REPLICA ALL",
                "SHOW BINARY LOG STATUS",
            ),
        ];
        for (v, show, stop_io, reset, binlog) in cases {
            let x = d(v);
            assert_eq!(x.show_replica_status(), show, "{v}");
            assert_eq!(x.stop_replica(true), stop_io, "{v}");
            assert_eq!(x.reset_replica_all(), reset, "{v}");
            assert_eq!(x.show_binlog_status(), binlog, "{v}");
        }
    }

    #[test]
    fn change_master_per_dialect() {
        let c = |position| ChangeMaster {
            host: "10.0.0.2".into(),
            port: 3306,
            user: "repl".into(),
            password: Secret::new("pw'x"),
            position,
            heartbeat_ms: None,
        };
        let gtid = c(ReplicaPosition::Gtid);
        let fp = c(ReplicaPosition::FilePos {
            file: "mysql-bin.000007".into(),
            pos: 1234,
        });
        assert_eq!(
            d("10.11.5-MariaDB").change_master(&gtid),
            "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='pw''x', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos"
        );
        assert!(d("10.11.5-MariaDB").change_master(&fp).ends_with(
            "MASTER_LOG_FILE='mysql-bin.000007', MASTER_LOG_POS=1234, MASTER_USE_GTID=no"
        ));
        assert!(d("5.7.44")
            .change_master(&gtid)
            .ends_with("MASTER_AUTO_POSITION=1"));
        let s84 = d("8.4.0").change_master(&gtid);
        assert!(
            s84.starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.2'"),
            "{s84}"
        );
        assert!(s84.ends_with("SOURCE_AUTO_POSITION=1"), "{s84}");
        assert!(d("8.0.36")
            .change_master(&fp)
            .contains("SOURCE_LOG_FILE='mysql-bin.000007', SOURCE_LOG_POS=1234"));
        let hb = |ms| ChangeMaster {
            heartbeat_ms: Some(ms),
            ..c(ReplicaPosition::Gtid)
        };
        assert!(d("10.11.5-MariaDB")
            .change_master(&hb(500))
            .contains("MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=0.500, MASTER_USE_GTID"));
        assert!(d("8.4.0")
            .change_master(&hb(2250))
            .contains("SOURCE_HEARTBEAT_PERIOD=2.250"));
        assert!(!d("5.7.44").change_master(&hb(0)).contains("HEARTBEAT"));
    }

    #[test]
    fn gtid_wait_and_semisync_per_dialect() {
        assert_eq!(
            d("10.11.5-MariaDB").wait_gtid("0-1-42", 30),
            "SELECT MASTER_GTID_WAIT('0-1-42', 30) AS r"
        );
        assert_eq!(
            d("8.0.36").wait_gtid("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", 5),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5', 5) AS r"
        );
        assert_eq!(
            d("10.11.5-MariaDB").enable_semisync_source(),
            "SET GLOBAL rpl_semi_sync_master_enabled=ON"
        );
        assert_eq!(
            d("5.7.44").enable_semisync_source(),
            "SET GLOBAL rpl_semi_sync_master_enabled=ON"
        );
        assert_eq!(
            d("8.4.0").enable_semisync_source(),
            "SET GLOBAL rpl_semi_sync_source_enabled=ON"
        );
    }

    #[test]
    fn read_only_order() {
        assert_eq!(
            d("8.0.36").set_read_only(false)[0],
            "SET GLOBAL super_read_only=OFF"
        );
        assert_eq!(
            d("8.0.36").set_read_only(true)[0],
            "SET GLOBAL read_only=ON"
        );
        assert_eq!(
            d("10.11.1-MariaDB").set_read_only(true),
            vec!["SET GLOBAL read_only=ON"]
        );
    }
}
