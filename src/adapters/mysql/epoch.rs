//! The epoch (failover generation) on a promoted master: which run made it master. A stale
//! leader's late promotion finds a newer epoch there and stops.

use super::{MysqlError, Session};

/// Run when the epoch's table is missing, before the promoted master becomes writable.
const EPOCH_DDL: [&str; 2] = [
    "CREATE DATABASE IF NOT EXISTS mha_raft",
    "CREATE TABLE IF NOT EXISTS mha_raft.failover_epoch (\
       grp VARCHAR(64) NOT NULL PRIMARY KEY, \
       epoch BIGINT UNSIGNED NOT NULL, \
       run BIGINT UNSIGNED NOT NULL, \
       term BIGINT UNSIGNED NOT NULL, \
       manager BIGINT UNSIGNED NOT NULL, \
       at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
];

fn sql_quote(s: &str) -> String {
    format!("'{}'", super::dialect::literal_body(s))
}

impl Session {
    /// (epoch, run) recorded for the group on this server, if any.
    pub async fn read_epoch(&mut self, group: &str) -> Result<Option<(u64, u64)>, MysqlError> {
        read_epoch(self, group).await
    }

    /// Creates the epoch's table on a writable server that lacks it (binlogged: on a master,
    /// its replicas get it too). Nothing is written to a server that has it or is read-only
    /// (a replica, or a master fenced meanwhile: a write there would be an errant transaction).
    pub async fn prepare_epoch_table(&mut self) -> Result<EpochTable, MysqlError> {
        let rows = self
            .rows(
                "SELECT @@GLOBAL.read_only AS ro, (SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = 'mha_raft' AND table_name = 'failover_epoch') AS n",
            )
            .await?;
        let get = |k: &str| {
            rows.first()
                .and_then(|r| r.get(k).cloned().flatten())
                .unwrap_or_default()
        };
        if get("n") != "0" {
            return Ok(EpochTable::There);
        }
        if get("ro") != "0" {
            return Ok(EpochTable::ReadOnly);
        }
        self.create_epoch_table().await?;
        Ok(EpochTable::Created)
    }

    async fn create_epoch_table(&mut self) -> Result<(), MysqlError> {
        for ddl in EPOCH_DDL {
            self.exec(ddl).await?;
        }
        Ok(())
    }

    /// Records which run (epoch, term, manager) made this server the group's master.
    pub async fn write_epoch(&mut self, e: &EpochRow<'_>) -> Result<(), MysqlError> {
        write_epoch(self, e).await
    }
}

/// What [`Session::prepare_epoch_table`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochTable {
    There,
    Created,
    /// Left alone: the server is read-only.
    ReadOnly,
}

/// The epoch row a promotion writes.
#[derive(Clone, Copy, Debug)]
pub struct EpochRow<'a> {
    pub group: &'a str,
    pub epoch: u64,
    pub run: u64,
    pub term: u64,
    pub manager: u64,
}

async fn read_epoch(s: &mut Session, group: &str) -> Result<Option<(u64, u64)>, MysqlError> {
    let q = format!(
        "SELECT epoch, run FROM mha_raft.failover_epoch WHERE grp = {}",
        sql_quote(group)
    );
    match s.rows(&q).await {
        Ok(rows) => Ok(rows.first().and_then(|r| {
            let n = |k: &str| r.get(k).cloned().flatten().and_then(|v| v.parse().ok());
            Some((n("epoch")?, n("run")?))
        })),
        // ER_BAD_DB_ERROR / ER_NO_SUCH_TABLE: never promoted by us.
        Err(e) if matches!(e.server_code(), Some(1049) | Some(1146)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn write_epoch(s: &mut Session, e: &EpochRow<'_>) -> Result<(), MysqlError> {
    let replace = format!(
        "REPLACE INTO mha_raft.failover_epoch (grp, epoch, run, term, manager) \
         VALUES ({}, {}, {}, {}, {})",
        sql_quote(e.group),
        e.epoch,
        e.run,
        e.term,
        e.manager
    );
    // The row first; the table is created only when that finds it missing (ER_BAD_DB_ERROR /
    // ER_NO_SUCH_TABLE): each `IF NOT EXISTS` statement is binlogged (a commit and a GTID)
    // even when there is nothing to create, two more on the path to the first write.
    match s.exec(&replace).await {
        Err(err) if matches!(err.server_code(), Some(1049) | Some(1146)) => {
            s.create_epoch_table().await?;
            s.exec(&replace).await
        }
        r => r,
    }
}
