//! The audit trail through the admin API, over TLS with client certificates: admin writes that
//! succeed, fail on the state's rules, fail on bad arguments or fail against the DB servers are
//! each recorded once, by the leader that served them (also when mhactl reached a follower
//! first), with the certificate's name and role, the caller's address, the RPC, its arguments
//! and the result; the trail is replicated to every manager; no credential of the managers'
//! config appears in it; operators read it, readers may not; calls the role table refuses are
//! not recorded.

mod common;

use std::time::Duration;

use common::{fast_timings, group_spec, wait_until, TestCluster, WAIT};
use mha_raft::api::pb;
use mha_raft::ctl::AdminClient;
use mha_raft::local_config::{LocalConfig, RawCredential, RawSshProfile};
use mha_raft::security::Role;
use mha_raft::state::audit::FEATURE_AUDIT;
use mha_raft::state::AuditRecord;
use tokio::net::TcpListener;

const SECRET: &str = "Aud1t-never-shown-pw";

/// Every manager's config: a credential whose password must never reach the trail.
fn local(dir: &std::path::Path) -> LocalConfig {
    let pw = dir.join("mha.pw");
    std::fs::write(&pw, format!("{SECRET}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cred = RawCredential {
        file: Some(pw),
        env: None,
        allow_readable: false,
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

/// A "DB server" that accepts and drops connections: the leader's discovery fails against it.
async fn dropping_server() -> (String, u32) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    (addr.ip().to_string(), u32::from(addr.port()))
}

fn spec(name: &str, host: &str, port: u32) -> pb::GroupSpec {
    let servers: Vec<_> = ["db1", "db2"]
        .iter()
        .map(|n| (n.to_string(), host.to_string(), port as u16))
        .collect();
    (&group_spec(name, &servers)).into()
}

fn client(c: &TestCluster, endpoint: &str, role: Role) -> AdminClient {
    AdminClient::new(
        vec![endpoint.to_string()],
        Duration::from_secs(10),
        c.pki.transport(role),
    )
    .unwrap()
}

fn trail(c: &TestCluster, id: u64) -> Vec<AuditRecord> {
    c.state(id).audit.records.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_writes_are_audited_with_who_from_what_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = TestCluster::start_with_local(3, fast_timings(), local(dir.path())).await;
    let leader = c.wait_leader().await;
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    // mhactl reaches a follower first and follows its redirect: the leader records the call.
    let admin = client(&c, &c.addr(follower), Role::Admin);
    let operator = client(&c, &c.addr(follower), Role::Operator);
    let reader = client(&c, &c.addr(follower), Role::Reader);
    wait_until(WAIT, "every manager declared the audit feature", || {
        c.state(leader)
            .lacking_feature([1, 2, 3], FEATURE_AUDIT)
            .is_none()
    })
    .await;
    let before = c.state(leader).audit.total;

    tracing::info!(
        "--- admin: a group that does not exist, a bad member, a group the servers refuse"
    );
    let e = admin
        .call(|mut a| async move {
            a.remove_group(pb::RemoveGroupRequest {
                name: "nope".into(),
            })
            .await
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    admin
        .call(|mut a| async move {
            a.add_member(pb::AddMemberRequest {
                id: 9,
                addr: "127.0.0.1:1".into(),
                zone: " ".into(),
                learner_only: false,
                catch_up_timeout_ms: 0,
            })
            .await
        })
        .await
        .unwrap_err();
    let (host, port) = dropping_server().await;
    let s = spec("app", &host, port);
    admin
        .call(|mut a| {
            let s = s.clone();
            async move { a.add_group(pb::PutGroupRequest { spec: Some(s) }).await }
        })
        .await
        .unwrap_err();

    tracing::info!("--- operator: failover and ack of a group that does not exist");
    operator
        .call(|mut a| async move {
            a.start_failover(pb::FailoverRequest {
                group: "app".into(),
                new_master: "db2".into(),
            })
            .await
        })
        .await
        .unwrap_err();
    operator
        .call(|mut a| async move {
            a.ack_failover(pb::AckFailoverRequest {
                group: "app".into(),
            })
            .await
        })
        .await
        .unwrap_err();

    tracing::info!("--- a reader's write is refused by the role table and not recorded");
    let e = reader
        .call(|mut a| async move {
            a.remove_group(pb::RemoveGroupRequest {
                name: "nope".into(),
            })
            .await
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("may not call"), "{e}");

    tracing::info!("--- admin: a member added and removed (successes)");
    let joiner = c.start_joiner(4).await;
    let j = joiner.clone();
    admin
        .call(|mut a| {
            let j = j.clone();
            async move {
                a.add_member(pb::AddMemberRequest {
                    id: 4,
                    addr: j,
                    zone: "zone-d".into(),
                    learner_only: true,
                    catch_up_timeout_ms: 0,
                })
                .await
            }
        })
        .await
        .unwrap();
    // Recorded once the new member declared that it knows audit entries.
    wait_until(WAIT, "AddMember recorded", || {
        trail(&c, leader)
            .iter()
            .any(|r| r.entry.rpc == "AddMember" && r.entry.result == "ok")
    })
    .await;
    admin
        .call(|mut a| async move {
            a.remove_member(pb::RemoveMemberRequest {
                id: 4,
                confirmed: false,
            })
            .await
        })
        .await
        .unwrap();
    c.stop(4).await;
    // The new member's own registration is an admin write too, by its node certificate.
    assert!(trail(&c, leader)
        .iter()
        .any(|r| r.entry.rpc == "RegisterManager"
            && r.entry.who == "node-4"
            && r.entry.result == "ok"));

    let records: Vec<AuditRecord> = trail(&c, leader)
        .into_iter()
        .filter(|r| r.seq > before && r.entry.rpc != "RegisterManager")
        .collect();
    let summary: Vec<(String, String, String, String)> = records
        .iter()
        .map(|r| {
            (
                r.entry.who.clone(),
                r.entry.rpc.clone(),
                r.entry.what.clone(),
                r.entry.result.clone(),
            )
        })
        .collect();
    let row = |who: &str, rpc: &str, what: &str, result: &str| {
        (
            who.to_string(),
            rpc.to_string(),
            what.to_string(),
            result.to_string(),
        )
    };
    assert_eq!(
        summary,
        vec![
            row("admin (admin)", "RemoveGroup", "group nope", "NOT_FOUND"),
            row(
                "admin (admin)",
                "AddMember",
                "member 9 at 127.0.0.1:1 in zone  ",
                "INVALID_ARGUMENT"
            ),
            row(
                "admin (admin)",
                "AddGroup",
                "group app (db1,db2)",
                "INVALID_ARGUMENT"
            ),
            row(
                "operator (operator)",
                "StartFailover",
                "group app, new master db2",
                "NOT_FOUND"
            ),
            row(
                "operator (operator)",
                "AckFailover",
                "group app",
                "NOT_FOUND"
            ),
            row(
                "admin (admin)",
                "AddMember",
                &format!("member 4 at {joiner} in zone zone-d (learner)"),
                "ok"
            ),
            row("admin (admin)", "RemoveMember", "member 4", "ok"),
        ],
        "{records:#?}"
    );
    for r in &records {
        assert_eq!(r.entry.manager, leader, "{r:?}");
        assert!(r.entry.from.starts_with("127.0.0.1:"), "{r:?}");
        assert!(
            !c.live().iter().any(|id| c.addr(*id) == r.entry.from),
            "{r:?}"
        );
        assert!(r.at_ms > 0);
    }
    assert_eq!(records[0].entry.detail, "group nope does not exist");
    assert!(
        records[6].entry.detail.contains("removed"),
        "{:?}",
        records[6]
    );
    assert!(records.windows(2).all(|w| w[0].seq < w[1].seq));

    tracing::info!("--- replicated to every manager; operators read it; readers may not");
    wait_until(WAIT, "the trail on every manager", || {
        (1..=3).all(|id| trail(&c, id) == trail(&c, leader))
    })
    .await;
    let reply = operator
        .call(|mut a| async move { a.audit(pb::AuditRequest { limit: 3 }).await })
        .await
        .unwrap();
    assert_eq!(reply.records.len(), 3);
    assert_eq!(reply.answered_by, follower);
    assert_eq!(reply.total, c.state(leader).audit.total);
    let wire: Vec<AuditRecord> = reply.records.into_iter().map(Into::into).collect();
    assert_eq!(wire, trail(&c, leader)[trail(&c, leader).len() - 3..]);
    let e = reader
        .call(|mut a| async move { a.audit(pb::AuditRequest { limit: 0 }).await })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("may not call Audit"), "{e}");
    let all = admin
        .call(|mut a| async move { a.audit(pb::AuditRequest { limit: 0 }).await })
        .await
        .unwrap();
    let text = format!("{all:?}");
    assert!(!text.contains(SECRET), "a password reached the audit trail");
    assert!(
        !text.contains("reader (reader)"),
        "a refused call was recorded"
    );
    let snapshot = serde_json::to_string(&c.state(leader)).unwrap();
    assert!(!snapshot.contains(SECRET));
    c.shutdown().await;
}

/// Creates an empty file at `p`; returns `p`.
fn empty_file(p: std::path::PathBuf) -> std::path::PathBuf {
    std::fs::write(&p, "").unwrap();
    p
}
