//! Bench: SIGKILL the master's mysqld under a writer that goes through the VIP, and time
//! - kill → Dead verdict reached (threshold + corroboration),
//! - kill → first write acknowledged by the new master through the VIP,
//! - manager overhead: that first acknowledged write − the Dead verdict,
//! - kill → failover run completed (replicas repointed, cleanup done).
//!
//! With `--leader-kill-at STEP` (mhad built with `--features mha-raft/failpoints`), the Raft
//! leader SIGKILLs itself right after STEP's begin is committed, and the bench times
//! leader death (that step's begin) → run completed by the next leader.
//!
//! A fresh lab per run (GTID + lossless semi-sync, 3 DB hosts, 3 managers; mutual TLS between
//! the managers unless `--insecure`). Needs root.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use mha_raft::adapters::mysql::{Endpoint, Login};
use mha_raft::ctl::AdminClient;
use mha_raft::proto::admin::FailoverHistoryRequest;
use mha_raft::secret::Secret;
use mha_raft::state::journal::{FailoverRun, RunState, StepState};

use crate::labctl::{add_group, lab, lab_env, lab_transport, lab_var, mhad_path};
use crate::stats::summarize;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Ping setting as interval_ms/threshold/suspect_interval_ms.
    #[arg(long, default_value = "1000/3/200")]
    setting: String,
    /// Kill the Raft leader right after this step begins (needs a failpoints build of mhad),
    /// e.g. promote_new_master.
    #[arg(long)]
    leader_kill_at: Option<String>,
    #[arg(long)]
    mhad: Option<PathBuf>,
    /// Print each run's journal (step timeline).
    #[arg(long)]
    verbose: bool,
    /// Managers without TLS (plaintext), to measure what mutual TLS costs.
    #[arg(long)]
    insecure: bool,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const APP_PW: &str = "bench-app-pass";

