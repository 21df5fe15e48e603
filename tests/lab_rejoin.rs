//! `mhactl rejoin` against the lab (real MariaDB, three real mhad; GTID and file/position): the
//! old master of a completed failover or switchover back as a replica of the new one, or
//! refused with its errant transactions named when it holds any the new master lacks. Root
//! only (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use std::time::Duration;

use labkit::*;
use mha_raft::adapters::mysql::{ChangeMaster, Endpoint, ReplicaPosition, Session};

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A lab whose master db1 was failed over (kill -9) and whose mysqld is started again; the
/// new master's name.
fn failed_over(lab: &Lab) -> String {
    lab.add_group();
    lab.app_setup();
    lab.sql("db1", "INSERT INTO mha_lab.acked (id) VALUES (1), (2), (3)");
    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    lab.lab(&["mysqld", "start", "db1"]);
    run["decided"]["new_master"].as_str().unwrap().to_string()
}

/// A transaction written on db1 by hand (read_only lifted for it): one the new master never
/// got. Returns db1's gtid_binlog_pos after it, which names it.
fn write_errant(lab: &Lab) -> String {
    lab.sql(
        "db1",
        "SET GLOBAL read_only = 0; INSERT INTO mha_lab.acked (id) VALUES (99); \
         SET GLOBAL read_only = 1",
    );
    lab.sql("db1", "SELECT @@gtid_binlog_pos")
}

fn rows(lab: &Lab, host: &str) -> Option<String> {
    lab.try_sql(host, "SELECT COUNT(*) FROM mha_lab.acked")
}

/// `rejoin --yes` of db1 succeeds, pointing it at the new master `how` ("by GTID", "from
/// F:P"): read-only, a replica of `nm` in the topology, and a write on `nm` reaches it.
fn rejoins(lab: &Lab, nm: &str, how: &str) {
    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1", "--yes"]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("db1: replicating from {nm} {how}"))
            && text.contains(&format!("db1 is in the topology again, a replica of {nm}")),
        "{text}"
    );
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "1");
    let g = lab.group_json();
    assert_eq!(
        g["topology"]["servers"]["db1"]["replicates_from"], nm,
        "{g:#}"
    );
    lab.sql(nm, "INSERT INTO mha_lab.acked (id) VALUES (4)");
    wait_for("the new row on db1", WAIT, || match rows(lab, "db1") {
        Some(n) if n == "4" => Ok(()),
        n => Err(format!("{n:?}")),
    });
}

/// Checked first (nothing changed), then rejoined: read-only, replicating from the new master,
/// back in the topology, and a write on the new master reaches it.
#[test]
fn a_clean_old_master_rejoins_as_a_replica() {
    let Some(lab) = Lab::up(&[]) else { return };
    let nm = failed_over(&lab);

    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1"]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("db1: no transaction the master {nm} lacks"))
            && text.contains("checked only: add --yes to rejoin db1"),
        "{text}"
    );
    assert_eq!(
        lab.sql("db1", "SHOW SLAVE STATUS"),
        "",
        "a check changes nothing"
    );

    rejoins(&lab, &nm, "by GTID");
    let again = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1", "--yes"]);
    assert!(
        !again.status.success() && said(&again).contains("already in group lab's topology"),
        "{}",
        said(&again)
    );
}

/// A transaction written on the old master after the failover (its own, the new master never
/// got it) → refused, the GTID named, nothing changed: no replication set up, not in the
/// topology, the row still there.
#[test]
fn an_old_master_with_an_errant_transaction_is_refused() {
    let Some(lab) = Lab::up(&[]) else { return };
    let nm = failed_over(&lab);
    let errant = write_errant(&lab);
    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1", "--yes"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "db1 holds transactions the master {nm} lacks (errant)"
        )) && text.contains(errant.trim())
            && text.contains("nothing else was changed"),
        "{errant}: {text}"
    );
    assert_eq!(lab.sql("db1", "SHOW SLAVE STATUS"), "");
    assert!(lab.group_json()["topology"]["servers"].get("db1").is_none());
    assert_eq!(
        lab.sql("db1", "SELECT COUNT(*) FROM mha_lab.acked WHERE id = 99"),
        "1"
    );
}

