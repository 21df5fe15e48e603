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
use crate::proto::admin::{NodeStatusReply, NodeStatusRequest};
use crate::security::identity::{node_name, ANY_NODE_NAME};
use crate::security::{TlsFiles, TlsMaterial, Transport};

/// How many redirects one call follows before giving up (a leader change mid-call costs one).
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("no endpoints given: use --endpoints host:port,... or MHACTL_ENDPOINTS")]
    NoEndpoints,
    /// An endpoint that is not `host:port` (a usage error: exit 2).
    #[error("bad endpoint {0:?}: expected host:port (e.g. 10.0.1.10:7101, [fd00::1]:7101)")]
    BadEndpoint(String),
    #[error("no manager reachable at {tried}: {last}")]
    Unreachable { tried: String, last: String },
    /// Managers answered, but fewer voters than a quorum: no leader can be elected.
    #[error(
        "no quorum: reached {} of {voters} voters ({}); a leader needs {}",
        reached.len(),
        reached_list(reached),
        voters / 2 + 1
    )]
    NoQuorum {
        /// (node id, the endpoint it answered at)
        reached: Vec<(u64, String)>,
        voters: usize,
    },
    /// Managers answered, but none is an acting leader (an election under way, or no cluster
    /// initialized yet).
    #[error("no leader: {0}")]
    NoLeader(String),
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

fn reached_list(reached: &[(u64, String)]) -> String {
    reached
        .iter()
        .map(|(id, ep)| format!("node {id} at {ep}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl CtlError {
    pub fn is_retryable(&self) -> bool {
        match self {
            CtlError::NoEndpoints | CtlError::BadEndpoint(_) => false,
            CtlError::Unreachable { .. } => true,
            CtlError::NoQuorum { .. } | CtlError::NoLeader(_) => true,
            CtlError::Rejected(_) | CtlError::NeedsConfirmation(_) | CtlError::Credentials(_) => {
                false
            }
        }
    }

    /// mhactl's exit code for this error (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::NoEndpoints
            | CtlError::BadEndpoint(_)
            | CtlError::Credentials(_)
            | CtlError::NeedsConfirmation(_) => super::exit::USAGE,
            CtlError::Unreachable { .. } | CtlError::Rejected(_) => super::exit::ERROR,
            CtlError::NoQuorum { .. } | CtlError::NoLeader(_) => super::exit::NO_QUORUM,
        }
    }
}

/// Why no leader answered, from what the managers that did answer say about themselves
/// (`reached`: the endpoint and its NodeStatus): fewer voters than a quorum, no leader yet, or
/// — nothing answered, or a leader is named that we could not reach — unreachable.
pub fn no_leader_error(
    reached: &[(String, NodeStatusReply)],
    endpoints: &[String],
    last: String,
) -> CtlError {
    let tried = endpoints.join(",");
    // The membership of the most recent term any of them knows.
    let Some((ep0, newest)) = reached.iter().max_by_key(|(_, r)| r.term) else {
        return CtlError::Unreachable { tried, last };
    };
    let voters: Vec<u64> = newest
        .members
        .iter()
        .filter(|m| m.kind == "voter")
        .map(|m| m.id)
        .collect();
    if voters.is_empty() {
        return CtlError::NoLeader(format!(
            "node {} at {ep0} is not part of an initialized cluster: start the nodes with \
             initial_members, or run `mhactl cluster init`",
            newest.id
        ));
    }
    let mut seen: Vec<(u64, String)> = Vec::new();
    for (ep, r) in reached {
        if voters.contains(&r.id) && !seen.iter().any(|(id, _)| *id == r.id) {
            seen.push((r.id, ep.clone()));
        }
    }
    let quorum = voters.len() / 2 + 1;
    // "No quorum" only when every voter we did not reach was tried (an endpoint that did not
    // answer may be any of them): with fewer endpoints than voters, the others may be fine.
    let silent_endpoints = endpoints.len().saturating_sub(reached.len());
    let all_tried = seen.len() + silent_endpoints >= voters.len();
    if seen.len() < quorum && all_tried {
        return CtlError::NoQuorum {
            reached: seen,
            voters: voters.len(),
        };
    }
    // A leader one of them names but we did not reach is a path problem between us and it.
    let unreached_leader = reached.iter().find_map(|(_, r)| {
        r.leader_id
            .filter(|l| !seen.iter().any(|(id, _)| id == l))
            .map(|l| (r.id, l, r.leader_addr.clone()))
    });
    if let Some((by, leader, addr)) = unreached_leader {
        return CtlError::Unreachable {
            tried,
            last: format!("leader {leader} ({addr}, named by node {by}) did not answer: {last}"),
        };
    }
    if seen.len() < quorum {
        return CtlError::NoLeader(format!(
            "reached only {}, with no leader known (term {}); the other voters of {} were not \
             among the endpoints tried: give mhactl every manager's address to learn whether a \
             quorum is up",
            reached_list(&seen),
            newest.term,
            voters.len()
        ));
    }
    CtlError::NoLeader(format!(
        "reached {} of {} voters ({}), but none acts as leader yet (an election under way?); \
         retry in a moment",
        seen.len(),
        voters.len(),
        reached_list(&seen)
    ))
}

