//! Runs a named scenario (catalog.rs: a lab configuration, a nemesis, the workload, and the
//! pass criteria). One run = a fresh lab, a group, the set workload in the client host through the VIP, a sampler,
//! the nemesis, heal, final reads, then the checkers. Everything lands in the run's store
//! directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mha_raft::ctl::AdminClient;
use mha_raft::proto::admin::{
    ClusterStatusRequest, FailoverHistoryRequest, ListGroupsRequest, SwitchOptions,
    SwitchoverRequest,
};
use mha_raft::secret::Secret;
use mha_raft::state::group::Group;
use mha_raft::state::journal::FailoverRun;
use serde::Serialize;

use crate::catalog::Scenario;
use crate::checker::{self, Check};
use crate::history::{read_jsonl, wall_ms, write_jsonl, Op};
use crate::labctl::{add_group, lab, lab_env, lab_transport, lab_var};
use crate::leadership;
use crate::sampler::Sampler;

#[derive(Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub about: String,
    pub passed: bool,
    pub started_ms: u64,
    pub took_ms: u64,
    pub checks: Vec<Check>,
    pub store: String,
    pub error: Option<String>,
}

#[derive(Serialize)]
struct NemesisEvent {
    time_ms: u64,
    f: String,
    value: String,
}

pub(crate) struct Ctx {
    client: AdminClient,
    dir: PathBuf,
    nemesis_log: Vec<NemesisEvent>,
    /// The Raft leader the nemesis cut off from data hosts it needs: it must not act the steps.
    pub(crate) blind_leader: Option<u64>,
}

impl Ctx {
    pub(crate) fn nemesis(&mut self, f: &str, value: &str) -> anyhow::Result<()> {
        self.nemesis_log.push(NemesisEvent {
            time_ms: wall_ms(),
            f: f.into(),
            value: value.into(),
        });
        println!("  nemesis: {f} {value}");
        Ok(())
    }

    pub(crate) async fn runs(&self, group: &str) -> Vec<FailoverRun> {
        self.answered_runs(group).await.unwrap_or_default()
    }

    /// The group's runs, None when no leader answered.
    async fn answered_runs(&self, group: &str) -> Option<Vec<FailoverRun>> {
        let r = self
            .client
            .call(|mut c| async move {
                c.failover_history(FailoverHistoryRequest {
                    group: group.into(),
                })
                .await
            })
            .await;
        r.ok().and_then(|r| {
            r.runs
                .into_iter()
                .map(FailoverRun::try_from)
                .collect::<Result<_, _>>()
                .ok()
        })
    }

    /// The group as the leader has it (a node that was cut off may still be catching up).
    async fn group(&self, name: &str) -> anyhow::Result<Group> {
        let st = self
            .client
            .call(|mut c| async move {
                c.cluster_status(ClusterStatusRequest {
                    local: false,
                    ..Default::default()
                })
                .await
            })
            .await?;
        let leader = st.leader_id.context("no leader")?;
        let addr = st
            .managers
            .iter()
            .find(|m| m.id == leader)
            .map(|m| m.addr.clone())
            .context("leader address")?;
        let r = AdminClient::new(vec![addr], Duration::from_millis(1500), lab_transport()?)?
            .call(|mut c| async move { c.list_groups(ListGroupsRequest {}).await })
            .await?;
        Ok(Group::try_from(
            r.groups
                .into_iter()
                .find(|g| g.spec.as_ref().is_some_and(|s| s.name == name))
                .with_context(|| format!("no group {name}"))?,
        )?)
    }

