//! ProbeService: a follower probes a group's master from its own zone for the leader.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::proto::probe::probe_service_server::ProbeService;
use crate::proto::probe::{
    DelegateCommitReply, DelegateCommitRequest, DelegateGuardReply, DelegateGuardRequest,
    ProbeReply, ProbeRequest, ReachReply, ReachRequest, RunStepReply, RunStepRequest,
};
use crate::runtime::failover::{delegate, reach};
use crate::runtime::Runtime;
use crate::security::{Caller, Principal};

/// How long a delegate guard waits out a lapse of this leader's lease before answering.
const CONFIRM_LAPSE_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// The node a request claims to come from must be the certificate's (any, without TLS).
fn speaks_for<T>(req: &Request<T>, claimed: u64) -> Result<(), Status> {
    if claimed == 0 {
        return Err(Status::invalid_argument("the request names no manager"));
    }
    match Caller::of(req).principal {
        Principal::Anonymous => Ok(()),
        Principal::Node(id) if id == claimed => Ok(()),
        other => Err(Status::permission_denied(format!(
            "{other} may not speak for node {claimed}"
        ))),
    }
}

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
        let found = crate::runtime::monitor::probe_master(&self.node, &r.group)
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(ProbeReply {
            manager_id: self.node.id(),
            zone: self.node.me.zone.clone(),
            reachable: found.reachable,
            detail: found.detail,
            latency_ms: found.latency.as_millis() as u64,
            host_ssh_reached: found.host_ssh,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "reach", node = self.node.id(), group))]
    async fn reach(&self, req: Request<ReachRequest>) -> Result<Response<ReachReply>, Status> {
        let r = req.into_inner();
        tracing::Span::current().record("group", r.group.as_str());
        let g = crate::runtime::groups::group(&self.node, &r.group)
            .map_err(|e| Status::not_found(e.to_string()))?;
        Ok(Response::new(
            reach::own(&self.node, &g.spec, &r.skip_mysql, &[]).await,
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "run_step", node = self.node.id()))]
    async fn run_step(
        &self,
        req: Request<RunStepRequest>,
    ) -> Result<Response<RunStepReply>, Status> {
        speaks_for(&req, req.get_ref().leader)?;
        delegate::serve(&self.node, req.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "delegate_guard", node = self.node.id()))]
    async fn delegate_guard(
        &self,
        req: Request<DelegateGuardRequest>,
    ) -> Result<Response<DelegateGuardReply>, Status> {
        speaks_for(&req, req.get_ref().node)?;
        // A lapse of this leader's lease in the request's term is waited out briefly (the
        // delegate waits 500 ms for the answer) rather than answered no: a "no" moves the step
        // to another manager. `confirm` then checks strictly.
        let _ = self
            .node
            .raft
            .guard_within(req.get_ref().term, CONFIRM_LAPSE_WAIT)
            .await;
        delegate::confirm(&self.node, req.get_ref()).map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "delegate_commit", node = self.node.id()))]
    async fn delegate_commit(
        &self,
        req: Request<DelegateCommitRequest>,
    ) -> Result<Response<DelegateCommitReply>, Status> {
        speaks_for(&req, req.get_ref().node)?;
        delegate::commit_for(&self.node, req.get_ref())
            .await
            .map(Response::new)
    }
}
