//! `mhactl switchover` against the lab (real MariaDB, three real mhad): MHA's gates refuse
//! without changing anything, a switch moves the master and the VIP with the old master made a
//! replica when asked (GTID semi-sync and file/position), a failure before the new master
//! takes over rolls back, and a leader killed mid-switch leaves the run to the next leader.
//! Writers, sampled single-writer checks and loss checks under the switch are jepsen's
//! (`switchover*` scenarios). Root only (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The group added, an app table with rows 1..=3 on every server.
fn ready(lab: &Lab) {
    lab.add_group();
    lab.app_setup();
    lab.sql("db1", "INSERT INTO mha_lab.acked (id) VALUES (1), (2), (3)");
    lab.wait_converged(&["db1", "db2", "db3"]);
}

fn switchover(lab: &Lab, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["switchover", "--group", "lab"];
    args.extend_from_slice(extra);
    let out = lab.mhactl(&args);
    (out.status.success(), said(&out))
}

/// The switch and what it left: db2 the writable master holding the VIP, db1 read-only and
/// replicating from it (asked), db3 repointed, the topology saying so, writes on db2 reaching
/// everyone, the blocked-writes figure printed.
fn switch_to_db2_and_check(lab: &Lab) {
    let (ok, text) = switchover(
        lab,
        &["--new-master", "db2", "--orig-master-is-new-slave", "--yes"],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("Phase 2: Rejecting updates Phase")
            && text.contains("completed in")
            && text.contains("writes were blocked for")
            && text.contains("db1 read_only → db2 writable"),
        "{text}"
    );
    assert_eq!(lab.sql("db2", "SELECT @@read_only"), "0");
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "1");
    assert_eq!(lab.vip_holder(), "db2");
    let g = lab.group_json();
    assert_eq!(g["topology"]["master"], "db2", "{g:#}");
    assert_eq!(g["topology"]["servers"]["db1"]["replicates_from"], "db2");
    assert_eq!(g["topology"]["servers"]["db3"]["replicates_from"], "db2");
    lab.sql("db2", "INSERT INTO mha_lab.acked (id) VALUES (4)");
    let rows = lab.wait_converged(&["db1", "db2", "db3"]);
    assert_eq!(rows, (1..=4).collect(), "every server has every row");
    for h in ["db1", "db3"] {
        // Tab-separated: Master_Host is the 2nd column, Slave_IO/SQL_Running the 11th/12th.
        let st = lab.sql(h, "SHOW SLAVE STATUS");
        let cols: Vec<&str> = st.split('\t').collect();
        assert_eq!(
            (cols.get(1), cols.get(10), cols.get(11)),
            (Some(&"10.77.0.12"), Some(&"Yes"), Some(&"Yes")),
            "{h}: {st}"
        );
    }
    let run = &lab.history()["runs"][0];
    assert_eq!(run["kind"], "switchover", "{run:#}");
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    assert!(
        run["switch"]["writable_at_ms"].as_u64().is_some(),
        "{run:#}"
    );
    // A planned switch starts no anti-flap window: a later master death is failed over.
    assert_eq!(
        lab.history()["failover"]["last_completed_at_ms"],
        Value::Null
    );
    assert_eq!(lab.status_code(), 0, "PING_OK on the new master");
}

/// GTID, semi-sync: checked first (nothing changes), then switched.
#[test]
fn switchover_gtid_semisync_old_master_becomes_a_replica() {
    let Some(lab) = Lab::up(&["--semisync"]) else {
        return;
    };
    ready(&lab);
    let (ok, text) = switchover(&lab, &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("db3: replicating, 0 s behind")
            && text.contains("new master: db2")
            && text.contains("checked only, nothing changed: add --yes"),
        "{text}"
    );
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "0");
    assert_eq!(lab.history()["runs"].as_array().map(Vec::len), Some(0));
    switch_to_db2_and_check(&lab);
}

/// File/position: the replicas start on the new master at the coordinates it had once level
/// with the old one.
#[test]
fn switchover_filepos() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    ready(&lab);
    switch_to_db2_and_check(&lab);
}

/// A gate that fails refuses the switch before anything is blocked: a replica whose SQL
/// thread is stopped, then an update running on the master longer than the limit. The master
/// stays writable, no run is begun.
#[test]
fn failing_gates_refuse_and_change_nothing() {
    let Some(lab) = Lab::up(&[]) else { return };
    ready(&lab);
    // A writer on the master across every refusal: each insert must be acknowledged and the
    // master seen writable in the same statement — a refused switch blocks nothing.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let acked = std::thread::scope(|s| {
        // Stops the writer also when a refusal check panics (the scope waits for it).
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        let writer = s.spawn(|| {
            let mut acked = Vec::new();
            let mut id = 1000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let said = lab.try_sql(
                    "db1",
                    &format!("INSERT INTO mha_lab.acked (id) VALUES ({id}); SELECT @@read_only"),
                );
                assert_eq!(said.as_deref(), Some("0"), "write {id} on db1");
                acked.push(id);
                id += 1;
            }
            acked
        });
        refusals(&lab);
        drop(_stop);
        writer.join().unwrap()
    });
    assert!(acked.len() > 10, "the writer wrote {} rows", acked.len());
    let present = lab.wait_converged(&["db1", "db2", "db3"]);
    check_no_loss(&acked, &present);
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "0");
    assert_eq!(lab.history()["runs"].as_array().map(Vec::len), Some(0));
    assert_eq!(lab.group_json()["topology"]["master"], "db1");
    assert_eq!(lab.vip_holder(), "db1");
}