/// The coordinates a check says the server would start from (`… point it at db2 from F:P,`).
fn would_start_from(text: &str, nm: &str) -> String {
    let at = format!("point it at {nm} from ");
    let i = text.find(&at).map(|i| i + at.len()).unwrap_or(text.len());
    text[i..].split(',').next().unwrap_or("").to_string()
}

/// File/position: the old master of a failover is checked against the journaled failover
/// point (its binlog holds only a restart's headers past it) and started at the coordinates
/// the new master took over at; a write on the new master reaches it.
#[test]
fn a_filepos_old_master_rejoins_at_the_journaled_coordinates() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    let nm = failed_over(&lab);

    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1"]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    let start = would_start_from(&text, &nm);
    assert!(
        text.contains("nothing of its own in its binlog past the failover point")
            && text.contains(&format!("{nm} took over at {start}"))
            && start.starts_with("mysql-bin."),
        "{text}"
    );
    assert_eq!(
        lab.sql("db1", "SHOW SLAVE STATUS"),
        "",
        "a check changes nothing"
    );

    rejoins(&lab, &nm, &format!("from {start}"));
}

/// File/position: a rejoin cut short after START SLAVE (its CHANGE MASTER made here by hand,
/// as it would have) leaves the old master replicating, its binlog (log_slave_updates) holding
/// the new master's transactions past the failover point. The next rejoin counts none of them
/// as errant (not its own) and keeps the position the server reached: nothing is applied
/// twice (a replay would stop its SQL thread on a duplicate key).
#[test]
fn a_filepos_rejoin_cut_short_is_finished_without_replaying() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    let nm = failed_over(&lab);
    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1"]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    let start = would_start_from(&text, &nm);
    let (file, pos) = start.split_once(':').expect("file:pos");
    let ip = |h: &str| format!("10.77.0.1{}", &h[2..]);
    let pos: u64 = pos.parse().unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let at = Endpoint {
            host: ip("db1"),
            port: 3306,
        };
        let mut s = Session::connect(&at, "mha", &lab_secret("mha"), Duration::from_secs(2))
            .await
            .unwrap();
        s.change_master(&ChangeMaster {
            host: ip(&nm),
            port: 3306,
            user: "repl".into(),
            password: lab_secret("repl"),
            position: ReplicaPosition::FilePos {
                file: file.into(),
                pos,
            },
            heartbeat_ms: None,
        })
        .await
        .unwrap();
        s.start_replica().await.unwrap();
        s.close().await;
    });
    lab.sql(&nm, "INSERT INTO mha_lab.acked (id) VALUES (5), (6)");
    wait_for("db1 to replicate 5 and 6", WAIT, || {
        match rows(&lab, "db1") {
            Some(n) if n == "5" => Ok(()),
            n => Err(format!("{n:?}")),
        }
    });

    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1", "--yes"]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("db1: already pointed at {nm}"))
            && text.contains(&format!("db1 is in the topology again, a replica of {nm}")),
        "{text}"
    );
    lab.sql(&nm, "INSERT INTO mha_lab.acked (id) VALUES (7)");
    wait_for("the new row on db1", WAIT, || match rows(&lab, "db1") {
        Some(n) if n == "6" => Ok(()),
        n => Err(format!("{n:?}")),
    });
}

/// File/position, after a switchover that left the old master out: clean at first (its final
/// position is the failover point); one transaction written on it afterwards → refused, named
/// by its binlog range and GTID, nothing changed.
#[test]
fn a_filepos_old_master_with_a_write_past_the_switch_is_refused() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    lab.add_group();
    lab.app_setup();
    lab.sql("db1", "INSERT INTO mha_lab.acked (id) VALUES (1), (2), (3)");
    let out = lab.mhactl(&["switchover", "--group", "lab", "--yes"]);
    assert!(out.status.success(), "{}", said(&out));
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let nm = run["decided"]["new_master"].as_str().unwrap().to_string();

    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1"]);
    let text = said(&out);
    assert!(
        out.status.success()
            && text.contains("nothing of its own in its binlog past the failover point"),
        "{text}"
    );

    let errant = write_errant(&lab);
    let out = lab.mhactl(&["rejoin", "--group", "lab", "--server", "db1", "--yes"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "db1 holds transactions the master {nm} lacks (errant)"
        )) && text.contains(&format!("1 transaction ({})", errant.trim()))
            && text.contains("nothing else was changed"),
        "{errant}: {text}"
    );
    assert_eq!(lab.sql("db1", "SHOW SLAVE STATUS"), "");
    assert!(lab.group_json()["topology"]["servers"].get("db1").is_none());
}

