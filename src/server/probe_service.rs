//! ProbeService: a follower probes a group's master from its own zone for the leader.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::proto::probe::probe_service_server::ProbeService;
use crate::proto::probe::{ProbeReply, ProbeRequest};
use crate::runtime::Runtime;

pub struct ProbeSvc {
    node: Arc<Runtime>,
}

impl ProbeSvc {
    pub fn new(node: Arc<Runtime>) -> Self {
        ProbeSvc { node }
    }
}

#[tonic::async_trait]
impl ProbeService for ProbeSvc {
    #[tracing::instrument(skip_all, fields(rpc = "probe_master", node = self.node.id(), group, round))]
    async fn probe_master(
        &self,
        req: Request<ProbeRequest>,
    ) -> Result<Response<ProbeReply>, Status> {
        // Only members get here: the authorization layer refuses node certificates of nodes
        // that are not in this cluster (security::layer).
        let r = req.into_inner();
        self.node
            .raft
            .wait_applied(r.min_applied, std::time::Duration::from_millis(500))
            .await;
        tracing::Span::current()
            .record("group", r.group.as_str())
            .record("round", r.round);
        let (reachable, detail, latency) =
            crate::runtime::monitor::probe_master(&self.node, &r.group)
                .await
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(ProbeReply {
            manager_id: self.node.id(),
            zone: self.node.me.zone.clone(),
            reachable,
            detail,
            latency_ms: latency.as_millis() as u64,
        }))
    }
}
