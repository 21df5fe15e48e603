//! The named scenarios: a lab configuration, a nemesis, the workload and what the run must
//! show. scenario.rs runs them.

use mha_raft::state::journal::StepName;

#[derive(Clone, Copy, Debug)]
pub enum Nemesis {
    /// Nothing happens.
    None,
    /// kill -9 of the master's mysqld.
    KillMaster,
    /// `lab poweroff db1`: the host holding every group's master goes dark (every instance
    /// killed, its network cut).
    PoweroffMasterHost,
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
    pub fn spares_managers(&self) -> bool {
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
            | Nemesis::Switchover
            | Nemesis::PoweroffMasterHost => true,
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
    /// Replication groups in the lab (`lab up --groups N`): each with its own workload,
    /// sampler and checks; db1 holds every group's master.
    pub groups: u32,
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
        groups: 1,
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
        groups: 3,
        nemesis: Nemesis::PoweroffMasterHost,
        expect_failovers: 1,
        ..sc("multi-group-host-poweroff", "three replication groups whose masters share db1, each under its own writer; db1 powered off: every group fails over at once, each checked on its own (no acknowledged write lost, one writer at every sampled instant, its survivors converged, its journal sound)")
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
    all.push(Scenario {
        failpoint: Some("act:switch_master".into()),
        nemesis: Nemesis::Switchover,
        expect_failovers: 1,
        resumed_step: Some("switch_master".into()),
        ..sc("switchover-crash-after-takeover", "online switchover; the Raft leader SIGKILLs itself after phase 3 acted (new master writable, semi-sync on, VIP moved, writes waiting for an acknowledgement) before its end is journaled: the next leader goes forward at once and repoints the replicas")
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
