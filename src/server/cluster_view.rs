//! Builds the per-node and cluster-wide status views served by the admin API.

use std::time::Duration;

use openraft::ServerState;

use crate::proto::admin::{
    CheckGroupRequest, CheckSshReply, ClusterStatusReply, ClusterStatusRequest, ManagerStatus,
    MemberInfo, NodeStatusReply, NodeStatusRequest,
};
use crate::raft::{acting_leader, leader_of, NodeError};
use crate::raft::{Metrics, NodeId};
use crate::runtime::Runtime;
use crate::runtime::{groups, peers};

/// How long the status fan-out waits for one member before calling it unreachable.
const MEMBER_STATUS_TIMEOUT: Duration = Duration::from_millis(700);
/// How long reading one database server may take for the status view.
const GROUP_STATUS_TIMEOUT: Duration = Duration::from_millis(1000);
/// SSH checks connect with a 3 s timeout; a manager gets a little more to answer.
const SSH_CHECK_TIMEOUT: Duration = Duration::from_secs(8);

/// This node's own view.
pub fn node_status(node: &Runtime) -> NodeStatusReply {
    let m = node.raft.metrics();
    let membership = m.membership_config.membership();
    let is_voter = membership.voter_ids().any(|v| v == node.id());
    let removed = node.removed.get();
    let role = match m.state {
        _ if removed.is_some() => "removed",
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Follower if is_voter => "follower",
        ServerState::Follower | ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    };
    let (cluster_name, members) = node.raft.read(|c| {
        let members = membership
            .nodes()
            .map(|(id, n)| MemberInfo {
                id: *id,
                addr: n.addr.clone(),
                zone: c.zone_of(*id).unwrap_or_default().to_string(),
                kind: if membership.voter_ids().any(|v| v == *id) {
                    "voter"
                } else {
                    "learner"
                }
                .to_string(),
            })
            .collect();
        (c.name.clone().unwrap_or_default(), members)
    });
    let leader = leader_of(&m);
    let initialized = membership.nodes().next().is_some();
    NodeStatusReply {
        id: node.id(),
        addr: node.me.advertise.clone(),
        zone: node.me.zone.clone(),
        role: role.to_string(),
        term: m.current_term,
        last_log_index: m.last_log_index,
        applied_index: m.last_applied.map(|l| l.index),
        leader_id: leader.as_ref().map(|l| l.0),
        leader_addr: leader.map(|l| l.1).unwrap_or_default(),
        members,
        cluster_name,
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        initialized,
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        configured_cluster_name: node.me.cluster_name.clone(),
        removed: removed.unwrap_or_default(),
    }
}

/// The cluster-wide view. A follower that knows the leader answers "not leader" unless `local`
/// is set; then (and whenever no leader is known) it answers with what it can reach itself,
/// marked `has_quorum = false`.
pub async fn cluster_status(
    node: &Runtime,
    req: &ClusterStatusRequest,
) -> Result<ClusterStatusReply, NodeError> {
    let local = req.local;
    let m = node.raft.metrics();
    let me = node.id();
    let leader = leader_of(&m);
    if let Some((lid, _)) = &leader {
        if *lid != me && !local {
            return Err(NodeError::NotLeader { leader });
        }
    }
    let acting = acting_leader(&m, node.raft.lease());
    let own = node_status(node);
    let answers = peers::ask_members(
        node,
        MEMBER_STATUS_TIMEOUT,
        |id| (id == me).then(|| own.clone()),
        |mut c| async move { c.node_status(NodeStatusRequest {}).await },
    )
    .await;
    let managers = answers
        .into_iter()
        .map(|a| manager_row(node, &m, &own, a))
        .collect();
    // Per-group view: only the acting leader answers (followers never touch the servers).
    let groups = if acting {
        group_views(node, req).await?
    } else {
        Vec::new()
    };
    Ok(ClusterStatusReply {
        groups,
        cluster: own.cluster_name.clone(),
        leader_id: if acting {
            Some(me)
        } else {
            leader.as_ref().map(|l| l.0)
        },
        term: m.current_term,
        has_quorum: acting,
        managers,
        answered_by: me,
        quorum_note: quorum_note(node, &m, acting, leader.as_ref()),
    })
}