/// A replica's Seconds_Behind_Master (SHOW SLAVE STATUS has no table to select it from).
fn seconds_behind(lab: &Lab, host: &str) -> Option<u64> {
    let out = lab.lab(&[
        "exec",
        host,
        "--",
        "mariadb",
        "-B",
        "-e",
        "SHOW SLAVE STATUS",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let column = lines
        .next()?
        .split('\t')
        .position(|c| c == "Seconds_Behind_Master")?;
    lines.next()?.split('\t').nth(column)?.parse().ok()
}

/// MHA's gates, each failing in turn (a stopped SQL thread, a replica lagging behind, an
/// update running longer than the limit): refused, nothing changed.
fn refusals(lab: &Lab) {
    lab.sql("db3", "STOP SLAVE SQL_THREAD");
    let (ok, text) = switchover(lab, &["--yes"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("switchover refused, nothing changed")
            && text.contains("db3: replication not running (IO Yes, SQL No)"),
        "{text}"
    );
    lab.sql("db3", "START SLAVE SQL_THREAD");

    // db3 applies every event 30 s late: behind the writer's inserts by more than 1 s.
    lab.sql(
        "db3",
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 30; START SLAVE",
    );
    wait_for("db3 to lag", WAIT, || match seconds_behind(lab, "db3") {
        Some(s) if s >= 3 => Ok(()),
        other => Err(format!("Seconds_Behind_Master {other:?}")),
    });
    let (ok, text) = switchover(lab, &["--seconds-behind-master", "1", "--yes"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("switchover refused, nothing changed")
            && text.contains("s behind the master (more than 1 s)"),
        "{text}"
    );
    lab.sql(
        "db3",
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE",
    );

    // An update that holds its row for 4 s (SLEEP inside the UPDATE), in the background.
    let mut long = std::process::Command::new(lab_tool())
        .args([
            "exec",
            "db1",
            "--",
            "mariadb",
            "-e",
            "UPDATE mha_lab.acked SET id = id + SLEEP(4) * 0 WHERE id = 1",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (ok, text) = switchover(lab, &["--yes"]);
    let _ = long.wait();
    assert!(!ok, "{text}");
    assert!(
        text.contains("updates on the master db1 running longer than --running-updates-limit 1 s")
            && text.contains("(root, ")
            && text.contains("UPDATE …")
            && !text.contains("mha_lab.acked"),
        "{text}"
    );
}

/// Phase 3 fails (failpoint, as a catch-up timeout would): the switch rolls back — the old
/// master writable again with the VIP, the new master replicating from it as before — and
/// automatic failover is not blocked (nothing changed).
#[cfg(feature = "failpoints")]
#[test]
fn a_failure_before_the_new_master_takes_over_rolls_back() {
    let Some(lab) = Lab::up_with_env(&[], &[("MHAD_FAILPOINT", "fail:switch_master")]) else {
        return;
    };
    ready(&lab);
    let (ok, text) = switchover(&lab, &["--yes"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("rolled back:")
            && text.contains("db1: read_only=0, taking writes again")
            && text.contains("switch ROLLED BACK after writes were blocked for"),
        "{text}"
    );
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "0");
    assert_eq!(lab.vip_holder(), "db1");
    lab.sql("db1", "INSERT INTO mha_lab.acked (id) VALUES (5)");
    let rows = lab.wait_converged(&["db1", "db2", "db3"]);
    assert!(rows.contains(&5), "{rows:?}");
    let h = lab.history();
    assert_eq!(h["failover"]["blocked"], Value::Null, "{h:#}");
    assert!(h["runs"][0]["switch"]["rolled_back"].is_object(), "{h:#}");
    assert_eq!(lab.group_json()["topology"]["master"], "db1");
    assert_eq!(lab.status_code(), 0);
}

/// The leader SIGKILLed as phase 3 begins (writes blocked, the new master not yet writable):
/// the next leader resumes phase 3 and completes the switch.
#[cfg(feature = "failpoints")]
#[test]
fn the_next_leader_completes_a_switch_whose_leader_died() {
    let Some(lab) = Lab::up_with_env(&[], &[("MHAD_FAILPOINT", "begin:switch_master")]) else {
        return;
    };
    ready(&lab);
    let out = lab.mhactl(&["switchover", "--group", "lab", "--yes", "--wait-s", "1"]);
    let text = said(&out);
    assert!(
        text.contains("switchover run 1 of group lab started"),
        "{text}"
    );
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    assert_eq!(
        step(&run, "switch_master")["state"]["attempts"],
        2,
        "{run:#}"
    );
    let nm = run["decided"]["new_master"].as_str().unwrap().to_string();
    assert_eq!(lab.sql(&nm, "SELECT @@read_only"), "0");
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "1");
    assert_eq!(lab.vip_holder(), nm);
}
