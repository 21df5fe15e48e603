//! Fencing a reachable old master (MHA phase 2, built in): make it refuse writes and cut the
//! client connections that could still write. Idempotent: a fenced server is left as it is.
//! Replication threads, binlog dumps and system threads are not touched.

use super::{MysqlError, Session};

/// What fencing did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FenceReport {
    /// The server was writable before (read_only was off).
    pub was_writable: bool,
    /// Client connections killed.
    pub killed: Vec<u64>,
}

/// Client connections other than ours: not replication, not system or event threads.
const CLIENT_THREADS: &str = "SELECT ID FROM information_schema.PROCESSLIST \
     WHERE ID <> CONNECTION_ID() \
       AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker') \
       AND USER NOT IN ('system user', 'event_scheduler')";

impl Session {
    /// Makes the server refuse writes (read_only) and kills the client connections that could
    /// still write.
    pub async fn fence_writes(&mut self) -> Result<FenceReport, MysqlError> {
        fence(self).await
    }
}

async fn fence(sess: &mut Session) -> Result<FenceReport, MysqlError> {
    let was_writable = !sess.server_info().await?.read_only;
    if was_writable {
        sess.set_read_only(true).await?;
    }
    let mut killed = Vec::new();
    for row in sess.rows(CLIENT_THREADS).await? {
        let Some(id) = row
            .get("ID")
            .cloned()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        match sess.exec(&format!("KILL CONNECTION {id}")).await {
            Ok(()) => killed.push(id),
            // Gone in the meantime (ER_NO_SUCH_THREAD): nothing to do.
            Err(e) if e.server_code() == Some(1094) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(FenceReport {
        was_writable,
        killed,
    })
}
