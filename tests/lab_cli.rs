//! mhactl as an operator uses it against the lab (real MariaDB, three real mhad): an app1.cnf
//! written the way MHA's tutorials write them becomes a group `check repl` accepts, and every
//! command prints JSON that parses with --json. Root only (skipped, loudly, otherwise); one lab
//! at a time.

mod labkit;

use labkit::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn an_mha_app1_cnf_becomes_a_group_and_every_command_prints_json() {
    let Some(lab) = Lab::up(&[]) else { return };
    let lab_group =
        mha_raft::group_file::parse(&std::fs::read_to_string(&lab.group_file).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cnf = dir.path().join("app1.cnf");
    let mut text = format!(
        "[server default]\n\
         # mysql user and password\n\
         user=mha\n\
         password={}\n\
         ssh_user=root\n\
         repl_user=repl\n\
         repl_password={}\n\
         manager_workdir=/var/log/masterha/app1\n\
         manager_log=/var/log/masterha/app1/manager.log\n\
         remote_workdir=/var/tmp\n\
         ping_interval=1\n\
         ping_type=SELECT\n\
         shutdown_script=/usr/local/bin/power_manager\n\
         secondary_check_script=/usr/local/bin/masterha_secondary_check -s remote_host1 -s remote_host2\n",
        lab_secret("mha").expose(),
        lab_secret("repl").expose(),
    );
    for (i, s) in lab_group.servers.iter().enumerate() {
        text.push_str(&format!(
            "\n[server{}]\nhostname={}\nport={}\nmaster_binlog_dir={}\ncandidate_master=1\n",
            i + 1,
            s.host,
            s.port,
            s.master_binlog_dir.clone().unwrap_or_default()
        ));
    }
    std::fs::write(&cnf, &text).unwrap();
    let out_file = dir.path().join("app1.toml");
    let out = run(Command::new(MHACTL).args([
        "import-mha",
        cnf.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
        "--password-credential",
        "mha",
        "--repl-password-credential",
        "repl",
        "--hook",
        "shutdown_script=power_off",
        "--json",
    ]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["group"], "app1");
    let unmapped: Vec<&str> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["outcome"] != "mapped")
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        unmapped,
        ["manager_workdir", "manager_log", "secondary_check_script"],
        "{report:#}"
    );
    // Existing credentials were named: no password file, and no password anywhere written.
    let written: Vec<&str> = report["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["path"].as_str().unwrap())
        .collect();
    assert_eq!(written, [out_file.to_str().unwrap()], "{report:#}");
    let group_text = std::fs::read_to_string(&out_file).unwrap();
    for secret in [lab_secret("mha"), lab_secret("repl")] {
        assert!(!group_text.contains(secret.expose()));
        assert!(!String::from_utf8_lossy(&out.stdout).contains(secret.expose()));
    }

    let added = lab.mhactl(&["group", "add", "-f", out_file.to_str().unwrap()]);
    assert!(
        added.status.success(),
        "{}{}",
        String::from_utf8_lossy(&added.stdout),
        String::from_utf8_lossy(&added.stderr)
    );
    let check = lab.mhactl(&["check", "repl", "--group", "app1"]);
    let check_text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{check_text}");
    assert!(
        check_text
            .trim_end()
            .ends_with("MySQL Replication Health is OK."),
        "{check_text}"
    );

    // Without existing names: the passwords go to private files named by the new entries.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let out = run(Command::new(MHACTL).args([
        "import-mha",
        cnf.to_str().unwrap(),
        "-o",
        fresh.join("app1.toml").to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{out:?}");
    let pw = fresh.join("app1.password.pw");
    assert_eq!(
        std::fs::read_to_string(&pw).unwrap(),
        lab_secret("mha").expose()
    );
    assert_eq!(
        std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777,
        0o600
    );

    every_command_prints_json(&lab, &out_file, dir.path());
}

/// Each command with --json: its exit status is the expected one and its standard output one
/// JSON document.
fn every_command_prints_json(lab: &Lab, group_file: &std::path::Path, dir: &std::path::Path) {
    let gf = group_file.to_str().unwrap();
    let certs = dir.join("certs");
    let certs = certs.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["cluster", "status"], 0),
        (vec!["group", "list"], 0),
        (vec!["group", "show", "--group", "app1"], 0),
        (vec!["group", "update", "-f", gf], 0),
        (
            vec![
                "group", "server", "remove", "--group", "app1", "--name", "server3",
            ],
            0,
        ),
        (
            vec![
                "group",
                "server",
                "add",
                "--group",
                "app1",
                "--name",
                "db9",
                "--host",
                "10.77.0.99",
            ],
            0,
        ),
        (vec!["check", "status", "--group", "app1"], 0),
        (vec!["check", "repl", "--group", "app1"], 0),
        (vec!["check", "ssh", "--group", "app1"], 0),
        (vec!["failover", "--group", "app1", "--dry-run"], 0),
        (vec!["failover", "history", "--group", "app1"], 0),
        (vec!["failover", "ack", "--group", "app1"], 0),
        (vec!["switchover", "--group", "app1", "--check-only"], 0),
        (vec!["pause", "--group", "app1", "--reason", "json test"], 0),
        (vec!["resume", "--group", "app1"], 0),
        (vec!["audit"], 0),
        (
            vec![
                "certs",
                "init",
                "--dir",
                certs,
                "--nodes",
                "1",
                "--clients",
                "admin",
            ],
            0,
        ),
    ];
    for (args, code) in cases {
        let mut all = args.clone();
        all.push("--json");
        let out = lab.mhactl(&all);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "mhactl {}: {text}{}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Err(e) = serde_json::from_str::<Value>(&text) {
            panic!("mhactl {}: not JSON ({e}): {text}", all.join(" "));
        }
    }
    // Removing the group: refused without a terminal or --yes, then JSON.
    let out = lab.mhactl(&["group", "remove", "--group", "app1", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = lab.mhactl(&["group", "remove", "--group", "app1", "--yes", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["removed"], true, "{v}");
}
