//! The bench's application: inserts through the VIP, reconnecting after errors, and records the
//! wall time of the first write acknowledged by a server other than the old master, and of
//! every acknowledged write (with the server that acknowledged it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mha_raft::adapters::mysql::{Endpoint, Login};
use mha_raft::secret::Secret;

use super::wall_ms;

pub const APP_PW: &str = "bench-app-pass";

/// The application user and the bench's table, created on a group's master (and replicated).
pub fn app_setup_sql() -> String {
    format!(
        "CREATE USER 'app'@'10.77.0.%' IDENTIFIED BY '{APP_PW}'; \
         GRANT INSERT ON mha_lab.* TO 'app'@'10.77.0.%'; \
         CREATE TABLE mha_lab.bench (id BIGINT PRIMARY KEY)"
    )
}

/// How the client connects and paces its writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Retries fast: a 50 ms connect timeout (a connect in this LAN takes well under a
    /// millisecond, so a SYN that met silence is given up long before TCP's 1 s retransmit),
    /// writes back to back.
    Fast,
    /// As applications connect: a 1 s connect timeout (a SYN into silence costs the whole
    /// second), an insert every ~30 ms.
    Standard,
}

impl Client {
    fn connect_timeout(self) -> Duration {
        match self {
            Client::Fast => Duration::from_millis(50),
            Client::Standard => Duration::from_secs(1),
        }
    }

    fn pace(self) -> Duration {
        match self {
            Client::Fast => Duration::ZERO,
            Client::Standard => Duration::from_millis(30),
        }
    }
}

/// One acknowledged write: when (wall ms) and by which server_id.
pub type Ack = (u64, u32);

pub struct Writer {
    stop: Arc<AtomicBool>,
    first_new: Arc<Mutex<Option<u64>>>,
    /// When the writer first had a session on a server other than the old master (its
    /// `SELECT @@server_id` answered): from then on the first write waits on the server.
    connected_new: Arc<Mutex<Option<u64>>>,
    acks: Arc<Mutex<Vec<Ack>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Through the lab group's VIP; db1 (server_id 1) the old master.
    pub fn start(client: Client) -> Writer {
        Self::start_at(client, ("10.77.0.100", 3306), 1)
    }

    /// Through `vip:port`; a write acknowledged by a server other than `old_master_id` is the
    /// new master's.
    pub fn start_at(client: Client, target: (&str, u16), old_master_id: u32) -> Writer {
        Self::start_paced(client, target, old_master_id, client.pace())
    }

    /// As [`Self::start_at`], an insert every `pace` while connected (many writers on one
    /// machine: their load would otherwise be what is measured).
    pub fn start_paced(
        client: Client,
        (vip, port): (&str, u16),
        old_master_id: u32,
        pace: Duration,
    ) -> Writer {
        let vip = vip.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let first_new = Arc::new(Mutex::new(None));
        let connected_new = Arc::new(Mutex::new(None));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let (s, f, a) = (stop.clone(), first_new.clone(), acks.clone());
        let c = connected_new.clone();
        let task = tokio::spawn(async move {
            let login = Login {
                endpoint: Endpoint { host: vip, port },
                user: "app".into(),
                password: Secret::new(APP_PW),
            };
            let mut next = 1u64;
            let mut sess = None;
            let mut server_id = 0u32;
            while !s.load(Ordering::Relaxed) {
                if sess.is_none() {
                    match login.connect(client.connect_timeout()).await {
                        Ok(mut x) => {
                            x.set_timeout(Duration::from_secs(2));
                            server_id = match x.rows("SELECT @@server_id AS id").await {
                                Ok(r) => r
                                    .first()
                                    .and_then(|c| c.get("id").cloned().flatten())
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0),
                                Err(_) => 0,
                            };
                            if server_id != old_master_id && server_id != 0 {
                                c.lock().expect("lock").get_or_insert_with(wall_ms);
                            }
                            sess = Some(x);
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            continue;
                        }
                    }
                }
                let sql = format!("INSERT INTO mha_lab.bench (id) VALUES ({next})");
                next += 1;
                match sess.as_mut().expect("connected").exec(&sql).await {
                    Ok(()) => {
                        let now = wall_ms();
                        a.lock().expect("lock").push((now, server_id));
                        if server_id != old_master_id && server_id != 0 {
                            let mut g = f.lock().expect("lock");
                            if g.is_none() {
                                *g = Some(now);
                            }
                        }
                    }
                    Err(_) => sess = None,
                }
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
        });
        Writer {
            stop,
            first_new,
            connected_new,
            acks,
            task,
        }
    }

    /// Wall time (ms) of the first write a new master acknowledged, if any yet.
    pub fn first_new(&self) -> Option<u64> {
        *self.first_new.lock().expect("lock")
    }

    /// Wall time (ms) the writer first had a session on a new master, if any yet.
    pub fn connected_new(&self) -> Option<u64> {
        *self.connected_new.lock().expect("lock")
    }

    /// Stops writing; every acknowledged write, in order.
    pub async fn finish(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        std::mem::take(&mut *self.acks.lock().expect("lock"))
    }
}
