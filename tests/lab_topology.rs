//! What the managers read of a live group and report without acting on it, against the lab
//! (deploy/lab/lab: real MariaDB servers, real sshd, real network namespaces, three real mhad
//! managers driven with mhactl): topology discovery in each replication mode, `check repl`,
//! `check ssh`, `failover --dry-run` on a live group; and that the lab itself leaves nothing
//! behind. Root only (skipped, loudly, otherwise); one lab per machine, so the tests of a binary
//! take a lock and run one at a time.

mod labkit;

use labkit::*;

/// The leader discovers the topology in each replication mode, with and without lossless
/// semi-sync; every manager shows the same group; `cluster status` shows each server's live
/// state; a write on the master reaches every replica; a second add of the group is refused.
#[test]
fn discovery_in_each_mode() {
    for (args, mode, semisync) in [
        (vec!["--mode", "gtid"], "mariadb_gtid", false),
        (vec!["--mode", "filepos", "--semisync"], "file_pos", true),
        (vec!["--mode", "gtid", "--semisync"], "mariadb_gtid", true),
        (vec!["--mode", "filepos"], "file_pos", false),
    ] {
        let Some(lab) = Lab::up(&args) else { return };
        let text = lab.add_group();
        assert!(text.contains("master db1"), "{text}");
        let g = lab.group_json();
        assert_eq!(g["topology"]["master"], "db1", "{args:?}: {g}");
        assert_eq!(g["topology"]["mode"], mode, "{args:?}");
        assert_eq!(g["topology"]["semisync"], semisync, "{args:?}");
        assert_eq!(g["topology"]["servers"]["db3"]["replicates_from"], "db1");
        // Every manager's replicated state has it (ask each one alone). Followers apply once
        // the next heartbeat carries the commit index.
        for ep in lab.endpoints.split(',') {
            wait_for(&format!("{ep} to list the group"), WAIT, || {
                let out = mhactl_at(ep, &["group", "list"]);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                if text.contains("db1,db2,db3") {
                    Ok(())
                } else {
                    Err(text)
                }
            });
        }
        // Status shows each server's live state.
        let out = lab.mhactl(&["cluster", "status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let servers = v["groups"][0]["servers"].as_array().unwrap().clone();
        assert_eq!(servers.len(), 3, "{v}");
        assert_eq!(servers[0]["role"], "master");
        assert_eq!(servers[1]["io_thread"], "Yes");
        assert_eq!(servers[2]["read_only"], true);
        // Replication really flows in this mode (a replica stuck waiting for semi-sync ACKs, or
        // a broken IO thread, would never show the row).
        lab.sql(
            "db1",
            "CREATE TABLE IF NOT EXISTS mha_lab.flow (id INT PRIMARY KEY); INSERT INTO mha_lab.flow VALUES (1)",
        );
        wait_for(
            &format!("{args:?}: a write on db1 to reach every replica"),
            WAIT,
            || {
                let counts: Vec<Option<String>> = ["db2", "db3"]
                    .iter()
                    .map(|h| lab.try_sql(h, "SELECT COUNT(*) FROM mha_lab.flow"))
                    .collect();
                if counts.iter().all(|c| c.as_deref() == Some("1")) {
                    Ok(())
                } else {
                    Err(format!("rows on db2, db3: {counts:?}"))
                }
            },
        );
        // A second add of the same group is refused.
        let out = lab.mhactl(&["group", "add", "-f", &lab.group_file]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    }
}

/// check repl is OK on a healthy group and catches a stopped SQL thread, a writable replica and
/// a duplicate server_id, each with MHA's closing line and exit 1.
#[test]
fn check_repl_catches_problems() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    let (code, text) = lab.check("repl");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("db1 (10.77.0.11:3306) (current master)\n +--db2 (10.77.0.12:3306)\n +--db3"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("MySQL Replication Health is OK."),
        "{text}"
    );

    lab.sql("db2", "STOP SLAVE SQL_THREAD");
    let (code, text) = lab.check("repl");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Checking db2 sql_thread: NOT OK"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("MySQL Replication Health is NOT OK!"),
        "{text}"
    );
    lab.sql("db2", "START SLAVE SQL_THREAD");

    lab.sql("db3", "SET GLOBAL read_only=0");
    let (code, text) = lab.check("repl");
    assert_eq!(code, 1);
    assert!(text.contains("Checking db3 read_only: NOT OK"), "{text}");
    lab.sql("db3", "SET GLOBAL read_only=1");

    lab.sql("db3", "SET GLOBAL server_id=1");
    let (code, text) = lab.check("repl");
    assert_eq!(code, 1);
    assert!(text.contains("duplicate server_id 1: db1, db3"), "{text}");
    lab.sql("db3", "SET GLOBAL server_id=3");

    // MHA's check_repl_filter: one replica ignoring a database the others replicate.
    lab.sql(
        "db3",
        "STOP SLAVE; SET GLOBAL replicate_ignore_db='scratch'; START SLAVE",
    );
    let (code, text) = lab.check("repl");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("replication filtering check failed on db3")
            && text.contains("db3: replicate_ignore_db=scratch"),
        "{text}"
    );
    // A switchover's gates (run without --yes) refuse it too.
    let out = lab.mhactl(&["switchover", "--group", "lab"]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && said.contains("replication filtering check failed on db3"),
        "{said}"
    );
    lab.sql(
        "db3",
        "STOP SLAVE; SET GLOBAL replicate_ignore_db=''; START SLAVE",
    );

    let (code, text) = lab.check("repl");
    assert_eq!(code, 0, "healthy again: {text}");
}

