//! What an online switchover does to a live master beyond fencing (fence.rs): read its
//! threads for the gates, take and release the global read lock (MHA's lock_all_tables).

use std::time::Duration;

use super::{MysqlError, Session};
use crate::model::Thread;

const PROCESSLIST: &str = "SELECT ID, USER, COMMAND, TIME, LEFT(COALESCE(INFO, ''), 120) AS INFO \
     FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()";

impl Session {
    /// The server's threads other than this session's.
    pub async fn processlist(&mut self) -> Result<Vec<Thread>, MysqlError> {
        let text = |row: &super::replica::Columns, k: &str| {
            row.get(k).cloned().flatten().unwrap_or_default()
        };
        Ok(self
            .rows(PROCESSLIST)
            .await?
            .iter()
            .map(|row| Thread {
                id: text(row, "ID").parse().unwrap_or_default(),
                user: text(row, "USER"),
                command: text(row, "COMMAND"),
                time_s: text(row, "TIME").parse().unwrap_or_default(),
                info: text(row, "INFO"),
            })
            .collect())
    }

    /// FLUSH TABLES WITH READ LOCK, waiting at most `wait` for the metadata locks (a long
    /// statement holding one fails the lock instead of stalling every write behind it). The
    /// lock lives as long as this session: dropping the session releases it.
    pub async fn lock_all_tables(&mut self, wait: Duration) -> Result<(), MysqlError> {
        let secs = wait.as_secs().max(1);
        self.exec(&format!("SET SESSION lock_wait_timeout = {secs}"))
            .await?;
        self.exec("FLUSH TABLES WITH READ LOCK").await
    }

    pub async fn unlock_tables(&mut self) -> Result<(), MysqlError> {
        self.exec("UNLOCK TABLES").await
    }

    /// This session's CONNECTION_ID().
    pub async fn connection_id(&mut self) -> Result<u64, MysqlError> {
        self.rows("SELECT CONNECTION_ID() AS id")
            .await?
            .first()
            .and_then(|r| r.get("id").cloned().flatten())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| MysqlError::Protocol {
                endpoint: self.endpoint().to_string(),
                message: "CONNECTION_ID() returned nothing".into(),
            })
    }
}

impl Session {
    /// Kills session `id` if it is still there and belongs to `user`: the global read lock an
    /// earlier leader's session took lives until that session ends (a frozen or cut-off
    /// manager keeps it open). Returns whether it was killed.
    pub async fn kill_session_of(&mut self, id: u64, user: &str) -> Result<bool, MysqlError> {
        if !self
            .processlist()
            .await?
            .iter()
            .any(|t| t.id == id && t.user == user)
        {
            return Ok(false);
        }
        match self.exec(&format!("KILL CONNECTION {id}")).await {
            Ok(()) => Ok(true),
            // Gone in the meantime (ER_NO_SUCH_THREAD).
            Err(e) if e.server_code() == Some(1094) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
