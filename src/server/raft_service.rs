//! The peer-only Raft RPC service: decodes openraft messages, checks that the node the message
//! speaks for is the node whose certificate called, and hands them to the local Raft.
//!
//! The authorization layer has already admitted only manager node certificates (or anyone, with
//! `--insecure`). Here the message's claimed sender must be the certificate's node id: a valid
//! node cannot vote or append in another node's name. A vote must also come from a voter this
//! node knows (or reach a node that has no membership yet): votes from outside the cluster are
//! what can make a healthy leader step down, and refusing a vote is always safe. Appends and
//! snapshots are taken from any node of the CA speaking for itself, because a member that was
//! down while a new voter joined and took over leadership learns of that voter only from it.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::proto::raft::raft_service_server::RaftService;
use crate::proto::raft::{RaftReply, RaftRequest};
use crate::raft::{NodeId, Raft};
use crate::security::{Caller, Principal};

pub struct RaftSvc {
    raft: Raft,
}

impl RaftSvc {
    pub fn new(raft: Raft) -> Self {
        RaftSvc { raft }
    }

    /// Whether `candidate` is a voter of this node's membership, or this node has none yet.
    fn knows_voter(&self, candidate: NodeId) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let mut voters = membership.voter_ids().peekable();
        voters.peek().is_none() || membership.voter_ids().any(|v| v == candidate)
    }
}

/// Decodes a payload; garbage is a clean INVALID_ARGUMENT, never a panic.
pub(crate) fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(payload)
        .map_err(|e| Status::invalid_argument(format!("bad raft payload: {e}")))
}

fn encode<T: Serialize>(res: &T) -> Result<Response<RaftReply>, Status> {
    let payload =
        serde_json::to_vec(res).map_err(|e| Status::internal(format!("encode raft reply: {e}")))?;
    Ok(Response::new(RaftReply { payload }))
}

/// The request's caller and its decoded message, refused when the message claims to come from
/// a node other than the certificate's.
fn admit<T: DeserializeOwned>(
    req: Request<RaftRequest>,
    claimed: impl Fn(&T) -> Option<NodeId>,
) -> Result<T, Status> {
    let caller = Caller::of(&req);
    let msg: T = decode_payload(&req.into_inner().payload)?;
    match caller.principal {
        Principal::Anonymous => Ok(msg),
        Principal::Node(id) if claimed(&msg) == Some(id) => Ok(msg),
        other => Err(Status::permission_denied(format!(
            "{other} sent a Raft message in the name of node {}",
            claimed(&msg).map_or("(none)".to_string(), |n| n.to_string())
        ))),
    }
}

#[tonic::async_trait]
impl RaftService for RaftSvc {
    #[tracing::instrument(level = "trace", skip_all, fields(rpc = "append_entries"))]
    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let msg = admit(req, |m: &openraft::raft::AppendEntriesRequest<_>| {
            m.vote.leader_id().voted_for()
        })?;
        encode(&self.raft.append_entries(msg).await)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "vote"))]
    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let msg = admit(req, |m: &openraft::raft::VoteRequest<NodeId>| {
            m.vote.leader_id().voted_for()
        })?;
        let candidate = msg.vote.leader_id().voted_for().unwrap_or_default();
        if !self.knows_voter(candidate) {
            tracing::warn!(
                candidate,
                "vote request from a node that is not a voter refused"
            );
            return Err(Status::permission_denied(format!(
                "node {candidate} is not a voter of this cluster"
            )));
        }
        encode(&self.raft.vote(msg).await)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "install_snapshot"))]
    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let msg = admit(req, |m: &openraft::raft::InstallSnapshotRequest<_>| {
            m.vote.leader_id().voted_for()
        })?;
        encode(&self.raft.install_snapshot(msg).await)
    }
}
