//! Membership changes of the manager cluster: add (learner, caught up, then voter), remove, and
//! the one-time bootstrap. The operator's steps come back as text for mhactl to print.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use super::handle::{write_error, NodeError, RaftHandle};
use super::NodeId;
use crate::errors::human_duration;
use crate::state::Cmd;

impl RaftHandle {
    /// Adds a manager: as a learner (waiting until it has caught up), then as a voter unless
    /// `learner_only`; records its address and zone. Returns the steps taken, for the operator.
    #[tracing::instrument(skip_all, fields(node = self.id(), member = id))]
    pub async fn add_member(
        &self,
        id: NodeId,
        addr: String,
        zone: String,
        learner_only: bool,
    ) -> Result<Vec<String>, NodeError> {
        crate::config::check_host_port(&addr).map_err(NodeError::InvalidArgument)?;
        if id == 0 {
            return Err(NodeError::InvalidArgument(
                "id must be a positive integer".into(),
            ));
        }
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if let Some(n) = membership.get_node(&id) {
            if n.addr != addr {
                return Err(NodeError::InvalidArgument(format!(
                    "id {id} is already a member at {}",
                    n.addr
                )));
            }
        }
        if let Some((other, _)) = membership
            .nodes()
            .find(|(nid, n)| n.addr == addr && **nid != id)
        {
            return Err(NodeError::InvalidArgument(format!(
                "address {addr} already belongs to member {other}"
            )));
        }
        let mut steps = Vec::new();
        let t = Instant::now();
        self.raft()
            .add_learner(id, BasicNode { addr: addr.clone() }, true)
            .await
            .map_err(write_error)?;
        steps.push(format!(
            "added {id} ({addr}) as learner; caught up in {}",
            human_duration(t.elapsed())
        ));
        // The features and the admin address are the node's to declare (it registers itself);
        // keep what it already declared from this address.
        let (features, admin_addr) = self.read(|c| {
            c.managers
                .get(&id)
                .filter(|m| m.addr == addr)
                .map(|m| (m.features.clone(), m.admin_addr.clone()))
                .unwrap_or_default()
        });
        self.propose(Cmd::RegisterManager {
            id,
            addr,
            zone,
            admin_addr,
            features,
        })
        .await?;
        if !learner_only {
            let t = Instant::now();
            self.raft()
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                .await
                .map_err(write_error)?;
            steps.push(format!(
                "promoted {id} to voter in {}",
                human_duration(t.elapsed())
            ));
        }
        Ok(steps)
    }

    /// Removes a manager (voter or learner) from the cluster and forgets its metadata.
    #[tracing::instrument(skip_all, fields(node = self.id(), member = id))]
    pub async fn remove_member(&self, id: NodeId) -> Result<Vec<String>, NodeError> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&id).is_none() {
            return Err(NodeError::InvalidArgument(format!("{id} is not a member")));
        }
        let is_voter = membership.voter_ids().any(|v| v == id);
        if is_voter && membership.voter_ids().count() == 1 {
            return Err(NodeError::InvalidArgument(format!(
                "{id} is the last voter; refusing to remove it"
            )));
        }
        let mut steps = Vec::new();
        let t = Instant::now();
        if is_voter {
            self.raft()
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(write_error)?;
            steps.push(format!(
                "removed voter {id} in {}",
                human_duration(t.elapsed())
            ));
        } else {
            self.raft()
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(write_error)?;
            steps.push(format!(
                "removed learner {id} in {}",
                human_duration(t.elapsed())
            ));
        }
        // The leader may have removed itself and stepped down; then the next leader's
        // registration loop is not needed for this record and it stays until forgotten later.
        match self.propose(Cmd::ForgetManager { id }).await {
            Ok(_) => steps.push(format!("forgot manager {id}'s metadata")),
            Err(e) => steps.push(format!("metadata of {id} kept: {e}")),
        }
        Ok(steps)
    }

    /// Bootstraps an uninitialised cluster with `members` (this node alone at `own_addr` when
    /// empty).
    pub async fn init_cluster(
        &self,
        own_addr: &str,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), NodeError> {
        let members = if members.is_empty() {
            BTreeMap::from([(self.id(), own_addr.to_string())])
        } else {
            members
        };
        if !members.contains_key(&self.id()) {
            return Err(NodeError::InvalidArgument(format!(
                "members must include this node ({})",
                self.id()
            )));
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft().initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(NodeError::AlreadyInitialized)
            }
            Err(RaftError::APIError(e)) => Err(NodeError::InvalidArgument(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(NodeError::Fatal(f.to_string())),
        }
    }
}
