//! Process-level tests: real `mhad` binaries on loopback, driven with `mhactl` exactly as an
//! operator would (Garage-style "test the real binary from outside").

mod prockit;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use prockit::*;
use serde_json::Value;

/// Three real mhad processes form a cluster; `mhactl cluster status` shows a leader and three
/// zoned rows; kill -9 of the leader gives a new leader in status; the killed node restarts,
/// rejoins and catches up; SIGTERM shuts a node down cleanly (exit 0).
#[test]
fn three_processes_leader_kill_and_rejoin() {
    let mut c = Cluster::start(3);
    let ep = c.endpoints();
    let v = wait_status(
        &ep,
        "named cluster with a leader and 3 caught-up, zoned managers",
        |v| {
            v["has_quorum"] == true
                && leader_id(v).is_some()
                && v["cluster"] == "mha"
                && all_followers_caught_up(v, 3)
        },
    );
    let old = leader_id(&v).unwrap();

    // Human table: one row per manager, with the columns the operator expects.
    let out = mhactl(&ep, &["cluster", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for col in [
        "ID",
        "ADDRESS",
        "ZONE",
        "ROLE",
        "TERM",
        "LAST_LOG",
        "APPLIED",
        "LAG",
        "LAST_HEARD",
    ] {
        assert!(text.contains(col), "missing {col}: {text}");
    }
    assert_eq!(manager_rows(&text), 3, "{text}");

    c.proc(old).kill9();
    let v = wait_status(&ep, "a new leader after kill -9", |v| {
        v["has_quorum"] == true && leader_id(v).is_some_and(|l| l != old)
    });
    let row = v["managers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == old)
        .unwrap()
        .clone();
    assert_eq!(row["role"], "unreachable", "{v}");

    c.proc(old).spawn();
    wait_status(&ep, "killed node rejoined and caught up", |v| {
        all_followers_caught_up(v, 3)
    });

    let st = c.proc(old).term();
    assert!(st.success(), "SIGTERM exit: {st:?}");
    assert!(c.proc(old).log().contains("mhad stopped"));
}

/// With two of three managers down there is no quorum: status says so plainly, lists what it
/// could reach, and exits 3. With none reachable it exits 1.
#[test]
fn no_quorum_is_reported() {
    let mut c = Cluster::start(3);
    let ep = c.endpoints();
    wait_status(&ep, "leader", |v| {
        v["has_quorum"] == true && all_followers_caught_up(v, 3)
    });
    c.proc(1).kill9();
    c.proc(2).kill9();
    let start = Instant::now();
    loop {
        let out = mhactl(&ep, &["cluster", "status"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.code() == Some(3) {
            assert!(text.starts_with("NO QUORUM"), "{text}");
            assert!(text.contains("unreachable"), "{text}");
            assert_eq!(manager_rows(&text), 3, "{text}");
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no-quorum never reported; last: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.proc(3).kill9();
    let out = mhactl(&ep, &["cluster", "status"]);
    assert_eq!(out.status.code(), Some(1));
}

/// A fourth process started without initial_members joins with `mhactl member add` (learner,
/// then voter) and leaves with `mhactl member remove`, all through a follower's endpoint first.
#[test]
fn member_add_remove_with_mhactl() {
    let c = Cluster::start(3);
    let ep = c.endpoints();
    wait_status(&ep, "leader", |v| {
        v["has_quorum"] == true && all_followers_caught_up(v, 3)
    });
    let dir = c._tmp.path().join("n4");
    std::fs::create_dir_all(&dir).unwrap();
    let addr4 = format!("127.0.0.1:{}", free_port());
    let mut p4 = Proc {
        id: 4,
        addr: addr4.clone(),
        dir,
        child: None,
        members: String::new(),
        rust_log: Some("info,openraft=warn"),
    };
    p4.spawn();
    p4.wait_listening();
    let out = mhactl(
        &ep,
        &[
            "member", "add", "--id", "4", "--addr", &addr4, "--zone", "zone-4",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("learner") && text.contains("voter"), "{text}");
    let ep4 = format!("{ep},{addr4}");
    wait_status(&ep4, "4 managers caught up", |v| {
        all_followers_caught_up(v, 4)
    });
    let out = mhactl(&ep, &["member", "remove", "--id", "4", "--yes", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --json: one document, the members left and the steps taken.
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["members"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["incomplete"], false, "{v}");
    assert!(!v["steps"].as_array().unwrap().is_empty(), "{v}");
    wait_status(&ep, "back to 3 managers", |v| {
        v["managers"].as_array().unwrap().len() == 3
    });
    drop(p4);
}

/// What an operator sees of membership safety (issue #14): `member add` of an address where
/// nothing listens fails (exit 1) with nothing changed; `member remove` down to two voters is
/// refused with the explanation (exit 2) until `--yes`; the removed manager's log says, once,
/// that it was removed.
#[test]
fn member_safety_with_mhactl() {
    let c = Cluster::start(3);
    let ep = c.endpoints();
    wait_status(&ep, "leader", |v| {
        v["has_quorum"] == true && all_followers_caught_up(v, 3)
    });
    let dead = format!("127.0.0.1:{}", free_port());
    let out = mhactl(
        &ep,
        &["member", "add", "--id", "4", "--addr", &dead, "--zone", "z"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no manager answers at {dead}"))
            && err.contains("nothing was changed"),
        "{err}"
    );

    // Without a terminal to ask on, a removal needs --yes (exit 2, nothing changed).
    let out = mhactl(&ep, &["member", "remove", "--id", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("member remove needs confirmation: add --yes"),
        "{err}"
    );
    let v = wait_status(&ep, "still 3 managers", |v| {
        v["managers"].as_array().unwrap().len() == 3
    });
    assert_eq!(v["managers"].as_array().unwrap().len(), 3);

    let out = mhactl(&ep, &["member", "remove", "--id", "3", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("confirmed (--yes)") && text.contains("removed voter 3"),
        "{text}"
    );
    let p3 = &c.procs[2];
    let start = Instant::now();
    while !p3
        .log()
        .contains("this manager was removed from the cluster")
    {
        assert!(
            start.elapsed() < WAIT,
            "node 3 never logged its removal:\n{}",
            p3.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The survivors go on (a write commits), and node 3 said it once.
    let ep12 = format!("{},{}", c.procs[0].addr, c.procs[1].addr);
    wait_status(&ep12, "two managers", |v| {
        v["has_quorum"] == true && v["managers"].as_array().unwrap().len() == 2
    });
    assert_eq!(
        p3.log()
            .matches("this manager was removed from the cluster")
            .count(),
        1,
        "{}",
        p3.log()
    );
}

/// Nodes started without initial_members stay uninitialised until `mhactl cluster init`; a
/// second init is refused (no fork); restarting with the same flags does not re-initialise.
/// Logs in `--log-format json` are one JSON object per line.
#[test]
fn cluster_init_once_and_json_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut procs: Vec<Proc> = (1..=3)
        .map(|id| {
            let dir = tmp.path().join(format!("n{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            Proc {
                id,
                addr: format!("127.0.0.1:{}", free_port()),
                dir,
                child: None,
                members: String::new(),
                rust_log: Some("info,openraft=warn"),
            }
        })
        .collect();
    for p in procs.iter_mut() {
        p.spawn_with(&["--log-format", "json"]);
    }
    let ep = procs
        .iter()
        .map(|p| p.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let members = procs
        .iter()
        .map(|p| format!("{}={}", p.id, p.addr))
        .collect::<Vec<_>>()
        .join(",");

    let start = Instant::now();
    let out = loop {
        let out = mhactl(&ep, &["cluster", "status"]);
        if out.status.code() == Some(3) || start.elapsed() > WAIT {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("not part of an initialized cluster"),
        "{text}"
    );

    let first = procs[0].addr.clone();
    let out = mhactl(
        &first,
        &["cluster", "init", "--members", &members, "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["initialized"], true, "{v}");
    assert_eq!(v["members"].as_array().unwrap().len(), 3, "{v}");
    wait_status(&ep, "initialised cluster with 3 zoned managers", |v| {
        v["has_quorum"] == true && all_followers_caught_up(v, 3)
    });
    let out = mhactl(&first, &["cluster", "init", "--members", &members]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialized"));

    for p in procs.iter_mut() {
        assert!(p.term().success());
    }
    for p in procs.iter_mut() {
        p.spawn_with(&["--log-format", "json"]);
    }
    let v = wait_status(&ep, "cluster back after restart", |v| {
        v["has_quorum"] == true && all_followers_caught_up(v, 3)
    });
    assert_eq!(v["managers"].as_array().unwrap().len(), 3);

    let log = procs[0].log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{l}"
        );
    }
    assert!(lines.iter().any(|l| l.contains("mhad started")));
}

fn run_mhad(args: &[&str], config: Option<(&Path, &str)>) -> Output {
    let mut cmd = Command::new(MHAD);
    if let Some((path, text)) = config {
        std::fs::write(path, text).unwrap();
        cmd.arg("--config").arg(path);
    }
    cmd.args(args).arg("--check-config").output().unwrap()
}

/// Broken TOML, unknown keys, wrong types and invalid values: exit 2 with an error naming the key.
#[test]
fn bad_config_exits_2_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let cfg = tmp.path().join("mhad.toml");
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("id = 1\ndata_dir = \"x\"\nlisten = \n", vec![], "line 3"),
        ("id = 1\nbogus_key = 2\n", vec![], "bogus_key"),
        ("id = \"one\"\n", vec![], "id"),
        (
            "id = 1\n[raft]\nheartbeat_interval_ms = \"fast\"\n",
            vec![],
            "heartbeat_interval_ms",
        ),
        (
            "id = 1\n[raft]\nelection_timeout_mn_ms = 5\n",
            vec![],
            "election_timeout_mn_ms",
        ),
        (
            "",
            vec![
                "--id",
                "1",
                "--data-dir",
                data,
                "--initial-members",
                "1=127.0.0.1:1,1=127.0.0.1:2",
            ],
            "initial_members",
        ),
        (
            "",
            vec![
                "--id",
                "1",
                "--data-dir",
                data,
                "--initial-members",
                "2=127.0.0.1:1,3=127.0.0.1:2",
            ],
            "initial_members",
        ),
        (
            "",
            vec!["--id", "1", "--data-dir", data, "--listen", "localhost"],
            "listen",
        ),
        (
            "",
            vec!["--id", "1", "--data-dir", "/proc/no-such-dir/x"],
            "data_dir",
        ),
        ("", vec!["--data-dir", data], "id"),
    ];
    for (text, args, key) in cases {
        let out = run_mhad(&args, (!text.is_empty()).then_some((cfg.as_path(), text)));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?} {args:?}: {err}");
        assert!(
            err.contains(key),
            "{text:?} {args:?}: expected {key:?} in: {err}"
        );
    }
    // A good file plus a flag override validates and exits 0.
    let good = format!(
        "id = 2\ndata_dir = \"{data}\"\nzone = \"a\"\ninsecure = true\n[raft]\nheartbeat_interval_ms = 80\n"
    );
    let out = run_mhad(&["--zone", "b"], Some((cfg.as_path(), &good)));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("zone = \"b\"") && text.contains("heartbeat_interval_ms = 80"),
        "{text}"
    );
}

/// With `--admin-listen`, the peer port serves only managers and the admin port serves mhactl:
/// a follower's admin port redirects to the leader's ADMIN address (what the leader registered),
/// and a client certificate on a peer port is refused with a message saying where to go.
#[test]
fn separate_admin_listener() {
    let tmp = tempfile::tempdir().unwrap();
    let port = || format!("127.0.0.1:{}", free_port());
    let peers: Vec<String> = (0..3).map(|_| port()).collect();
    let admins: Vec<String> = (0..3).map(|_| port()).collect();
    let members = peers
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Vec::new();
    for i in 0..3 {
        let dir = tmp.path().join(format!("n{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = Proc {
            id: i as u64 + 1,
            addr: peers[i].clone(),
            dir,
            child: None,
            members: members.clone(),
            rust_log: Some("info,openraft=warn"),
        };
        p.spawn_with(&["--admin-listen", &admins[i]]);
        procs.push(p);
    }
    let v = wait_status(
        &admins.join(","),
        "leader seen through the admin ports",
        |v| v["has_quorum"] == true && all_followers_caught_up(v, 3),
    );
    let leader = leader_id(&v).unwrap();
    let follower = (1..=3u64).find(|i| *i != leader).unwrap();
    // The cluster-wide status is the leader's: asked at a follower's admin port alone, mhactl
    // follows the redirect, which must name the leader's admin port (its peer port would refuse
    // us). Managers register their admin address within a second of starting.
    let start = Instant::now();
    let out = loop {
        let out = mhactl(
            &admins[follower as usize - 1],
            &["cluster", "status", "--json"],
        );
        if out.status.success() || start.elapsed() > WAIT {
            break out;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("peer address"),
            "redirected to a peer port: {err}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(leader_id(&v), Some(leader));
    // A client on a peer port.
    let out = mhactl(&peers[0], &["cluster", "status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("peer address") && err.contains("admin_listen"),
        "{err}"
    );
    drop(procs);
}

/// A frozen manager (SIGSTOP: its kernel still accepts TCP, its TLS handshake never answers)
/// first in the endpoint list: mhactl gives up on it after its timeout and gets the answer from
/// the others, instead of hanging.
#[test]
fn frozen_endpoint_is_skipped() {
    let mut c = Cluster::start(3);
    let ep = c.endpoints();
    wait_status(&ep, "leader", |v| {
        v["has_quorum"] == true && all_followers_caught_up(v, 3)
    });
    let pid = c.proc(1).child.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let mut child = Command::new(MHACTL)
        .env("MHACTL_CA", tls_file("ca.crt"))
        .env("MHACTL_CERT", tls_file("client-reader.crt"))
        .env("MHACTL_KEY", tls_file("client-reader.key"))
        .args(["--endpoints", &ep, "--timeout-ms", "1000", "group", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    signal("-CONT");
    let status = status.expect("mhactl hung on the frozen endpoint");
    assert!(status.success(), "{status:?}");
}
