//! The scenario's faults (catalog.rs's Nemesis), acted on the lab, each logged with its time;
//! then, when the scenario expects a failover, the wait for every group's run to end.

use std::time::Duration;

use mha_raft::state::journal::RunState;

use crate::catalog::{Nemesis, Scenario};
use crate::labctl::lab;
use crate::scenario::{wait_for, zone_id, Ctx, GroupRun};

pub async fn run(ctx: &mut Ctx, sc: &Scenario, groups: &[GroupRun]) -> anyhow::Result<()> {
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
        Nemesis::PoweroffMasterHost => {
            ctx.nemesis("poweroff", "db1 (the master of every group)")?;
            lab(&["poweroff", "db1"])?;
        }
        Nemesis::FlakyMaster { loss, ms } => {
            ctx.nemesis("degrade", &format!("db1 --loss {loss}"))?;
            lab(&["degrade", "db1", "--loss", loss])?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    if sc.expect_failovers > 0 {
        let c = &*ctx;
        for g in groups {
            let name = g.id.name.as_str();
            wait_for(
                &format!("the failover of {name} to end"),
                Duration::from_secs(120),
                || async move {
                    c.runs(name)
                        .await
                        .iter()
                        .any(|r| r.state != RunState::Running)
                },
            )
            .await?;
        }
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
