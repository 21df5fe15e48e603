//! Keeps this manager's own record (address, zone) in the replicated state, and lets the first
//! leader name the cluster. Each node is the source of truth for its own zone, so a node added
//! with `mhactl member add` or bootstrapped from `initial_members` (which carries no zones) still
//! ends up with the zone from its own configuration.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::proto::admin::RegisterManagerRequest;
use crate::raft::leader_of;
use crate::runtime::error::RuntimeError;
use crate::runtime::Runtime;
use crate::state::Cmd;

const PERIOD: Duration = Duration::from_millis(300);
const REGISTER_TIMEOUT: Duration = Duration::from_secs(2);
/// A registration the state does not reflect after it was accepted (a leader of an older build
/// ignores the fields it does not know) is sent again this rarely, not every period.
const RESEND: Duration = Duration::from_secs(30);

/// The last registration this node got accepted: to which leader, in which term, when.
#[derive(Default)]
struct Sent {
    to: Option<(u64, u64)>,
    at: Option<std::time::Instant>,
}

/// What this build declares it can apply (the leader records audit entries once every member
/// declared `audit`).
fn features() -> Vec<String> {
    crate::state::audit::FEATURES
        .iter()
        .map(|f| f.to_string())
        .collect()
}

pub async fn run(node: Arc<Runtime>, mut stop: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    let mut sent = Sent::default();
    loop {
        // Back off while registration keeps failing (no quorum), up to ~5 s.
        let wait = PERIOD * (1 << failures.min(4));
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match tick(&node, &mut sent).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, "self-registration pending");
            }
        }
    }
}

/// Registers this manager with the leader: once per leader term (so that every leader's state
/// holds what this build declares, also records written by an older build that dropped fields
/// it did not know), and again when the state differs from this node's identity — at most every
/// [`RESEND`] with the same leader, which may be of an older build and keep ignoring a field.
async fn tick(node: &Runtime, sent: &mut Sent) -> Result<(), RuntimeError> {
    let m = node.raft.metrics();
    let Some((leader_id, leader_addr)) = leader_of(&m) else {
        return Ok(());
    };
    let me = node.id();
    if m.membership_config.membership().get_node(&me).is_none() || node.removed.get().is_some() {
        return Ok(());
    }
    let (registered, named) = node.raft.read(|c| {
        let registered = c.managers.get(&me).is_some_and(|r| {
            r.addr == node.me.advertise
                && r.zone == node.me.zone
                && r.admin_addr == node.me.admin_advertise
                && r.features == features()
                && r.ran
        });
        (registered, c.name.is_some())
    });
    if leader_id == me && !named && node.raft.is_acting_leader() {
        node.raft
            .propose(Cmd::SetClusterName {
                name: node.me.cluster_name.clone(),
            })
            .await?;
    }
    let this_term = Some((leader_id, m.current_term));
    let recently = sent.at.is_some_and(|t| t.elapsed() < RESEND);
    if sent.to == this_term && (registered || recently) {
        return Ok(());
    }
    let cmd = Cmd::RegisterManager {
        id: me,
        addr: node.me.advertise.clone(),
        zone: node.me.zone.clone(),
        admin_addr: node.me.admin_advertise.clone(),
        features: features(),
        by_self: true,
    };
    if leader_id == me {
        node.raft.propose(cmd).await?;
    } else {
        let channel = node
            .raft
            .network()
            .channel(leader_id, &leader_addr)
            .map_err(|e| RuntimeError::Peer(e.to_string()))?;
        let req = RegisterManagerRequest {
            id: me,
            admin_addr: node.me.admin_advertise.clone().unwrap_or_default(),
            addr: node.me.advertise.clone(),
            zone: node.me.zone.clone(),
            features: features(),
        };
        // Bounded: a frozen leader's handshake never answers, and the loop must go on to the
        // next leader.
        let mut client = AdminServiceClient::new(channel);
        tokio::time::timeout(REGISTER_TIMEOUT, client.register_manager(req))
            .await
            .map_err(|_| RuntimeError::Peer(format!("no answer within {REGISTER_TIMEOUT:?}")))?
            .map_err(|e| RuntimeError::Peer(e.message().to_string()))?;
    }
    *sent = Sent {
        to: this_term,
        at: Some(std::time::Instant::now()),
    };
    if registered {
        tracing::debug!(id = me, "registration refreshed for this leader's term");
    } else {
        tracing::info!(id = me, zone = %node.me.zone, "registered this manager in the cluster state");
    }
    Ok(())
}