/// check ssh passes from every manager to every host; refuses a host whose key changed (and
/// says so); reports a host whose sshd is down.
#[test]
fn check_ssh_catches_changed_key_and_down_sshd() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    let (code, text) = lab.check("ssh");
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" ok ")).count(),
        9,
        "3 managers x 3 hosts: {text}"
    );

    // db2 gets a new host key (as after a reinstall or an impostor): known_hosts no longer matches.
    let key = format!("{}/db2/ssh/ssh_host_ed25519_key", lab_dir());
    lab.lab(&["sshd", "stop", "db2"]);
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(format!("{key}.pub")).unwrap();
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &key]));
    lab.lab(&["sshd", "start", "db2"]);
    let (code, text) = lab.check("ssh");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("HOST KEY CHANGED"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("db2") && l.contains("FAILED"))
            .count(),
        3,
        "{text}"
    );

    // sshd down on db3.
    lab.lab(&["sshd", "stop", "db3"]);
    let (code, text) = lab.check("ssh");
    assert_eq!(code, 1);
    assert!(
        text.lines()
            .any(|l| l.contains("-> db3") && l.contains("cannot connect")),
        "{text}"
    );
}

/// `mhactl failover --dry-run` on the live group, without acting: MHA's choice and why (the
/// latest replica with candidate_master); a forced host honoured; a replica whose SQL thread
/// really lags (stopped while the master rotated its binlog and wrote) excluded by
/// check_repl_delay, so the other replica is chosen and forcing the lagging one is refused with
/// that reason, until it catches up; a server that is no replica refused as forced host. The
/// master stays writable throughout; a real failover of the live master stops in phase 1,
/// changes nothing and blocks nothing.
#[test]
fn failover_dry_run_explains_choice() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    let dry_run = |extra: &[&str]| {
        let out = lab.mhactl(&[&["failover", "--group", "lab", "--dry-run"][..], extra].concat());
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, text, err) = dry_run(&[]);
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(
        text.contains("The latest binary log file/position on all slaves is mysql-bin.000001:"),
        "{text}"
    );
    assert!(
        text.contains("New master is db2 (latest replica with candidate_master)"),
        "{text}"
    );
    let (code, text, err) = dry_run(&["--new-master", "db3"]);
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(
        text.contains("New master is db3 (forced by --new-master)"),
        "{text}"
    );

    tracing::info!("--- db2's SQL thread stops; db1 rotates its binlog and writes");
    lab.sql("db2", "STOP SLAVE SQL_THREAD");
    let status = lab.sql(
        "db1",
        "FLUSH BINARY LOGS; CREATE TABLE mha_lab.lag (id INT PRIMARY KEY); \
         INSERT INTO mha_lab.lag VALUES (1); SHOW MASTER STATUS",
    );
    let new_file = status.split_whitespace().next().unwrap().to_string();
    assert_ne!(new_file, "mysql-bin.000001", "{status}");
    // Both replicas read the new file; db3 applied it, db2 did not.
    let text = wait_for(
        "both replicas to read db1's new binlog, and db3 to apply it",
        WAIT,
        || {
            let (_, text, err) = dry_run(&[]);
            let read = text.contains(&format!(
                "The latest binary log file/position on all slaves is {new_file}:"
            )) && text.contains("(db2, db3)\n");
            let applied = lab.try_sql("db3", "SELECT COUNT(*) FROM mha_lab.lag");
            if read && applied.as_deref() == Some("1") {
                Ok(text)
            } else {
                Err(format!("db3 rows {applied:?}; dry run:\n{text}{err}"))
            }
        },
    );
    assert_eq!(
        lab.try_sql("db2", "SELECT COUNT(*) FROM mha_lab.lag"),
        None,
        "db2 applied nothing of the new file"
    );
    assert!(
        text.contains(
            "db2 cannot be the new master: too far behind (check_repl_delay): applied up to mysql-bin.000001:"
        ) && text.contains(&format!("while the latest replica read {new_file}:")),
        "{text}"
    );
    assert!(
        text.contains("New master is db3 (latest replica with candidate_master)"),
        "{text}"
    );
    let (code, text, err) = dry_run(&["--new-master", "db2"]);
    assert_eq!(code, Some(1), "{text}{err}");
    assert!(
        err.contains(
            "the requested new master db2 cannot be master: too far behind (check_repl_delay)"
        ),
        "{text}{err}"
    );

    tracing::info!("--- db2's SQL thread catches up");
    lab.sql("db2", "START SLAVE SQL_THREAD");
    wait_for("db2 to be chosen again", WAIT, || {
        let (_, text, err) = dry_run(&[]);
        if text.contains("New master is db2 (latest replica with candidate_master)")
            && !text.contains("cannot be the new master")
        {
            Ok(())
        } else {
            Err(format!("{text}{err}"))
        }
    });

    tracing::info!("--- db3 is no replica any more");
    lab.sql("db3", "STOP SLAVE; RESET SLAVE ALL");
    let (code, text, err) = dry_run(&["--new-master", "db3"]);
    assert_eq!(code, Some(1), "{text}{err}");
    assert!(
        err.contains("db3 cannot be master: not a replica of the old master"),
        "{text}{err}"
    );
    // The master is still alive and untouched: nothing acted.
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "0");

    tracing::info!("--- a real failover of the live master");
    // No dead verdict and no terminal to ask on: refused before anything starts.
    let out = lab.mhactl(&["failover", "--group", "lab"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failover without a dead verdict needs confirmation: add --yes"),
        "{err}"
    );
    let out = lab.mhactl(&["failover", "--group", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("answers again: it is not dead"), "{text}");
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "0");
    assert_eq!(lab.status_code(), 0, "not blocked");
}

