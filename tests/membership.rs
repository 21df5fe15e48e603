//! Membership safety (issue #14), in-process on loopback: `member add` checks the manager at the
//! address before it changes anything (nothing listening, another node's certificate or id,
//! another cluster's configuration or membership: refused, membership unchanged), promotes only
//! after the learner's log really matches the leader's (a learner that does not catch up in time
//! stays one), and `member remove` asks for confirmation when the cluster left behind could not
//! survive one more failure. A removed manager notices, says so and steps aside.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{fast_timings, wait_until, TestCluster, WAIT};
use mha_raft::proto::admin::admin_service_client::AdminServiceClient;
use mha_raft::proto::admin::NodeStatusRequest;
use mha_raft::raft::{AddMember, NodeError};
use mha_raft::security::Role;
use mha_raft::state::Cmd;

fn add(id: u64, addr: &str) -> AddMember {
    AddMember {
        id,
        addr: addr.to_string(),
        zone: format!("zone-{id}"),
        learner_only: false,
        catch_up_timeout: WAIT,
    }
}

fn reg(id: u64) -> Cmd {
    Cmd::RegisterManager {
        id,
        addr: format!("10.9.0.{id}:7101"),
        zone: format!("z{id}"),
        admin_addr: None,
        features: vec![],
        by_self: false,
    }
}

fn voters(c: &TestCluster, id: u64) -> BTreeSet<u64> {
    let m = c.node(id).metrics();
    m.membership_config.membership().voter_ids().collect()
}

fn members(c: &TestCluster, id: u64) -> BTreeSet<u64> {
    let m = c.node(id).metrics();
    let ids = m.membership_config.membership().nodes().map(|(id, _)| *id);
    ids.collect()
}

/// An address where nothing listens (bound, then released).
async fn dead_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

