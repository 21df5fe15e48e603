//! Who may do what to a manager cluster running with TLS (as every deployment, the lab and the
//! demo do): every RPC of every service called with no certificate, each client role and a node
//! certificate; certificates of another CA; a member's certificate speaking for another node; a
//! flood of forged votes and appends from a node of the CA that is not a member.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fast_timings, TestCluster};
use mha_raft::proto::raft::raft_service_client::RaftServiceClient;
use mha_raft::proto::raft::RaftRequest;
use mha_raft::raft::TypeConfig;
use mha_raft::security::certs::{write_file, Authority};
use mha_raft::security::policy::RPC_ACCESS;
use mha_raft::security::{Role, TlsFiles, TlsMaterial, Transport};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

fn method(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// What the issue and docs/operations.md promise, written out by hand (not derived from the
/// table under test): reads for readers, acting on servers for operators, changing the cluster
/// for admins, manager-to-manager calls for nodes only.
const READER: &[&str] = &[
    "NodeStatus",
    "ClusterStatus",
    "ListGroups",
    "FailoverHistory",
];
const OPERATOR: &[&str] = &[
    "CheckRepl",
    "CheckSsh",
    "CheckSshLocal",
    "FailoverDryRun",
    "StartFailover",
    "AckFailover",
    "Audit",
    "PauseGroups",
    "ResumeGroups",
    "RejoinServer",
    "StartSwitchover",
];
const ADMIN: &[&str] = &[
    "InitCluster",
    "AddMember",
    "RemoveMember",
    "AddGroup",
    "UpdateGroup",
    "RemoveGroup",
];
/// Node-only, plus the two admin calls managers make to each other.
const NODE: &[&str] = &[
    "AppendEntries",
    "Vote",
    "InstallSnapshot",
    "ProbeMaster",
    "Reach",
    "RunStep",
    "DelegateGuard",
    "DelegateCommit",
    "RegisterManager",
    "NodeStatus",
    "CheckSshLocal",
];

#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Client(Role),
    Node,
}

fn allowed(who: Who, m: &str) -> bool {
    match who {
        Who::Nobody => false,
        Who::Client(Role::Reader) => READER.contains(&m),
        Who::Client(Role::Operator) => READER.contains(&m) || OPERATOR.contains(&m),
        Who::Client(Role::Admin) => {
            READER.contains(&m) || OPERATOR.contains(&m) || ADMIN.contains(&m)
        }
        Who::Node => NODE.contains(&m),
    }
}

async fn channel(transport: &Transport, addr: &str, server_name: &str) -> Channel {
    transport
        .endpoint(addr, server_name)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// TLS that verifies the server but presents no certificate of our own.
async fn anonymous_channel(ca: &std::path::Path, addr: &str) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()))
        .domain_name("mhad");
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Any unary method by path, with an empty message (valid encoding of every request type).
async fn call(ch: Channel, path: &'static str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc
        .unary(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static(path),
            codec,
        )
        .await
    {
        Ok(_) => tonic::Status::ok(""),
        Err(s) => s,
    }
}

