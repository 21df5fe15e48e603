use super::*;
use crate::state::group::PingType;

/// The app1.cnf of MHA's own tutorial (samples/conf/app1.cnf and the wiki), every key the
/// seeds-era tutorials use.
const APP1: &str = "\
[server default]
# mysql user and password
user=root
password=mysqlpass
ssh_user=root
# working directory on the manager
manager_workdir=/var/log/masterha/app1
# manager log file
manager_log=/var/log/masterha/app1/app1.log
# working directory on MySQL servers
remote_workdir=/var/log/masterha/app1
repl_user=repl
repl_password=replpass
ping_interval=3
ping_type=CONNECT
master_binlog_dir=/data/mysql
master_ip_failover_script=/usr/local/bin/master_ip_failover
master_ip_online_change_script=/usr/local/bin/master_ip_online_change
shutdown_script=/usr/local/bin/power_manager --power_type=ipmi
report_script=/usr/local/bin/send_report
secondary_check_script=/usr/local/bin/masterha_secondary_check -s remote_host1 -s remote_host2

[server1]
hostname=host1

[server2]
hostname=host2
candidate_master=1

[server3]
hostname=host3
port=3307
no_master=1

[server4]
hostname=host4
ignore_fail=1
master_binlog_dir=/data2/mysql
";

fn app(text: &str) -> Source<'_> {
    Source {
        file: "app1.cnf",
        text,
    }
}

#[test]
fn the_tutorials_app1_cnf() {
    let i = import(&app(APP1), None, &Names::default()).unwrap();
    let s = &i.spec;
    assert_eq!(s.name, "app1");
    assert_eq!(s.user, "root");
    assert_eq!(s.password, CredentialRef::Name("app1.password".into()));
    assert_eq!(
        s.repl_password,
        CredentialRef::Name("app1.repl_password".into())
    );
    assert_eq!(s.repl_user, "repl");
    assert_eq!(s.ssh.user, "root");
    assert_eq!(s.ssh.profile, "default");
    assert_eq!(s.ping.interval_ms, 3000);
    assert_eq!(s.ping.ping_type, PingType::Connect);
    assert_eq!(s.failover.remote_workdir, "/var/log/masterha/app1");
    assert_eq!(s.failover.master_binlog_dir, "/data/mysql");
    assert_eq!(s.failover.shutdown_script.as_deref(), Some("app1.shutdown"));
    let names: Vec<&str> = s.servers.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["host1", "host2", "host3", "host4"]);
    assert!(s.servers[1].candidate_master);
    assert_eq!(s.servers[2].port, 3307);
    assert!(s.servers[2].no_master);
    assert!(s.servers[3].ignore_fail);
    assert_eq!(
        s.servers[3].master_binlog_dir.as_deref(),
        Some("/data2/mysql")
    );
    assert_eq!(s.servers[0].master_binlog_dir, None);
    // Secrets are kept apart, never in the spec.
    let secrets: Vec<(&str, &str)> = i
        .secrets
        .iter()
        .map(|x| (x.credential.as_str(), x.value.expose()))
        .collect();
    assert_eq!(
        secrets,
        [
            ("app1.password", "mysqlpass"),
            ("app1.repl_password", "replpass")
        ]
    );
    let shutdown = i.hooks.iter().find(|h| h.name == "app1.shutdown").unwrap();
    assert_eq!(
        shutdown.argv,
        ["/usr/local/bin/power_manager", "--power_type=ipmi"]
    );
    assert_eq!(i.hooks.len(), 4);
    // Every setting in the file has exactly one note; the unmapped ones say why.
    let settings = APP1
        .lines()
        .filter(|l| l.contains('=') && !l.starts_with('#'))
        .count();
    assert_eq!(i.notes.len(), settings, "{:#?}", i.notes);
    let outcome = |k: &str| {
        i.notes
            .iter()
            .find(|n| n.key == k)
            .map(|n| (n.outcome, n.detail.clone()))
            .unwrap()
    };
    assert_eq!(outcome("secondary_check_script").0, "unmapped");
    assert!(outcome("secondary_check_script").1.contains("zone"));
    assert_eq!(outcome("manager_log").0, "unmapped");
    assert_eq!(outcome("ping_interval").0, "mapped");
    // No note shows a password.
    for n in &i.notes {
        assert!(
            !n.detail.contains("mysqlpass") && !n.detail.contains("replpass"),
            "{n:?}"
        );
    }
    // The group file written from it reads back as the same group.
    let text = crate::group_render::render(s);
    assert_eq!(&crate::group_file::parse(&text).unwrap(), s);
}

