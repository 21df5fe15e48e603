//! A server's own binary logs, read over SQL: which files it holds and the events of one from a
//! position (a rejoin checks what a file/position old master wrote past the failover point
//! without SSH).

use super::dialect::literal_body;
use super::replica::Columns;
use super::{MysqlError, Session};
use crate::model::BinlogEvent;

/// How much of an event's `Info` is kept: a statement may hold data.
const INFO_CHARS: usize = 120;

fn text(row: &Columns, k: &str) -> String {
    row.get(k).cloned().flatten().unwrap_or_default()
}

impl Session {
    /// `SHOW BINARY LOGS`: (file, size in bytes), in the index's order.
    pub async fn binary_logs(&mut self) -> Result<Vec<(String, u64)>, MysqlError> {
        Ok(self
            .rows("SHOW BINARY LOGS")
            .await?
            .iter()
            .map(|r| {
                (
                    text(r, "Log_name"),
                    text(r, "File_size").parse().unwrap_or_default(),
                )
            })
            .collect())
    }

    /// At most `limit` events of `file`, the first starting at `from` (an event's start; 4 or
    /// less: the file's beginning).
    pub async fn binlog_events(
        &mut self,
        file: &str,
        from: u64,
        limit: u64,
    ) -> Result<Vec<BinlogEvent>, MysqlError> {
        let sql = format!(
            "SHOW BINLOG EVENTS IN '{}' FROM {} LIMIT {limit}",
            literal_body(file),
            from.max(4)
        );
        let endpoint = self.endpoint().to_string();
        let num = |r: &Columns, k: &str| {
            text(r, k)
                .trim()
                .parse::<u64>()
                .map_err(|_| MysqlError::Protocol {
                    endpoint: endpoint.clone(),
                    message: format!("SHOW BINLOG EVENTS: {k} is not a number"),
                })
        };
        // A number that does not read is an error, never a default: a server id read as 0
        // would make the server's own write look replicated.
        let rows = self.rows(&sql).await?;
        rows.iter()
            .map(|r| {
                Ok(BinlogEvent {
                    file: text(r, "Log_name"),
                    pos: num(r, "Pos")?,
                    kind: text(r, "Event_type"),
                    server_id: u32::try_from(num(r, "Server_id")?).unwrap_or(u32::MAX),
                    end_pos: num(r, "End_log_pos")?,
                    info: text(r, "Info").chars().take(INFO_CHARS).collect(),
                })
            })
            .collect()
    }
}