fn transport_of(files: &TlsFiles) -> Transport {
    Transport::Tls(Arc::new(TlsMaterial::load(files).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_is_refused_or_admitted_by_role() {
    let c = TestCluster::start(3, fast_timings()).await;
    let leader = c.wait_leader().await;
    let addr = c.addr(leader);
    // A member's certificate (a node that is not a member is refused by the services
    // themselves: see the vote flood below).
    let node_files = c.pki.node(if leader == 1 { 2 } else { 1 });
    let mut checked = 0;
    for who in [
        Who::Nobody,
        Who::Client(Role::Reader),
        Who::Client(Role::Operator),
        Who::Client(Role::Admin),
        Who::Node,
    ] {
        for (path, _) in RPC_ACCESS {
            let ch = match who {
                Who::Nobody => anonymous_channel(&node_files.ca, &addr).await,
                Who::Client(r) => channel(&c.pki.transport(r), &addr, "mhad").await,
                Who::Node => channel(&transport_of(&node_files), &addr, "mhad").await,
            };
            let status = call(ch, path).await;
            let m = method(path);
            // Refused by the role table (the handlers' own checks, such as a node registering
            // another id than its own, say something else).
            let refused = status.code() == Code::Unauthenticated
                || (status.code() == Code::PermissionDenied
                    && status.message().contains("may not call"));
            match who {
                Who::Nobody => {
                    assert_eq!(status.code(), Code::Unauthenticated, "{m}: {status:?}");
                    assert!(
                        status.message().contains("no client certificate"),
                        "{status:?}"
                    );
                }
                _ if allowed(who, m) => {
                    assert!(!refused, "{who:?} must be allowed {m}: {status:?}")
                }
                _ => {
                    assert_eq!(
                        status.code(),
                        Code::PermissionDenied,
                        "{who:?} {m}: {status:?}"
                    );
                    assert!(status.message().contains("may not call"), "{status:?}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * RPC_ACCESS.len());
    // The lists above name every method once between them.
    for (path, _) in RPC_ACCESS {
        let m = method(path);
        assert!(
            [READER, OPERATOR, ADMIN, NODE]
                .iter()
                .any(|l| l.contains(&m)),
            "{m} is in no list"
        );
    }
    c.shutdown().await;
}

fn vote_payload(term: u64, candidate: u64) -> Vec<u8> {
    let req: openraft::raft::VoteRequest<u64> =
        openraft::raft::VoteRequest::new(openraft::Vote::new(term, candidate), None);
    serde_json::to_vec(&req).unwrap()
}

fn term_and_leader(c: &TestCluster, id: u64) -> (u64, Option<u64>) {
    let m = c.node(id).metrics();
    (m.current_term, m.current_leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_raft_messages_change_nothing() {
    let c = TestCluster::start(3, fast_timings()).await;
    let leader = c.wait_leader().await;
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let before = term_and_leader(&c, leader);

    // A node certificate of another CA: the TLS handshake itself fails.
    let foreign = tempfile::tempdir().unwrap();
    let other = Authority::create("elsewhere").unwrap();
    let n2 = other.issue_node(2, &[]).unwrap();
    let d = foreign.path();
    write_file(&d.join("node-2.crt"), &n2.cert_pem, 0o644).unwrap();
    write_file(&d.join("node-2.key"), &n2.key_pem, 0o600).unwrap();
    let ours = c.pki.node(2);
    let foreign_files = TlsFiles {
        ca: ours.ca.clone(),
        cert: d.join("node-2.crt"),
        key: d.join("node-2.key"),
    };
    let ep = transport_of(&foreign_files)
        .endpoint(&c.addr(follower), &format!("node-{follower}"))
        .unwrap();
    let refused = match ep.connect().await {
        Err(_) => true,
        Ok(ch) => RaftServiceClient::new(ch)
            .vote(RaftRequest {
                payload: vote_payload(before.0 + 100, 2),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a certificate of another CA was accepted");

    // A member's valid certificate speaking for another member.
    let ch = channel(
        &transport_of(&c.pki.node(2)),
        &c.addr(follower),
        &format!("node-{follower}"),
    )
    .await;
    let claimed = if follower == 3 { 1 } else { 3 };
    let s = RaftServiceClient::new(ch)
        .vote(RaftRequest {
            payload: vote_payload(before.0 + 100, claimed),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("in the name of node"), "{s:?}");

    // A flood of votes from a node of the CA that is not a member (id 9), 5 per second at ever
    // higher terms, to every member: the leader stays, its term does not move.
    let flood = transport_of(&c.pki.node(9));
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(3) {
        for id in 1..=3 {
            let ch = channel(&flood, &c.addr(id), &format!("node-{id}")).await;
            let s = RaftServiceClient::new(ch)
                .vote(RaftRequest {
                    payload: vote_payload(before.0 + 100 + sent, 9),
                })
                .await
                .unwrap_err();
            assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sent >= 10);
    let after = term_and_leader(&c, leader);
    assert_eq!(after, before, "forged votes moved the term or the leader");

    // The same non-member sending appends (heartbeats) at ever higher terms, which would make
    // any node accepting them step down and follow it: refused; and it cannot read the status
    // (term, last log id) a forged append would need.
    let mut sent = 0;
    while sent < 10 {
        for id in 1..=3 {
            let ch = channel(&flood, &c.addr(id), &format!("node-{id}")).await;
            let req: openraft::raft::AppendEntriesRequest<TypeConfig> =
                openraft::raft::AppendEntriesRequest {
                    vote: openraft::Vote::new_committed(before.0 + 200 + sent, 9),
                    prev_log_id: None,
                    entries: vec![],
                    leader_commit: None,
                };
            let s = RaftServiceClient::new(ch)
                .append_entries(RaftRequest {
                    payload: serde_json::to_vec(&req).unwrap(),
                })
                .await
                .unwrap_err();
            assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
            assert!(s.message().contains("not a member"), "{s:?}");
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ch = channel(&flood, &c.addr(leader), "mhad").await;
    let s = call(ch, "/mha.admin.v1.AdminService/NodeStatus").await;
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert_eq!(
        term_and_leader(&c, leader),
        before,
        "forged appends moved the term or the leader"
    );
    assert_eq!(c.acting_leader(), Some(leader));
    c.shutdown().await;
}
