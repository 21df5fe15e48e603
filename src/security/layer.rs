//! The authorization layer in front of every gRPC service of a node: it names the caller from
//! its verified client certificate, checks the method against [`super::policy`], and either
//! refuses (UNAUTHENTICATED / PERMISSION_DENIED, logged) or passes the request on with the
//! [`Caller`] in its extensions for handlers that check more (the Raft service matches the
//! node id a message claims against the certificate's).

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

use super::identity::{principal_of, Principal};
use super::policy::authorize;

/// The authenticated caller of a request, as handlers find it in the request's extensions.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub addr: Option<SocketAddr>,
}

impl Caller {
    /// The caller of a request that went through [`AuthLayer`]. A request without one did not
    /// (a test calling a handler directly) and is treated as anonymous.
    pub fn of<T>(req: &tonic::Request<T>) -> Caller {
        req.extensions().get::<Caller>().cloned().unwrap_or(Caller {
            principal: Principal::Anonymous,
            addr: None,
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// TLS with client certificates: every call must present one from the cluster CA.
    Certificates,
    /// `--insecure`: every caller is anonymous and every call allowed.
    Insecure,
}

/// Whether a node id is a member of this node's cluster (voter or learner), or this node has
/// no membership yet (it is being bootstrapped or added, and must hear from its future peers).
pub type MemberCheck = Arc<dyn Fn(u64) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct AuthLayer {
    mode: Mode,
    peer_only: bool,
    members: Option<MemberCheck>,
}

impl AuthLayer {
    pub fn certificates() -> Self {
        AuthLayer {
            mode: Mode::Certificates,
            peer_only: false,
            members: None,
        }
    }

    pub fn insecure() -> Self {
        AuthLayer {
            mode: Mode::Insecure,
            peer_only: false,
            members: None,
        }
    }

    /// For the peer listener when the admin API has its own: only manager nodes are served.
    pub fn peer_only(self) -> Self {
        AuthLayer {
            peer_only: true,
            ..self
        }
    }

    /// Node certificates are served only for members: a certificate of the CA whose node was
    /// never added, or was removed, can neither append, snapshot, vote, probe nor register,
    /// nor read the status a forged append would need.
    pub fn members(self, check: MemberCheck) -> Self {
        AuthLayer {
            members: Some(check),
            ..self
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            mode: self.mode,
            peer_only: self.peer_only,
            members: self.members.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    mode: Mode,
    peer_only: bool,
    members: Option<MemberCheck>,
}

impl<S> Authorize<S> {
    fn principal<B>(&self, req: &http::Request<B>) -> Result<Principal, Status> {
        match self.mode {
            Mode::Insecure => Ok(Principal::Anonymous),
            Mode::Certificates => {
                let tls = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
                let certs = tls.and_then(|t| t.peer_certs());
                let leaf = certs.as_ref().and_then(|c| c.first()).ok_or_else(|| {
                    Status::unauthenticated(
                        "no client certificate: this manager accepts only callers with a \
                         certificate from the cluster CA (mhactl: --ca/--cert/--key or \
                         MHACTL_CA/MHACTL_CERT/MHACTL_KEY)",
                    )
                })?;
                principal_of(leaf).map_err(Status::unauthenticated)
            }
        }
    }
}

fn remote_addr<B>(req: &http::Request<B>) -> Option<SocketAddr> {
    let ext = req.extensions();
    ext.get::<TlsConnectInfo<TcpConnectInfo>>()
        .map(|t| t.get_ref())
        .or_else(|| ext.get::<TcpConnectInfo>())
        .and_then(|c| c.remote_addr())
}

impl<S, B, R> tower::Service<http::Request<B>> for Authorize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let addr = remote_addr(&req);
        let peer_only = self.peer_only;
        let members = self.members.clone();
        let checked = self.principal(&req).and_then(|principal| {
            if let (Principal::Node(id), Some(is_member)) = (&principal, &members) {
                if !is_member(*id) {
                    return Err(Status::permission_denied(format!(
                        "node {id} is not a member of this cluster (as this manager knows it)"
                    )));
                }
            }
            if peer_only && matches!(principal, Principal::Client { .. }) {
                return Err(Status::permission_denied(format!(
                    "{principal}: this is the managers' peer address; mhactl and other admin \
                     clients use the admin address (admin_listen)"
                )));
            }
            authorize(&path, &principal)?;
            Ok(principal)
        });
        match checked {
            Ok(principal) => {
                req.extensions_mut().insert(Caller { principal, addr });
                Box::pin(self.inner.call(req))
            }
            Err(status) => {
                let from = addr.map(|a| a.to_string()).unwrap_or_default();
                tracing::warn!(rpc = %path, from = %from, code = ?status.code(), reason = status.message(), "call refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}
