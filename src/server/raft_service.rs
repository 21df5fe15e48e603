//! The peer-only Raft RPC service: decodes openraft messages and hands them to the local Raft.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::proto::raft::raft_service_server::RaftService;
use crate::proto::raft::{RaftReply, RaftRequest};
use crate::raft::Raft;

pub struct RaftSvc {
    raft: Raft,
}

impl RaftSvc {
    pub fn new(raft: Raft) -> Self {
        RaftSvc { raft }
    }
}

fn decode<T: DeserializeOwned>(req: Request<RaftRequest>) -> Result<T, Status> {
    serde_json::from_slice(&req.into_inner().payload)
        .map_err(|e| Status::invalid_argument(format!("bad raft payload: {e}")))
}

fn encode<T: Serialize>(res: &T) -> Result<Response<RaftReply>, Status> {
    let payload =
        serde_json::to_vec(res).map_err(|e| Status::internal(format!("encode raft reply: {e}")))?;
    Ok(Response::new(RaftReply { payload }))
}

#[tonic::async_trait]
impl RaftService for RaftSvc {
    #[tracing::instrument(level = "trace", skip_all, fields(rpc = "append_entries"))]
    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let res = self.raft.append_entries(decode(req)?).await;
        encode(&res)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "vote"))]
    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let res = self.raft.vote(decode(req)?).await;
        encode(&res)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "install_snapshot"))]
    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let res = self.raft.install_snapshot(decode(req)?).await;
        encode(&res)
    }
}
