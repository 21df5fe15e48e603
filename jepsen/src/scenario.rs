//! Named scenarios: a lab configuration, a nemesis, the workload, and the pass criteria. One
//! run = a fresh lab, a group, the set workload in the client host through the VIP, a sampler,
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
use mha_raft::state::journal::{FailoverRun, RunState, StepName};
use serde::Serialize;

use crate::checker::{self, Check};
use crate::history::{read_jsonl, wall_ms, write_jsonl, Op};
use crate::labctl::{add_group, lab, lab_env, lab_transport, lab_var};
use crate::leadership;
use crate::sampler::Sampler;

#[derive(Clone, Copy, Debug)]
pub enum Nemesis {
    /// Nothing happens.
    None,
    /// kill -9 of the master's mysqld.
    KillMaster,
    /// SIGSTOP the master's mysqld for this long, then SIGCONT.
    PauseMaster { ms: u64 },
    /// Cut the Raft leader's zone from the master (the other zones still reach it).
    PartitionLeaderZone { ms: u64 },
    /// Cut the master from the managers and the replicas; clients still reach it.
    IsolateMasterKeepClients,
    /// Cut the Raft leader's zone from the other managers (a minority leader), then kill the
    /// master: the majority elects a leader that fails over; the old one must not act.
    MinorityLeaderThenKillMaster,
    /// Kill the master; the leader freezes mid-failover (failpoint `pause:`); once the next
    /// leader finished the run, the frozen one is resumed (SIGCONT): a zombie that must not act.
    ZombieLeader,
    /// Random packet loss on the master's links for a while.
    FlakyMaster { loss: &'static str, ms: u64 },
    /// Added latency (the lab's delaying proxy) on new connections to the master's ports.
    SlowMaster { delay_ms: &'static str, ms: u64 },
    /// db3's IO thread stopped (it lags), then both replicas cut from the master while the
    /// writes go on (only the master's binlog has them), then the master's mysqld killed.
    LaggingReplicasThenKillMaster { ms: u64 },
    /// The Raft leader's zone cut from every DB host (it keeps its quorum: the other managers
    /// still reach it), then the master killed: a manager that sees the hosts acts the steps.
    BlindLeaderThenKillMaster,
    /// As BlindLeaderThenKillMaster; the delegate freezes (failpoint `delegate-pause:`) and is
    /// resumed (SIGCONT) once the run is over.
    BlindLeaderZombieDelegate,
    /// A split view: the leader's zone and the master on one side, the third zone and both
    /// replicas on the other, the second zone seeing both; then the master killed.
    SplitViewThenKillMaster,
    /// File/position, async: db3's IO thread stopped, then the master cut from the leader's
    /// zone and from the replicas while the writes go on (only its binlog has them), then its
    /// mysqld killed (host up): a manager that reaches the host saves the binlog.
    LeaderCutFromMasterHostThenKill { ms: u64 },
    /// An online switchover to db2 with the old master made its replica, while the writes
    /// go on (`mhactl switchover --new-master db2 --orig-master-is-new-slave --yes`).
    Switchover,
    /// The switchover; right after it began, the Raft leader's zone cut from the other
    /// managers: the majority's leader ends the run, the minority one must not act.
    SwitchoverMinorityLeader,
    /// The switchover; the leader freezes (failpoint `pause:`) as a step begins and is
    /// resumed (SIGCONT) once the next leader ended the run: a zombie that must not act.
    SwitchoverZombieLeader,
}

impl Nemesis {
    /// Whether the nemesis leaves every manager running and connected to the others (it may
    /// cut managers from DB hosts): then no election has a reason to happen.
    fn spares_managers(&self) -> bool {
        match self {
            Nemesis::None
            | Nemesis::KillMaster
            | Nemesis::PauseMaster { .. }
            | Nemesis::PartitionLeaderZone { .. }
            | Nemesis::IsolateMasterKeepClients
            | Nemesis::FlakyMaster { .. }
            | Nemesis::SlowMaster { .. }
            | Nemesis::LaggingReplicasThenKillMaster { .. }
            | Nemesis::BlindLeaderThenKillMaster
            | Nemesis::LeaderCutFromMasterHostThenKill { .. }
            | Nemesis::Switchover => true,
            // Cut a manager from another, freeze one, or (failpoints) kill one.
            Nemesis::MinorityLeaderThenKillMaster
            | Nemesis::ZombieLeader
            | Nemesis::BlindLeaderZombieDelegate
            | Nemesis::SplitViewThenKillMaster
            | Nemesis::SwitchoverMinorityLeader
            | Nemesis::SwitchoverZombieLeader => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub about: String,
    pub semisync: bool,
    /// Binlog file/position replication instead of GTID.
    pub filepos: bool,
    /// Managers' wall clocks off (`lab up --skew`, faketime), e.g. "2=+90,3=-90".
    pub skew: Option<&'static str>,
    /// MHAD_FAILPOINT for every manager (test-only build).
    pub failpoint: Option<String>,
    pub nemesis: Nemesis,
    pub expect_failovers: usize,
    /// Lost acknowledged writes are reported but do not fail the scenario (async replication
    /// promises nothing else).
    pub loss_allowed: bool,
    /// The step a killed leader's successor must have re-checked.
    pub resumed_step: Option<String>,
    /// The red gate: the scenario passes only if a safety checker FAILS.
    pub must_fail: bool,
    /// The client workload: set (unique inserts) or register (read / write / cas per key,
    /// checked for linearizability).
    pub workload: &'static str,
}

pub fn all() -> Vec<Scenario> {
    let base = Scenario {
        name: String::new(),
        about: String::new(),
        semisync: true,
        filepos: false,
        skew: None,
        failpoint: None,
        nemesis: Nemesis::None,
        expect_failovers: 0,
        loss_allowed: false,
        resumed_step: None,
        must_fail: false,
        workload: "set",
    };
    let sc = |name: &str, about: &str| Scenario {
        name: name.into(),
        about: about.into(),
        ..base.clone()
    };
    let mut all = vec![
        sc("baseline", "no fault: no failover, nothing lost, one writer"),
        Scenario {
            nemesis: Nemesis::KillMaster,
            expect_failovers: 1,
            ..sc("master-crash", "kill -9 the master's mysqld (lossless semi-sync AFTER_SYNC, 24 h timeout): one failover, no acknowledged write lost")
        },
        Scenario {
            semisync: false,
            nemesis: Nemesis::KillMaster,
            expect_failovers: 1,
            loss_allowed: true,
            ..sc("master-crash-async", "kill -9 the master's mysqld with MariaDB's defaults (async): one failover; acknowledged writes the replicas had not received are lost (reported, allowed)")
        },
        Scenario {
            nemesis: Nemesis::PartitionLeaderZone { ms: 6000 },
            ..sc("corroboration", "the leader's zone cut from the master for 6 s: the other zones reach it, no failover")
        },
        Scenario {
            nemesis: Nemesis::PauseMaster { ms: 700 },
            ..sc("pause-short", "mysqld paused 0.7 s (half the detection window): no failover")
        },
        Scenario {
            nemesis: Nemesis::PauseMaster { ms: 12000 },
            expect_failovers: 1,
            ..sc("pause-long", "mysqld paused 12 s (the replicas give up on it): one failover; the hung mysqld is stopped over SSH (stopssh) and never writes again")
        },
        Scenario {
            nemesis: Nemesis::FlakyMaster { loss: "0.1", ms: 8000 },
            ..sc("flaky-master-network", "10% packet loss on the master's links for 8 s: no failover, nothing lost")
        },
        Scenario {
            nemesis: Nemesis::IsolateMasterKeepClients,
            expect_failovers: 1,
            ..sc("isolated-master", "the master cut from managers and replicas, clients still connected: it is powered off (STONITH) before a new master accepts writes")
        },
        Scenario {
            nemesis: Nemesis::MinorityLeaderThenKillMaster,
            expect_failovers: 1,
            ..sc("minority-leader-master-crash", "the Raft leader cut off from the other managers, then the master killed: the majority's leader fails over, the minority leader does nothing")
        },
        Scenario {
            failpoint: Some("pause:promote_new_master".into()),
            nemesis: Nemesis::ZombieLeader,
            expect_failovers: 1,
            resumed_step: Some("promote_new_master".into()),
            ..sc("zombie-leader", "the master killed; the leader frozen (SIGSTOP) right after phase 3.5 begins, resumed after the next leader finished: the zombie acts on nothing")
        },
    ];
    all.push(Scenario {
        nemesis: Nemesis::KillMaster,
        expect_failovers: 1,
        workload: "register",
        ..sc("register-master-crash", "read / write / compare-and-set registers through the VIP while the master is killed (lossless semi-sync): every key's history linearizable across the failover")
    });
    for step in StepName::ALL {
        let name = serde_json::to_value(step)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        // Phase 3.4 only runs in file/position groups (GTID runs skip it from the start).
        let filepos = step == StepName::GenerateDiffs;
        all.push(Scenario {
            filepos,
            semisync: !filepos,
            failpoint: Some(format!("begin:{name}")),
            nemesis: Nemesis::KillMaster,
            expect_failovers: 1,
            resumed_step: Some(name.clone()),
            ..sc(
                &format!("crash-at-{}", name.replace('_', "-")),
                &format!(
                    "the master killed; the Raft leader SIGKILLs itself right after \"{}\" begins: the next leader finishes the run",
                    step.phase()
                ),
            )
        });
    }
    all.push(Scenario {
        nemesis: Nemesis::SlowMaster {
            delay_ms: "300",
            ms: 8000,
        },
        ..sc("slow-master-network", "300 ms added to every new connection to the master's MySQL, SSH and manager ports for 8 s: no failover, nothing lost")
    });
    all.push(Scenario {
        skew: Some("2=+90,3=-90"),
        nemesis: Nemesis::KillMaster,
        expect_failovers: 1,
        ..sc("clock-skew-master-crash", "managers' wall clocks off by +90 s and -90 s (faketime), then the master killed: one failover, nothing lost (log entries carry the leader's time, timers are monotonic)")
    });
    all.push(Scenario {
        semisync: false,
        filepos: true,
        nemesis: Nemesis::LaggingReplicasThenKillMaster { ms: 1500 },
        expect_failovers: 1,
        ..sc("lagging-replicas-filepos", "binlog file/position, async: db3's IO thread stopped, then both replicas cut from the master while writes go on, then mysqld killed (its host up): relay-log diffs and the binlog saved over SSH lose no acknowledged write")
    });
    all.push(Scenario {
        nemesis: Nemesis::BlindLeaderThenKillMaster,
        expect_failovers: 1,
        ..sc("blind-leader-master-crash", "the Raft leader's zone cut from every DB host (its quorum intact), then the master killed: one failover, its steps acted by a manager that sees the hosts, nothing lost")
    });
    all.push(Scenario {
        failpoint: Some("delegate:promote_new_master".into()),
        nemesis: Nemesis::BlindLeaderThenKillMaster,
        expect_failovers: 1,
        resumed_step: Some("promote_new_master".into()),
        ..sc("blind-leader-delegate-crash", "the leader's zone blind to the DB hosts, the master killed, and the manager the leader delegated to SIGKILLs itself as it starts phase 3.5: the leader gives the step to the third manager, which finishes the run")
    });
    all.push(Scenario {
        failpoint: Some("delegate-pause:fence".into()),
        nemesis: Nemesis::BlindLeaderZombieDelegate,
        expect_failovers: 1,
        resumed_step: Some("fence".into()),
        ..sc("blind-leader-zombie-delegate", "the leader's zone blind to the DB hosts, the master killed; the manager the leader delegated phase 2 to freezes (SIGSTOP) as it starts, the leader gives the step to the third manager, and the frozen one is resumed after the run completed: it acts on nothing")
    });
    all.push(Scenario {
        nemesis: Nemesis::SplitViewThenKillMaster,
        expect_failovers: 1,
        ..sc("split-view-master-crash", "{leader zone, master} -- {third zone, replicas}, the second zone sees both; then the master killed: one failover acted from the zone that sees everything, nothing lost")
    });
    all.push(Scenario {
        semisync: false,
        filepos: true,
        nemesis: Nemesis::LeaderCutFromMasterHostThenKill { ms: 1500 },
        expect_failovers: 1,
        ..sc("leader-cut-from-master-host-filepos", "binlog file/position, async: db3 lagging, the master cut from the leader's zone and the replicas while writes go on, then mysqld killed: a manager that reaches the master's host saves its binlog; no acknowledged write lost")
    });
    all.push(Scenario {
        nemesis: Nemesis::Switchover,
        expect_failovers: 1,
        ..sc("switchover", "online switchover db1 → db2 under the writer (lossless semi-sync), the old master made a replica: one writable master at every sampled instant, no acknowledged write lost, every server converged")
    });
    all.push(Scenario {
        semisync: false,
        filepos: true,
        nemesis: Nemesis::Switchover,
        expect_failovers: 1,
        ..sc("switchover-filepos", "online switchover in a binlog file/position group (async) under the writer: the new master waits for the old one's final position, so even async loses no acknowledged write")
    });
    all.push(Scenario {
        nemesis: Nemesis::SwitchoverMinorityLeader,
        expect_failovers: 1,
        ..sc("switchover-minority-leader", "online switchover; as it begins, the Raft leader cut from the other managers: the majority's leader finishes the run, the minority leader acts on nothing, nothing lost")
    });
    all.push(Scenario {
        failpoint: Some("pause:switch_master".into()),
        nemesis: Nemesis::SwitchoverZombieLeader,
        expect_failovers: 1,
        resumed_step: Some("switch_master".into()),
        ..sc("switchover-zombie-leader", "online switchover; the leader frozen (SIGSTOP) as phase 3 begins, writes blocked and its global read lock held, resumed after the next leader finished: the lock is released by the next leader, the zombie acts on nothing")
    });
    for step in StepName::SWITCHOVER {
        let name = serde_json::to_value(step)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        all.push(Scenario {
            failpoint: Some(format!("begin:{name}")),
            nemesis: Nemesis::Switchover,
            expect_failovers: 1,
            resumed_step: Some(name.clone()),
            ..sc(
                &format!("switchover-crash-at-{}", name.replace('_', "-")),
                &format!(
                    "online switchover; the Raft leader SIGKILLs itself right after \"{}\" begins: the next leader finishes the switch",
                    step.phase()
                ),
            )
        });
    }
    all.push(Scenario {
        semisync: false,
        failpoint: Some("break:fence".into()),
        nemesis: Nemesis::IsolateMasterKeepClients,
        expect_failovers: 1,
        must_fail: true,
        ..sc("red-gate-no-fencing", "RED GATE: a build with fencing skipped, async, master isolated from managers and replicas but not from clients: the checkers must fail")
    });
    all
}

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

struct Ctx {
    client: AdminClient,
    dir: PathBuf,
    nemesis_log: Vec<NemesisEvent>,
    /// The Raft leader the nemesis cut off from data hosts it needs: it must not act the steps.
    blind_leader: Option<u64>,
}

impl Ctx {
    fn nemesis(&mut self, f: &str, value: &str) -> anyhow::Result<()> {
        self.nemesis_log.push(NemesisEvent {
            time_ms: wall_ms(),
            f: f.into(),
            value: value.into(),
        });
        println!("  nemesis: {f} {value}");
        Ok(())
    }

    async fn runs(&self) -> Vec<FailoverRun> {
        let r = self
            .client
            .call(|mut c| async move {
                c.failover_history(FailoverHistoryRequest {
                    group: "lab".into(),
                })
                .await
            })
            .await;
        r.ok()
            .and_then(|r| {
                r.runs
                    .into_iter()
                    .map(FailoverRun::try_from)
                    .collect::<Result<_, _>>()
                    .ok()
            })
            .unwrap_or_default()
    }

    /// The group as the leader has it (a node that was cut off may still be catching up).
    async fn group(&self) -> anyhow::Result<Group> {
        let st = self
            .client
            .call(|mut c| async move {
                c.cluster_status(ClusterStatusRequest { local: false })
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
            r.groups.into_iter().next().context("no group")?,
        )?)
    }

    /// `mhactl switchover --group lab --new-master db2 --orig-master-is-new-slave --yes`.
    async fn switchover(&self) -> anyhow::Result<()> {
        let req = SwitchoverRequest {
            group: "lab".into(),
            options: Some(SwitchOptions {
                new_master: Some("db2".into()),
                orig_master_is_new_slave: true,
                running_updates_limit_s: 1,
                skip_lock_all_tables: false,
            }),
            check_only: false,
        };
        let r = self
            .client
            .call(|mut c| {
                let req = req.clone();
                async move { c.start_switchover(req).await }
            })
            .await?;
        println!("  switchover run {} begun", r.run_id);
        Ok(())
    }

    async fn leader_zone(&self) -> anyhow::Result<String> {
        let r = self
            .client
            .call(|mut c| async move {
                c.cluster_status(ClusterStatusRequest { local: false })
                    .await
            })
            .await?;
        let leader = r.leader_id.context("no leader")?;
        Ok(format!("m{leader}"))
    }
}

/// The manager id of a lab zone ("m2" -> 2).
fn zone_id(zone: &str) -> Option<u64> {
    zone.strip_prefix('m').and_then(|n| n.parse().ok())
}

fn sql(host: &str, text: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/lab/lab");
    let mut child = std::process::Command::new(tool)
        .args(["exec", host, "--", "mariadb", "-N", "-B"])
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

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut f: F) -> anyhow::Result<()>
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

async fn run_inner(sc: &Scenario, mhad: &Path, dir: &Path) -> anyhow::Result<Vec<Check>> {
    let mhad_s = mhad.to_str().context("mhad path")?;
    let mode = if sc.filepos { "filepos" } else { "gtid" };
    let mut up = vec!["up", "--mode", mode, "--mhad", mhad_s];
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
    let spec = std::fs::read_to_string(lab_var("MHA_LAB_GROUP_FILE")?)?;
    let spec = mha_raft::group_file::parse(&spec).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    add_group(&client, &spec).await?;
    let app_pw = format!("jepsen-{}", wall_ms());
    sql(
        "db1",
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
            || async { sql(h, "SELECT COUNT(*) FROM jepsen.elements").is_ok() },
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
        "10.77.0.100".into(),
        mha_pw,
    );
    let stop_file = dir.join("stop");
    let history_file = dir.join("history.jsonl");
    let hosts = DBS
        .iter()
        .map(|(n, ip)| format!("{n}={ip}"))
        .collect::<Vec<_>>()
        .join(",");
    let worker = tokio::process::Command::new("ip")
        .args(["netns", "exec", "mhalab-client"])
        .arg(std::env::current_exe()?)
        .args(["worker", "--hosts", &hosts, "--stop-file"])
        .arg(&stop_file)
        .arg("--out")
        .arg(&history_file)
        .args(["--workload", sc.workload])
        .env("JEPSEN_APP_PASSWORD", &app_pw)
        .kill_on_drop(true)
        .spawn()
        .context("start the worker in the client host")?;
    let mut ctx = Ctx {
        client,
        dir: dir.to_path_buf(),
        nemesis_log: Vec::new(),
        blind_leader: None,
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let nemesis_result = nemesis(&mut ctx, sc).await;
    let _ = lab(&["heal"]);
    ctx.nemesis("heal", "all")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::fs::write(&stop_file, b"stop")?;
    let out = tokio::time::timeout(Duration::from_secs(60), worker.wait_with_output()).await;
    let samples = sampler.finish().await;
    write_jsonl(&ctx.dir.join("samples.jsonl"), &samples)?;
    write_jsonl(&ctx.dir.join("nemesis.jsonl"), &ctx.nemesis_log)?;
    nemesis_result?;
    match out {
        Ok(Ok(o)) if o.status.success() => {}
        other => bail!("the worker did not finish cleanly: {other:?}"),
    }
    let history: Vec<Op> = read_jsonl(&history_file)?;
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
    let runs = ctx.runs().await;
    std::fs::write(
        ctx.dir.join("journal.json"),
        serde_json::to_string_pretty(&runs)?,
    )?;
    let group = ctx.group().await?;
    let survivors: Vec<String> = group.topology.servers.keys().cloned().collect();
    // Survivors converge once replication caught up: poll their checksums.
    let start = Instant::now();
    let sums: BTreeMap<String, Option<String>> = loop {
        let sums: BTreeMap<String, Option<String>> = survivors
            .iter()
            .map(|h| {
                let sum = sql(h, "CHECKSUM TABLE jepsen.elements, jepsen.registers").ok();
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
        checker::single_writer_sampler(&samples),
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
        checks.push(leadership::leadership_stable(&samples));
    }
    if let Some(blind) = ctx.blind_leader {
        checks.push(checker::acted_elsewhere(&runs, blind));
    }
    Ok(checks)
}

async fn nemesis(ctx: &mut Ctx, sc: &Scenario) -> anyhow::Result<()> {
    match sc.nemesis {
        Nemesis::None => {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Nemesis::KillMaster => {
            ctx.nemesis("kill-mysqld", "db1")?;
            lab(&["mysqld", "kill", "db1"])?;
        }
        Nemesis::PauseMaster { ms } => {
            ctx.nemesis("pause-mysqld", "db1")?;
            lab(&["mysqld", "pause", "db1"])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ctx.nemesis("resume-mysqld", "db1")?;
            // It may have been stopped by then (stopssh): resuming a dead process is no fault.
            let _ = lab(&["mysqld", "resume", "db1"]);
        }
        Nemesis::PartitionLeaderZone { ms } => {
            let z = ctx.leader_zone().await?;
            ctx.nemesis("partition", &format!("{z} -- db1"))?;
            lab(&["partition", &z, "--", "db1"])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Nemesis::IsolateMasterKeepClients => {
            ctx.nemesis("partition", "db1 -- m1,m2,m3,db2,db3 (client connected)")?;
            lab(&["partition", "db1", "--", "m1,m2,m3,db2,db3"])?;
        }
        Nemesis::MinorityLeaderThenKillMaster => {
            let z = ctx.leader_zone().await?;
            let others: Vec<&str> = ["m1", "m2", "m3"].into_iter().filter(|m| *m != z).collect();
            let others = others.join(",");
            ctx.nemesis("partition", &format!("{z} -- {others}"))?;
            lab(&["partition", &z, "--", &others])?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            ctx.nemesis("kill-mysqld", "db1")?;
            lab(&["mysqld", "kill", "db1"])?;
        }
        Nemesis::ZombieLeader => {
            ctx.nemesis(
                "kill-mysqld",
                "db1 (the leader freezes after phase 3.5 begins)",
            )?;
            lab(&["mysqld", "kill", "db1"])?;
        }
        Nemesis::SlowMaster { delay_ms, ms } => {
            ctx.nemesis("degrade", &format!("db1 --delay {delay_ms}"))?;
            lab(&["degrade", "db1", "--delay", delay_ms])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Nemesis::LaggingReplicasThenKillMaster { ms } => {
            ctx.nemesis("stop-io-thread", "db3")?;
            lab(&["exec", "db3", "--", "mariadb", "-e", "STOP SLAVE IO_THREAD"])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ctx.nemesis("partition", "db1 -- db2,db3 (replicas cut from the master)")?;
            lab(&["partition", "db1", "--", "db2,db3"])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ctx.nemesis("kill-mysqld", "db1")?;
            lab(&["mysqld", "kill", "db1"])?;
        }
        Nemesis::BlindLeaderThenKillMaster | Nemesis::BlindLeaderZombieDelegate => {
            let z = ctx.leader_zone().await?;
            ctx.blind_leader = zone_id(&z);
            ctx.nemesis(
                "partition",
                &format!("{z} -- db1,db2,db3 (the leader's zone blind)"),
            )?;
            lab(&["partition", &z, "--", "db1,db2,db3"])?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            ctx.nemesis("kill-mysqld", "db1")?;
            lab(&["mysqld", "kill", "db1"])?;
        }
        Nemesis::SplitViewThenKillMaster => {
            let z = ctx.leader_zone().await?;
            let others: Vec<&str> = ["m1", "m2", "m3"].into_iter().filter(|m| *m != z).collect();
            // others[0] sees both sides; others[1] sits with the replicas.
            let (left, right) = (format!("{z},db1"), format!("{},db2,db3", others[1]));
            ctx.blind_leader = zone_id(&z);
            ctx.nemesis(
                "partition",
                &format!("{left} -- {right} ({} sees both)", others[0]),
            )?;
            lab(&["partition", &left, "--", &right])?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            ctx.nemesis("kill-mysqld", "db1")?;
            lab(&["mysqld", "kill", "db1"])?;
        }
        Nemesis::LeaderCutFromMasterHostThenKill { ms } => {
            let z = ctx.leader_zone().await?;
            ctx.blind_leader = zone_id(&z);
            ctx.nemesis("stop-io-thread", "db3")?;
            lab(&["exec", "db3", "--", "mariadb", "-e", "STOP SLAVE IO_THREAD"])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let right = format!("{z},db2,db3");
            ctx.nemesis(
                "partition",
                &format!("db1 -- {right} (clients still reach db1)"),
            )?;
            lab(&["partition", "db1", "--", &right])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ctx.nemesis("kill-mysqld", "db1")?;
            lab(&["mysqld", "kill", "db1"])?;
        }
        Nemesis::Switchover | Nemesis::SwitchoverZombieLeader => {
            ctx.nemesis("switchover", "db1 → db2, the old master made a replica")?;
            ctx.switchover().await?;
        }
        Nemesis::SwitchoverMinorityLeader => {
            let z = ctx.leader_zone().await?;
            ctx.nemesis("switchover", "db1 → db2, the old master made a replica")?;
            ctx.switchover().await?;
            let others: Vec<&str> = ["m1", "m2", "m3"].into_iter().filter(|m| *m != z).collect();
            let others = others.join(",");
            ctx.nemesis("partition", &format!("{z} -- {others}"))?;
            lab(&["partition", &z, "--", &others])?;
        }
        Nemesis::FlakyMaster { loss, ms } => {
            ctx.nemesis("degrade", &format!("db1 --loss {loss}"))?;
            lab(&["degrade", "db1", "--loss", loss])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    if sc.expect_failovers > 0 {
        let c = &*ctx;
        wait_for(
            "the failover to end",
            Duration::from_secs(120),
            || async move { c.runs().await.iter().any(|r| r.state != RunState::Running) },
        )
        .await?;
        ctx.nemesis("observed", "failover run ended")?;
        if matches!(
            sc.nemesis,
            Nemesis::ZombieLeader
                | Nemesis::BlindLeaderZombieDelegate
                | Nemesis::SwitchoverZombieLeader
        ) {
            // Wake the frozen leader (SIGCONT to every zone: a no-op for the running ones) and
            // give it time to do whatever it would do.
            ctx.nemesis("resume-managers", "m1,m2,m3 (SIGCONT)")?;
            for z in ["1", "2", "3"] {
                let _ = lab(&["mgr", "resume", z]);
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    } else {
        // Long enough for a wrong verdict to turn into a run.
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    Ok(())
}
