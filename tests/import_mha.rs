//! `mhactl import-mha` as an operator runs it, on MHA configurations of several shapes: the
//! files it writes (group file, mhad entries, private password files), its report (text and
//! JSON), and its refusals. No manager is contacted.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const MHACTL: &str = env!("CARGO_BIN_EXE_mhactl");

/// The global file of MHA's multi-application setups (masterha_default.cnf).
const GLOBAL: &str = "\
[server default]
user=root
password=rootpass
ssh_user=root
repl_user=repl
repl_password=replpass
master_binlog_dir= /var/lib/mysql
remote_workdir=/data/log/masterha
secondary_check_script= masterha_secondary_check -s remote_host1 -s remote_host2
ping_interval=3
master_ip_failover_script=/script/masterha/master_ip_failover
shutdown_script= /script/masterha/power_manager
report_script= /script/masterha/send_master_failover_mail
";

/// An application file using every key the tutorials' samples do.
const APP1: &str = "\
[server default]
manager_workdir=/var/log/masterha/app1
manager_log=/var/log/masterha/app1/app1.log
ssh_options=\"-i /root/.ssh/id_mha -o StrictHostKeyChecking=no\"
client_bindir=/usr/local/mysql/bin
ping_type=INSERT
check_repl_delay=0
latest_priority=1

[server1]
hostname=host1
candidate_master=1

[server2]
hostname=host2
candidate_master=1
check_repl_delay=0

