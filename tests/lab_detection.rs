//! Failure detection against the lab (real MariaDB, real network faults, three real mhad): a
//! master is declared dead only with corroboration from several managers and its replicas, the
//! verdict is committed with every vote, a master that is merely cut off from some managers or
//! briefly paused is never declared dead, and only the acting Raft leader monitors. Root only
//! (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;

/// kill -9 of the master's mysqld → exactly one Dead verdict, with votes from at least two
/// managers in distinct zones that could not reach it and the replicas' disconnected IO threads,
/// and it begins exactly one automatic failover run for its round. `check status` exits 0
/// (PING_OK) before and exactly 21 (PING_FAILED) after: the group names the managers' SSH
/// profile whose key file holds no key (`no_key`), so the file/position run stops in its configuration check having changed nothing, which blocks
/// nothing (not 51, FAILOVER_ERROR) and leaves the dead master in place (not 0 on a new one).
#[test]
fn master_kill_gives_dead_verdict_with_votes() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    lab.add_group_edited(|text| {
        text.lines()
            .map(|l| match l.strip_prefix("ssh_profile = ") {
                // The managers' profile whose key file holds no key (deploy/lab/lab).
                Some(_) => "ssh_profile = \"no_key\"\n".to_string(),
                None => format!("{l}\n"),
            })
            .collect()
    });
    wait_for("check status PING_OK (0)", WAIT, || {
        match lab.status_code() {
            0 => Ok(()),
            c => Err(c),
        }
    });

    tracing::info!("--- kill -9 db1's mysqld");
    lab.lab(&["mysqld", "kill", "db1"]);
    let h = lab.wait_health("a Dead verdict", |h| h["state"]["state"] == "dead");
    let dead = lab.verdicts("dead");
    assert_eq!(dead.len(), 1, "{h}");
    let votes = dead[0]["votes"].as_array().unwrap();
    let down: Vec<&Value> = votes.iter().filter(|v| v["reachable"] == false).collect();
    assert!(down.len() >= 2, "votes: {votes:?}");
    let zones: std::collections::BTreeSet<&str> =
        down.iter().map(|v| v["zone"].as_str().unwrap()).collect();
    assert!(zones.len() >= 2, "votes from distinct zones: {zones:?}");
    for r in ["db2", "db3"] {
        assert_ne!(dead[0]["replicas"][r]["state"], "connected", "{}", dead[0]);
    }

    tracing::info!("--- the verdict's run, and the status it leaves");
    let run = lab.wait_run_end(1);
    assert_eq!(run["kind"], "auto", "{run:#}");
    assert_eq!(run["verdict_round"], dead[0]["round"], "{run:#}");
    assert_eq!(run["state"]["state"], "failed", "{run:#}");
    let check = &step(&run, "config_check")["state"];
    assert_eq!(check["state"], "failed", "{run:#}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("needs SSH to every server"),
        "{check:#}"
    );
    assert_eq!(lab.history()["runs"].as_array().unwrap().len(), 1);
    let out = lab.mhactl(&["check", "status", "--group", "lab"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(21), "{text}");
    assert!(text.contains("(21:PING_FAILED), master:db1"), "{text}");
}

/// The `insert` ping upserts a heartbeat row in a dedicated schema on the master; the row
/// replicates like any write and its time advances with every ping; the group is PING_OK.
#[test]
fn insert_ping_writes_heartbeat() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group_with_ping("[ping]\ntype = \"insert\"\ninterval_ms = 300");
    wait_for("one heartbeat row replicated to db2", WAIT, || {
        match lab.try_sql(
            "db2",
            "SELECT COUNT(*) FROM mha_raft.heartbeat WHERE grp = 'lab'",
        ) {
            Some(n) if n == "1" => Ok(()),
            other => Err(format!("rows: {other:?}")),
        }
    });
    let heartbeat = "SELECT at FROM mha_raft.heartbeat WHERE grp = 'lab'";
    let t1 = lab.sql("db1", heartbeat);
    wait_for("the heartbeat to advance", WAIT, || {
        let t2 = lab.sql("db1", heartbeat);
        if t2 != t1 {
            Ok(())
        } else {
            Err(t2)
        }
    });
    assert_eq!(lab.status_code(), 0);
}

/// Only the leader's zone is cut off from the master (the other zones reach it): the
/// suspicion ends Unreachable-but-alive, with a vote that reached the master, never Dead; the
/// group is alive again after heal.
#[test]
fn leader_zone_cut_off_is_not_death() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    let leader = lab.leader_zone();
    lab.lab(&["partition", &leader, "--", "db1"]);
    let uba = &unreachable_but_alive(&lab);
    assert!(
        uba["votes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["reachable"] == true),
        "{uba}"
    );
    lab.lab(&["heal"]);
    lab.wait_health("alive after heal", |h| h["state"]["state"] == "alive");
    assert!(lab.verdicts("dead").is_empty());
}