/// The group's `auto_rejoins` in `cluster status --json`.
fn auto_rejoins(lab: &Lab) -> Vec<Value> {
    let out = lab.mhactl(&["cluster", "status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["groups"][0]["auto_rejoins"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn with_auto_rejoin(lab: &Lab) {
    lab.add_group_edited(|t| t.replace("[failover]\n", "[failover]\nauto_rejoin = true\n"));
}

/// `[failover] auto_rejoin`: while the old master is down the leader only probes it
/// (unreachable); once its mysqld is started again it is rejoined with no operator, and a
/// write on the new master reaches it.
#[test]
fn a_clean_old_master_is_rejoined_automatically() {
    let Some(lab) = Lab::up(&[]) else { return };
    with_auto_rejoin(&lab);
    lab.app_setup();
    lab.sql("db1", "INSERT INTO mha_lab.acked (id) VALUES (1), (2), (3)");
    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let nm = run["decided"]["new_master"].as_str().unwrap().to_string();
    wait_for("a probe of the dead old master", WAIT, || {
        let a = auto_rejoins(&lab);
        match a.first() {
            Some(a) if a["server"] == "db1" && a["outcome"] == "unreachable" => Ok(()),
            _ => Err(format!("{a:?}")),
        }
    });
    assert!(lab.group_json()["topology"]["servers"].get("db1").is_none());

    lab.lab(&["mysqld", "start", "db1"]);
    wait_for("db1 rejoined", WAIT, || {
        let g = lab.group_json();
        match g["topology"]["servers"]["db1"]["replicates_from"].as_str() {
            Some(m) if m == nm => Ok(()),
            _ => Err(format!("{:?}", auto_rejoins(&lab))),
        }
    });
    let a = auto_rejoins(&lab);
    assert_eq!(a[0]["outcome"], "rejoined", "{a:?}");
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "1");
    lab.sql(&nm, "INSERT INTO mha_lab.acked (id) VALUES (4)");
    wait_for("the new row on db1", WAIT, || match rows(&lab, "db1") {
        Some(n) if n == "4" => Ok(()),
        n => Err(format!("{n:?}")),
    });
    let text = said(&lab.mhactl(&["cluster", "status"]));
    assert!(text.contains("auto-rejoin of db1: rejoined"), "{text}");
}

/// An old master that comes back holding a transaction the new master lacks is refused by the
/// automatic rejoin too: shown in status with the GTID, left out of the topology, its row
/// kept. Nothing is tried while the group is paused.
#[test]
fn an_old_master_with_an_errant_transaction_is_not_rejoined_automatically() {
    let Some(lab) = Lab::up(&[]) else { return };
    with_auto_rejoin(&lab);
    lab.app_setup();
    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let out = lab.mhactl(&["pause", "--group", "lab", "--reason", "db1 inspected"]);
    assert!(out.status.success(), "{}", said(&out));
    lab.lab(&["mysqld", "start", "db1"]);
    let errant = write_errant(&lab);
    // Two rounds (5 s each) while paused: no attempt on the live db1.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let a = auto_rejoins(&lab);
    assert!(
        a.iter().all(|a| a["outcome"] == "unreachable"),
        "paused: {a:?}"
    );
    let out = lab.mhactl(&["resume", "--group", "lab"]);
    assert!(out.status.success(), "{}", said(&out));
    let refused = wait_for("the automatic rejoin refused", WAIT, || {
        let a = auto_rejoins(&lab);
        match a.first() {
            Some(a) if a["outcome"] == "refused" => Ok(a.clone()),
            _ => Err(format!("{a:?}")),
        }
    });
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("(errant)") && detail.contains(errant.trim()),
        "{errant}: {refused}"
    );
    assert!(lab.group_json()["topology"]["servers"].get("db1").is_none());
    assert_eq!(lab.sql("db1", "SHOW SLAVE STATUS"), "");
    assert_eq!(
        lab.sql("db1", "SELECT COUNT(*) FROM mha_lab.acked WHERE id = 99"),
        "1"
    );
}
