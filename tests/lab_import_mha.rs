//! `mhactl import-mha` against the lab (real MariaDB, three real mhad): an app1.cnf written the
//! way MHA's tutorials write them, for the lab's servers and passwords, becomes a group file
//! the leader accepts and whose replication `check repl` finds healthy. Root only (skipped,
//! loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn an_mha_app1_cnf_becomes_a_group_that_check_repl_accepts() {
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
}