/// What `lab down` must have removed: namespaces, links, the directory, live processes.
fn leftovers() -> Vec<String> {
    let mut found = Vec::new();
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    found.extend(
        String::from_utf8_lossy(&netns.stdout)
            .lines()
            .filter(|l| l.starts_with("mhalab-"))
            .map(|l| format!("netns {l}")),
    );
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    found.extend(
        String::from_utf8_lossy(&links.stdout)
            .lines()
            .filter(|l| l.contains("mhalab0") || l.contains(" mlab-"))
            .map(|l| format!("link {l}")),
    );
    let dir = lab_dir();
    if std::path::Path::new(&dir).exists() {
        found.push(format!("dir {dir}"));
    }
    // Live (non-zombie) processes whose command line mentions the lab directory.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = entry.path();
        let Ok(cmdline) = std::fs::read(p.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if cmdline.contains(&dir) && !zombie && !cmdline.contains("cargo") {
            found.push(format!("process {}: {cmdline}", p.display()));
        }
    }
    found
}

/// `up` then `down`, twice in a row, leaves no namespace, bridge, veth, process or directory.
#[test]
fn lab_up_down_twice_leaves_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: lab tests need root");
        return;
    }
    let _g = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for round in 1..=2 {
        run(Command::new(lab_tool()).args(["up", "--mhad", MHAD]));
        let status = run(Command::new(lab_tool()).args(["status", "--json"]));
        let v: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(v["vip_holder"], "db1", "round {round}");
        assert_eq!(
            v["hosts"].as_array().unwrap().len(),
            7,
            "3 db + 3 managers + client"
        );
        run(Command::new(lab_tool()).arg("down"));
        let left = leftovers();
        assert!(left.is_empty(), "round {round} left: {left:#?}");
    }
}