[server3]
hostname=host3
port=3307
ssh_port=2222
no_master=1
ignore_fail=1
";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(MHACTL)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn app_and_global_file_become_a_group_file_entries_and_private_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("app1.cnf"), APP1).unwrap();
    std::fs::write(d.join("masterha_default.cnf"), GLOBAL).unwrap();
    let out = run(
        d,
        &[
            "import-mha",
            "app1.cnf",
            "--global",
            "masterha_default.cnf",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["schema"], 1);
    assert_eq!(
        report["servers"],
        serde_json::json!(["host1", "host2", "host3"])
    );

    // The group file is one mhactl accepts, with MHA's settings where they belong.
    let group = std::fs::read_to_string(d.join("app1.toml")).unwrap();
    let spec = mha_raft::group_file::parse(&group).unwrap();
    assert_eq!(spec.ping.interval_ms, 3000);
    assert_eq!(
        spec.ping.ping_type,
        mha_raft::state::group::PingType::Insert
    );
    assert!(!spec.failover.check_repl_delay);
    assert_eq!(spec.failover.remote_workdir, "/data/log/masterha");
    assert_eq!(spec.ssh.profile, "app1");
    assert_eq!(spec.servers[2].ssh_port, Some(2222));
    assert!(spec.servers[2].ignore_fail && spec.servers[2].no_master);
    assert!(group.contains("# Not carried over:"), "{group}");

    // Passwords: private files named by new [credentials] entries; nowhere else.
    for (file, secret) in [
        ("app1.password.pw", "rootpass"),
        ("app1.repl_password.pw", "replpass"),
    ] {
        let p = d.join(file);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), secret);
        assert_eq!(mode(&p), 0o600, "{file}");
        assert!(!group.contains(secret));
        assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    }
    let entries: toml::Value =
        toml::from_str(&std::fs::read_to_string(d.join("app1.mhad.toml")).unwrap()).unwrap();
    let canon = std::fs::canonicalize(d).unwrap();
    assert_eq!(
        entries["credentials"]["app1.password"]["file"]
            .as_str()
            .unwrap(),
        canon.join("app1.password.pw").to_str().unwrap()
    );
    assert_eq!(
        entries["hooks"]["app1.shutdown"][0].as_str(),
        Some("/script/masterha/power_manager")
    );
    let profile = &entries["ssh_profiles"]["app1"];
    assert_eq!(profile["key"].as_str(), Some("/root/.ssh/id_mha"));
    assert_eq!(
        profile["client_bindir"].as_str(),
        Some("/usr/local/mysql/bin")
    );
    assert_eq!(profile["accept_unknown_host_keys"].as_bool(), Some(true));

    // Every setting of both files has one line in the report.
    let settings = |t: &str| {
        t.lines()
            .filter(|l| l.contains('=') && !l.trim_start().starts_with('#'))
            .count()
    };
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), settings(APP1) + settings(GLOBAL), "{report:#}");
    let outcome = |k: &str| -> Vec<String> {
        keys.iter()
            .filter(|n| n["key"] == k)
            .map(|n| n["outcome"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(outcome("secondary_check_script"), ["unmapped"]);
    assert_eq!(outcome("manager_log"), ["unmapped"]);
    assert_eq!(outcome("check_repl_delay"), ["mapped", "mapped"]);
    let todo = report["todo"].as_array().unwrap();
    assert!(
        todo.iter()
            .any(|t| t.as_str().unwrap().contains("accept_unknown_host_keys")),
        "{report:#}"
    );

    // A second run does not overwrite without --force; with it, it does.
    let again = run(
        d,
        &["import-mha", "app1.cnf", "--global", "masterha_default.cnf"],
    );
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("app1.toml exists (--force overwrites it)"),
        "{err}"
    );
    let forced = run(
        d,
        &[
            "import-mha",
            "app1.cnf",
            "--global",
            "masterha_default.cnf",
            "--force",
        ],
    );
    assert!(forced.status.success(), "{forced:?}");
    assert_eq!(mode(&d.join("app1.password.pw")), 0o600);
}

#[test]
fn an_app_file_alone_with_unknown_keys_and_the_text_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = "\
[server default]
user=mha
password=pw
repl_user=repl
repl_password=rpw
ping_interval=1
log_level=debug
use_gtid_auto_pos=1
frobnicate=yes

[server1]
hostname=10.0.0.11

[server2]
hostname=10.0.0.12
candidate_master=1

[binlog1]
hostname=binlog1
";
    std::fs::write(d.join("orders.cnf"), text).unwrap();
    std::fs::create_dir(d.join("secrets")).unwrap();
    let out = run(
        d,
        &[
            "import-mha",
            "orders.cnf",
            "-o",
            "groups/orders.toml",
            "--secrets-dir",
            "secrets",
        ],
    );
    // The output directory must exist: a clear error, nothing written.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!d.join("secrets/orders.password.pw").exists());
    std::fs::create_dir(d.join("groups")).unwrap();
    let out = run(
        d,
        &[
            "import-mha",
            "orders.cnf",
            "-o",
            "groups/orders.toml",
            "--secrets-dir",
            "secrets",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("group orders: 2 servers (server1, server2)"),
        "{stdout}"
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("  {key}  ")))
            .unwrap_or_else(|| panic!("no line for {key}: {stdout}"))
            .to_string()
    };
    assert!(line("frobnicate").contains("unknown"), "{stdout}");
    assert!(line("log_level").contains("unmapped"), "{stdout}");
    assert!(line("use_gtid_auto_pos").contains("unmapped"), "{stdout}");
    assert!(
        stdout.contains("binlog servers are not supported"),
        "{stdout}"
    );
    assert_eq!(mode(&d.join("secrets/orders.repl_password.pw")), 0o600);
    let spec = mha_raft::group_file::parse(
        &std::fs::read_to_string(d.join("groups/orders.toml")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec.servers[0].host, "10.0.0.11");
    assert_eq!(spec.ping.interval_ms, 1000);
}

#[test]
fn what_cannot_become_a_group_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = "\
[server default]
repl_user=repl
[server1]
hostname=h1
user=a
[server2]
hostname=h2
user=b
port=notaport
";
    std::fs::write(d.join("app1.cnf"), text).unwrap();
    let out = run(d, &["import-mha", "app1.cnf"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("user: differs between servers (server1: a, server2: b)"),
        "{err}"
    );
    assert!(
        err.contains("app1.cnf:9: \"notaport\" is not a port number"),
        "{err}"
    );
    assert!(!d.join("app1.toml").exists());

    let bad_hook = run(d, &["import-mha", "app1.cnf", "--hook", "frob=x"]);
    assert_eq!(bad_hook.status.code(), Some(2));
    let missing = run(d, &["import-mha", "nope.cnf"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.cnf"));
}