/// Each group, its servers read now or as last observed (the request says which; see
/// ClusterStatusRequest), in name order.
async fn group_views(
    node: &Runtime,
    req: &ClusterStatusRequest,
) -> Result<Vec<crate::proto::admin::GroupLive>, NodeError> {
    let all = groups::groups(node);
    if let Some(unknown) = req.live_groups.iter().find(|g| !all.contains_key(*g)) {
        return Err(NodeError::InvalidArgument(format!("no group {unknown}")));
    }
    // One group: reading its few servers costs nothing, and its table is the whole answer.
    let single = all.len() == 1;
    let (live, observed): (Vec<_>, Vec<_>) = all
        .into_values()
        .partition(|g| !req.observed || single || req.live_groups.contains(&g.spec.name));
    let mut views = groups::live_view(node, live, GROUP_STATUS_TIMEOUT).await;
    views.extend(crate::runtime::observed_view::observed_view(node, observed));
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(views.iter().map(Into::into).collect())
}

/// One manager's row: its own report (or why there is none) plus, on the leader, its lag and
/// when the leader last heard from it.
fn manager_row(
    node: &Runtime,
    m: &Metrics,
    own: &NodeStatusReply,
    a: peers::Answer<NodeStatusReply>,
) -> ManagerStatus {
    let (me, id) = (node.id(), a.id);
    let is_leader = m.state == ServerState::Leader;
    let zone = own
        .members
        .iter()
        .find(|mi| mi.id == id)
        .map(|mi| mi.zone.clone())
        .unwrap_or_default();
    let lag = if !is_leader {
        None
    } else if id == me {
        Some(0)
    } else {
        let leader_last = m.last_log_index.unwrap_or(0);
        m.replication
            .as_ref()
            .and_then(|r| r.get(&id))
            .map(|l| leader_last.saturating_sub(l.map(|l| l.index).unwrap_or(0)))
    };
    let last_heard_ms = (is_leader && id != me)
        .then(|| node.raft.network().stats().since_last_heard(id))
        .flatten()
        .map(|d| d.as_millis() as u64);
    match a.reply {
        Ok(r) => ManagerStatus {
            id,
            addr: a.addr,
            zone: if zone.is_empty() { r.zone } else { zone },
            role: r.role,
            reachable: true,
            term: Some(r.term),
            last_log_index: r.last_log_index,
            applied_index: r.applied_index,
            lag,
            last_heard_ms,
            error: String::new(),
        },
        Err(error) => ManagerStatus {
            id,
            addr: a.addr,
            zone,
            role: "unreachable".to_string(),
            reachable: false,
            term: None,
            last_log_index: None,
            applied_index: None,
            lag,
            last_heard_ms,
            error: error.to_string(),
        },
    }
}

/// Why this view has no quorum, in words (empty when it has one).
fn quorum_note(
    node: &Runtime,
    m: &Metrics,
    acting: bool,
    leader: Option<&(NodeId, String)>,
) -> String {
    let me = node.id();
    let voters = m.membership_config.membership().voter_ids().count();
    let quorum = voters / 2 + 1;
    if acting {
        String::new()
    } else if m.state == ServerState::Leader {
        format!(
            "leader {me} has not been acknowledged by a quorum ({quorum} of {voters} voters) for {} ms",
            m.millis_since_quorum_ack.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
        )
    } else if voters == 0 {
        format!(
            "node {me} is not part of an initialized cluster: start the nodes with initial_members, \
             or run `mhactl cluster init`"
        )
    } else if let Some((lid, laddr)) = leader {
        format!("leader {lid} ({laddr}) could not be reached; this is node {me}'s own view")
    } else {
        format!("no leader elected in term {}: a quorum of {quorum} of {voters} voters must be reachable", m.current_term)
    }
}

/// `check ssh`: every manager (this one included) checks SSH to every server of the group from
/// its own zone; the results are merged. A manager that cannot be asked is listed as such.
pub async fn check_ssh_everywhere(node: &Runtime, group: &str) -> CheckSshReply {
    let req = CheckGroupRequest {
        group: group.to_string(),
        min_applied: node.raft.applied_index(),
    };
    let answers = peers::ask_members(
        node,
        SSH_CHECK_TIMEOUT,
        |_| None,
        |mut c| {
            let req = req.clone();
            async move { c.check_ssh_local(req).await }
        },
    )
    .await;
    let mut out = CheckSshReply::default();
    for a in answers {
        match a.reply {
            Ok(r) => out.results.extend(r.results),
            Err(e) => out
                .unreachable_managers
                .push(format!("manager {} ({}): {e}", a.id, a.addr)),
        }
    }
    out
}
