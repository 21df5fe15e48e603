//! Before `member add` changes anything, the leader calls the manager at the given address over
//! the peer transport, with its own node certificate (a manager without a membership lets any
//! node of the CA in), and checks that it is the node the operator named, configured for this
//! cluster, and not part of a cluster already. A typo in `--addr` or `--id` is then refused
//! with what is (or is not) at that address, instead of adding a member that never answers and
//! silently costing the cluster its fault tolerance (issue #14).

use std::time::Duration;

use tonic::Code;

use super::{Network, NodeError, NodeId};
use crate::errors::status_text;
use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::proto::admin::{NodeStatusReply, NodeStatusRequest};
use crate::security::identity::{node_name, ANY_NODE_NAME};

/// How long the new manager may take to answer (connect, TLS, status).
const JOIN_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

const NOTHING: &str = "nothing was changed";

enum Failure {
    /// No connection: nothing listens, or the TLS handshake failed (its text says which).
    Connect(String),
    /// Connected, and the manager refused or failed the call.
    Status(tonic::Status),
}

async fn node_status(
    net: &Network,
    addr: &str,
    server_name: &str,
) -> Result<NodeStatusReply, Failure> {
    let ch = net
        .probe_channel(addr, server_name, JOIN_CHECK_TIMEOUT)
        .await
        .map_err(Failure::Connect)?;
    let mut client = AdminServiceClient::new(ch);
    let call = client.node_status(NodeStatusRequest {});
    match tokio::time::timeout(JOIN_CHECK_TIMEOUT, call).await {
        Err(_) => Err(Failure::Connect(format!(
            "no answer within {JOIN_CHECK_TIMEOUT:?}"
        ))),
        Ok(Err(s)) => Err(Failure::Status(s)),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

/// rustls's words for a certificate issued to another name.
fn wrong_name(e: &str) -> bool {
    e.contains("not valid for name") || e.contains("NotValidForName")
}

/// A handshake that failed on the certificate (another CA, expired, wrong name).
fn tls_problem(e: &str) -> bool {
    e.contains("certificate") || e.contains("Certificate") || e.contains("tls handshake")
}

fn refused(msg: String) -> NodeError {
    NodeError::JoinRefused(msg)
}

/// Checks the manager at `addr` before it is added as `id` to cluster `cluster`; `ours`: it is
/// already a member of this cluster at that address (a `member add` repeated to promote a
/// learner), so its having a membership is expected. Returns a line for the operator.
#[tracing::instrument(skip_all, fields(member = id, addr = %addr))]
pub async fn check_joiner(
    net: &Network,
    id: NodeId,
    addr: &str,
    cluster: &str,
    ours: bool,
) -> Result<String, NodeError> {
    let status = match node_status(net, addr, &node_name(id)).await {
        Ok(s) => s,
        Err(Failure::Connect(e)) if net.is_tls() && wrong_name(&e) => {
            // A manager of this CA answers, but not as node-<id>: ask it who it is, for the
            // message (any node certificate carries the common name).
            let who = match node_status(net, addr, ANY_NODE_NAME).await {
                Ok(s) => format!("it is node {}", s.id),
                Err(_) => "it is another node".to_string(),
            };
            return Err(refused(format!(
                "the manager at {addr} is not node {id} (its certificate is not issued to \
                 {}: {who}); check --id and --addr; {NOTHING}",
                node_name(id)
            )));
        }
        Err(Failure::Connect(e)) if net.is_tls() && tls_problem(&e) => {
            return Err(refused(format!(
                "the process at {addr} does not present a certificate of this cluster's CA \
                 ({e}); {NOTHING}"
            )))
        }
        Err(Failure::Connect(e)) => {
            return Err(refused(format!(
                "no manager answers at {addr}: {e}; {NOTHING}"
            )))
        }
        Err(Failure::Status(s)) if s.code() == Code::PermissionDenied => {
            return Err(refused(format!(
                "the manager at {addr} refuses this manager ({}): it is a member of another \
                 cluster; {NOTHING}",
                status_text(&s)
            )))
        }
        Err(Failure::Status(s)) => {
            return Err(refused(format!(
                "the manager at {addr} did not tell its status ({}); {NOTHING}",
                status_text(&s)
            )))
        }
    };
    // Without TLS the reported id is all there is to compare.
    if status.id != id {
        return Err(refused(format!(
            "the manager at {addr} is node {}, not node {id}; check --id and --addr; {NOTHING}",
            status.id
        )));
    }
    let theirs = &status.configured_cluster_name;
    if !theirs.is_empty() && theirs != cluster {
        return Err(refused(format!(
            "the manager at {addr} (node {id}) is configured for cluster {theirs:?}, this is \
             cluster {cluster:?}; {NOTHING}"
        )));
    }
    if status.initialized && !ours {
        let members: Vec<String> = status.members.iter().map(|m| m.id.to_string()).collect();
        let name = match status.cluster_name.as_str() {
            "" => String::new(),
            n => format!(" of cluster {n:?}"),
        };
        return Err(refused(format!(
            "the manager at {addr} (node {id}) already has a membership{name} (members {}): a \
             manager joins with an empty data dir and no initial_members; stop it, delete its \
             data dir, start it again, and repeat; {NOTHING}",
            members.join(", ")
        )));
    }
    Ok(format!(
        "node {id} answers at {addr}{}",
        if net.is_tls() {
            format!(" with the certificate of {}", node_name(id))
        } else {
            String::new()
        }
    ))
}
