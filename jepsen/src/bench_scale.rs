//! Bench: one manager cluster monitoring many groups (issue #18). A lab with `--groups N`
//! (N MariaDB instances per DB host, db1 every group's master), three managers, every group
//! added; then, while nothing happens:
//! - each manager's CPU (cores, from /proc/PID/stat) and resident memory (VmRSS) over the
//!   window,
//! - Raft log entries per minute (the leader's last log index, start to end),
//! - `cluster status` latency (the observed view, as mhactl asks; and one group read live);
//!
//! and with `--kill-host`: db1 powered off under a writer per group (through its VIP, 1 s
//! connect timeout), the time until each group's new master acknowledges a write, and until
//! the last one does; `--kill-mysqlds` instead kills -9 every MariaDB of db1 while the host
//! stays up (its sockets close, its SSH answers: an OOM kill or a crash of every instance).
//! Prints figures, asserts nothing. Needs root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use mha_raft::ctl::cluster_status::build_request;
use mha_raft::ctl::AdminClient;
use mha_raft::proto::admin::ClusterStatusReply;

use crate::bench_failover::writer::{app_setup_sql, Client, Writer};
use crate::bench_failover::{history_of, step_durations};
use crate::history::wall_ms;
use crate::labctl::{add_group, lab, lab_client, lab_var, mhad_path};
use crate::scenario::sql_in;
use crate::stats::summarize;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Replication groups (instances per DB host).
    #[arg(long, default_value_t = 100)]
    groups: u32,
    /// DB hosts (servers per group).
    #[arg(long, default_value_t = 3)]
    db: u32,
    /// How long the idle window lasts.
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// `cluster status` calls timed.
    #[arg(long, default_value_t = 20)]
    status_calls: usize,
    /// Then power off db1 (every group's master) under a writer per group.
    #[arg(long, conflicts_with = "kill_mysqlds")]
    kill_host: bool,
    /// Then kill -9 every MariaDB of db1 (every group's master; the host stays up) under a
    /// writer per group.
    #[arg(long)]
    kill_mysqlds: bool,
    /// The mhad binary (default: next to this executable).
    #[arg(long)]
    mhad: Option<PathBuf>,
    /// Keep the managers' logs under DIR (as `bench failover --keep-logs`).
    #[arg(long)]
    keep_logs: Option<PathBuf>,
}

/// A process's CPU time (user + system, seconds) and resident memory (MiB), from /proc.
fn proc_usage(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15: 11th and 12th after the state.
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("VmRSS")?
        .split_whitespace()
        .next()
        .context("VmRSS value")?
        .parse()?;
    // USER_HZ is 100 on Linux.
    Ok((ticks / 100.0, rss_kb / 1024.0))
}

/// The managers' pids (m1, m2, ...), from `lab status --json`.
fn manager_pids() -> anyhow::Result<Vec<(String, u32)>> {
    let v: serde_json::Value = serde_json::from_str(&lab(&["status", "--json"])?)?;
    Ok(v["hosts"]
        .as_array()
        .context("hosts")?
        .iter()
        .filter_map(|h| {
            let pid = h["processes"]["mhad"]["pid"].as_u64()?;
            Some((h["name"].as_str()?.to_string(), pid as u32))
        })
        .collect())
}

async fn status(client: &AdminClient, live: &[String]) -> anyhow::Result<ClusterStatusReply> {
    let req = build_request(false, live);
    Ok(client
        .call(move |mut c| {
            let req = req.clone();
            async move { c.cluster_status(req).await }
        })
        .await?)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mhad = mhad_path(args.mhad.clone())?;
    let mhad_s = mhad.to_str().context("mhad path")?.to_string();
    let (groups, db) = (args.groups.to_string(), args.db.to_string());
    let t = Instant::now();
    lab(&[
        "up",
        "--groups",
        &groups,
        "--db",
        &db,
        "--semisync",
        "--mhad",
        &mhad_s,
    ])?;
    println!(
        "lab up: {} groups × {} servers in {:.0?}",
        args.groups,
        args.db,
        t.elapsed()
    );
    let res = measure(&args).await;
    if let Some(dir) = &args.keep_logs {
        if let Err(e) = crate::bench_failover::keep_logs(dir) {
            eprintln!("managers' logs not kept: {e:#}");
        }
    }
    let _ = lab(&["down"]);
    res
}

