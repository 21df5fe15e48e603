//! Invariant 7 through the admin API: a group spec names hooks, credentials and an SSH profile,
//! and the leader refuses `group add` / `group update` of a spec naming one that is not in its
//! own config file — before it contacts any server, and without running or reading anything.
//! In-process cluster (real nodes, real gRPC); the group's "DB servers" are plain TCP listeners
//! that count the connections they receive.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{fast_timings, group_spec, TestCluster};
use mha_raft::local_config::{LocalConfig, RawCredential, RawHook, RawSshProfile};
use mha_raft::state::group::{CredentialRef, GroupSpec};
use tokio::net::TcpListener;
use tonic::Code;

/// A "DB server" that accepts and drops connections, counting them.
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

/// Every manager's config: a hook that leaves a mark when it runs, two credentials, a profile.
fn local(dir: &std::path::Path) -> LocalConfig {
    let marker = dir.join("hook-ran");
    let pw = dir.join("mha.pw");
    std::fs::write(&pw, "secret\n").unwrap();
    // Private, as mhad requires of a password file (a group/world-readable one is refused).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    LocalConfig::from_raw(
        [(
            "marker".to_string(),
            RawHook::Argv(vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("echo ran >> {}", marker.display()),
            ]),
        )]
        .into(),
        [
            (
                "mha".to_string(),
                RawCredential {
                    file: Some(pw),
                    env: None,
                    ..Default::default()
                },
            ),
            (
                "repl".to_string(),
                RawCredential {
                    file: None,
                    env: Some("MHA_TEST_REPL_PW".into()),
                    ..Default::default()
                },
            ),
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

fn spec(servers: &[String]) -> GroupSpec {
    let servers: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let (host, port) = addr.rsplit_once(':').unwrap();
            (
                format!("db{}", i + 1),
                host.to_string(),
                port.parse().unwrap(),
            )
        })
        .collect();
    group_spec("g1", &servers)
}

/// A spec naming a hook, credential or SSH profile the leader's config lacks (or a path where a
/// name belongs) is refused at `group add` and `group update` with an error naming the key and
/// the config section; no DB server is contacted, no hook runs, no group is stored. A spec
/// naming only defined entries passes the check and goes on to contact the servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_naming_what_the_leader_lacks_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCluster::start_with_local(3, fast_timings(), local(dir.path())).await;
    let leader = c.wait_leader().await;
    let addr = c.addr(leader);
    let (a, hits_a) = counting_server().await;
    let (b, hits_b) = counting_server().await;
    let servers = [a, b];
    let hits = || hits_a.load(Ordering::SeqCst) + hits_b.load(Ordering::SeqCst);

    tracing::info!("--- names the leader's config lacks, and paths, refused at add and update");
    let mut cases: Vec<(GroupSpec, &str)> = Vec::new();
    let mut s = spec(&servers);
    s.failover.master_ip_failover_script = Some("marker".into());
    s.failover.report_script = Some("send_report".into());
    cases.push((
        s,
        "report_script = \"send_report\" is not defined in [hooks] of this manager's config file",
    ));
    let mut s = spec(&servers);
    s.password = CredentialRef::Name("root_pw".into());
    cases.push((s, "password = \"root_pw\" is not defined in [credentials]"));
    let mut s = spec(&servers);
    s.ssh.profile = "other".into();
    cases.push((
        s,
        "ssh_profile = \"other\" is not defined in [ssh_profiles]",
    ));
    let mut s = spec(&servers);
    s.failover.shutdown_script = Some(format!("/bin/sh -c touch {}/x", dir.path().display()));
    cases.push((s, "shutdown_script: \"/bin/sh -c touch"));
    let mut s = spec(&servers);
    s.repl_password = CredentialRef::Name("/etc/shadow".into());
    cases.push((
        s,
        "repl_password: \"/etc/shadow\" is a path or a command line",
    ));
    for (s, needle) in &cases {
        for update in [false, true] {
            let e = c.put_group(&addr, s, update).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            assert!(
                e.message().contains(needle),
                "update={update}: expected {needle:?} in {}",
                e.message()
            );
        }
    }
    let e = c.put_group(&addr, &cases[0].0, false).await.unwrap_err();
    assert!(
        e.message().starts_with(&format!(
            "invalid argument: group g1 rejected by the leader (manager {leader}): "
        )),
        "{}",
        e.message()
    );
    assert_eq!(hits(), 0, "no server was contacted");
    assert!(!dir.path().join("hook-ran").exists(), "no hook ran");
    assert!(!dir.path().join("x").exists(), "no command ran");
    assert!(c.state(leader).groups.is_empty(), "no group stored");

    tracing::info!("--- a spec naming only defined entries passes the check");
    let mut s = spec(&servers);
    s.failover.master_ip_failover_script = Some("marker".into());
    let e = c.put_group(&addr, &s, false).await.unwrap_err();
    assert!(!e.message().contains("is not defined"), "{e:?}");
    assert!(hits() > 0, "the servers were contacted: {e:?}");
    assert!(!dir.path().join("hook-ran").exists(), "add runs no hook");
    assert!(c.state(leader).groups.is_empty());
    c.shutdown().await;
}

/// Creates an empty file at `p`; returns `p`.
fn empty_file(p: std::path::PathBuf) -> std::path::PathBuf {
    std::fs::write(&p, "").unwrap();
    p
}