/// The master is cut off from every manager but its replicas still replicate from it: the
/// verdict is Unreachable-but-alive (replica IO threads connected), never Dead.
#[test]
fn master_cut_from_managers_but_replicating_is_alive() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.lab(&["partition", "m1,m2,m3", "--", "db1"]);
    let uba = &unreachable_but_alive(&lab);
    assert!(
        uba["reason"]
            .as_str()
            .unwrap()
            .contains("replica IO thread still connected"),
        "{uba}"
    );
    lab.lab(&["heal"]);
}

/// mysqld paused for less than the detection window, then resumed: no Dead verdict during
/// several monitoring intervals after, and the group is PING_OK again.
#[test]
fn short_pause_is_not_death() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");
    lab.lab(&["mysqld", "pause", "db1"]);
    // The fault itself: a pause of 0.5 s, shorter than the detection window (not a wait).
    std::thread::sleep(Duration::from_millis(500));
    lab.lab(&["mysqld", "resume", "db1"]);
    // Proving that nothing happens takes time passing: for several monitoring intervals, no
    // Dead verdict may appear (there is no event to wait for).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        assert!(
            lab.verdicts("dead").is_empty(),
            "a short pause produced a Dead verdict"
        );
        std::thread::sleep(POLL);
    }
    lab.wait_health("alive again", |h| h["state"]["state"] == "alive");
    assert_eq!(lab.status_code(), 0);
}

/// mysqld hung (SIGSTOP): no socket closes, so the replicas' IO threads go on saying
/// "connected" until slave_net_timeout; but no heartbeat arrives for twice the period the lab
/// set (0.5 s), so each replica counts as disconnected, says why in the verdict, and the first
/// round ends Dead: no replica vetoes it (no Unreachable-but-alive round first, as when the
/// evidence waited for TCP to give up).
#[test]
fn replicas_with_stale_heartbeat_count_as_disconnected() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");
    lab.lab(&["mysqld", "pause", "db1"]);
    let dead = wait_for("a Dead verdict", WAIT, || match lab.verdicts("dead") {
        d if d.is_empty() => Err(lab.health()),
        d => Ok(d),
    });
    assert!(lab.verdicts("unreachable_but_alive").is_empty());
    for r in ["db2", "db3"] {
        let e = &dead[0]["replicas"][r];
        assert_eq!(e["state"], "disconnected", "{e}");
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.contains("IO thread says connected") && detail.contains("no heartbeat"),
            "{e}"
        );
    }
}

/// The replicas cut from the master while it lives (their IO threads still say connected:
/// slave_net_timeout is 5 s), then its mysqld killed: the leader read the replicas' pulses
/// before anything was suspect, so the round counts their silence from the last reading that
/// moved, not from its own start. Each replica's evidence spans more time than the whole round
/// took: the silence began before the round did, and the round did not wait a window for it.
#[test]
fn replicas_silent_before_the_round_count_from_their_last_reading() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");
    lab.lab(&["partition", "db1", "--", "db2,db3"]);
    // The fault itself: replicas cut for 2.5 s before the kill (not a wait for an event).
    std::thread::sleep(Duration::from_millis(2500));
    lab.lab(&["mysqld", "kill", "db1"]);
    let dead = wait_for("a Dead verdict", WAIT, || match lab.verdicts("dead") {
        d if d.is_empty() => Err(lab.health()),
        d => Ok(d),
    });
    lab.lab(&["heal"]);
    let v = &dead[0];
    let round_ms = v["at_ms"].as_u64().unwrap() - v["suspected_at_ms"].as_u64().unwrap();
    for r in ["db2", "db3"] {
        let e = &v["replicas"][r];
        assert_eq!(e["state"], "disconnected", "{e}");
        let detail = e["detail"].as_str().unwrap();
        let silent_ms: u64 = detail
            .split("arrived from the master in ")
            .nth(1)
            .and_then(|t| t.split(" ms").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no silence in {e}"));
        assert!(
            silent_ms > round_ms,
            "{r}: silence of {silent_ms} ms counted, the round took {round_ms} ms: {v}"
        );
    }
    assert!(lab.verdicts("unreachable_but_alive").is_empty());
}

