//! MySQL/MariaDB adapter (mysql_async): connect, ping, read a server's state, and the writes a
//! failover needs. Every call has an explicit timeout. Passwords are [`Secret`]s and are redacted
//! from every error message.

mod binlogs;
pub mod dialect;
mod epoch;
mod fence;
pub mod replica;
pub mod server;
mod switch;
mod vars;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Value};

pub use dialect::{ChangeMaster, ReplicaPosition};
pub use epoch::{EpochRow, EpochTable};
pub use fence::FenceReport;
pub use replica::Columns;

use crate::model::{BinlogCoord, Dialect, ReplicaPulse, ReplicaStatus, ServerInfo};
use crate::secret::Secret;

/// Error codes returned while connecting that prove the server is up (MHA's list): too many
/// connections, bad host, handshake, access denied, host blocked, not allowed, too many user
/// connections, max user connections, auth plugin, and friends. They do not count as failures
/// of a health check.
pub const ALIVE_CODES: &[u16] = &[
    1040, 1042, 1043, 1044, 1045, 1129, 1130, 1203, 1226, 1251, 1275,
];

#[derive(Debug, Clone, thiserror::Error)]
pub enum MysqlError {
    #[error("{endpoint}: {what} timed out after {after:?}")]
    Timeout {
        endpoint: String,
        what: &'static str,
        after: Duration,
    },
    #[error("{endpoint}: cannot connect: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{endpoint}: server error {code}: {message}")]
    Server {
        endpoint: String,
        code: u16,
        message: String,
    },
    #[error("{endpoint}: {message}")]
    Protocol { endpoint: String, message: String },
}

