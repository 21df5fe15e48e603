//! Samples the lab ~10 times a second: which DB hosts hold the VIP, which are writable
//! (read_only=0), and each manager's role and term. A second, independent view of "at most
//! one writer" besides the clients' probes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mha_raft::adapters::mysql::{Endpoint, Login, Session};
use mha_raft::ctl::AdminClient;
use mha_raft::proto::admin::NodeStatusRequest;
use mha_raft::secret::Secret;
use serde::{Deserialize, Serialize};

use crate::history::wall_ms;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manager {
    pub id: u64,
    pub role: String,
    pub term: u64,
    /// A leader's time since a quorum last acknowledged it (its lease's age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_ack_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    pub time_ms: u64,
    /// Hosts holding the VIP and serving it (not fenced).
    pub vip: Vec<String>,
    /// Hosts holding the VIP fenced: every TCP packet to it answered with a reset (phase 2
    /// keeps the old master's VIP so until the new master holds it): no writer path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vip_fenced: Vec<String>,
    pub writable: Vec<String>,
    pub managers: Vec<Manager>,
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn vip_on(ns: &str, vip: &str) -> bool {
    let out = tokio::process::Command::new("ip")
        .args(["-n", ns, "-o", "addr", "show", "dev", "eth0"])
        .output()
        .await;
    matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains(&format!(" {vip}/")))
}

/// Whether the host in `ns` rejects every TCP packet to the VIP (the failover's fence rule).
async fn vip_fenced(ns: &str, vip: &str) -> bool {
    let rule = format!("{vip}/32");
    let out = tokio::process::Command::new("ip")
        .args([
            "netns", "exec", ns, "iptables", "-w", "-C", "INPUT", "-d", &rule,
        ])
        .args(["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"])
        .output()
        .await;
    matches!(out, Ok(o) if o.status.success())
}

impl Sampler {
    /// `dbs`: (name, ip); `managers`: admin endpoints; `vip` and `port`: the group's;
    /// `password`: the mha user's.
    pub fn start(
        dbs: Vec<(String, String)>,
        managers: Vec<String>,
        transport: mha_raft::security::Transport,
        (vip, port): (String, u16),
        password: Secret,
    ) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let task = tokio::spawn(async move {
            let mut sessions: Vec<Option<Session>> = dbs.iter().map(|_| None).collect();
            let clients: Vec<Option<AdminClient>> = managers
                .iter()
                .map(|m| {
                    AdminClient::new(
                        vec![m.clone()],
                        Duration::from_millis(200),
                        transport.clone(),
                    )
                    .ok()
                })
                .collect();
            while !s.load(Ordering::Relaxed) {
                let t = wall_ms();
                let mut vip_hosts = Vec::new();
                let mut vip_fenced_hosts = Vec::new();
                let mut writable = Vec::new();
                for (i, (name, ip)) in dbs.iter().enumerate() {
                    let ns = format!("mhalab-{name}");
                    // The address and the rule are read one after the other, not at once; a
                    // release (address first, then rule) between the two reads would look like
                    // an unfenced holder. Served only if the address is still there after a
                    // read that found no rule: then it was held without one at that read.
                    if vip_on(&ns, &vip).await {
                        if vip_fenced(&ns, &vip).await {
                            vip_fenced_hosts.push(name.clone());
                        } else if vip_on(&ns, &vip).await {
                            vip_hosts.push(name.clone());
                        }
                    }
                    if sessions[i].is_none() {
                        let login = Login {
                            endpoint: Endpoint {
                                host: ip.clone(),
                                port,
                            },
                            user: "mha".into(),
                            password: password.clone(),
                        };
                        sessions[i] = login.connect(Duration::from_millis(100)).await.ok();
                    }
                    if let Some(sess) = sessions[i].as_mut() {
                        sess.set_timeout(Duration::from_millis(200));
                        match sess.rows("SELECT @@read_only AS ro").await {
                            Ok(r) => {
                                if r.first().and_then(|c| c.get("ro").cloned().flatten())
                                    == Some("0".into())
                                {
                                    writable.push(name.clone());
                                }
                            }
                            Err(_) => sessions[i] = None,
                        }
                    }
                }
                let mut ms = Vec::new();
                for c in clients.iter().flatten() {
                    if let Ok(r) = c
                        .call_any(|mut c| async move { c.node_status(NodeStatusRequest {}).await })
                        .await
                    {
                        ms.push(Manager {
                            id: r.id,
                            role: r.role,
                            term: r.term,
                            quorum_ack_ms: r.millis_since_quorum_ack,
                        });
                    }
                }
                out.lock().expect("samples").push(Sample {
                    time_ms: t,
                    vip: vip_hosts,
                    vip_fenced: vip_fenced_hosts,
                    writable,
                    managers: ms,
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler {
            stop,
            samples,
            task,
        }
    }

    pub async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let v = self.samples.lock().expect("samples").clone();
        v
    }
}