#[test]
fn the_global_file_is_the_lowest_layer() {
    let global = Source {
        file: "masterha_default.cnf",
        text: "[server default]\nuser=mha\npassword=g\nrepl_user=repl\nrepl_password=r\nping_interval=1\nssh_options=-i /etc/mha/id_rsa -o StrictHostKeyChecking=no\n",
    };
    let app_text = "[server default]\npassword=app\n[server_1]\nhostname=10.0.0.11\n[server_2]\nhostname=10.0.0.12\nip=10.0.0.12\nssh_host=10.1.0.12\nssh_port=2222\n[binlog1]\nhostname=binlog_host1\n";
    let i = import(
        &app(app_text),
        Some(&global),
        &Names {
            group: Some("orders".into()),
            ..Names::default()
        },
    )
    .unwrap();
    let s = &i.spec;
    assert_eq!(s.name, "orders");
    assert_eq!(s.user, "mha");
    assert_eq!(
        i.secrets[0].value.expose(),
        "app",
        "the app file overrides the global one"
    );
    assert_eq!(s.ping.interval_ms, 1000);
    // IPs as hostnames: block names become the names.
    assert_eq!(s.servers[0].name, "server_1");
    assert_eq!(s.servers[1].ssh_host.as_deref(), Some("10.1.0.12"));
    assert_eq!(s.servers[1].ssh_port, Some(2222));
    let p = i.ssh_profile.as_ref().unwrap();
    assert_eq!(
        (p.name.as_str(), p.key.as_str()),
        ("orders", "/etc/mha/id_rsa")
    );
    assert!(p.accept_unknown_host_keys);
    assert_eq!(s.ssh.profile, "orders");
    assert!(i
        .todo
        .iter()
        .any(|t| t.contains("accept_unknown_host_keys")));
    let binlog = i.notes.iter().find(|n| n.block == "binlog1").unwrap();
    assert_eq!(binlog.outcome, "unmapped");
    let snippet = mhad_snippet(&i, &|c| format!("/etc/mhad/{c}.pw"));
    let parsed: toml::Value = toml::from_str(&snippet).unwrap();
    assert_eq!(
        parsed["credentials"]["orders.password"]["file"].as_str(),
        Some("/etc/mhad/orders.password.pw")
    );
    assert_eq!(
        parsed["ssh_profiles"]["orders"]["key"].as_str(),
        Some("/etc/mha/id_rsa")
    );
    assert!(!snippet.contains("\"app\""), "no password in the snippet");
}

#[test]
fn existing_names_are_used_as_asked() {
    let names = Names {
        password_credential: Some("mha".into()),
        repl_password_credential: Some("repl".into()),
        ssh_profile: Some("default".into()),
        hooks: [("shutdown_script".to_string(), "power_off".to_string())].into(),
        ..Names::default()
    };
    let i = import(&app(APP1), None, &names).unwrap();
    assert!(i.secrets.is_empty());
    assert_eq!(i.spec.password, CredentialRef::Name("mha".into()));
    assert_eq!(
        i.spec.failover.shutdown_script.as_deref(),
        Some("power_off")
    );
    assert!(i.hooks.iter().all(|h| h.name != "power_off"));
}

