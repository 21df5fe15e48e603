//! The client side of a scenario, run inside the lab's client host (`ip netns exec
//! mhalab-client mha-jepsen worker ...`): a set workload through the VIP with N concurrent
//! processes, each acknowledged write probed with `SELECT @@server_id` in the same session (which
//! server took it: dual-writer detection that needs no sampler), then final reads from every DB
//! host. Writes its history as JSON Lines.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mha_raft::adapters::mysql::{Endpoint, Login, MysqlError, Session};
use mha_raft::secret::Secret;
use serde_json::json;

use crate::history::{write_jsonl, OpType, Recorder};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "10.77.0.100")]
    vip: String,
    /// The group's MariaDB port (the VIP's and every host's): lab group K's is 3306+K-1.
    #[arg(long, default_value_t = 3306)]
    port: u16,
    /// What the lab adds to a host's number to make its server_id in this group (group K ≥ 2:
    /// 10K): `@@server_id` - base names the host (db1, db2, ...).
    #[arg(long, default_value_t = 0)]
    id_base: u64,
    /// DB hosts for the final reads, as name=ip,...
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
    #[arg(long, default_value_t = 3)]
    processes: u64,
    /// Environment variable holding the application user's password (never an argument).
    #[arg(long, default_value = "JEPSEN_APP_PASSWORD")]
    password_env: String,
    /// The workload stops when this file exists.
    #[arg(long)]
    stop_file: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// set (unique inserts) or register (read / write / compare-and-set on a few keys).
    #[arg(long, default_value = "set")]
    workload: String,
}

/// Keys of the register workload.
const KEYS: u64 = 3;

fn login(host: &str, port: u16, password: &Secret) -> Login {
    Login {
        endpoint: Endpoint {
            host: host.to_string(),
            port,
        },
        user: "app".into(),
        password: password.clone(),
    }
}

/// A server error means the statement certainly did not apply; anything else (connection
/// lost, timeout) leaves the outcome unknown.
fn definite_failure(e: &MysqlError) -> bool {
    e.server_code().is_some()
}

async fn server_name(s: &mut Session, id_base: u64) -> Option<String> {
    let rows = s.rows("SELECT @@server_id AS id").await.ok()?;
    let id: u64 = rows.first()?.get("id")?.clone()?.parse().ok()?;
    Some(format!("db{}", id.checked_sub(id_base)?))
}

/// What every logical client of this worker shares.
#[derive(Clone)]
struct Shared {
    rec: Recorder,
    vip: String,
    port: u16,
    id_base: u64,
    password: Secret,
    stop: PathBuf,
    next_value: Arc<AtomicU64>,
    next_process: Arc<AtomicU64>,
    register: bool,
}