/// A leader cut off from the other managers (not from the master) stops monitoring as soon
/// as its quorum lease lapses; the new leader takes over, and a master death is then judged
/// by the new leader alone.
#[test]
fn deposed_leader_stops_monitoring() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");
    let old = lab.leader_zone();
    let others: Vec<&str> = ["m1", "m2", "m3"]
        .into_iter()
        .filter(|m| *m != old)
        .collect();
    lab.lab(&["partition", &old, "--", &others.join(",")]);
    let log = format!("{}/{old}/mhad.log", lab_dir());
    wait_for("the deposed leader's monitor to stop", WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("monitor stopped") {
            Ok(())
        } else {
            Err(format!("{log} has no \"monitor stopped\""))
        }
    });
    let others_ep = others
        .iter()
        .map(|m| format!("10.77.0.2{}:7101", &m[1..]))
        .collect::<Vec<_>>()
        .join(",");
    let new = wait_for(&format!("a new leader among {others:?}"), WAIT, || {
        let out = mhactl_at(&others_ep, &["cluster", "status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        match v["leader"]["id"].as_u64() {
            Some(id) if v["has_quorum"] == true && format!("m{id}") != old => Ok(id),
            _ => Err(v),
        }
    });

    tracing::info!("--- kill -9 db1's mysqld");
    lab.lab(&["mysqld", "kill", "db1"]);
    let verdict = wait_for("a Dead verdict from the new leader", WAIT, || {
        let out = mhactl_at(&others_ep, &["group", "list", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let verdicts = v[0]["health"]["verdicts"].clone();
        verdicts
            .as_array()
            .and_then(|a| a.iter().find(|x| x["kind"] == "dead"))
            .cloned()
            .ok_or(verdicts)
    });
    assert_eq!(
        verdict["votes"][0]["manager"].as_u64(),
        Some(new),
        "{verdict}"
    );
    lab.lab(&["heal"]);
}

/// The Raft leader is killed while the master is suspect: the new leader resumes the open
/// round (restored from the replicated state) and commits exactly one verdict for it.
#[test]
fn leader_killed_while_suspect_verdict_once() {
    let Some(lab) = Lab::up(&[]) else { return };
    // A long suspect phase (12 re-probes × 200 ms) so the kill lands inside it.
    lab.add_group_with_ping("[ping]\nfailure_threshold = 12");
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");
    let leader = lab.leader_zone();
    lab.lab(&["mysqld", "kill", "db1"]);
    let h = lab.wait_health("suspect", |h| h["state"]["state"] == "suspect");
    let round = h["state"]["round"].as_u64().unwrap();
    assert!(
        lab.verdicts("dead").is_empty(),
        "verdict before the leader died: {h}"
    );
    lab.lab(&["mgr", "kill", &leader]);
    let h = lab.wait_health("a Dead verdict by the new leader", |h| {
        h["state"]["state"] == "dead"
    });
    let dead = lab.verdicts("dead");
    assert_eq!(dead.len(), 1, "{h}");
    assert_eq!(
        dead[0]["round"].as_u64(),
        Some(round),
        "the open round was finished, not restarted: {h}"
    );
    assert_ne!(lab.leader_zone(), leader);
    lab.lab(&["mgr", "start", &leader]);
}

/// A follower manager is dead when the master dies: the verdict does not wait for its vote
/// (the leader and the other follower are a majority) and says so; the failover follows.
#[test]
fn dead_managers_vote_is_not_waited_for() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");
    let leader = lab.leader_zone();
    let follower = ["m1", "m2", "m3"]
        .into_iter()
        .find(|z| *z != leader)
        .unwrap();
    lab.lab(&["mgr", "kill", follower]);
    lab.lab(&["mysqld", "kill", "db1"]);
    let h = lab.wait_health("a Dead verdict", |h| h["state"]["state"] == "dead");
    let dead = lab.verdicts("dead");
    assert_eq!(dead.len(), 1, "{h}");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("2 of 3 managers cannot reach the master")
            && reason.ends_with("1 manager(s) not heard from, not waited for: the majority was in"),
        "{reason}"
    );
    assert_eq!(dead[0]["votes"].as_array().unwrap().len(), 2, "{}", dead[0]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    lab.lab(&["mgr", "start", follower]);
}

/// Waits for an unreachable-but-alive verdict, checks that no Dead verdict came with it, and
/// returns it.
fn unreachable_but_alive(lab: &Lab) -> Value {
    let h = lab.wait_health("an unreachable-but-alive verdict", |h| {
        h["verdicts"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["kind"] == "unreachable_but_alive"))
    });
    assert!(lab.verdicts("dead").is_empty(), "{h}");
    lab.verdicts("unreachable_but_alive")[0].clone()
}
