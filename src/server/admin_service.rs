//! The public admin service (mhactl's API). Thin handlers: unpack, delegate, convert.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::cluster_view;
use crate::node::NodeInner;
use crate::proto::admin::admin_service_server::AdminService;
use crate::proto::admin::*;
use crate::state::Cmd;

pub struct AdminSvc {
    node: Arc<NodeInner>,
}

impl AdminSvc {
    pub fn new(node: Arc<NodeInner>) -> Self {
        AdminSvc { node }
    }

    fn members(&self) -> Vec<MemberInfo> {
        cluster_view::node_status(&self.node).members
    }
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "node_status", node = self.node.id()))]
    async fn node_status(
        &self,
        _req: Request<NodeStatusRequest>,
    ) -> Result<Response<NodeStatusReply>, Status> {
        Ok(Response::new(cluster_view::node_status(&self.node)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "cluster_status", node = self.node.id()))]
    async fn cluster_status(
        &self,
        req: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusReply>, Status> {
        let local = req.into_inner().local;
        Ok(Response::new(
            cluster_view::cluster_status(&self.node, local).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "init_cluster", node = self.node.id()))]
    async fn init_cluster(
        &self,
        req: Request<InitClusterRequest>,
    ) -> Result<Response<InitClusterReply>, Status> {
        let mut members = BTreeMap::new();
        for m in req.into_inner().members {
            crate::config::check_host_port(&m.addr).map_err(Status::invalid_argument)?;
            if m.id == 0 || members.insert(m.id, m.addr).is_some() {
                return Err(Status::invalid_argument(format!(
                    "member ids must be positive and unique (id {})",
                    m.id
                )));
            }
        }
        self.node.init_cluster(members).await?;
        Ok(Response::new(InitClusterReply {
            members: self.members(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "add_member", node = self.node.id()))]
    async fn add_member(
        &self,
        req: Request<AddMemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        let r = req.into_inner();
        if r.zone.trim().is_empty() {
            return Err(Status::invalid_argument("zone is required"));
        }
        let steps = self
            .node
            .add_member(r.id, r.addr, r.zone, r.learner_only)
            .await?;
        Ok(Response::new(MemberReply {
            members: self.members(),
            steps,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "remove_member", node = self.node.id()))]
    async fn remove_member(
        &self,
        req: Request<RemoveMemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        let steps = self.node.remove_member(req.into_inner().id).await?;
        Ok(Response::new(MemberReply {
            members: self.members(),
            steps,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "register_manager", node = self.node.id()))]
    async fn register_manager(
        &self,
        req: Request<RegisterManagerRequest>,
    ) -> Result<Response<RegisterManagerReply>, Status> {
        let r = req.into_inner();
        crate::config::check_host_port(&r.addr).map_err(Status::invalid_argument)?;
        if r.id == 0 || r.zone.trim().is_empty() {
            return Err(Status::invalid_argument("id and zone are required"));
        }
        self.node
            .propose(Cmd::RegisterManager {
                id: r.id,
                addr: r.addr,
                zone: r.zone,
            })
            .await?;
        Ok(Response::new(RegisterManagerReply {}))
    }
}
