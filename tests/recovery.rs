//! Binlog recovery against the lab: relay-log diffs and binlog salvage with real MariaDB
//! (binlog file/position and GTID replication, asynchronous), real sshd and three real mhad. A
//! lagging replica is brought level from the latest replica's relay logs, and what no replica
//! received is saved from the dead master's binlog over SSH; the work files this leaves on the
//! DB hosts are private (0600), removed once the run completed and kept (the journal says
//! where) for a replica that could not be recovered; a leader killed right after an apply is
//! replaced by one that applies nothing twice; MHA's master_ip_failover_script is called with
//! MHA's arguments. Root only (the lab), one lab at a time.

mod labkit;

use std::collections::BTreeSet;

use labkit::*;

/// How the dead master's host ends the scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MasterEnd {
    /// mysqld killed, the host (sshd) still up: its binlog can be saved.
    MysqldKilled,
    /// The whole host gone (powered off, network cut): nothing can be saved.
    HostGone,
}

impl Lab {
    fn insert(&self, ids: std::ops::RangeInclusive<i64>) {
        let sql: String = ids
            .map(|i| format!("INSERT INTO mha_lab.acked (id) VALUES ({i});\n"))
            .collect();
        self.sql("db1", &sql);
    }

    fn wait_rows(&self, host: &str, n: usize) {
        wait_for(&format!("{n} rows on {host}"), WAIT, || {
            let c = self.try_sql(host, "SELECT COUNT(*) FROM mha_lab.acked");
            if c.as_deref().and_then(|c| c.parse::<usize>().ok()) == Some(n) {
                Ok(())
            } else {
                Err(format!("{c:?}"))
            }
        })
    }

    /// MHA's test: rows 1..=20 everywhere; db3's IO thread stopped, rows 21..=40 reach db2 only;
    /// both replicas cut from the master, rows 41..=60 are only in the master's binlog; then
    /// the master dies as `end` says.
    fn lagging_replica_then_master_dies(&self, end: MasterEnd) {
        self.insert(1..=20);
        self.wait_converged(&["db1", "db2", "db3"]);
        self.sql("db3", "STOP SLAVE IO_THREAD");
        self.insert(21..=40);
        self.wait_rows("db2", 40);
        self.lab(&["partition", "db1", "--", "db2,db3"]);
        self.insert(41..=60);
        match end {
            MasterEnd::MysqldKilled => self.lab(&["mysqld", "kill", "db1"]),
            MasterEnd::HostGone => self.lab(&["poweroff", "db1"]),
        };
    }
}

fn range(a: i64, b: i64) -> BTreeSet<i64> {
    (a..=b).collect()
}

/// File/position replication, asynchronous: the lagging db3 gets rows 21..=40 from db2's relay
/// logs and 41..=60 from the dead master's binlog, saved over SSH; the new master gets 41..=60;
/// every committed row is on both survivors and their checksums match; the journal says what
/// was saved and what each diff held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filepos_lagging_replica_and_salvaged_binlog() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    lab.clear_work_files();
    lab.add_group();
    lab.app_setup();
    lab.lagging_replica_then_master_dies(MasterEnd::MysqldKilled);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let saved = step(&run, "save_master_binlog")["state"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(saved.contains("saved 20 transactions"), "{saved}");
    // The run completed: phase 5 removed every work file (salvage copies, diffs, replayed
    // files) from the survivors, and says so.
    let cleanup = step(&run, "new_master_cleanup")["state"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cleanup.contains("work files removed: /var/tmp/mha-raft-lab-run1-* on db2, db3"),
        "{cleanup}"
    );
    for host in ["db2", "db3"] {
        assert_eq!(
            lab.work_files(host, 1),
            vec![],
            "{host}: nothing left behind"
        );
    }
    assert_eq!(run["recovery"]["salvage"]["transactions"], 20, "{run:#}");
    assert_eq!(run["decided"]["new_master"], "db2", "the latest replica");
    let diffs = &run["recovery"]["diffs"];
    assert_eq!(
        diffs["db3"]["transactions"], 40,
        "db3: 20 from db2's relay logs + 20 salvaged: {run:#}"
    );
    assert_eq!(
        diffs["db2"]["transactions"], 20,
        "db2: the salvage: {run:#}"
    );
    assert!(run["recovery"]["new_master_coords"].is_array(), "{run:#}");
    assert!(
        run["decided"]["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("mysql-bin.")),
        "{run:#}"
    );
    let rows = lab.wait_converged(&["db2", "db3"]);
    assert_eq!(rows, range(1, 60), "every committed row on both survivors");
    // Replication works from the new master's recorded coordinates.
    lab.sql("db2", "INSERT INTO mha_lab.acked (id) VALUES (61)");
    assert_eq!(lab.wait_converged(&["db2", "db3"]), range(1, 61));
    assert_eq!(lab.vip_holder(), "db2");
    lab.lab(&["heal"]);
}

/// The same with the dead master's host gone: the failover completes from the relay logs (db3
/// still gets 21..=40 from db2's), and the journal says which window could not be saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filepos_master_host_unreachable() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    lab.add_group();
    lab.app_setup();
    lab.lagging_replica_then_master_dies(MasterEnd::HostGone);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let saved = step(&run, "save_master_binlog")["state"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        saved.contains("could not be read over SSH") && saved.contains("are lost"),
        "{saved}"
    );
    assert_eq!(run["recovery"]["salvage"]["saved"], false);
    let rows = lab.wait_converged(&["db2", "db3"]);
    assert_eq!(rows, range(1, 40), "what any replica received is kept");
}

