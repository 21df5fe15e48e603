//! The few server variables and statements the manager needs beyond status: the GTID state a
//! replay must leave out, where the relay logs are, the `insert` ping's heartbeat row, and the
//! sentinel's parked statement, the IO thread stopped quickly when its master's host is dark.

use std::time::Duration;

use super::{MysqlError, Session};

/// Schema of the `insert` ping's heartbeat table.
const HEARTBEAT_SCHEMA: &str = "mha_raft";

impl Session {
    /// The text of each of `keys` in the first row of `sql` ("" when NULL or absent).
    async fn vars(&mut self, sql: &str, keys: &[&str]) -> Result<Vec<String>, MysqlError> {
        let rows = self.rows(sql).await?;
        Ok(keys
            .iter()
            .map(|k| {
                rows.first()
                    .and_then(|r| r.get(*k).cloned().flatten())
                    .unwrap_or_default()
            })
            .collect())
    }

    /// MariaDB: (gtid_binlog_state, gtid_slave_pos).
    pub async fn mariadb_gtid_state(&mut self) -> Result<(String, String), MysqlError> {
        let mut v = self
            .vars(
                "SELECT @@gtid_binlog_state AS b, @@gtid_slave_pos AS s",
                &["b", "s"],
            )
            .await?;
        let s = v.pop().unwrap_or_default();
        Ok((v.pop().unwrap_or_default(), s))
    }

    /// (relay_log_index, datadir): where the relay-log index file is.
    pub async fn relay_log_index(&mut self) -> Result<(String, String), MysqlError> {
        let mut v = self
            .vars(
                "SELECT @@relay_log_index AS idx, @@datadir AS datadir",
                &["idx", "datadir"],
            )
            .await?;
        let datadir = v.pop().unwrap_or_default();
        Ok((v.pop().unwrap_or_default(), datadir))
    }

    /// Creates the `insert` ping's heartbeat table if it is missing.
    pub async fn ensure_heartbeat_table(&mut self) -> Result<(), MysqlError> {
        self.exec(&format!("CREATE DATABASE IF NOT EXISTS {HEARTBEAT_SCHEMA}"))
            .await?;
        self.exec(&format!(
            "CREATE TABLE IF NOT EXISTS {HEARTBEAT_SCHEMA}.heartbeat \
             (grp VARCHAR(64) PRIMARY KEY, manager BIGINT UNSIGNED NOT NULL, at DATETIME(6) NOT NULL)"
        ))
        .await
    }

    /// Upserts the heartbeat row of `group` as written by `manager`.
    pub async fn write_heartbeat(&mut self, group: &str, manager: u64) -> Result<(), MysqlError> {
        let grp = super::dialect::literal_body(group);
        self.exec(&format!(
            "INSERT INTO {HEARTBEAT_SCHEMA}.heartbeat (grp, manager, at) VALUES ('{grp}', {manager}, NOW(6)) \
             ON DUPLICATE KEY UPDATE manager = VALUES(manager), at = VALUES(at)"
        ))
        .await
    }

    /// STOP SLAVE IO_THREAD on a replica whose master's host is known to answer nothing
    /// (powered off, cut off). A MariaDB semi-sync replica's IO thread, on its way out, connects
    /// to its master to kill its dump thread there, bounded by
    /// `rpl_semi_sync_slave_kill_conn_timeout` (default 5 s, 0 = no bound; STOP re-signals it
    /// after 2 s): against a dark host that connect is all the stop costs. The bound is lowered
    /// to its floor, 1 s, for this stop and put back after. Servers without the variable
    /// (MySQL), or where it cannot be read or set, just stop. Returns what the caller should
    /// say besides "stopped": the bound could not be put back (a stop cut short by the
    /// caller's timeout leaves it at 1 too: harmless, it only bounds a best-effort cleanup).
    pub async fn stop_io_thread_master_dark(&mut self) -> Result<Option<String>, MysqlError> {
        const VAR: &str = "rpl_semi_sync_slave_kill_conn_timeout";
        let bound = match self
            .vars(&format!("SELECT @@GLOBAL.{VAR} AS t"), &["t"])
            .await
        {
            Ok(v) => v.first().and_then(|t| t.parse::<u64>().ok()),
            Err(_) => None,
        };
        let lowered = match bound {
            Some(t) if t != 1 => self
                .exec(&format!("SET GLOBAL {VAR} = 1"))
                .await
                .ok()
                .map(|()| t),
            _ => None,
        };
        self.stop_replica(true).await?;
        let Some(t) = lowered else { return Ok(None) };
        Ok(self
            .exec(&format!("SET GLOBAL {VAR} = {t}"))
            .await
            .err()
            .map(|e| format!("{VAR} left at 1 (was {t}): {e}")))
    }

    /// Parks the connection in a statement for `d` (the sentinel: the statement returns with
    /// an error the moment the server dies and its socket closes).
    pub async fn park(&mut self, d: Duration) -> Result<(), MysqlError> {
        self.exec(&format!("SELECT SLEEP({})", d.as_secs())).await
    }
}