    /// `mhactl switchover --group lab --new-master db2 --orig-master-is-new-slave --yes`.
    pub(crate) async fn switchover(&self) -> anyhow::Result<()> {
        let req = switch_to_db2();
        let r = self
            .client
            .call(|mut c| {
                let req = req.clone();
                async move { c.start_switchover(req).await }
            })
            .await;
        match r {
            Ok(r) => println!("  switchover run {} begun", r.run_id),
            // A leader that dies right after the begin (the crash scenarios) may not answer:
            // the run is there all the same, for the next leader to finish.
            Err(e) => {
                println!("  switchover call failed ({e}): looking for the run");
                let c = self;
                wait_for(
                    "the switchover run",
                    Duration::from_secs(30),
                    || async move { !c.runs("lab").await.is_empty() },
                )
                .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn leader_zone(&self) -> anyhow::Result<String> {
        let r = self
            .client
            .call(|mut c| async move {
                c.cluster_status(ClusterStatusRequest {
                    local: false,
                    ..Default::default()
                })
                .await
            })
            .await?;
        let leader = r.leader_id.context("no leader")?;
        Ok(format!("m{leader}"))
    }
}

/// The manager id of a lab zone ("m2" -> 2).
pub(crate) fn zone_id(zone: &str) -> Option<u64> {
    zone.strip_prefix('m').and_then(|n| n.parse().ok())
}

/// SQL as root on instance `k` of `host` (the lab's group k).
pub(crate) fn sql_in(host: &str, k: u32, text: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/lab/lab");
    let mut child = std::process::Command::new(tool)
        .args([
            "exec",
            host,
            "--group",
            &k.to_string(),
            "--",
            "mariadb",
            "-N",
            "-B",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("SQL on {host} failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(crate) async fn wait_for<F, Fut>(what: &str, limit: Duration, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

const DBS: [(&str, &str); 3] = [
    ("db1", "10.77.0.11"),
    ("db2", "10.77.0.12"),
    ("db3", "10.77.0.13"),
];

/// Runs one scenario with a fresh lab; the lab is torn down afterwards whatever happens.
pub async fn run(sc: &Scenario, mhad: &Path, store: &Path) -> Outcome {
    let started_ms = wall_ms();
    let t = Instant::now();
    let dir = store.join(format!("{}-{started_ms}", sc.name));
    let res = async {
        std::fs::create_dir_all(&dir)?;
        let checks = run_inner(sc, mhad, &dir).await;
        let _ = collect_logs(&dir);
        checks
    }
    .await;
    let _ = lab(&["down"]);
    let (checks, error) = match res {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let safety_failed = checks.iter().any(|c| !c.valid && !c.informational);
    let passed = if sc.must_fail {
        error.is_none() && safety_failed
    } else {
        error.is_none() && !safety_failed
    };
    let outcome = Outcome {
        scenario: sc.name.clone(),
        about: sc.about.clone(),
        passed,
        started_ms,
        took_ms: t.elapsed().as_millis() as u64,
        checks,
        store: dir.display().to_string(),
        error,
    };
    let _ = std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&outcome).unwrap_or_default(),
    );
    if let Err(e) = crate::report::write(&dir) {
        println!("  (report not drawn: {e})");
    }
    outcome
}

fn collect_logs(dir: &Path) -> anyhow::Result<()> {
    let lab_dir = lab_var("MHA_LAB_DIR")?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    for h in ["m1", "m2", "m3"] {
        let _ = std::fs::copy(
            format!("{lab_dir}/{h}/mhad.log"),
            logs.join(format!("{h}-mhad.log")),
        );
    }
    for (h, _) in DBS {
        let _ = std::fs::copy(
            format!("{lab_dir}/{h}/log/error.log"),
            logs.join(format!("{h}-error.log")),
        );
    }
    Ok(())
}

/// One replication group of a scenario's lab: its workload in the client host, its sampler,
/// its files in the run's directory (group `lab` under the plain names the report reads).
pub(crate) struct GroupRun {
    pub(crate) id: GroupId,
    worker: tokio::process::Child,
    sampler: Sampler,
}

/// Group `k` of the lab, by number and name.
pub(crate) struct GroupId {
    k: u32,
    pub(crate) name: String,
}

impl GroupId {
    fn file(&self, dir: &Path, base: &str, ext: &str) -> PathBuf {
        if self.k == 1 {
            dir.join(format!("{base}.{ext}"))
        } else {
            dir.join(format!("{base}-{}.{ext}", self.name))
        }
    }
}

async fn run_inner(sc: &Scenario, mhad: &Path, dir: &Path) -> anyhow::Result<Vec<Check>> {
    let mhad_s = mhad.to_str().context("mhad path")?;
    let mode = if sc.filepos { "filepos" } else { "gtid" };
    let groups_arg = sc.groups.to_string();
    let mut up = vec![
        "up",
        "--mode",
        mode,
        "--mhad",
        mhad_s,
        "--groups",
        &groups_arg,
    ];
    if sc.semisync {
        up.push("--semisync");
    }
    if let Some(s) = sc.skew {
        up.extend(["--skew", s]);
    }
    let env: Vec<(&str, &str)> = sc
        .failpoint
        .as_deref()
        .map(|f| vec![("MHAD_FAILPOINT", f)])
        .unwrap_or_default();
    lab_env(&up, &env)?;
    let endpoints = lab_var("MHACTL_ENDPOINTS")?;
    let client = AdminClient::new(
        endpoints.split(',').map(String::from).collect(),
        Duration::from_millis(1500),
        lab_transport()?,
    )?;
    let names = lab_var("MHA_LAB_GROUPS")?;
    let files = lab_var("MHA_LAB_GROUP_FILES")?;
    let vips = lab_var("MHA_LAB_VIPS")?;
    let stop_file = dir.join("stop");
    let mut runs = Vec::new();
    for (i, ((name, file), vip)) in names
        .split(',')
        .zip(files.split(','))
        .zip(vips.split(','))
        .enumerate()
    {
        let k = i as u32 + 1;
        let spec = std::fs::read_to_string(file)?;
        let spec = mha_raft::group_file::parse(&spec).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
        add_group(&client, &spec).await?;
        runs.push(start_group(k, name, vip, &endpoints, &stop_file, dir, sc).await?);
    }
    let mut ctx = Ctx {
        client,
        dir: dir.to_path_buf(),
        nemesis_log: Vec::new(),
        blind_leader: None,
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let nemesis_result = crate::nemesis::run(&mut ctx, sc, &runs).await;
    let _ = lab(&["heal"]);
    ctx.nemesis("heal", "all")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::fs::write(&stop_file, b"stop")?;
    let mut finished = Vec::new();
    for GroupRun {
        id,
        worker,
        sampler,
    } in runs
    {
        let out = tokio::time::timeout(Duration::from_secs(60), worker.wait_with_output()).await;
        let samples = sampler.finish().await;
        write_jsonl(&id.file(dir, "samples", "jsonl"), &samples)?;
        finished.push((id, out, samples));
    }
    write_jsonl(&ctx.dir.join("nemesis.jsonl"), &ctx.nemesis_log)?;
    nemesis_result?;
    // The final reads go through the leader. A partition that cut a manager off from the
    // leader leaves it with a higher term, which costs an election once healed: wait for it
    // (the scenario judges the failover, not how fast the managers settle after heal).
    {
        let c = &ctx;
        wait_for(
            "a leader after heal",
            Duration::from_secs(30),
            || async move { c.leader_zone().await.is_ok() },
        )
        .await?;
    }
    let several = finished.len() > 1;
    let mut checks = Vec::new();
    for (g, out, samples) in finished {
        match out {
            Ok(Ok(o)) if o.status.success() => {}
            other => bail!("the worker of {} did not finish cleanly: {other:?}", g.name),
        }
        let mut group_checks = check_group(&ctx, sc, &g, &samples).await?;
        if several {
            for c in &mut group_checks {
                c.name = format!("{}: {}", g.name, c.name);
            }
        }
        checks.extend(group_checks);
    }
    Ok(checks)
}

/// Group `k`'s application schema and user, its workload (a worker in the client host through
/// its VIP) and its sampler.
async fn start_group(
    k: u32,
    name: &str,
    vip: &str,
    endpoints: &str,
    stop_file: &Path,
    dir: &Path,
    sc: &Scenario,
) -> anyhow::Result<GroupRun> {
    let port = 3306 + k as u16 - 1;
    let app_pw = format!("jepsen-{}", wall_ms());
    sql_in(
        "db1",
        k,
        &format!(
            "CREATE DATABASE jepsen; CREATE TABLE jepsen.elements (v BIGINT PRIMARY KEY); \
             CREATE TABLE jepsen.registers (k INT PRIMARY KEY, v BIGINT NOT NULL); \
             CREATE USER 'app'@'10.77.0.%' IDENTIFIED BY '{app_pw}'; \
             GRANT INSERT, SELECT, UPDATE ON jepsen.* TO 'app'@'10.77.0.%';"
        ),
    )?;
    for (h, _) in &DBS[1..] {
        wait_for(
            "the table on the replicas",
            Duration::from_secs(30),
            || async { sql_in(h, k, "SELECT COUNT(*) FROM jepsen.elements").is_ok() },
        )
        .await?;
    }
    let mha_pw =
        Secret::new(std::fs::read_to_string(lab_var("MHA_LAB_MHA_PASSWORD_FILE")?)?.trim());
    let sampler = Sampler::start(
        DBS.iter()
            .map(|(n, ip)| (n.to_string(), ip.to_string()))
            .collect(),
        endpoints.split(',').map(String::from).collect(),
        lab_transport()?,
        (vip.to_string(), port),
        mha_pw,
    );
    let hosts = DBS
        .iter()
        .map(|(n, ip)| format!("{n}={ip}"))
        .collect::<Vec<_>>()
        .join(",");
    let id = GroupId {
        k,
        name: name.to_string(),
    };
    let id_base = if k == 1 { 0 } else { 10 * u64::from(k) };
    let worker = tokio::process::Command::new("ip")
        .args(["netns", "exec", "mhalab-client"])
        .arg(std::env::current_exe()?)
        .args(["worker", "--hosts", &hosts, "--stop-file"])
        .arg(stop_file)
        .arg("--out")
        .arg(id.file(dir, "history", "jsonl"))
        .args(["--workload", sc.workload, "--vip", vip])
        .args([
            "--port",
            &port.to_string(),
            "--id-base",
            &id_base.to_string(),
        ])
        .env("JEPSEN_APP_PASSWORD", &app_pw)
        .kill_on_drop(true)
        .spawn()
        .context("start the worker in the client host")?;
    Ok(GroupRun {
        id,
        worker,
        sampler,
    })
}

/// A group's checks once its workload ended: its history, its journal, its survivors.
async fn check_group(
    ctx: &Ctx,
    sc: &Scenario,
    g: &GroupId,
    samples: &[crate::sampler::Sample],
) -> anyhow::Result<Vec<Check>> {
    let history: Vec<Op> = read_jsonl(&g.file(&ctx.dir, "history", "jsonl"))?;
    // A heal can cost one more election after the leader answered above: ask until one
    // answers again (an unanswered history must not read as "no run").
    let (group, runs) = {
        let start = Instant::now();
        loop {
            match (ctx.group(&g.name).await, ctx.answered_runs(&g.name).await) {
                (Ok(gr), Some(runs)) => break (gr, runs),
                (Err(e), _) if start.elapsed() > Duration::from_secs(30) => return Err(e),
                (_, None) if start.elapsed() > Duration::from_secs(30) => {
                    bail!("no leader answered the failover history after heal")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    };
    std::fs::write(
        g.file(&ctx.dir, "journal", "json"),
        serde_json::to_string_pretty(&runs)?,
    )?;
    let survivors: Vec<String> = group.topology.servers.keys().cloned().collect();
    // Survivors converge once replication caught up: poll their checksums.
    let start = Instant::now();
    let sums: BTreeMap<String, Option<String>> = loop {
        let sums: BTreeMap<String, Option<String>> = survivors
            .iter()
            .map(|h| {
                let sum = sql_in(h, g.k, "CHECKSUM TABLE jepsen.elements, jepsen.registers").ok();
                (h.clone(), sum.map(|x| x.replace('\n', "; ")))
            })
            .collect();
        let distinct: std::collections::BTreeSet<_> = sums.values().collect();
        if distinct.len() == 1 && !distinct.contains(&None)
            || start.elapsed() > Duration::from_secs(30)
        {
            break sums;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut checks = vec![
        checker::no_lost_writes(&history, &group.topology.master),
        checker::observed_then_lost(&history, &group.topology.master),
        checker::single_writer_probe(&history),
        checker::single_writer_sampler(samples),
        checker::converged(&sums),
        checker::journal_sound(&runs),
        checker::failovers_expected(&runs, sc.expect_failovers),
    ];
    if sc.loss_allowed {
        checks[0].informational = true;
        checks[1].informational = true;
    }
    if let Some(step) = &sc.resumed_step {
        checks.push(checker::resumed(&runs, step));
    }
    if sc.workload == "register" {
        checks.push(checker::registers_linearizable(&history));
    }
    // Writers and nemeses on the DB hosts, every manager spared: the soak for the Raft timings
    // (a failpoint build's managers kill or freeze themselves).
    if sc.nemesis.spares_managers() && sc.failpoint.is_none() {
        checks.push(leadership::leadership_stable(samples));
    }
    if let Some(blind) = ctx.blind_leader {
        checks.push(checker::acted_elsewhere(&runs, blind));
    }
    Ok(checks)
}

/// `mhactl switchover --group lab --new-master db2 --orig-master-is-new-slave --yes`, MHA's
/// limits left at their defaults.
pub fn switch_to_db2() -> SwitchoverRequest {
    SwitchoverRequest {
        group: "lab".into(),
        options: Some(SwitchOptions {
            new_master: Some("db2".into()),
            orig_master_is_new_slave: true,
            ..Default::default()
        }),
        check_only: false,
    }
}