/// The work files on the DB hosts: a replica whose diff cannot be applied (a row it has that
/// the diff inserts again) is left out by phase 4; the run completes partially. db2 (the new
/// master) has no work file left; db3 keeps its salvage copy, diff and replayed file, each
/// mode 0600 (row data), and phase 5's detail says where they are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_files_private_removed_after_success_kept_for_an_unrecovered_replica() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    lab.clear_work_files();
    lab.add_group();
    lab.app_setup();
    lab.insert(1..=20);
    lab.wait_converged(&["db1", "db2", "db3"]);
    lab.sql("db3", "STOP SLAVE IO_THREAD");
    // A row db3 has that its diff (rows 21..=40 from db2's relay logs) inserts again: the
    // replay on db3 fails on the duplicate key.
    lab.sql(
        "db3",
        "SET sql_log_bin = 0; INSERT INTO mha_lab.acked (id) VALUES (30)",
    );
    lab.insert(21..=40);
    lab.wait_rows("db2", 40);
    lab.lab(&["partition", "db1", "--", "db2,db3"]);
    lab.insert(41..=60);
    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    assert_eq!(run["decided"]["new_master"], "db2", "{run:#}");
    let phase4 = &step(&run, "replicas_recovery")["state"];
    assert_eq!(
        phase4["failed_replicas"],
        serde_json::json!(["db3"]),
        "{phase4:#}"
    );
    let cleanup = step(&run, "new_master_cleanup")["state"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cleanup.contains("work files removed: /var/tmp/mha-raft-lab-run1-* on db2")
            && cleanup.contains(
                "work files kept for the manual recovery of db3: /var/tmp/mha-raft-lab-run1-* on db3"
            ),
        "{cleanup}"
    );
    let on = |host: &str| {
        let files: Vec<(u32, String)> = lab
            .work_files(host, 1)
            .into_iter()
            .filter(|(_, name)| name.ends_with(&format!("-{host}.binlog")))
            .collect();
        files
    };
    assert_eq!(on("db2"), vec![], "db2 recovered: its work files are gone");
    let kept = on("db3");
    let names: Vec<&str> = kept.iter().map(|(_, n)| n.as_str()).collect();
    for what in ["saved", "diff", "apply"] {
        assert!(
            names.contains(&format!("mha-raft-lab-run1-{what}-db3.binlog").as_str()),
            "db3 keeps its {what} file: {kept:?}"
        );
    }
    for (mode, name) in &kept {
        assert_eq!(*mode, 0o600, "{name}: row data, private to the SSH user");
    }
    // The exact paths are in the journal too.
    assert_eq!(
        run["recovery"]["diffs"]["db3"]["path"], "/var/tmp/mha-raft-lab-run1-diff-db3.binlog",
        "{run:#}"
    );
    lab.lab(&["heal"]);
    lab.clear_work_files();
}

/// GTID replication (asynchronous): transactions only the dead master's binlog has are
/// salvaged and applied to the new master, and reach the other replica by replication (MHA
/// never does this in GTID mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtid_transactions_only_in_dead_masters_binlog_are_salvaged() {
    let Some(lab) = Lab::up(&["--mode", "gtid"]) else {
        return;
    };
    lab.clear_work_files();
    lab.add_group();
    lab.app_setup();
    lab.insert(1..=10);
    lab.wait_converged(&["db1", "db2", "db3"]);
    lab.lab(&["partition", "db1", "--", "db2,db3"]);
    lab.insert(11..=25);
    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    assert_eq!(run["recovery"]["salvage"]["transactions"], 15, "{run:#}");
    let nm = run["decided"]["new_master"].as_str().unwrap().to_string();
    let promote = step(&run, "promote_new_master")["state"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        promote.contains("salvaged binlog: applied 15 transactions"),
        "{promote}"
    );
    let other = if nm == "db2" { "db3" } else { "db2" };
    assert_eq!(lab.wait_converged(&[&nm, other]), range(1, 25));
    // The salvage copies and the file replayed on the new master are gone: the run completed.
    let cleanup = step(&run, "new_master_cleanup")["state"]["detail"]
        .as_str()
        .unwrap_or("");
    assert!(
        cleanup.contains("work files removed: /var/tmp/mha-raft-lab-run1-* on "),
        "{cleanup}"
    );
    for host in ["db2", "db3"] {
        assert_eq!(lab.work_files(host, 1), vec![], "{host}: {cleanup}");
    }
    lab.lab(&["heal"]);
}

