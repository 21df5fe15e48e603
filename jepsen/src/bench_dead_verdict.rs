//! Bench: SIGKILL the master's mysqld in the lab and time until the Dead verdict is committed
//! (visible in the replicated state), per ping setting. Between runs the master is restarted
//! and the group re-registered (a Dead verdict is terminal until a failover). Needs root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mha_raft::ctl::AdminClient;
use mha_raft::proto::admin::{ListGroupsRequest, RemoveGroupRequest};
use mha_raft::state::group::Group;

use crate::labctl::{add_group, lab, lab_transport, lab_var, mhad_path};
use crate::stats::summarize;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kills per setting.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Ping settings to measure, as interval_ms/threshold/suspect_interval_ms.
    #[arg(long, default_values_t = vec!["1000/3/200".to_string(), "200/3/200".to_string()])]
    settings: Vec<String>,
    /// The mhad binary the lab runs (default: next to this executable).
    #[arg(long)]
    mhad: Option<PathBuf>,
}

async fn group(client: &AdminClient) -> Option<Group> {
    let r = client
        .call(|mut c| async move { c.list_groups(ListGroupsRequest {}).await })
        .await
        .ok()?;
    r.groups
        .into_iter()
        .next()
        .and_then(|g| Group::try_from(g).ok())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mhad = mhad_path(args.mhad.clone())?;
    lab(&[
        "up",
        "--mode",
        "gtid",
        "--semisync",
        "--mhad",
        mhad.to_str().context("path")?,
    ])?;
    let endpoints = lab_var("MHACTL_ENDPOINTS")?;
    let group_file = lab_var("MHA_LAB_GROUP_FILE")?;
    let client = AdminClient::new(
        vec![endpoints],
        Duration::from_millis(1000),
        lab_transport()?,
    )?;
    let base = std::fs::read_to_string(&group_file)?;
    println!(
        "bench dead-verdict: lab (3 MariaDB, GTID + semi-sync, 3 managers), {} kills per setting",
        args.runs
    );
    let result = async {
        for setting in &args.settings {
            let parts: Vec<u64> = setting
                .split('/')
                .map(|p| p.parse())
                .collect::<Result<_, _>>()?;
            let [interval, threshold, suspect] = parts[..] else {
                bail!("setting {setting}: want interval/threshold/suspect")
            };
            let mut spec =
                mha_raft::group_file::parse(&base).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
            spec.ping.interval_ms = interval;
            spec.ping.failure_threshold = threshold as u32;
            spec.ping.suspect_interval_ms = suspect;
            let mut samples = Vec::new();
            for run in 1..=args.runs {
                // Fresh registration: healthy master, alive state.
                let _ = client
                    .call(|mut c| async move {
                        c.remove_group(RemoveGroupRequest { name: "lab".into() })
                            .await
                    })
                    .await;
                add_group(&client, &spec).await?;
                // Let the monitor see the master answer, then kill at a random phase of the ping
                // cycle (a fixed delay would always land just after, or just before, a ping).
                let jitter = (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .subsec_nanos() as u64)
                    % interval;
                tokio::time::sleep(Duration::from_millis(interval * 2 + jitter)).await;
                let t0 = Instant::now();
                lab(&["mysqld", "kill", "db1"])?;
                loop {
                    if let Some(g) = group(&client).await {
                        if g.health
                            .verdicts
                            .iter()
                            .any(|v| v.kind == mha_raft::model::VerdictKind::Dead)
                        {
                            break;
                        }
                    }
                    if t0.elapsed() > Duration::from_secs(60) {
                        bail!("no Dead verdict within 60 s");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let took = t0.elapsed();
                println!(
                    "{setting} run {run:>3}: Dead verdict committed after {:.0} ms",
                    took.as_secs_f64() * 1000.0
                );
                samples.push(took);
                lab(&["mysqld", "start", "db1"])?;
            }
            if let Some(s) = summarize(&samples) {
                println!("master SIGKILL -> Dead verdict committed [ping {setting}]: {s}");
            }
        }
        Ok(())
    }
    .await;
    lab(&["down"])?;
    result
}