/// The per-endpoint bound on connecting (TCP and TLS handshake).
const FAST_CONNECT: Duration = Duration::from_millis(300);

/// `host:port` with a port number, the host a name, an IPv4 address or a bracketed IPv6 one.
fn is_host_port(e: &str) -> bool {
    let Some((host, port)) = e.rsplit_once(':') else {
        return false;
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        }
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
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
    /// Transport problem or no leader: try another endpoint. `answered`: a manager answered
    /// (without a result), as opposed to none being reachable there.
    Next {
        error: String,
        answered: bool,
    },
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
        if let Some(bad) = endpoints.iter().find(|e| !is_host_port(e)) {
            return Err(CtlError::BadEndpoint(bad.clone()));
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
        self.connect_within(addr, node, self.connect_timeout())
            .await
    }

    /// A dead or silent endpoint costs at most this before the next is tried (a manager on
    /// the network answers a connection and a handshake in milliseconds).
    fn connect_timeout(&self) -> Duration {
        self.timeout.min(FAST_CONNECT)
    }

    async fn connect_within(
        &self,
        addr: &str,
        node: Option<u64>,
        within: Duration,
    ) -> Result<AdminServiceClient<Channel>, String> {
        let name = node.map_or_else(|| ANY_NODE_NAME.to_string(), node_name);
        let ep = self
            .transport
            .endpoint(addr, &name)
            .map_err(|e| format!("{addr}: {}", error_chain(&e)))?
            .connect_timeout(within)
            .timeout(self.timeout);
        // The whole connection — TCP and the TLS handshake — within the timeout: a frozen
        // manager's kernel still accepts the TCP connection, and its handshake never answers.
        let ch = tokio::time::timeout(within, ep.connect())
            .await
            .map_err(|_| format!("{addr}: no connection and TLS handshake within {within:?}"))?
            .map_err(|e| format!("{addr}: {}", error_chain(&e)))?;
        Ok(AdminServiceClient::new(ch))
    }

    async fn attempt<T, F, Fut>(
        &self,
        addr: &str,
        node: Option<u64>,
        f: &F,
        within: Duration,
    ) -> Attempt<T>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let client = match self.connect_within(addr, node, within).await {
            Ok(c) => c,
            Err(error) => {
                return Attempt::Next {
                    error,
                    answered: false,
                }
            }
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
                    | Code::Cancelled => Attempt::Next {
                        error: format!("{addr}: {}", status_text(&s)),
                        answered: true,
                    },
                    _ => Attempt::Fail(s),
                }
            }
        }
    }

    /// Runs `f` against the leader: the first reachable endpoint, following redirects; the
    /// whole call within the client's timeout.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, CtlError>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        match tokio::time::timeout(self.timeout, self.call_unbounded(f)).await {
            Ok(r) => r,
            Err(_) => Err(CtlError::Unreachable {
                tried: self.endpoints.join(","),
                last: format!("no answer within {:?} (--timeout-ms)", self.timeout),
            }),
        }
    }

    async fn call_unbounded<T, F, Fut>(&self, f: F) -> Result<T, CtlError>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.fast_then_patient(|within| self.call_round(&f, within))
            .await
    }

    /// Each endpoint gets a short connect first, so a dead one costs little; only when none
    /// could be reached that way, a second round with the whole timeout (a manager slow to
    /// accept under load is still found).
    async fn fast_then_patient<T, R, Fut>(&self, round: R) -> Result<T, CtlError>
    where
        R: Fn(Duration) -> Fut,
        Fut: Future<Output = Result<T, CtlError>>,
    {
        match round(self.connect_timeout()).await {
            Err(CtlError::Unreachable { .. }) if self.connect_timeout() < self.timeout => {
                round(self.timeout).await
            }
            r => r,
        }
    }

    async fn call_round<T, F, Fut>(&self, f: &F, within: Duration) -> Result<T, CtlError>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last = String::new();
        // Endpoints where a manager answered without a result (no leader, or a redirect to a
        // leader we could not reach): they are asked why when nothing succeeds.
        let mut answered = Vec::new();
        for ep in &self.endpoints {
            let mut addr = ep.clone();
            let mut node = None;
            for hop in 0..=MAX_REDIRECTS {
                match self.attempt(&addr, node, f, within).await {
                    Attempt::Done(t) => return Ok(t),
                    Attempt::Redirect(leader, id) => {
                        tracing::debug!(from = %addr, to = %leader, "following leader redirect");
                        if hop == 0 {
                            answered.push(ep.clone());
                        }
                        addr = leader;
                        node = id;
                    }
                    Attempt::Next { error, answered: a } => {
                        if a && hop == 0 {
                            answered.push(ep.clone());
                        }
                        last = error;
                        break;
                    }
                    Attempt::Fail(s) if needs_confirmation(&s) => {
                        return Err(CtlError::NeedsConfirmation(status_text(&s)))
                    }
                    Attempt::Fail(s) => return Err(CtlError::Rejected(status_text(&s))),
                }
            }
        }
        let reached = self.node_statuses(&answered).await;
        Err(no_leader_error(&reached, &self.endpoints, last))
    }

    /// Each endpoint's own status (NodeStatus needs no leader), in parallel; those that do not
    /// answer are left out.
    async fn node_statuses(&self, endpoints: &[String]) -> Vec<(String, NodeStatusReply)> {
        let asks = endpoints.iter().map(|ep| async move {
            let mut c = self.connect(ep, None).await.ok()?;
            let r = c.node_status(NodeStatusRequest {}).await.ok()?;
            Some((ep.clone(), r.into_inner()))
        });
        futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Runs `f` against each endpoint itself (no redirects), returning the first success;
    /// a short connect first, the whole timeout when nothing was reached so.
    pub async fn call_any<T, F, Fut>(&self, f: F) -> Result<T, CtlError>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.fast_then_patient(|within| self.any_round(&f, within))
            .await
    }

    async fn any_round<T, F, Fut>(&self, f: &F, within: Duration) -> Result<T, CtlError>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last = String::new();
        for ep in &self.endpoints {
            match self.connect_within(ep, None, within).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::admin::MemberInfo;

    fn status(id: u64, term: u64, voters: &[u64], leader: Option<u64>) -> NodeStatusReply {
        NodeStatusReply {
            id,
            term,
            leader_id: leader,
            leader_addr: leader
                .map(|l| format!("10.0.0.{l}:7101"))
                .unwrap_or_default(),
            members: voters
                .iter()
                .map(|v| MemberInfo {
                    id: *v,
                    addr: format!("10.0.0.{v}:7101"),
                    zone: String::new(),
                    kind: "voter".into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn reached(rs: Vec<NodeStatusReply>) -> Vec<(String, NodeStatusReply)> {
        rs.into_iter()
            .map(|r| (format!("a{}:7201", r.id), r))
            .collect()
    }

    /// What mhactl says when no leader answered, from what the managers that did answer report
    /// about themselves; and the exit code of each answer.
    #[test]
    fn why_no_leader_answered() {
        let all = [1, 2, 3];
        // More endpoints than voters reached: every voter not reached was tried.
        let endpoints: Vec<String> = (1..=6).map(|i| format!("e{i}")).collect();
        let cases: Vec<(Vec<NodeStatusReply>, &str, i32)> = vec![
            (vec![], "no manager reachable at e1,e2,e3,e4,e5,e6: last", 1),
            (
                vec![status(1, 9, &all, None)],
                "no quorum: reached 1 of 3 voters (node 1 at a1:7201); a leader needs 2",
                3,
            ),
            // The same node at two endpoints counts once; the newest term's membership counts.
            (
                vec![
                    status(1, 4, &[1, 2, 3, 4, 5], None),
                    status(1, 4, &[1, 2, 3, 4, 5], None),
                    status(2, 3, &all, None),
                ],
                "no quorum: reached 2 of 5 voters (node 1 at a1:7201, node 2 at a2:7201); a \
                 leader needs 3",
                3,
            ),
            (
                vec![status(1, 9, &all, None), status(2, 9, &all, None)],
                "no leader: reached 2 of 3 voters (node 1 at a1:7201, node 2 at a2:7201), but \
                 none acts as leader yet (an election under way?); retry in a moment",
                3,
            ),
            (
                vec![status(1, 9, &all, Some(3)), status(2, 9, &all, Some(3))],
                "no manager reachable at e1,e2,e3,e4,e5,e6: leader 3 (10.0.0.3:7101, named by node 1) did not \
                 answer: last",
                1,
            ),
            (
                vec![status(1, 0, &[], None)],
                "no leader: node 1 at a1:7201 is not part of an initialized cluster: start the \
                 nodes with initial_members, or run `mhactl cluster init`",
                3,
            ),
        ];
        for (rs, want, code) in cases {
            let e = no_leader_error(&reached(rs), &endpoints, "last".into());
            assert_eq!(e.to_string(), want);
            assert_eq!(e.exit_code(), code, "{want}");
            assert!(e.is_retryable());
        }
        // One endpoint given, and it knows no leader: the voters not tried may well be up, so
        // this is not "no quorum".
        let e = no_leader_error(
            &reached(vec![status(1, 9, &all, None)]),
            &["E".to_string()],
            "last".into(),
        );
        assert_eq!(
            e.to_string(),
            "no leader: reached only node 1 at a1:7201, with no leader known (term 9); the \
             other voters of 3 were not among the endpoints tried: give mhactl every manager's \
             address to learn whether a quorum is up"
        );
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn endpoints_must_be_host_port() {
        for ok in [
            "127.0.0.1:7101",
            "mgr-a.example.com:7101",
            "[fd00::1]:7101",
            "m1:1",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1:notaport",
            "127.0.0.1",
            ":7101",
            "host:0",
            "host:70000",
            "fd00::1:7101",
            "[fd00::1:7101",
            "http://h:7101",
            "a b:7101",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
        let e = AdminClient::new(
            vec!["127.0.0.1:7101,127.0.0.1:notaport".into()],
            Duration::from_secs(1),
            Transport::Insecure,
        )
        .err()
        .expect("refused");
        assert_eq!(e.exit_code(), crate::ctl::exit::USAGE);
        assert!(e.to_string().contains("\"127.0.0.1:notaport\""), "{e}");
    }
}