/// Leader killed right after a diff was applied and before the apply was journaled (on the new
/// master in phase 3.5, on a replica in phase 4): the next leader resumes the step and applies
/// nothing twice — the GTIDs the server logged tell what is there — so the run completes and
/// the rows are exact.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_after_a_diff_apply_nothing_applied_twice() {
    for (point, step_name, server) in [
        ("applied:promote_new_master", "promote_new_master", "db2"),
        ("applied:replicas_recovery", "replicas_recovery", "db3"),
    ] {
        let Some(lab) = Lab::up_with_env(&["--mode", "filepos"], &[("MHAD_FAILPOINT", point)])
        else {
            return;
        };
        lab.add_group();
        lab.app_setup();
        lab.lagging_replica_then_master_dies(MasterEnd::MysqldKilled);
        let run = lab.wait_run_end(1);
        assert_eq!(run["state"]["state"], "completed", "{point}: {run:#}");
        let st = &step(&run, step_name)["state"];
        assert_eq!(st["attempts"], 2, "{point}: resumed: {st:#}");
        let applied = run["recovery"]["applied"][server].as_str().unwrap_or("");
        assert!(
            applied.contains("nothing to apply") && applied.contains("already present"),
            "{point}: the resumed apply found everything there: {applied} / {run:#}"
        );
        // A second apply would have hit the primary key and failed the run.
        let rows = lab.wait_converged(&["db2", "db3"]);
        assert_eq!(rows, range(1, 60), "{point}");
        lab.lab(&["heal"]);
        drop(lab);
    }
}

/// MHA's master_ip_failover_script, the sample in deploy/examples, moves the service address
/// instead of the built-in VIP: called with `--command=stopssh` for the old master and
/// `--command=start` with the new master's arguments, MHA's way; the address ends on the new
/// master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_ip_failover_script_is_called_with_mhas_arguments() {
    let Some(lab) = Lab::up(&["--mode", "gtid", "--semisync"]) else {
        return;
    };
    let dir = std::path::Path::new(&lab.group_file)
        .parent()
        .unwrap()
        .to_path_buf();
    // The managers' hook `master_ip_failover` (deploy/lab/lab writes it into every mhad.toml):
    // the sample script with the lab's VIP, SSH key and this call log as fixed arguments.
    let log = dir.join("master_ip_failover.log");
    let text = std::fs::read_to_string(&lab.group_file).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("vip"))
        .map(|l| {
            if l == "[failover]" {
                "[failover]\nmaster_ip_failover_script = \"master_ip_failover\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = dir.join("group-script.toml");
    std::fs::write(&file, text).unwrap();
    let out = lab.mhactl(&["group", "add", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.app_setup();
    // masterha_check_repl asks the script for its status, as MHA does.
    let (code, out) = lab.check("repl");
    assert_eq!(code, 0, "{out}");
    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let nm = run["decided"]["new_master"].as_str().unwrap().to_string();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let db1_ip = String::from_utf8_lossy(&lab.lab(&["host-ip", "db1"]).stdout)
        .trim()
        .to_string();
    let nm_ip = String::from_utf8_lossy(&lab.lab(&["host-ip", &nm]).stdout)
        .trim()
        .to_string();
    assert!(
        calls.contains(&format!("command=status orig_master=db1({db1_ip})")),
        "{calls}"
    );
    assert!(
        calls.contains(&format!("command=stopssh orig_master=db1({db1_ip})")),
        "{calls}"
    );
    assert!(
        calls.contains(&format!(
            "command=start orig_master=db1({db1_ip}) new_master={nm}({nm_ip})"
        )),
        "{calls}"
    );
    assert_eq!(lab.vip_holder(), nm, "the script moved the address");
    let fence = step(&run, "fence")["state"]["detail"].as_str().unwrap();
    assert!(
        fence.contains("master_ip_failover_script --command=stopssh: ok"),
        "{fence}"
    );
}