impl Shared {
    /// The process's session through the VIP, connecting if it has none. A failed connect
    /// sent nothing: the operation certainly did not happen (recorded `fail`).
    async fn session<'a>(
        &self,
        process: u64,
        f: &str,
        value: &serde_json::Value,
        sess: &'a mut Option<Session>,
    ) -> Option<&'a mut Session> {
        if sess.is_none() {
            match login(&self.vip, self.port, &self.password)
                .connect(Duration::from_millis(200))
                .await
            {
                Ok(mut s) => {
                    s.set_timeout(Duration::from_secs(2));
                    *sess = Some(s);
                }
                Err(e) => {
                    let e = Some(e.to_string());
                    self.rec
                        .record(process, OpType::Fail, f, value.clone(), None, e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return None;
                }
            }
        }
        sess.as_mut()
    }

    /// Completes an operation whose statement failed: `fail` on a server error (certainly not
    /// applied), else `info` — and, as in Jepsen, the process is retired and a fresh one takes
    /// over. The session is dropped either way.
    fn errored(
        &self,
        process: &mut u64,
        f: &str,
        value: serde_json::Value,
        e: MysqlError,
        sess: &mut Option<Session>,
    ) {
        *sess = None;
        if definite_failure(&e) {
            self.rec
                .record(*process, OpType::Fail, f, value, None, Some(e.to_string()));
        } else {
            self.rec
                .record(*process, OpType::Info, f, value, None, Some(e.to_string()));
            *process = self.next_process.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One logical client: invoke, complete, repeat; retired after an `info`.
async fn process_loop(c: Shared, mut process: u64) {
    let mut sess: Option<Session> = None;
    // The last value this process read per key (what a compare-and-set expects).
    let mut last_read: Vec<Option<i64>> = vec![None; KEYS as usize];
    let mut tick = 0u64;
    while !c.stop.exists() {
        tick += 1;
        if c.register {
            register_op(&c, &mut process, &mut sess, &mut last_read, tick).await;
        } else if tick.is_multiple_of(OBSERVE_EVERY) {
            observe_op(&c, &mut process, &mut sess).await;
        } else {
            set_op(&c, &mut process, &mut sess).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every this many operations a set process reads the whole set through the VIP: what a
/// client saw once must not vanish later ("observed then lost").
const OBSERVE_EVERY: u64 = 100;

/// Reads the whole set through the VIP, with the server that answered.
async fn observe_op(c: &Shared, process: &mut u64, sess: &mut Option<Session>) {
    let null = json!(null);
    c.rec.record(
        *process,
        OpType::Invoke,
        "observe",
        null.clone(),
        None,
        None,
    );
    let Some(s) = c.session(*process, "observe", &null, sess).await else {
        return;
    };
    match s.rows("SELECT v FROM jepsen.elements").await {
        Ok(rows) => {
            let vs: Vec<u64> = rows
                .iter()
                .filter_map(|r| r.get("v").cloned().flatten())
                .filter_map(|v| v.parse().ok())
                .collect();
            let node = server_name(s, c.id_base).await;
            c.rec
                .record(*process, OpType::Ok, "observe", json!(vs), node, None);
        }
        Err(e) => c.errored(process, "observe", null, e, sess),
    }
}

/// One unique insert, probed with `@@server_id` in the same session when acknowledged.
async fn set_op(c: &Shared, process: &mut u64, sess: &mut Option<Session>) {
    let v = json!(c.next_value.fetch_add(1, Ordering::Relaxed));
    c.rec
        .record(*process, OpType::Invoke, "add", v.clone(), None, None);
    let Some(s) = c.session(*process, "add", &v, sess).await else {
        return;
    };
    match s
        .exec(&format!("INSERT INTO jepsen.elements (v) VALUES ({v})"))
        .await
    {
        Ok(()) => {
            let node = server_name(s, c.id_base).await;
            c.rec.record(*process, OpType::Ok, "add", v, node, None);
        }
        Err(e) => c.errored(process, "add", v, e, sess),
    }
}

/// One register operation: read, write or compare-and-set on a key chosen by the tick.
async fn register_op(
    c: &Shared,
    process: &mut u64,
    sess: &mut Option<Session>,
    last_read: &mut [Option<i64>],
    tick: u64,
) {
    let (rec, next_value) = (&c.rec, &c.next_value);
    let k = (tick.wrapping_mul(7) + *process) % KEYS;
    let (f, value, sql) = match tick % 4 {
        0 | 1 => (
            "r-read",
            json!({ "k": k }),
            format!("SELECT v FROM jepsen.registers WHERE k = {k}"),
        ),
        2 => {
            let v = next_value.fetch_add(1, Ordering::Relaxed) as i64;
            (
                "r-write",
                json!({ "k": k, "v": v }),
                format!(
                    "INSERT INTO jepsen.registers (k, v) VALUES ({k}, {v}) \
                     ON DUPLICATE KEY UPDATE v = VALUES(v)"
                ),
            )
        }
        _ => match last_read[k as usize] {
            Some(from) => {
                let to = next_value.fetch_add(1, Ordering::Relaxed) as i64;
                (
                    "r-cas",
                    json!({ "k": k, "from": from, "to": to }),
                    format!("UPDATE jepsen.registers SET v = {to} WHERE k = {k} AND v = {from}"),
                )
            }
            None => (
                "r-read",
                json!({ "k": k }),
                format!("SELECT v FROM jepsen.registers WHERE k = {k}"),
            ),
        },
    };
    rec.record(*process, OpType::Invoke, f, value.clone(), None, None);
    let Some(s) = c.session(*process, f, &value, sess).await else {
        return;
    };
    let res = match f {
        "r-read" => s.rows(&sql).await.map(|rows| {
            let v: Option<i64> = rows
                .first()
                .and_then(|r| r.get("v").cloned().flatten())
                .and_then(|v| v.parse().ok());
            last_read[k as usize] = v;
            (true, json!({ "k": k, "v": v }))
        }),
        "r-write" => s.exec(&sql).await.map(|()| (true, value.clone())),
        _ => s.exec_affected(&sql).await.map(|n| (n == 1, value.clone())),
    };
    match res {
        Ok((true, v)) => rec.record(*process, OpType::Ok, f, v, None, None),
        // A compare-and-set that changed nothing certainly did not apply.
        Ok((false, v)) => rec.record(*process, OpType::Fail, f, v, None, None),
        Err(e) => c.errored(process, f, value, e, sess),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let password = Secret::new(
        std::env::var(&args.password_env)
            .with_context(|| format!("${} is not set", args.password_env))?,
    );
    let rec = Recorder::new();
    let next_value = Arc::new(AtomicU64::new(1));
    let next_process = Arc::new(AtomicU64::new(args.processes));
    let tasks: Vec<_> = (0..args.processes)
        .map(|p| {
            tokio::spawn(process_loop(
                Shared {
                    rec: rec.clone(),
                    vip: args.vip.clone(),
                    port: args.port,
                    id_base: args.id_base,
                    password: password.clone(),
                    stop: args.stop_file.clone(),
                    next_value: next_value.clone(),
                    next_process: next_process.clone(),
                    register: args.workload == "register",
                },
                p,
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    // Final reads, from every host directly.
    let reader = next_process.fetch_add(1, Ordering::Relaxed);
    for h in &args.hosts {
        let (name, ip) = h.split_once('=').context("--hosts name=ip")?;
        rec.record(
            reader,
            OpType::Invoke,
            "read",
            json!(null),
            Some(name.into()),
            None,
        );
        let r = async {
            let mut s = login(ip, args.port, &password)
                .connect(Duration::from_secs(2))
                .await?;
            s.set_timeout(Duration::from_secs(10));
            let rows = s.rows("SELECT v FROM jepsen.elements").await?;
            Ok::<Vec<u64>, MysqlError>(
                rows.iter()
                    .filter_map(|r| r.get("v").cloned().flatten())
                    .filter_map(|v| v.parse().ok())
                    .collect(),
            )
        }
        .await;
        match r {
            Ok(vs) => rec.record(
                reader,
                OpType::Ok,
                "read",
                json!(vs),
                Some(name.into()),
                None,
            ),
            Err(e) => rec.record(
                reader,
                OpType::Fail,
                "read",
                json!(null),
                Some(name.into()),
                Some(e.to_string()),
            ),
        }
    }
    write_jsonl(&args.out, &rec.ops())
}
