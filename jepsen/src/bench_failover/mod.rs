//! Bench: a fault on the master under a writer that goes through the VIP, and time
//! - fault → Dead verdict reached (threshold + corroboration),
//! - fault → first write acknowledged by the new master through the VIP,
//! - manager overhead: that first acknowledged write − the Dead verdict,
//! - fault → failover run completed (replicas repointed, cleanup done),
//! - and where the time went, phase by phase (timeline.rs).
//!
//! The cases users meet (issue #15): `--client standard` writes as applications do (1 s connect
//! timeout); `--fault hung` SIGSTOPs mysqld instead of killing it; `--kill-leader-too` kills
//! the Raft leader's mhad with the master (and `--kill-followers N` more managers, e.g. with
//! `--managers 5`); `--cut-replicas-ms MS` cuts the replicas from the master that long before
//! the fault (use `--mode filepos --no-semisync`: semi-sync would stall the writer).
//!
//! With `--leader-kill-at STEP` (mhad built with `--features mha-raft/failpoints`), the Raft
//! leader SIGKILLs itself right after STEP's begin is committed, and the bench times
//! leader death (that step's begin) → run completed by the next leader.
//!
//! A fresh lab per run (3 DB hosts; GTID + lossless semi-sync unless told otherwise; 3
//! managers unless `--managers`; mutual TLS between the managers unless `--insecure`). Needs
//! root.

mod timeline;
pub(crate) mod writer;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use mha_raft::ctl::AdminClient;
use mha_raft::proto::admin::{ClusterStatusRequest, FailoverHistoryRequest};
use mha_raft::state::journal::{FailoverRun, RunState, StepState};

use self::timeline::{ClientSaw, Timeline};
use self::writer::{app_setup_sql, Client, Writer};
use crate::labctl::{add_group, lab, lab_client, lab_env, lab_var, mhad_path};
use crate::stats::summarize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL the master's mysqld (its sockets close at once).
    Kill,
    /// SIGSTOP the master's mysqld: hung, no socket closes.
    Hung,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Ping setting as interval_ms/threshold/suspect_interval_ms.
    #[arg(long, default_value = "1000/3/200")]
    setting: String,
    /// What happens to the master.
    #[arg(long, value_enum, default_value = "kill")]
    fault: Fault,
    /// How the writer connects.
    #[arg(long, value_enum, default_value = "fast")]
    client: Client,
    /// Managers in the lab.
    #[arg(long, default_value_t = 3)]
    managers: u32,
    /// Kill the Raft leader's mhad together with the master.
    #[arg(long)]
    kill_leader_too: bool,
    /// Kill this many follower managers too, with the master.
    #[arg(long, default_value_t = 0)]
    kill_followers: u32,
    /// Cut the replicas off the master (lab partition) this long before the fault.
    #[arg(long)]
    cut_replicas_ms: Option<u64>,
    /// Replication mode of the lab.
    #[arg(long, default_value = "gtid")]
    mode: String,
    /// Asynchronous replication instead of lossless semi-sync.
    #[arg(long)]
    no_semisync: bool,
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
    /// Keep each run's mhad logs under DIR/run-N/ (the lab's directory goes with `lab down`);
    /// with RUST_LOG=info,mha_raft::runtime::failover=debug,mha_raft::adapters::ssh=debug they
    /// time every journal commit, connect and SSH command of the run.
    #[arg(long)]
    keep_logs: Option<PathBuf>,
}

/// Copies every manager's log of the lab to `to` (zone host name + `.mhad.log`).
pub(crate) fn keep_logs(to: &std::path::Path) -> anyhow::Result<()> {
    let dir = PathBuf::from(lab_var("MHA_LAB_DIR")?);
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(&dir)? {
        let host = e?.path();
        let log = host.join("mhad.log");
        if log.is_file() {
            let name = host.file_name().unwrap_or_default().to_string_lossy();
            std::fs::copy(&log, to.join(format!("{name}.mhad.log")))?;
        }
    }
    Ok(())
}

pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) async fn history(client: &AdminClient) -> Option<Vec<FailoverRun>> {
    history_of(client, "lab").await
}

/// Each done step of `run`: its name (as the journal spells it) and how long it took.
pub(crate) fn step_durations(run: &FailoverRun) -> Vec<(String, Duration)> {
    run.steps
        .iter()
        .filter_map(|s| match &s.state {
            StepState::Done {
                started_at_ms,
                finished_at_ms,
                ..
            } => Some((
                serde_json::to_value(s.name)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                Duration::from_millis(finished_at_ms.saturating_sub(*started_at_ms)),
            )),
            _ => None,
        })
        .collect()
}

/// The failover history of `group`.
pub(crate) async fn history_of(client: &AdminClient, group: &str) -> Option<Vec<FailoverRun>> {
    let r = client
        .call(|mut c| async move {
            c.failover_history(FailoverHistoryRequest {
                group: group.to_string(),
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
    timeline: Timeline,
}

/// The managers to kill with the master: the leader (if asked) and `followers` others.
async fn managers_to_kill(args: &Args, client: &AdminClient) -> anyhow::Result<Vec<u64>> {
    if !args.kill_leader_too && args.kill_followers == 0 {
        return Ok(Vec::new());
    }
    let st = client
        .call(|mut c| async move {
            c.cluster_status(ClusterStatusRequest {
                local: false,
                ..Default::default()
            })
            .await
        })
        .await?;
    let leader = st.leader_id.context("no leader")?;
    let mut out = Vec::new();
    if args.kill_leader_too {
        out.push(leader);
    }
    out.extend(
        st.managers
            .iter()
            .map(|m| m.id)
            .filter(|id| *id != leader)
            .take(args.kill_followers as usize),
    );
    Ok(out)
}

/// The fault: the master's mysqld and the chosen managers, all at once (in parallel).
fn inject(fault: Fault, managers: &[u64]) -> anyhow::Result<()> {
    let db = std::thread::spawn(move || {
        lab(&[
            "mysqld",
            match fault {
                Fault::Kill => "kill",
                Fault::Hung => "pause",
            },
            "db1",
        ])
    });
    let mgrs: Vec<_> = managers
        .iter()
        .map(|id| {
            let zone = id.to_string();
            std::thread::spawn(move || lab(&["mgr", "kill", &zone]))
        })
        .collect();
    db.join().map_err(|_| anyhow::anyhow!("lab panicked"))??;
    for m in mgrs {
        m.join().map_err(|_| anyhow::anyhow!("lab panicked"))??;
    }
    Ok(())
}

async fn one_run(args: &Args, mhad: &str, ping: (u64, u32, u64)) -> anyhow::Result<Sample> {
    let fp = args.leader_kill_at.as_ref().map(|s| format!("begin:{s}"));
    let env: Vec<(&str, &str)> = fp
        .as_deref()
        .map(|f| vec![("MHAD_FAILPOINT", f)])
        .unwrap_or_default();
    let managers = args.managers.to_string();
    let mut up = vec![
        "up",
        "--mode",
        &args.mode,
        "--managers",
        &managers,
        "--mhad",
        mhad,
    ];
    if !args.no_semisync {
        up.push("--semisync");
    }
    if args.insecure {
        up.push("--insecure");
    }
    lab_env(&up, &env)?;
    let client = lab_client(Duration::from_millis(1000))?;
    let mut spec =
        mha_raft::group_file::parse(&std::fs::read_to_string(lab_var("MHA_LAB_GROUP_FILE")?)?)
            .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    (
        spec.ping.interval_ms,
        spec.ping.failure_threshold,
        spec.ping.suspect_interval_ms,
    ) = ping;
    add_group(&client, &spec).await?;
    sql_stdin("db1", &app_setup_sql())?;
    let writer = Writer::start(args.client);
    // Writes flowing and monitoring settled, then the fault at a random phase of the ping
    // cycle.
    let jitter = wall_ms() % 1000;
    tokio::time::sleep(Duration::from_millis(2500 + jitter)).await;
    let victims = managers_to_kill(args, &client).await?;
    if let Some(ms) = args.cut_replicas_ms {
        lab(&["partition", "db1", "--", "db2,db3"])?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let t0 = wall_ms();
    inject(args.fault, &victims)?;
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
        if let Some(f) = writer.first_new() {
            break Some(f);
        }
        if waited.elapsed() > Duration::from_secs(15) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let connected = writer.connected_new();
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
    let verdict = group
        .health
        .verdicts
        .iter()
        .rev()
        .find(|v| v.kind == mha_raft::model::VerdictKind::Dead)
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
            verdict.at_ms.saturating_sub(t0),
            mha_raft::ctl::journal_view::run_header(&(&run).into(), now),
            mha_raft::ctl::journal_view::steps_table(&(&run).into(), now, false)
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
    }
    let ms = |a: u64, b: u64| Duration::from_millis(a.saturating_sub(b));
    Ok(Sample {
        verdict: ms(verdict.at_ms, t0),
        first_write: first.map(|f| ms(f, t0)),
        overhead: first.map(|f| ms(f, verdict.at_ms)),
        completed: ms(at_ms, t0),
        resume,
        timeline: Timeline::of(
            t0,
            verdict.suspected_at_ms,
            verdict.at_ms,
            &run,
            ClientSaw { connected, first },
            at_ms,
        ),
    })
}

pub(crate) fn sql_stdin(host: &str, sql: &str) -> anyhow::Result<()> {
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

/// The case measured, in words.
fn describe(args: &Args) -> String {
    let mut what = vec![format!(
        "master mysqld {}",
        match args.fault {
            Fault::Kill => "SIGKILL",
            Fault::Hung => "SIGSTOP (hung)",
        }
    )];
    if args.kill_leader_too {
        what.push("the Raft leader's mhad SIGKILLed with it".into());
    }
    if args.kill_followers > 0 {
        what.push(format!(
            "{} follower mhad SIGKILLed with it",
            args.kill_followers
        ));
    }
    if let Some(ms) = args.cut_replicas_ms {
        what.push(format!("replicas cut from the master {ms} ms before"));
    }
    what.push(format!("{:?} client", args.client).to_lowercase());
    what.join(", ")
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
        "bench failover: lab (3 MariaDB, {}{}, {} managers, {}), ping {}, {} runs; {}{}",
        args.mode,
        if args.no_semisync {
            ", asynchronous"
        } else {
            " + lossless semi-sync"
        },
        args.managers,
        if args.insecure {
            "plaintext"
        } else {
            "mutual TLS"
        },
        args.setting,
        args.runs,
        describe(&args),
        args.leader_kill_at
            .as_ref()
            .map(|s| format!(", leader SIGKILLed after {s} begins"))
            .unwrap_or_default()
    );
    let mut samples = Vec::new();
    for i in 1..=args.runs {
        lab(&["down"])?;
        let r = one_run(&args, &mhad, (interval, threshold as u32, suspect)).await;
        if let Some(dir) = &args.keep_logs {
            if let Err(e) = keep_logs(&dir.join(format!("run-{i}"))) {
                println!("run {i}: logs not kept: {e}");
            }
        }
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
        if args.verbose {
            println!("  {}", s.timeline.line());
        }
        samples.push(s);
    }
    let pick = |f: &dyn Fn(&Sample) -> Option<Duration>| -> Vec<Duration> {
        samples.iter().filter_map(f).collect()
    };
    let lines: [(&str, Vec<Duration>); 5] = [
        ("fault -> Dead verdict", pick(&|s| Some(s.verdict))),
        (
            "fault -> first acknowledged write through the VIP",
            pick(&|s| s.first_write),
        ),
        (
            "manager overhead (first acked write - Dead verdict)",
            pick(&|s| s.overhead),
        ),
        (
            "fault -> failover run completed",
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
    let timelines: Vec<Timeline> = samples.into_iter().map(|s| s.timeline).collect();
    println!("where the time goes (median ms after the fault):");
    for row in timeline::breakdown(&timelines) {
        println!("{row}");
    }
    Ok(())
}
