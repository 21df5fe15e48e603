//! An application writer for the lab: increasing ids inserted through a VIP as the
//! application user, every acknowledged id recorded (what no failover may lose).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mha_raft::adapters::mysql::{Endpoint, Login};
use mha_raft::secret::Secret;

use super::*;

/// Inserts increasing ids through the VIP as the application user, reconnecting after errors;
/// records every acknowledged id.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<i64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Through the lab group's VIP.
    pub fn start() -> Writer {
        Self::start_at("10.77.0.100", 3306)
    }

    /// Through `host:port` (a group's VIP and port).
    pub fn start_at(host: &str, port: u16) -> Writer {
        let host = host.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acked.clone());
        let task = tokio::spawn(async move {
            let login = Login {
                endpoint: Endpoint { host, port },
                user: "app".into(),
                password: Secret::new(APP_PW),
            };
            let mut next = 1i64;
            let mut sess = None;
            while !s.load(Ordering::Relaxed) {
                if sess.is_none() {
                    match login.connect(Duration::from_millis(500)).await {
                        Ok(mut x) => {
                            x.set_timeout(Duration::from_secs(3));
                            sess = Some(x)
                        }
                        Err(_) => {
                            // Back-off before reconnecting (the workload's pace, not a wait).
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                }
                let sql = format!("INSERT INTO mha_lab.acked (id) VALUES ({next})");
                match sess.as_mut().expect("connected").exec(&sql).await {
                    Ok(()) => a.lock().unwrap().push(next),
                    // Unknown outcome: never reuse the id.
                    Err(_) => sess = None,
                }
                next += 1;
                // About 100 inserts a second: the workload's pace, not a wait.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Writer { stop, acked, task }
    }

    pub fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until more than five writes beyond `than` were acknowledged.
    pub async fn wait_more(&self, than: usize) {
        wait_for_async(
            "writes acknowledged through the VIP",
            WAIT,
            async || match self.count() {
                n if n > than + 5 => Ok(()),
                n => Err(format!(
                    "{n} acknowledged, waiting for more than {}",
                    than + 5
                )),
            },
        )
        .await
    }

    pub async fn finish(self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}
