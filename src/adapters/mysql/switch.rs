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
}

impl Session {
    /// Kills every other session of `user` (this one's user): a global read lock left by a
    /// session of an earlier leader that stopped (frozen, or cut off) lives until its session
    /// ends. Returns how many were killed.
    pub async fn kill_sessions_of(&mut self, user: &str) -> Result<usize, MysqlError> {
        let mut killed = 0;
        for t in self.processlist().await? {
            if t.user != user || t.is_background() && t.command != "Sleep" {
                continue;
            }
            match self.exec(&format!("KILL CONNECTION {}", t.id)).await {
                Ok(()) => killed += 1,
                // Gone in the meantime (ER_NO_SUCH_THREAD).
                Err(e) if e.server_code() == Some(1094) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(killed)
    }
}