impl MysqlError {
    pub fn server_code(&self) -> Option<u16> {
        match self {
            MysqlError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server answered, so it is alive, even though the call failed.
    pub fn proves_alive(&self) -> bool {
        self.server_code().is_some_and(|c| ALIVE_CODES.contains(&c))
    }

    /// The host answered that nothing listens on the port: mysqld is down (not hung, not cut
    /// off).
    pub fn is_refused(&self) -> bool {
        matches!(self, MysqlError::Connect { message, .. } if message.contains("refused"))
    }

    /// The kind of failure, as the error metric labels it.
    pub fn kind(&self) -> &'static str {
        match self {
            MysqlError::Timeout { .. } => "timeout",
            MysqlError::Connect { .. } => "connect",
            MysqlError::Server { .. } => "server",
            MysqlError::Protocol { .. } => "protocol",
        }
    }

    /// Counts this failure in the error metric (adapters/call_errors.rs); returns it.
    fn counted(self, endpoint: &str) -> Self {
        super::call_errors::record(super::call_errors::Service::Mysql, endpoint, self.kind());
        self
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            MysqlError::Timeout { .. } => true,
            MysqlError::Connect { .. } => true,
            MysqlError::Server { code, .. } => matches!(code, 1040 | 1203 | 1205 | 1213 | 1226),
            MysqlError::Protocol { .. } => false,
        }
    }
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where and as whom to connect: the one value every caller needs to open a session.
#[derive(Clone, Debug)]
pub struct Login {
    pub endpoint: Endpoint,
    pub user: String,
    pub password: Secret,
}

impl Login {
    pub async fn connect(&self, timeout: Duration) -> Result<Session, MysqlError> {
        Session::connect(&self.endpoint, &self.user, &self.password, timeout).await
    }
}

/// An open connection to one server.
pub struct Session {
    conn: Conn,
    dialect: Dialect,
    endpoint: String,
    timeout: Duration,
    password: Secret,
}

fn classify(endpoint: &str, password: &Secret, e: mysql_async::Error) -> MysqlError {
    let endpoint = endpoint.to_string();
    match e {
        mysql_async::Error::Server(s) => MysqlError::Server {
            endpoint,
            code: s.code,
            message: password.redact(&s.message),
        },
        mysql_async::Error::Io(io) => MysqlError::Connect {
            endpoint,
            message: password.redact(&io.to_string()),
        },
        other => MysqlError::Protocol {
            endpoint,
            message: password.redact(&other.to_string()),
        },
    }
}

/// A row as its column names and values (text).
fn column_map(row: mysql_async::Row) -> Columns {
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let values = row.unwrap();
    names
        .into_iter()
        .zip(values.iter().map(value_text))
        .collect::<BTreeMap<_, _>>()
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

impl Session {
    /// Connects and learns the server's dialect. The whole handshake is bounded by `timeout`.
    pub async fn connect(
        ep: &Endpoint,
        user: &str,
        password: &Secret,
        timeout: Duration,
    ) -> Result<Session, MysqlError> {
        let endpoint = ep.to_string();
        Self::connect_uncounted(ep, user, password, timeout)
            .await
            .map_err(|e| e.counted(&endpoint))
    }

    async fn connect_uncounted(
        ep: &Endpoint,
        user: &str,
        password: &Secret,
        timeout: Duration,
    ) -> Result<Session, MysqlError> {
        let endpoint = ep.to_string();
        let opts = OptsBuilder::default()
            .ip_or_hostname(ep.host.clone())
            .tcp_port(ep.port)
            .user(Some(user.to_string()))
            .pass(Some(password.expose().to_string()))
            .prefer_socket(false)
            .stmt_cache_size(0)
            .tcp_nodelay(true)
            // Given, so the driver does not ask the server for them on every connect (a round
            // trip on a failover's path): the client-side packet limit at its maximum (the
            // server enforces its own), and wait_timeout only matters to the driver's pool,
            // which sessions do not use.
            .max_allowed_packet(Some(1 << 30))
            .wait_timeout(Some(28_800));
        let conn = match tokio::time::timeout(timeout, Conn::new(opts)).await {
            Err(_) => {
                return Err(MysqlError::Timeout {
                    endpoint,
                    what: "connect",
                    after: timeout,
                })
            }
            Ok(Err(e)) => return Err(classify(&endpoint, password, e)),
            Ok(Ok(c)) => c,
        };
        let mut s = Session {
            conn,
            dialect: Dialect::from_version_string("0.0.0").expect("static"),
            endpoint,
            timeout,
            password: password.clone(),
        };
        let rows = s.rows_uncounted("SELECT @@version AS version").await?;
        let v = rows
            .first()
            .and_then(|r| r.get("version").cloned().flatten())
            .unwrap_or_default();
        s.dialect = Dialect::from_version_string(&v).ok_or_else(|| MysqlError::Protocol {
            endpoint: s.endpoint.clone(),
            message: format!("unrecognised version {v:?}"),
        })?;
        Ok(s)
    }

    /// Changes the per-statement timeout (e.g. for a deliberately long-running statement).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Runs a query; every row as a column map.
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Columns>, MysqlError> {
        let endpoint = self.endpoint.clone();
        self.rows_uncounted(sql)
            .await
            .map_err(|e| e.counted(&endpoint))
    }

    async fn rows_uncounted(&mut self, sql: &str) -> Result<Vec<Columns>, MysqlError> {
        let fut = self.conn.query::<mysql_async::Row, _>(sql);
        let rows = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => {
                return Err(MysqlError::Timeout {
                    endpoint: self.endpoint.clone(),
                    what: "query",
                    after: self.timeout,
                })
            }
            Ok(Err(e)) => return Err(classify(&self.endpoint, &self.password, e)),
            Ok(Ok(r)) => r,
        };
        Ok(rows.into_iter().map(column_map).collect())
    }

    /// Runs `sqls` in one round trip (one multi-statement query, within one timeout): each
    /// statement's rows as column maps, in order. Reads that follow each other on the
    /// failover's path (a server's variables, binlog and replica status, semi-sync) cost one
    /// wait for the server instead of one each.
    pub async fn rows_each(&mut self, sqls: &[&str]) -> Result<Vec<Vec<Columns>>, MysqlError> {
        let joined = sqls.join("; ");
        let n = sqls.len();
        let conn = &mut self.conn;
        let fut = async move {
            let mut result = conn.query_iter(joined).await?;
            let mut sets = Vec::with_capacity(n);
            for _ in 0..n {
                let rows: Vec<mysql_async::Row> = result.collect().await?;
                sets.push(rows.into_iter().map(column_map).collect());
            }
            result.drop_result().await?;
            Ok::<_, mysql_async::Error>(sets)
        };
        let res = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(MysqlError::Timeout {
                endpoint: self.endpoint.clone(),
                what: "query",
                after: self.timeout,
            }),
            Ok(Err(e)) => Err(classify(&self.endpoint, &self.password, e)),
            Ok(Ok(sets)) => Ok(sets),
        };
        res.map_err(|e| e.counted(&self.endpoint))
    }

