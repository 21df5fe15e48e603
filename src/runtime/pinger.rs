//! Health-check pings of a master, as MHA does them: `select` (SELECT 1 on a persistent
//! connection), `connect` (a new connection every time), `insert` (upsert a heartbeat row in a
//! dedicated schema on a persistent connection). Every ping is bounded by a timeout.

use std::time::{Duration, Instant};

use crate::adapters::mysql::{Login, MysqlError, Session};
use crate::state::group::PingType;

pub struct Pinger {
    login: Login,
    kind: PingType,
    timeout: Duration,
    /// Row key of the `insert` ping: (group, manager id).
    heartbeat: (String, u64),
    conn: Option<Session>,
}

impl Pinger {
    /// `heartbeat` is the row the `insert` ping upserts: (group, manager id).
    pub fn new(login: Login, kind: PingType, timeout: Duration, heartbeat: (String, u64)) -> Self {
        Pinger {
            login,
            kind,
            timeout,
            heartbeat,
            conn: None,
        }
    }

    async fn session(&mut self) -> Result<&mut Session, MysqlError> {
        if self.conn.is_none() {
            let mut s = self.login.connect(self.timeout).await?;
            if self.kind == PingType::Insert {
                s.ensure_heartbeat_table().await?;
            }
            self.conn = Some(s);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    /// The bound of the next pings (the monitor tightens it while the master is suspect).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// One ping, reconnecting included, bounded by the timeout as a whole; returns its
    /// round-trip time. A failed persistent connection is dropped so the next ping reconnects.
    pub async fn ping(&mut self) -> Result<Duration, MysqlError> {
        let t = Instant::now();
        let timeout = self.timeout;
        let res = match tokio::time::timeout(timeout, self.ping_once()).await {
            Ok(r) => r,
            Err(_) => Err(MysqlError::Timeout {
                endpoint: self.login.endpoint.to_string(),
                what: "ping",
                after: timeout,
            }),
        };
        if res.is_err() {
            self.conn = None;
        }
        res.map(|_| t.elapsed())
    }

    async fn ping_once(&mut self) -> Result<(), MysqlError> {
        if let Some(s) = self.conn.as_mut() {
            s.set_timeout(self.timeout);
        }
        match self.kind {
            PingType::Connect => {
                let s = self.login.connect(self.timeout).await?;
                s.close().await;
                Ok(())
            }
            PingType::Select => self.session().await?.ping().await.map(|_| ()),
            PingType::Insert => {
                let (grp, manager) = self.heartbeat.clone();
                self.session().await?.write_heartbeat(&grp, manager).await
            }
        }
    }
}