fn refusal(r: Result<mha_raft::raft::MemberChange, NodeError>) -> String {
    match r {
        Err(NodeError::JoinRefused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The index N of "caught up: matched index N of N in ..." (both numbers must be equal).
fn caught_up_index(steps: &[String]) -> u64 {
    let line = steps
        .iter()
        .find(|s| s.starts_with("caught up: matched index "))
        .unwrap_or_else(|| panic!("no catch-up step in {steps:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[4], words[6], "{line}");
    words[4].parse().unwrap()
}

/// With TLS: a dead address, a manager with another node's certificate, one configured for
/// another cluster and one that has a cluster of its own are refused with what is there, and
/// nothing changes; the right node is added, caught up for real, and promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_add_checks_the_manager_before_changing_anything() {
    let mut c = TestCluster::start(3, fast_timings()).await;
    let leader = c.wait_leader().await;
    let before = members(&c, leader);

    tracing::info!("--- nothing listens at the address");
    let dead = dead_addr().await;
    let m = refusal(c.node(leader).add_member(add(4, &dead)).await);
    assert!(
        m.starts_with(&format!("no manager answers at {dead}: ")),
        "{m}"
    );
    assert!(m.ends_with("nothing was changed"), "{m}");
    assert_eq!(members(&c, leader), before);

    tracing::info!("--- node 5 answers where node 4 is expected");
    let addr5 = c.start_joiner(5).await;
    let m = refusal(c.node(leader).add_member(add(4, &addr5)).await);
    assert!(
        m.starts_with(&format!(
            "the manager at {addr5} is not node 4 (its certificate is not issued to node-4: it \
             is node 5)"
        )),
        "{m}"
    );
    assert_eq!(members(&c, leader), before);

    tracing::info!("--- a manager configured for another cluster");
    let addr6 = c
        .start_joiner_with(6, |cfg| cfg.cluster_name = "other".into())
        .await;
    let m = refusal(c.node(leader).add_member(add(6, &addr6)).await);
    assert!(
        m.contains("is configured for cluster \"other\", this is cluster \"test\""),
        "{m}"
    );

    tracing::info!("--- a manager that bootstrapped a cluster of its own");
    c.node(5)
        .init_cluster(&addr5, BTreeMap::new())
        .await
        .unwrap();
    wait_until(WAIT, "node 5 leads its own cluster", || {
        c.node(5).is_acting_leader()
    })
    .await;
    let m = refusal(c.node(leader).add_member(add(5, &addr5)).await);
    assert!(
        m.contains("refuses this manager") && m.contains("member of another cluster"),
        "{m}"
    );
    assert_eq!(members(&c, leader), before);

    tracing::info!("--- the right node: checked, learner, caught up for real, voter");
    for i in 0..20 {
        c.node(leader).propose(reg(400 + i)).await.unwrap();
    }
    let addr4 = c.start_joiner(4).await;
    let change = c.node(leader).add_member(add(4, &addr4)).await.unwrap();
    let steps = &change.steps;
    assert!(!change.incomplete, "{steps:?}");
    assert_eq!(
        steps[0],
        format!("node 4 answers at {addr4} with the certificate of node-4")
    );
    assert_eq!(steps[1], format!("added 4 ({addr4}) as learner"));
    let n = caught_up_index(steps);
    assert!(
        steps.last().unwrap().starts_with("promoted 4 to voter"),
        "{steps:?}"
    );
    // The reported index is the leader's log, and the learner had all of it.
    assert!(n > 20, "{steps:?}");
    let matched = c.node(leader).metrics().replication.unwrap()[&4]
        .unwrap()
        .index;
    assert!(matched >= n, "matched {matched} < reported {n}");
    assert_eq!(voters(&c, leader), BTreeSet::from([1, 2, 3, 4]));
    wait_until(WAIT, "node 4 zone registered", || {
        c.state(leader).zone_of(4) == Some("zone-4")
    })
    .await;

    tracing::info!("--- the same address under another id is refused");
    assert!(matches!(
        c.node(leader).add_member(add(7, &addr4)).await,
        Err(NodeError::InvalidArgument(_))
    ));
    c.shutdown().await;
}

/// Without TLS the id the manager reports is compared: node 5 at the address of "node 4" is
/// refused; a dead address too; the right id is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_add_insecure_compares_the_reported_id() {
    let mut c = TestCluster::start_insecure(3, fast_timings()).await;
    let leader = c.wait_leader().await;
    let before = members(&c, leader);
    let addr5 = c.start_joiner(5).await;
    let m = refusal(c.node(leader).add_member(add(4, &addr5)).await);
    assert!(
        m.starts_with(&format!("the manager at {addr5} is node 5, not node 4")),
        "{m}"
    );
    let dead = dead_addr().await;
    let m = refusal(c.node(leader).add_member(add(4, &dead)).await);
    assert!(
        m.starts_with(&format!("no manager answers at {dead}")),
        "{m}"
    );
    assert_eq!(members(&c, leader), before);
    let change = c.node(leader).add_member(add(5, &addr5)).await.unwrap();
    assert_eq!(change.steps[0], format!("node 5 answers at {addr5}"));
    caught_up_index(&change.steps);
    assert_eq!(voters(&c, leader), BTreeSet::from([1, 2, 3, 5]));
    c.shutdown().await;
}

/// A learner the leader cannot replicate to is not promoted: it stays a learner, the answer says
/// so and how to go on, the voters are unchanged. Once it can catch up, `member add` again
/// promotes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_that_does_not_catch_up_stays_a_learner() {
    let mut c = TestCluster::start(3, fast_timings()).await;
    let leader = c.wait_leader().await;
    let addr4 = c.start_joiner(4).await;
    tracing::info!("--- the leader's Raft traffic to 4 is cut (the check still reaches it)");
    c.node(leader).network().stats().block(4);
    let req = AddMember {
        catch_up_timeout: Duration::from_millis(300),
        ..add(4, &addr4)
    };
    let change = c.node(leader).add_member(req).await.unwrap();
    assert!(change.incomplete, "{:?}", change.steps);
    let steps = change.steps.join("\n");
    assert!(
        steps.contains("not caught up within 300 ms: matched nothing of"),
        "{steps}"
    );
    assert!(steps.contains("4 stays a learner"), "{steps}");
    assert!(steps.contains("mhactl member remove --id 4"), "{steps}");
    assert!(!steps.contains("promoted"), "{steps}");
    assert_eq!(voters(&c, leader), BTreeSet::from([1, 2, 3]));
    assert!(members(&c, leader).contains(&4));

    tracing::info!("--- traffic back: member add again promotes the learner");
    c.heal();
    let change = c.node(leader).add_member(add(4, &addr4)).await.unwrap();
    assert!(!change.incomplete, "{:?}", change.steps);
    assert_eq!(change.steps[1], format!("4 ({addr4}) is already a learner"));
    caught_up_index(&change.steps);
    assert_eq!(voters(&c, leader), BTreeSet::from([1, 2, 3, 4]));
    c.shutdown().await;
}

/// Removing a voter of three needs confirmation (two voters cannot lose one), says why, and
/// changes nothing without it; confirmed, it is done. The removed manager notices that it was
/// removed, reports the role `removed` and stops taking part, and the rest goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_down_to_two_voters_needs_confirmation() {
    let c = TestCluster::start(3, fast_timings()).await;
    let leader = c.wait_leader().await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let rest: BTreeSet<u64> = [1, 2, 3].into_iter().filter(|id| *id != victim).collect();
    let rest_list = rest
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");

    tracing::info!(
        victim,
        "--- without confirmation: refused, explained, nothing changed"
    );
    match c.node(leader).remove_member(victim, false).await {
        Err(NodeError::NeedsConfirmation(m)) => assert_eq!(
            m,
            format!(
                "after removing {victim} the cluster has 2 voters ({rest_list}) and a quorum \
                 needs 2: the loss of any one manager stops it (no failover, no changes); \
                 nothing was changed: to remove {victim} anyway, repeat with --yes"
            )
        ),
        other => panic!("expected NeedsConfirmation, got {other:?}"),
    }
    assert_eq!(voters(&c, leader), BTreeSet::from([1, 2, 3]));

    tracing::info!("--- confirmed: removed");
    let change = c.node(leader).remove_member(victim, true).await.unwrap();
    assert!(
        change.steps[0].starts_with("confirmed (--yes): after removing"),
        "{change:?}"
    );
    assert!(change.steps[1].starts_with(&format!("removed voter {victim} in ")));
    assert_eq!(voters(&c, leader), rest);

    tracing::info!("--- the removed manager notices and says so in its status");
    wait_until(WAIT, "the removed node knows it was removed", || {
        c.runtime(victim).removed.get().is_some()
    })
    .await;
    let channel = c
        .pki
        .transport(Role::Reader)
        .endpoint(&c.addr(victim), "mhad")
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = AdminServiceClient::new(channel)
        .node_status(NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.role, "removed");
    assert!(
        status.removed.contains("refuse it as a non-member")
            || status.removed.contains("no longer lists it"),
        "{}",
        status.removed
    );
    tracing::info!("--- the other two go on");
    assert!(c.node(leader).is_acting_leader());
    c.node(leader).propose(reg(77)).await.unwrap();
    c.shutdown().await;
}