/// Writes through the VIP; records the wall time of the first write acknowledged by a server
/// other than the old master (server_id 1) after `armed`.
struct Writer {
    stop: Arc<AtomicBool>,
    first_new: Arc<Mutex<Option<u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start() -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let first_new = Arc::new(Mutex::new(None));
        let (s, f) = (stop.clone(), first_new.clone());
        let task = tokio::spawn(async move {
            let login = Login {
                endpoint: Endpoint {
                    host: "10.77.0.100".into(),
                    port: 3306,
                },
                user: "app".into(),
                password: Secret::new(APP_PW),
            };
            let mut next = 1u64;
            let mut sess = None;
            let mut server_id = 0u32;
            while !s.load(Ordering::Relaxed) {
                if sess.is_none() {
                    // A client that retries fast: a connect to the VIP in this LAN takes well
                    // under a millisecond, so a SYN that went to the old holder's MAC is given
                    // up after 50 ms rather than waiting for TCP's 1 s retransmission.
                    match login.connect(Duration::from_millis(50)).await {
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
                    Ok(()) if server_id != 1 && server_id != 0 => {
                        let mut g = f.lock().expect("lock");
                        if g.is_none() {
                            *g = Some(wall_ms());
                        }
                    }
                    Ok(()) => {}
                    Err(_) => sess = None,
                }
            }
        });
        Writer {
            stop,
            first_new,
            task,
        }
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

async fn history(client: &AdminClient) -> Option<Vec<FailoverRun>> {
    let r = client
        .call(|mut c| async move {
            c.failover_history(FailoverHistoryRequest {
                group: "lab".into(),
            })
            .await
        })
        .await
        .ok()?;
    r.runs
        .into_iter()
        .map(FailoverRun::try_from)
        .collect::<Result<_, _>>()
        .ok()
}

struct Sample {
    verdict: Duration,
    first_write: Option<Duration>,
    overhead: Option<Duration>,
    completed: Duration,
    resume: Option<Duration>,
}

async fn one_run(args: &Args, mhad: &str, ping: (u64, u32, u64)) -> anyhow::Result<Sample> {
    let fp = args.leader_kill_at.as_ref().map(|s| format!("begin:{s}"));
    let env: Vec<(&str, &str)> = fp
        .as_deref()
        .map(|f| vec![("MHAD_FAILPOINT", f)])
        .unwrap_or_default();
    let mut up = vec!["up", "--mode", "gtid", "--semisync", "--mhad", mhad];
    if args.insecure {
        up.push("--insecure");
    }
    lab_env(&up, &env)?;
    let client = AdminClient::new(
        vec![lab_var("MHACTL_ENDPOINTS")?],
        Duration::from_millis(1000),
        lab_transport()?,
    )?;
    let mut spec =
        mha_raft::group_file::parse(&std::fs::read_to_string(lab_var("MHA_LAB_GROUP_FILE")?)?)
            .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    (
        spec.ping.interval_ms,
        spec.ping.failure_threshold,
        spec.ping.suspect_interval_ms,
    ) = ping;
    add_group(&client, &spec).await?;
    sql_stdin(
        "db1",
        &format!(
            "CREATE USER 'app'@'10.77.0.%' IDENTIFIED BY '{APP_PW}'; \
             GRANT INSERT ON mha_lab.* TO 'app'@'10.77.0.%'; \
             CREATE TABLE mha_lab.bench (id BIGINT PRIMARY KEY)"
        ),
    )?;
    let writer = Writer::start();
    // Writes flowing and monitoring settled, then kill at a random phase of the ping cycle.
    let jitter = wall_ms() % 1000;
    tokio::time::sleep(Duration::from_millis(2500 + jitter)).await;
    let t0 = wall_ms();
    lab(&["mysqld", "kill", "db1"])?;
    let run = loop {
        if let Some(r) = history(&client)
            .await
            .and_then(|h| h.into_iter().next())
            .filter(|r| r.state != RunState::Running)
        {
            break r;
        }
        if wall_ms() - t0 > 120_000 {
            bail!("no completed failover within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The first write through the VIP may come after the run completed (the run's last steps
    // do not hold it up): wait for it, bounded.
    let waited = Instant::now();
    let first = loop {
        if let Some(f) = *writer.first_new.lock().expect("lock") {
            break Some(f);
        }
        if waited.elapsed() > Duration::from_secs(15) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    writer.finish().await;
    let RunState::Completed { at_ms } = run.state else {
        bail!("failover run failed: {:?}", run.state);
    };
    let g = client
        .call(|mut c| async move {
            c.list_groups(mha_raft::proto::admin::ListGroupsRequest {})
                .await
        })
        .await?;
    let group =
        mha_raft::state::group::Group::try_from(g.groups.into_iter().next().context("group")?)?;
    let verdict_at = group
        .health
        .verdicts
        .iter()
        .rev()
        .find(|v| v.kind == mha_raft::model::VerdictKind::Dead)
        .map(|v| v.at_ms)
        .context("no dead verdict")?;
    let resume = args.leader_kill_at.as_ref().and_then(|name| {
        run.steps
            .iter()
            .find(|s| {
                serde_json::to_value(s.name)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    == Some(name.clone())
            })
            .and_then(|s| match s.state {
                StepState::Done { started_at_ms, .. } => {
                    Some(Duration::from_millis(at_ms.saturating_sub(started_at_ms)))
                }
                _ => None,
            })
    });
    if args.verbose {
        let now = wall_ms();
        println!(
            "  verdict at +{} ms; {}\n{}",
            verdict_at.saturating_sub(t0),
            mha_raft::ctl::journal_view::run_header(&(&run).into(), now),
            mha_raft::ctl::journal_view::steps_table(&(&run).into(), now, false)
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
    }
    let ms = |a: u64, b: u64| Duration::from_millis(a.saturating_sub(b));
    Ok(Sample {
        verdict: ms(verdict_at, t0),
        first_write: first.map(|f| ms(f, t0)),
        overhead: first.map(|f| ms(f, verdict_at)),
        completed: ms(at_ms, t0),
        resume,
    })
}

fn sql_stdin(host: &str, sql: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/lab/lab");
    let mut child = std::process::Command::new(tool)
        .args(["exec", host, "--", "mariadb"])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(sql.as_bytes())?;
    if !child.wait()?.success() {
        bail!("SQL on {host} failed");
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mhad = mhad_path(args.mhad.clone())?;
    let mhad = mhad.to_str().context("path")?.to_string();
    let parts: Vec<u64> = args
        .setting
        .split('/')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()?;
    let [interval, threshold, suspect] = parts[..] else {
        bail!("setting {}: want interval/threshold/suspect", args.setting)
    };
    println!(
        "bench failover: lab (3 MariaDB, GTID + lossless semi-sync, 3 managers, {}), ping {}, {} runs{}",
        if args.insecure { "plaintext" } else { "mutual TLS" },
        args.setting,
        args.runs,
        args.leader_kill_at
            .as_ref()
            .map(|s| format!(", leader SIGKILLed after {s} begins"))
            .unwrap_or_default()
    );
    let mut samples = Vec::new();
    for i in 1..=args.runs {
        lab(&["down"])?;
        let r = one_run(&args, &mhad, (interval, threshold as u32, suspect)).await;
        lab(&["down"])?;
        let s = r?;
        let o = |d: Option<Duration>| {
            d.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "run {i:>3}: verdict {} | first acked write via VIP {} | overhead {} | run completed {}{}",
            o(Some(s.verdict)),
            o(s.first_write),
            o(s.overhead),
            o(Some(s.completed)),
            s.resume
                .map(|r| format!(" | leader kill -> completed {}", o(Some(r))))
                .unwrap_or_default()
        );
        samples.push(s);
    }
    let pick = |f: &dyn Fn(&Sample) -> Option<Duration>| -> Vec<Duration> {
        samples.iter().filter_map(f).collect()
    };
    let lines: [(&str, Vec<Duration>); 5] = [
        ("master SIGKILL -> Dead verdict", pick(&|s| Some(s.verdict))),
        (
            "master SIGKILL -> first acknowledged write through the VIP",
            pick(&|s| s.first_write),
        ),
        (
            "manager overhead (first acked write - Dead verdict)",
            pick(&|s| s.overhead),
        ),
        (
            "master SIGKILL -> failover run completed",
            pick(&|s| Some(s.completed)),
        ),
        (
            "leader SIGKILL mid-failover -> run completed",
            pick(&|s| s.resume),
        ),
    ];
    for (what, v) in lines {
        if let Some(s) = summarize(&v) {
            println!("{what} [ping {}]: {s}", args.setting);
        }
    }
    Ok(())
}
