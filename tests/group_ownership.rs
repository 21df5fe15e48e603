//! One server, one group (issue #14: two groups over the same servers started two failover runs
//! for one dead master). Through the admin API: `group add` and `group update` naming a server
//! another group manages are refused with the group and the server named, before any server is
//! contacted; groups that share nothing are accepted (they go on to contact their servers).
//! Through the log: of two concurrent adds sharing a server, exactly one is applied.
//! In-process cluster (real nodes, real gRPC); "DB servers" are TCP listeners counting
//! connections.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{fast_timings, group_spec, wait_until, TestCluster, WAIT};
use mha_raft::local_config::{LocalConfig, RawCredential, RawSshProfile};
use mha_raft::state::group::{GroupSpec, ReplicationMode, Topology};
use mha_raft::state::ownership::FEATURE_EXCLUSIVE_SERVERS;
use mha_raft::state::{Cmd, CmdResult, Rejection};
use tokio::net::TcpListener;
use tonic::Code;

async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (addr, n)
}

/// The names the specs use: credentials `mha` and `repl`, SSH profile `default`.
fn local(dir: &std::path::Path) -> LocalConfig {
    let pw = dir.join("mha.pw");
    std::fs::write(&pw, "secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cred = RawCredential {
        file: Some(pw),
        env: None,
        ..Default::default()
    };
    LocalConfig::from_raw(
        Default::default(),
        [
            ("mha".to_string(), cred.clone()),
            ("repl".to_string(), cred),
        ]
        .into(),
        [(
            "default".to_string(),
            RawSshProfile {
                // Present (the leader checks they are there); never used: no SSH here.
                key: Some(empty_file(dir.join("id_unused"))),
                known_hosts: Some(empty_file(dir.join("known_hosts"))),
                ..Default::default()
            },
        )]
        .into(),
    )
    .unwrap()
}

/// A spec named `name` with servers db1.. at the given `host:port`s.
fn spec(name: &str, addrs: &[&str]) -> GroupSpec {
    let servers: Vec<_> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (h, p) = a.rsplit_once(':').unwrap();
            (format!("db{}", i + 1), h.to_string(), p.parse().unwrap())
        })
        .collect();
    group_spec(name, &servers)
}

/// The command the leader commits after discovery, proposed directly (no MariaDB here).
fn put_cmd(spec: GroupSpec, replace: bool) -> Cmd {
    Cmd::PutGroup {
        spec: Box::new(spec),
        topology: Box::new(Topology {
            master: "db1".into(),
            servers: Default::default(),
            mode: ReplicationMode::MariadbGtid,
            semisync: false,
            warnings: vec![],
            discovered_at_ms: 0,
        }),
        replace,
        exclusive: true,
    }
}

/// `group add` of gB sharing gA's db2 is refused naming gA and the server; `group update`
/// introducing an overlap likewise; neither contacts a server or changes a group. A group
/// sharing nothing passes the rule. Two concurrent adds sharing a server: one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_belongs_to_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCluster::start_with_local(3, fast_timings(), local(dir.path())).await;
    let leader = c.wait_leader().await;
    let addr = c.addr(leader);
    wait_until(WAIT, "every manager registered the rule's feature", || {
        let s = c.state(leader);
        (1..=3).all(|id| {
            s.managers
                .get(&id)
                .is_some_and(|m| m.features.iter().any(|f| f == FEATURE_EXCLUSIVE_SERVERS))
        })
    })
    .await;
    let (free1, hits1) = counting_server().await;
    let (free2, hits2) = counting_server().await;
    let hits = || hits1.load(Ordering::SeqCst) + hits2.load(Ordering::SeqCst);

    tracing::info!("--- gA holds 10.0.0.1:3306 (db1) and 10.0.0.2:3306 (db2)");
    let ga = spec("gA", &["10.0.0.1:3306", "10.0.0.2:3306"]);
    let r = c.node(leader).propose(put_cmd(ga, false)).await.unwrap();
    assert_eq!(r, CmdResult::Ok);

    tracing::info!("--- group add gB sharing db2 is refused, naming gA and the server");
    let gb = spec("gB", &[&free1, "10.0.0.2:3306"]);
    let e = c.put_group(&addr, &gb, false).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert_eq!(
        e.message(),
        "server 10.0.0.2:3306 (db2) already belongs to group gA"
    );
    assert_eq!(hits(), 0, "refused before any server was contacted");
    assert!(!c.state(leader).groups.contains_key("gB"));

    tracing::info!("--- gB without overlap exists; group update taking gA's db1 is refused");
    let gb = spec("gB", &[&free1, &free2]);
    let r = c.node(leader).propose(put_cmd(gb.clone(), false)).await;
    assert_eq!(r.unwrap(), CmdResult::Ok);
    let grab = spec("gB", &[&free1, "10.0.0.1:3306"]);
    let e = c.put_group(&addr, &grab, true).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert_eq!(
        e.message(),
        "server 10.0.0.1:3306 (db1) already belongs to group gA"
    );
    // (No count here: the leader now monitors gB's servers.)
    assert_eq!(c.state(leader).groups["gB"].spec, gb, "gB unchanged");

    tracing::info!("--- a group sharing nothing passes the rule and goes on to its servers");
    let gc = spec(
        "gC",
        &[&free1.replace("127.0.0.1", "127.0.0.2"), "10.0.0.3:3306"],
    );
    let e = c.put_group(&addr, &gc, false).await.unwrap_err();
    assert_ne!(e.code(), Code::AlreadyExists, "{e:?}");
    assert!(!e.message().contains("already belongs"), "{e:?}");
    // gB's update keeping its own servers passes too (its servers are contacted).
    let e = c.put_group(&addr, &gb, true).await.unwrap_err();
    assert!(!e.message().contains("already belongs"), "{e:?}");
    assert!(hits() > 0, "the servers were contacted");

    tracing::info!("--- two concurrent adds sharing a server: exactly one is applied");
    let gd = spec("gD", &["10.0.1.1:3306", "10.0.1.2:3306"]);
    let ge = spec("gE", &["10.0.1.3:3306", "10.0.1.2:3306"]);
    let n = c.node(leader);
    let (d, e) = tokio::join!(n.propose(put_cmd(gd, false)), n.propose(put_cmd(ge, false)));
    let results = [d.unwrap(), e.unwrap()];
    let ok = results.iter().filter(|r| **r == CmdResult::Ok).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, CmdResult::Rejected(Rejection::ServerInOtherGroup { .. })))
        .count();
    assert_eq!((ok, refused), (1, 1), "{results:?}");
    let s = c.state(leader);
    assert!(s.groups.contains_key("gD") != s.groups.contains_key("gE"));
    c.shutdown().await;
}

/// Creates an empty file at `p`; returns `p`.
fn empty_file(p: std::path::PathBuf) -> std::path::PathBuf {
    std::fs::write(&p, "").unwrap();
    p
}