async fn measure(args: &Args) -> anyhow::Result<()> {
    let client = lab_client(Duration::from_millis(3000))?;
    let files = lab_var("MHA_LAB_GROUP_FILES")?;
    let t = Instant::now();
    for f in files.split(',') {
        let spec = mha_raft::group_file::parse(&std::fs::read_to_string(f)?)
            .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
        add_group(&client, &spec).await?;
    }
    println!("{} groups added in {:.1?}", args.groups, t.elapsed());
    // Every group monitored and PING_OK.
    let t = Instant::now();
    loop {
        let r = status(&client, &[]).await?;
        let ok = r.groups.iter().filter(|g| g.status_code == 0).count();
        if ok == args.groups as usize {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(300),
            "only {ok} of {} groups PING_OK after 5 min",
            args.groups
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("every group PING_OK after {:.1?}", t.elapsed());

    let pids = manager_pids()?;
    let leader = status(&client, &[]).await?.leader_id.context("no leader")?;
    let log_index = |r: &ClusterStatusReply| {
        r.managers
            .iter()
            .find(|m| Some(m.id) == r.leader_id)
            .and_then(|m| m.last_log_index)
            .unwrap_or(0)
    };
    let start_index = log_index(&status(&client, &[]).await?);
    let before: Vec<(f64, f64)> = pids
        .iter()
        .map(|(_, p)| proc_usage(*p))
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let window = Duration::from_secs_f64(args.minutes * 60.0);
    let mut peak_rss = vec![0f64; pids.len()];
    while t.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(5).min(window.saturating_sub(t.elapsed()))).await;
        for (i, (_, p)) in pids.iter().enumerate() {
            peak_rss[i] = peak_rss[i].max(proc_usage(*p)?.1);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let end_index = log_index(&status(&client, &[]).await?);
    println!(
        "\nidle window {:.1} min, {} groups (ping 1 s each), leader m{leader}:",
        secs / 60.0,
        args.groups
    );
    println!("MANAGER  ROLE      CPU_CORES  RSS_MIB  PEAK_RSS_MIB");
    for (i, (name, p)) in pids.iter().enumerate() {
        let (cpu, rss) = proc_usage(*p)?;
        let role = if name == &format!("m{leader}") {
            "leader"
        } else {
            "follower"
        };
        println!(
            "{name:<8} {role:<9} {:<10.3} {rss:<8.0} {:.0}",
            (cpu - before[i].0) / secs,
            peak_rss[i]
        );
    }
    let per_min = (end_index.saturating_sub(start_index)) as f64 / (secs / 60.0);
    println!(
        "Raft log entries while idle: {} ({per_min:.1}/min, {:.3}/min per group)",
        end_index.saturating_sub(start_index),
        per_min / f64::from(args.groups)
    );

    let mut took = Vec::new();
    for _ in 0..args.status_calls {
        let t = Instant::now();
        status(&client, &[]).await?;
        took.push(t.elapsed());
    }
    if let Some(s) = summarize(&took) {
        println!(
            "cluster status (observed, {} groups): median {:?}, p99 {:?} over {} calls",
            args.groups, s.median, s.p99, s.count
        );
    }
    let t = Instant::now();
    status(&client, &["lab".to_string()]).await?;
    println!(
        "cluster status --group lab (one group read now): {:?}",
        t.elapsed()
    );

    if args.kill_host {
        kill_host(&client, HostFault::PowerOff).await?;
    } else if args.kill_mysqlds {
        kill_host(&client, HostFault::KillMysqlds).await?;
    }
    Ok(())
}

/// What happens to db1, every group's master.
#[derive(Clone, Copy)]
enum HostFault {
    /// Network cut, then every process stopped (`lab poweroff`): nothing answers any more.
    PowerOff,
    /// kill -9 of every MariaDB instance; the host, its sshd and network stay up.
    KillMysqlds,
}

impl HostFault {
    fn describe(self) -> &'static str {
        match self {
            HostFault::PowerOff => "db1 (every master) powered off",
            HostFault::KillMysqlds => "every mysqld of db1 (every master) killed -9",
        }
    }
}

/// db1's fault under a writer per group: when each group's new master acknowledged its first
/// write.
async fn kill_host(client: &AdminClient, fault: HostFault) -> anyhow::Result<()> {
    let vips = lab_var("MHA_LAB_VIPS")?;
    // About 330 inserts a second in all, whatever the number of groups: 100 writers at the
    // standard client's 30 ms (durable, semi-sync commits on 300 instances) saturate this
    // 2-core lab before anything fails, and the machine's saturation is not what is measured.
    let writers_per_pace = (vips.split(',').count() as u32).div_ceil(10).max(1);
    let pace = Duration::from_millis(30) * writers_per_pace;
    let mut writers = Vec::new();
    for (i, vip) in vips.split(',').enumerate() {
        let k = i as u32 + 1;
        sql_in("db1", k, &app_setup_sql())?;
        let port = 3306 + k as u16 - 1;
        let old_id = if k == 1 { 1 } else { 10 * k + 1 };
        writers.push(Writer::start_paced(
            Client::Standard,
            (vip, port),
            old_id,
            pace,
        ));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at = wall_ms();
    match fault {
        HostFault::PowerOff => lab(&["poweroff", "db1"])?,
        HostFault::KillMysqlds => lab(&["mysqld", "kill", "db1", "--group", "all"])?,
    };
    let t = Instant::now();
    while writers.iter().any(|w| w.first_new().is_none()) && t.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let firsts: Vec<Duration> = writers
        .iter()
        .filter_map(|w| w.first_new())
        .map(|f| Duration::from_millis(f.saturating_sub(at)))
        .collect();
    let missing = writers.len() - firsts.len();
    for w in writers {
        w.finish().await;
    }
    if firsts.is_empty() {
        println!(
            "{}: no group's new master took a write within 60 s",
            fault.describe()
        );
    }
    if let Some(s) = summarize(&firsts) {
        println!(
            "{}: first write acknowledged by the new master — median group {:?}, last group \
             {:?} ({} groups{})",
            fault.describe(),
            s.median,
            s.max,
            firsts.len(),
            if missing > 0 {
                format!(", {missing} with no write within 60 s")
            } else {
                String::new()
            }
        );
    }
    phases(client, at).await;
    Ok(())
}

/// Where the time went, the median over the groups: the fault → each run's begin, then
/// each step's journaled duration.
async fn phases(client: &AdminClient, fault_ms: u64) {
    let Ok(names) = lab_var("MHA_LAB_GROUPS") else {
        return;
    };
    let mut begun = Vec::new();
    let mut steps: Vec<(String, Vec<Duration>)> = Vec::new();
    for name in names.split(',') {
        let Some(run) = history_of(client, name)
            .await
            .and_then(|h| h.into_iter().max_by_key(|r| r.id))
        else {
            continue;
        };
        begun.push(Duration::from_millis(
            run.started_at_ms.saturating_sub(fault_ms),
        ));
        for (name, d) in step_durations(&run) {
            match steps.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(d),
                None => steps.push((name, vec![d])),
            }
        }
    }
    println!("where the time goes (median over the groups):");
    if let Some(s) = summarize(&begun) {
        println!("  fault → run begun: {s}");
    }
    for (label, v) in steps {
        if let Some(s) = summarize(&v) {
            println!("  {label}: {s}");
        }
    }
}