    /// Runs a statement that returns no rows.
    pub async fn exec(&mut self, sql: &str) -> Result<(), MysqlError> {
        let fut = self.conn.query_drop(sql);
        let res = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(MysqlError::Timeout {
                endpoint: self.endpoint.clone(),
                what: "statement",
                after: self.timeout,
            }),
            Ok(Err(e)) => Err(classify(&self.endpoint, &self.password, e)),
            Ok(Ok(())) => Ok(()),
        };
        res.map_err(|e| e.counted(&self.endpoint))
    }

    /// Runs a statement and returns how many rows it changed (compare-and-set workloads).
    pub async fn exec_affected(&mut self, sql: &str) -> Result<u64, MysqlError> {
        self.exec(sql).await?;
        Ok(self.conn.affected_rows())
    }

    /// A round trip (`SELECT 1`), for health checks on a persistent connection.
    pub async fn ping(&mut self) -> Result<Duration, MysqlError> {
        let t = Instant::now();
        self.rows("SELECT 1").await?;
        Ok(t.elapsed())
    }

    pub async fn replica_status(&mut self) -> Result<Option<ReplicaStatus>, MysqlError> {
        let sql = self.dialect.show_replica_status();
        let rows = self.rows(sql).await?;
        rows.first()
            .map(ReplicaStatus::from_columns)
            .transpose()
            .map_err(|message| MysqlError::Protocol {
                endpoint: self.endpoint.clone(),
                message,
            })
    }

    /// The replica status with its heartbeat counters (None: not a replica). The counters are
    /// None where the server does not give them (MySQL with performance_schema off): the
    /// status still stands.
    pub async fn replica_pulse(
        &mut self,
    ) -> Result<Option<(ReplicaStatus, ReplicaPulse)>, MysqlError> {
        let rows = self.rows(self.dialect.pulse_status()).await?;
        // MariaDB lists every connection; the default one (named '') is the replication the
        // manager runs. Other flavours have one row, without that column.
        let Some(mut row) = rows.into_iter().find(|r| {
            r.get("Connection_name")
                .is_none_or(|n| n.as_deref().unwrap_or("").is_empty())
        }) else {
            return Ok(None);
        };
        if let Some(q) = self.dialect.heartbeat_query() {
            // Optional (older servers, missing grants): a failure is not an error worth counting.
            if let Ok(extra) = self.rows_uncounted(q).await {
                row.extend(extra.into_iter().next().unwrap_or_default());
            }
        }
        let status = ReplicaStatus::from_columns(&row).map_err(|message| MysqlError::Protocol {
            endpoint: self.endpoint.clone(),
            message,
        })?;
        let pulse = ReplicaPulse::from_columns(&status, &row);
        Ok(Some((status, pulse)))
    }

    pub async fn binlog_status(&mut self) -> Result<Option<BinlogCoord>, MysqlError> {
        let sql = self.dialect.show_binlog_status();
        let rows = self.rows(sql).await?;
        Ok(rows.first().map(|r| BinlogCoord {
            file: r.get("File").cloned().flatten().unwrap_or_default(),
            pos: r
                .get("Position")
                .cloned()
                .flatten()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
        }))
    }

    /// Everything the manager reads about the server, in a handful of round trips.
    pub async fn server_info(&mut self) -> Result<ServerInfo, MysqlError> {
        // One round trip for the five reads.
        let vars_query = server::variables_query(&self.dialect);
        let queries = [
            vars_query.as_str(),
            self.dialect.show_binlog_status(),
            self.dialect.show_replica_status(),
            server::SEMISYNC_VARIABLES,
            server::SEMISYNC_STATUS,
        ];
        let mut sets = self.rows_each(&queries).await?.into_iter();
        let mut next = || sets.next().unwrap_or_default();
        let vars = next().into_iter().next().unwrap_or_default();
        let binlog = next().into_iter().next();
        let replica = next().into_iter().next();
        let pairs = |rows: Vec<Columns>| -> Vec<(String, String)> {
            rows.into_iter()
                .filter_map(|r| {
                    Some((
                        r.get("Variable_name").cloned().flatten()?,
                        r.get("Value").cloned().flatten().unwrap_or_default(),
                    ))
                })
                .collect()
        };
        let sv = pairs(next());
        let ss = pairs(next());
        server::parse_server_info(&vars, binlog.as_ref(), replica.as_ref(), &sv, &ss).map_err(
            |message| MysqlError::Protocol {
                endpoint: self.endpoint.clone(),
                message,
            },
        )
    }

    pub async fn stop_replica(&mut self, io_thread_only: bool) -> Result<(), MysqlError> {
        let sql = self.dialect.stop_replica(io_thread_only);
        self.exec(sql).await
    }

    pub async fn start_replica(&mut self) -> Result<(), MysqlError> {
        let sql = self.dialect.start_replica();
        self.exec(sql).await
    }

    pub async fn reset_replica_all(&mut self) -> Result<(), MysqlError> {
        let sql = self.dialect.reset_replica_all();
        self.exec(sql).await
    }

    /// CHANGE MASTER (the statement holds the replication password: it is never logged, and
    /// the password is redacted from any error).
    pub async fn change_master(&mut self, c: &ChangeMaster) -> Result<(), MysqlError> {
        // The statement's literals are quoted for the default mode (see `literal_body`).
        self.exec("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')")
            .await?;
        let sql = self.dialect.change_master(c);
        self.exec(&sql).await.map_err(|e| match e {
            MysqlError::Server {
                endpoint,
                code,
                message,
            } => MysqlError::Server {
                endpoint,
                code,
                message: c.password.redact(&message),
            },
            other => other,
        })
    }

    /// Waits (server side, at most `timeout`) until this server executed the GTID set
    /// `target`; Ok(false) on timeout. The session's own timeout is stretched to cover it.
    pub async fn wait_gtid(&mut self, target: &str, timeout: Duration) -> Result<bool, MysqlError> {
        let secs = timeout.as_secs().max(1);
        let sql = self.dialect.wait_gtid(target, secs);
        let r = self.wait_query(&sql, secs).await?;
        Ok(r == Some(0))
    }

    /// Waits (at most `timeout`) until the SQL thread applied the source's binlog up to
    /// `file:pos`; Ok(false) on timeout or when replication is not running.
    pub async fn wait_pos(
        &mut self,
        file: &str,
        pos: u64,
        timeout: Duration,
    ) -> Result<bool, MysqlError> {
        let secs = timeout.as_secs().max(1);
        let sql = self.dialect.wait_pos(file, pos, secs);
        let r = self.wait_query(&sql, secs).await?;
        Ok(r.is_some_and(|n| n >= 0))
    }

    /// Runs a server-side wait (`SELECT …(…, secs) AS r`) with the session's timeout stretched
    /// to cover it; the number it returned (NULL: None).
    async fn wait_query(&mut self, sql: &str, secs: u64) -> Result<Option<i64>, MysqlError> {
        let saved = self.timeout;
        self.timeout = saved + Duration::from_secs(secs);
        let rows = self.rows(sql).await;
        self.timeout = saved;
        Ok(rows?
            .first()
            .and_then(|c| c.get("r").cloned().flatten())
            .and_then(|v| v.trim().parse::<i64>().ok()))
    }

    pub async fn enable_semisync_source(&mut self) -> Result<(), MysqlError> {
        let sql = self.dialect.enable_semisync_source();
        self.exec(sql).await
    }

    pub async fn disable_semisync_source(&mut self) -> Result<(), MysqlError> {
        let sql = self.dialect.disable_semisync_source();
        self.exec(sql).await
    }

    pub async fn set_read_only(&mut self, on: bool) -> Result<(), MysqlError> {
        for sql in self.dialect.set_read_only(on) {
            self.exec(&sql).await?;
        }
        Ok(())
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(self.timeout, self.conn.disconnect()).await;
    }
}
