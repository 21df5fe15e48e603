//! Bench: an online switchover (db1 → db2, the old master made a replica) under a writer that
//! goes through the VIP, and how long writes were blocked
//! - as the writer saw it: the longest gap between two acknowledged writes around the switch
//!   (the last one db1 acknowledged → the first one db2 acknowledged, normally),
//! - by the managers' clocks: phase 2's write block → read_only=0 on the new master (the
//!   run's `switch` record; the VIP follows),
//! - and where the time went, phase by phase (each step's journaled duration).
//!
//! A fresh lab per run (3 DB hosts; GTID + lossless semi-sync unless told otherwise, 3
//! managers). Prints figures, asserts nothing. Needs root.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use mha_raft::state::journal::{FailoverRun, RunState};

use crate::bench_failover::writer::{app_setup_sql, Ack, Client, Writer};
use crate::bench_failover::{history, sql_stdin, step_durations, wall_ms};
use crate::labctl::{add_group, lab, lab_client, lab_env, lab_var, mhad_path};
use crate::stats::summarize;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// How the writer connects.
    #[arg(long, value_enum, default_value = "standard")]
    client: Client,
    /// Replication mode of the lab.
    #[arg(long, default_value = "gtid")]
    mode: String,
    /// Asynchronous replication instead of lossless semi-sync.
    #[arg(long)]
    no_semisync: bool,
    #[arg(long)]
    mhad: Option<PathBuf>,
    /// Print each run's journal (step timeline).
    #[arg(long)]
    verbose: bool,
}

struct Sample {
    /// The writer's longest gap between acknowledged writes.
    gap: Duration,
    /// The managers' figure: write block → read_only=0 on the new master.
    blocked: Duration,
    /// Request → run completed.
    completed: Duration,
    /// Each step's name and duration.
    steps: Vec<(String, Duration)>,
}

/// The longest gap between consecutive acknowledged writes that spans the switch (the last
/// write before `from` through the end).
fn longest_gap(acks: &[Ack], from: u64) -> Option<Duration> {
    let start = acks.iter().rposition(|(t, _)| *t < from).unwrap_or(0);
    acks[start..]
        .windows(2)
        .map(|w| Duration::from_millis(w[1].0.saturating_sub(w[0].0)))
        .max()
}

async fn one_run(args: &Args, mhad: &str) -> anyhow::Result<Sample> {
    let mut up = vec!["up", "--mode", &args.mode, "--mhad", mhad];
    if !args.no_semisync {
        up.push("--semisync");
    }
    lab_env(&up, &[])?;
    let client = lab_client(Duration::from_millis(1000))?;
    let spec =
        mha_raft::group_file::parse(&std::fs::read_to_string(lab_var("MHA_LAB_GROUP_FILE")?)?)
            .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    add_group(&client, &spec).await?;
    sql_stdin("db1", &app_setup_sql())?;
    let writer = Writer::start(args.client);
    tokio::time::sleep(Duration::from_millis(2500 + wall_ms() % 500)).await;
    let req = crate::scenario::switch_to_db2();
    let t0 = wall_ms();
    let r = client
        .call(|mut c| {
            let req = req.clone();
            async move { c.start_switchover(req).await }
        })
        .await?;
    let run: FailoverRun = loop {
        if let Some(run) = history(&client)
            .await
            .and_then(|h| h.into_iter().find(|x| x.id == r.run_id))
            .filter(|x| x.state != RunState::Running)
        {
            break run;
        }
        if wall_ms() - t0 > 60_000 {
            bail!("the switchover did not end within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Writes on the new master for a while after the switch, then stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acks = writer.finish().await;
    let RunState::Completed { at_ms } = run.state else {
        bail!("the switchover failed: {:?}", run.state);
    };
    if !acks.iter().any(|(_, id)| *id == 2) {
        bail!("no write acknowledged by db2 after the switch");
    }
    let sw = run.switch.as_ref().context("no switch record")?;
    let blocked = Duration::from_millis(sw.blocked_ms().context("no blocked time")?);
    let steps = step_durations(&run);
    if args.verbose {
        let now = wall_ms();
        println!(
            "  {}\n{}",
            mha_raft::ctl::journal_view::run_header(&(&run).into(), now),
            mha_raft::ctl::journal_view::steps_table(&(&run).into(), now, false)
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
    }
    Ok(Sample {
        gap: longest_gap(&acks, t0).context("no writes")?,
        blocked,
        completed: Duration::from_millis(at_ms.saturating_sub(t0)),
        steps,
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mhad = mhad_path(args.mhad.clone())?;
    let mhad = mhad.to_str().context("path")?.to_string();
    println!(
        "bench switchover: lab (3 MariaDB, {}{}, 3 managers, mutual TLS), db1 → db2 with the old \
         master made a replica, {:?} client through the VIP, {} runs",
        args.mode,
        if args.no_semisync {
            ", asynchronous"
        } else {
            " + lossless semi-sync"
        },
        args.client,
        args.runs
    );
    let mut samples = Vec::new();
    for i in 1..=args.runs {
        lab(&["down"])?;
        let r = one_run(&args, &mhad).await;
        lab(&["down"])?;
        let s = r?;
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        println!(
            "run {i:>3}: writer's longest gap {} | blocked (managers' clocks) {} | run completed {} | {}",
            ms(s.gap),
            ms(s.blocked),
            ms(s.completed),
            s.steps
                .iter()
                .map(|(n, d)| format!("{n} {}", ms(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        samples.push(s);
    }
    let lines: [(&str, Vec<Duration>); 3] = [
        (
            "writes blocked, as the writer saw it (longest gap between acknowledged writes)",
            samples.iter().map(|s| s.gap).collect(),
        ),
        (
            "writes blocked, by the managers' clocks (phase 2 → read_only=0 on the new master)",
            samples.iter().map(|s| s.blocked).collect(),
        ),
        (
            "request → switchover run completed",
            samples.iter().map(|s| s.completed).collect(),
        ),
    ];
    for (what, v) in lines {
        if let Some(s) = summarize(&v) {
            println!("{what}: {s}");
        }
    }
    println!("where the time goes (median per phase):");
    let names: Vec<String> = samples
        .first()
        .map(|s| s.steps.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    for name in names {
        let v: Vec<Duration> = samples
            .iter()
            .filter_map(|s| s.steps.iter().find(|(n, _)| *n == name).map(|(_, d)| *d))
            .collect();
        if let Some(s) = summarize(&v) {
            println!("  {name}: {s}");
        }
    }
    Ok(())
}