#[test]
fn unknown_keys_are_listed_and_errors_name_the_place() {
    let text = "[server default]\nuser=a\nrepl_user=r\nfrobnicate=1\n[server1]\nhostname=h1\n[server2]\nhostname=h2\n[mystery]\nx=1\n";
    let i = import(&app(text), None, &Names::default()).unwrap();
    let unknown: Vec<&str> = i
        .notes
        .iter()
        .filter(|n| n.outcome != "mapped")
        .map(|n| n.key.as_str())
        .collect();
    assert_eq!(unknown, ["frobnicate", "x"]);
    assert!(i.todo.iter().any(|t| t.starts_with("repl_password")));

    let differing = "[server default]\nrepl_user=r\n[server1]\nhostname=h1\nuser=a\npassword=sekrit1\n[server2]\nhostname=h2\nuser=b\npassword=sekrit2\nport=x\n";
    let errs = import(&app(differing), None, &Names::default()).unwrap_err();
    let all = errs.join("\n");
    assert!(
        all.contains("user: differs between servers (server1: a, server2: b)"),
        "{all}"
    );
    assert!(
        all.contains("password: differs between servers (server1, server2)"),
        "{all}"
    );
    assert!(!all.contains("sekrit"), "{all}");
    assert!(
        all.contains("app1.cnf:11: \"x\" is not a port number"),
        "{all}"
    );

    let errs = import(&app("[server default]\nuser=a\n"), None, &Names::default()).unwrap_err();
    assert!(
        errs.iter().any(|e| e.contains("no [serverN] block")),
        "{errs:?}"
    );
    let errs = import(
        &app("[server1]\nhostname=h\nrepl_user=r\nreport_script=/x | mail y\n"),
        None,
        &Names::default(),
    )
    .unwrap_err();
    assert!(errs[0].contains("needs a shell"), "{errs:?}");
}

/// What MHA reads only in a server's own block is not inherited from [server default]
/// (ignore_fail there would make every server's failure ignorable), and is reported so.
#[test]
fn server_only_keys_in_server_default_are_not_inherited() {
    let text = "[server default]\nrepl_user=r\nignore_fail=1\nno_master=1\ncandidate_master=1\n\
                [server1]\nhostname=h1\n[server2]\nhostname=h2\nno_master=1\n";
    let i = import(&app(text), None, &Names::default()).unwrap();
    assert!(i
        .spec
        .servers
        .iter()
        .all(|s| !s.ignore_fail && !s.candidate_master));
    assert!(!i.spec.servers[0].no_master && i.spec.servers[1].no_master);
    let ignored: Vec<&str> = i
        .notes
        .iter()
        .filter(|n| n.block == "server default" && n.outcome == "unmapped")
        .map(|n| n.key.as_str())
        .collect();
    assert_eq!(ignored, ["ignore_fail", "no_master", "candidate_master"]);
}

/// MHA's order of server blocks (its candidate priority): by number when every block is
/// `server` + number, else by name; blocks of one name are one block.
#[test]
fn server_blocks_in_mhas_order() {
    let order = |text: &str| -> Vec<String> {
        let i = import(&app(text), None, &Names::default()).unwrap();
        i.spec.servers.iter().map(|s| s.host.clone()).collect()
    };
    let base = "[server default]\nrepl_user=r\n";
    assert_eq!(
        order(&format!(
            "{base}[server10]\nhostname=a\n[server9]\nhostname=b\n[server_2]\nhostname=c\n"
        )),
        ["c", "b", "a"]
    );
    // A tie on the first number keeps the text order (`_10` before `_9`).
    assert_eq!(
        order(&format!(
            "{base}[server_192_168_1_9]\nhostname=a\n[server_192_168_1_10]\nhostname=b\n"
        )),
        ["b", "a"]
    );
    // A name without a number: text order for all.
    assert_eq!(
        order(&format!(
            "{base}[serverA]\nhostname=a\n[server1]\nhostname=b\n"
        )),
        ["b", "a"]
    );
    // Two [server1] blocks are one server; the later line wins and the earlier is reported.
    let text =
        format!("{base}[server1]\nhostname=a\n[server2]\nhostname=b\n[server1]\nhostname=c\n");
    assert_eq!(order(&text), ["c", "b"]);
    let i = import(&app(&text), None, &Names::default()).unwrap();
    let over: Vec<(usize, &str)> = i
        .notes
        .iter()
        .filter(|n| n.outcome == "overridden")
        .map(|n| (n.line, n.detail.as_str()))
        .collect();
    assert_eq!(over, [(4, "overridden by app1.cnf:8")]);
}
