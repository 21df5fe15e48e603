//! Admin client for mhactl: tries each endpoint in turn (some may be down) and follows "not
//! leader" redirects to the leader's address.

use std::future::Future;
use std::time::Duration;

use std::path::PathBuf;

use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::api::{leader_redirect, leader_redirect_id, needs_confirmation};
use crate::errors::{error_chain, status_text};
use crate::proto::admin::admin_service_client::AdminServiceClient;
use crate::security::identity::{node_name, ANY_NODE_NAME};
use crate::security::{TlsFiles, TlsMaterial, Transport};

/// How many redirects one call follows before giving up (a leader change mid-call costs one).
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("no endpoints given: use --endpoints host:port,... or MHACTL_ENDPOINTS")]
    NoEndpoints,
    #[error("no manager reachable at {tried}: {last}")]
    Unreachable { tried: String, last: String },
    #[error("{0}")]
    Rejected(String),
    /// Refused until the operator confirms (`--yes`): a usage error, exit 2.
    #[error("{0}")]
    NeedsConfirmation(String),
    /// The TLS credentials are missing or unusable (a usage error: exit 2).
    #[error("{0}")]
    Credentials(String),
}

/// mhactl's side of the transport: the cluster CA plus a client certificate (`--ca`, `--cert`,
/// `--key`, or MHACTL_CA, MHACTL_CERT, MHACTL_KEY), or plaintext with `--insecure`.
pub fn client_transport(
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    insecure: bool,
) -> Result<Transport, CtlError> {
    match (ca, cert, key, insecure) {
        (None, None, None, true) => {
            tracing::warn!("--insecure: plaintext, no authentication of the managers or of us");
            Ok(Transport::Insecure)
        }
        (_, _, _, true) => Err(CtlError::Credentials(
            "--insecure together with --ca/--cert/--key: choose one".into(),
        )),
        (Some(ca), Some(cert), Some(key), false) => {
            let m = TlsMaterial::load(&TlsFiles { ca, cert, key })
                .map_err(|e| CtlError::Credentials(e.to_string()))?;
            Ok(Transport::Tls(std::sync::Arc::new(m)))
        }
        _ => Err(CtlError::Credentials(
            "no TLS credentials: give --ca, --cert and --key (or MHACTL_CA, MHACTL_CERT, \
             MHACTL_KEY; made by `mhactl certs init`), or --insecure for managers started with \
             --insecure"
                .into(),
        )),
    }
}

impl CtlError {
    pub fn is_retryable(&self) -> bool {
        match self {
            CtlError::NoEndpoints => false,
            CtlError::Unreachable { .. } => true,
            CtlError::Rejected(_) | CtlError::NeedsConfirmation(_) | CtlError::Credentials(_) => {
                false
            }
        }
    }
}

pub struct AdminClient {
    endpoints: Vec<String>,
    timeout: Duration,
    transport: Transport,
}

/// Outcome of one attempt at one address.
enum Attempt<T> {
    Done(T),
    /// The leader's address and, when the answer named it, its id.
    Redirect(String, Option<u64>),
    /// Transport problem or no leader: try another endpoint.
    Next(String),
    /// The server refused the request; do not retry elsewhere.
    Fail(Status),
}

impl AdminClient {
    pub fn new(
        endpoints: Vec<String>,
        timeout: Duration,
        transport: Transport,
    ) -> Result<Self, CtlError> {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .flat_map(|e| {
                e.split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(CtlError::NoEndpoints);
        }
        Ok(AdminClient {
            endpoints,
            timeout,
            transport,
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The same credentials against other endpoints, with another timeout.
    pub fn with_endpoints(
        &self,
        endpoints: Vec<String>,
        timeout: Duration,
    ) -> Result<Self, CtlError> {
        AdminClient::new(endpoints, timeout, self.transport.clone())
    }

    /// A client for `addr`. At a configured endpoint any manager of the cluster's CA may answer
    /// (the name checked is the one every node certificate carries); at a redirect the leader's
    /// id is known, and its own certificate (`node-<id>`) is required.
    async fn connect(
        &self,
        addr: &str,
        node: Option<u64>,
    ) -> Result<AdminServiceClient<Channel>, String> {
        let name = node.map_or_else(|| ANY_NODE_NAME.to_string(), node_name);
        let ep = self
            .transport
            .endpoint(addr, &name)
            .map_err(|e| format!("{addr}: {}", error_chain(&e)))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        // The whole connection — TCP and the TLS handshake — within the timeout: a frozen
        // manager's kernel still accepts the TCP connection, and its handshake never answers.
        let ch = tokio::time::timeout(self.timeout, ep.connect())
            .await
            .map_err(|_| format!("{addr}: no TLS handshake within {:?}", self.timeout))?
            .map_err(|e| format!("{addr}: {}", error_chain(&e)))?;
        Ok(AdminServiceClient::new(ch))
    }

    async fn attempt<T, F, Fut>(&self, addr: &str, node: Option<u64>, f: &F) -> Attempt<T>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let client = match self.connect(addr, node).await {
            Ok(c) => c,
            Err(e) => return Attempt::Next(e),
        };
        match f(client).await {
            Ok(r) => Attempt::Done(r.into_inner()),
            Err(s) => {
                if let Some(leader) = leader_redirect(&s) {
                    return Attempt::Redirect(leader, leader_redirect_id(&s));
                }
                match s.code() {
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Unknown
                    | Code::Cancelled => Attempt::Next(format!("{addr}: {}", status_text(&s))),
                    _ => Attempt::Fail(s),
                }
            }
        }
    }

    /// Runs `f` against the leader: the first reachable endpoint, following redirects.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, CtlError>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last = String::new();
        for ep in &self.endpoints {
            let mut addr = ep.clone();
            let mut node = None;
            for _ in 0..=MAX_REDIRECTS {
                match self.attempt(&addr, node, &f).await {
                    Attempt::Done(t) => return Ok(t),
                    Attempt::Redirect(leader, id) => {
                        tracing::debug!(from = %addr, to = %leader, "following leader redirect");
                        addr = leader;
                        node = id;
                    }
                    Attempt::Next(e) => {
                        last = e;
                        break;
                    }
                    Attempt::Fail(s) if needs_confirmation(&s) => {
                        return Err(CtlError::NeedsConfirmation(status_text(&s)))
                    }
                    Attempt::Fail(s) => return Err(CtlError::Rejected(status_text(&s))),
                }
            }
        }
        Err(CtlError::Unreachable {
            tried: self.endpoints.join(","),
            last,
        })
    }

    /// Runs `f` against each endpoint itself (no redirects), returning the first success.
    pub async fn call_any<T, F, Fut>(&self, f: F) -> Result<T, CtlError>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last = String::new();
        for ep in &self.endpoints {
            match self.connect(ep, None).await {
                Err(e) => last = e,
                Ok(c) => match f(c).await {
                    Ok(r) => return Ok(r.into_inner()),
                    Err(s) => match s.code() {
                        Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::Unknown
                        | Code::Cancelled => last = format!("{ep}: {}", status_text(&s)),
                        // The node answered and refused: that is the answer, not a reason to
                        // ask another node.
                        _ => return Err(CtlError::Rejected(status_text(&s))),
                    },
                },
            }
        }
        Err(CtlError::Unreachable {
            tried: self.endpoints.join(","),
            last,
        })
    }
}
