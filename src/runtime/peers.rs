//! Asking every manager of the cluster something over the admin API, in parallel, each bounded
//! by a timeout: the cluster-wide status and `check ssh` fan out this way. The caller may answer
//! for this node itself (`skip`) instead of calling it over the network.

use std::future::Future;
use std::time::Duration;

use futures::future::join_all;
use tonic::transport::Channel;

use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::raft::NodeId;
use crate::runtime::error::RuntimeError;
use crate::runtime::Runtime;

/// One member's answer, or why there is none.
pub struct Answer<T> {
    pub id: NodeId,
    pub addr: String,
    pub reply: Result<T, RuntimeError>,
}

/// Every member (voters and learners) in membership order.
pub fn members(rt: &Runtime) -> Vec<(NodeId, String)> {
    rt.raft
        .metrics()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, n)| (*id, n.addr.clone()))
        .collect()
}

/// Calls `call` on every member except those `skip` answers for, in parallel; a member that
/// does not answer within `timeout` is reported as such.
pub async fn ask_members<T, F, Fut>(
    rt: &Runtime,
    timeout: Duration,
    skip: impl Fn(NodeId) -> Option<T>,
    call: F,
) -> Vec<Answer<T>>
where
    F: Fn(AdminServiceClient<Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let asks = members(rt).into_iter().map(|(id, addr)| {
        let local = skip(id);
        let call = &call;
        async move {
            let reply = match local {
                Some(r) => Ok(r),
                None => ask(rt, id, &addr, timeout, call).await,
            };
            Answer { id, addr, reply }
        }
    });
    join_all(asks).await
}

async fn ask<T, F, Fut>(
    rt: &Runtime,
    id: NodeId,
    addr: &str,
    timeout: Duration,
    call: &F,
) -> Result<T, RuntimeError>
where
    F: Fn(AdminServiceClient<Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let channel = rt
        .raft
        .network()
        .channel(id, addr)
        .map_err(|e| RuntimeError::Peer(e.to_string()))?;
    match tokio::time::timeout(timeout, call(AdminServiceClient::new(channel))).await {
        Err(_) => Err(RuntimeError::Peer(format!("no answer within {timeout:?}"))),
        Ok(Err(s)) => Err(RuntimeError::Peer(crate::errors::status_text(&s))),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

/// How many voting managers the cluster has now, this node included (at least 1).
pub fn voters(rt: &Runtime) -> usize {
    rt.raft
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .count()
        .max(1)
}
