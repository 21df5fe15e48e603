//! Raft transport over tonic: one cached, lazily connected channel per peer, per-RPC timeouts
//! from openraft's `RPCOption`, exponential backoff on unreachable peers, and a record of when
//! each peer last answered (shown as "last heard" in `mhactl cluster status`), and each peer's
//! health (peer_health.rs): a peer going down and coming back is logged here, once each.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use super::fresh_gate::{RanVoters, VOTER_THAT_RAN};
use super::peer_health::{Change, PeerHealth};
use super::{NodeId, TypeConfig};
use crate::errors::human_duration;
use crate::proto::raft::raft_service_client::RaftServiceClient;
use crate::proto::raft::RaftRequest;
use crate::security::identity::node_name;
use crate::security::Transport;

/// Per-peer facts shared between the network and the admin service.
#[derive(Default, Debug)]
pub struct PeerStats {
    last_heard: Mutex<HashMap<NodeId, Instant>>,
    /// Peers this node must not talk to (test fault injection and operator drills): calls to
    /// them fail as unreachable without touching the wire.
    blocked: RwLock<HashSet<NodeId>>,
    /// Peers that refused this node's vote request because it is not a member (or not a voter)
    /// of their cluster, with their words; forgotten when the peer answers again. A majority
    /// of them tells a node that missed its own removal that it was removed (runtime/removal.rs).
    refused_me: Mutex<HashMap<NodeId, String>>,
    health: Mutex<PeerHealth>,
}

impl PeerStats {
    /// Time since `peer` last answered a Raft RPC from this node.
    pub fn since_last_heard(&self, peer: NodeId) -> Option<Duration> {
        self.last_heard
            .lock()
            .expect("peer stats lock")
            .get(&peer)
            .map(|t| t.elapsed())
    }

    fn heard(&self, peer: NodeId) {
        self.last_heard
            .lock()
            .expect("peer stats lock")
            .insert(peer, Instant::now());
        self.refused_me
            .lock()
            .expect("peer stats lock")
            .remove(&peer);
    }

    fn refused(&self, peer: NodeId, why: &str) {
        self.refused_me
            .lock()
            .expect("peer stats lock")
            .insert(peer, why.to_string());
    }

    /// `peer` says (its status lists this node as a voter) that this node is a member: what
    /// it refused before no longer stands.
    pub fn counts_me(&self, peer: NodeId) {
        self.refused_me
            .lock()
            .expect("peer stats lock")
            .remove(&peer);
    }

    /// This node's membership changed: refusals given under the old one no longer say much.
    pub fn forget_refusals(&self) {
        self.refused_me.lock().expect("peer stats lock").clear();
    }

    /// Peers whose latest answer to this node's vote request was "you are not a member".
    pub fn refused_me(&self) -> HashMap<NodeId, String> {
        self.refused_me.lock().expect("peer stats lock").clone()
    }

    /// Records the outcome of a call to `peer` (at `addr`) and logs a change of its health:
    /// WARN once when it stops answering, WARN once when it answers again, with the outage.
    pub fn record(&self, peer: NodeId, addr: &str, outcome: Result<(), &str>) {
        let now = Instant::now();
        let change = {
            let mut h = self.health.lock().expect("peer health lock");
            match outcome {
                Ok(()) => h.answered(peer, now),
                Err(e) => h.failed(peer, now, e),
            }
        };
        match change {
            Some(Change::Down { error, silent_for }) => tracing::warn!(
                peer,
                %addr,
                %error,
                "peer {peer} ({addr}) is down: no answer for {}",
                human_duration(silent_for)
            ),
            Some(Change::Back { outage }) => tracing::warn!(
                peer,
                %addr,
                outage_ms = outage.as_millis() as u64,
                "peer {peer} ({addr}) is back after {}",
                human_duration(outage)
            ),
            None => {}
        }
    }

    /// Whether this node called `peer` (answered or not) within `within`.
    pub fn contacted_within(&self, peer: NodeId, within: Duration) -> bool {
        self.health
            .lock()
            .expect("peer health lock")
            .contacted_within(peer, Instant::now(), within)
    }

    /// Forgets the health of peers that are no longer members.
    pub fn retain_peers(&self, keep: impl Fn(NodeId) -> bool) {
        self.health.lock().expect("peer health lock").retain(keep);
    }

    pub fn block(&self, peer: NodeId) {
        self.blocked.write().expect("peer stats lock").insert(peer);
    }

    pub fn unblock_all(&self) {
        self.blocked.write().expect("peer stats lock").clear();
    }

    pub fn is_blocked(&self, peer: NodeId) -> bool {
        self.blocked
            .read()
            .expect("peer stats lock")
            .contains(&peer)
    }
}

/// Peer id → (address, channel).
type ChannelCache = Arc<Mutex<HashMap<NodeId, (String, Channel)>>>;

/// The network factory handed to openraft. Clones share the channel cache and the stats.
#[derive(Clone, Debug)]
pub struct Network {
    /// Raft's own calls (AppendEntries, Vote, snapshots) ride their own connection to each
    /// peer: a burst of failover traffic (probes, reach views, delegated steps, many groups at
    /// once) cancelled on its timeouts can make the peer's HTTP/2 server close the connection
    /// it came on (GOAWAY, its reset-stream limit), and heartbeats must not go with it.
    raft_channels: ChannelCache,
    channels: ChannelCache,
    stats: Arc<PeerStats>,
    connect_timeout: Duration,
    rpc_timeout_floor: Duration,
    transport: Transport,
    ran_voters: RanVoters,
}

impl Network {
    /// `rpc_timeout_floor`: openraft sizes AppendEntries/Vote deadlines from the heartbeat
    /// interval (tens of ms); a follower's fsync hiccup would then fail the RPC and trigger
    /// backoff. The floor keeps slow-but-alive peers in the replication stream.
    pub fn new(
        connect_timeout: Duration,
        rpc_timeout_floor: Duration,
        transport: Transport,
    ) -> Self {
        Network {
            raft_channels: Default::default(),
            channels: Default::default(),
            stats: Default::default(),
            connect_timeout,
            rpc_timeout_floor,
            transport,
            ran_voters: RanVoters::default(),
        }
    }

    pub fn stats(&self) -> Arc<PeerStats> {
        self.stats.clone()
    }

    /// Who this node tells, on every Raft call, that it counts them as a voter that ran
    /// (fresh_gate.rs); set once this node's Raft exists.
    pub fn ran_voters(&self) -> &RanVoters {
        &self.ran_voters
    }

    /// The cached channel to `target` at `addr` for every call but Raft's own; replaced when
    /// the peer's address changed. With TLS the peer must prove to be `node-<target>` (a
    /// certificate of the cluster CA issued to that id), so a node cannot be impersonated by
    /// another one at its address.
    pub fn channel(&self, target: NodeId, addr: &str) -> Result<Channel, tonic::transport::Error> {
        self.cached(&self.channels, target, addr)
    }

    /// Raft's own channel to `target` (a connection of its own, see `raft_channels`).
    fn raft_channel(&self, target: NodeId, addr: &str) -> Result<Channel, tonic::transport::Error> {
        self.cached(&self.raft_channels, target, addr)
    }

    fn cached(
        &self,
        cache: &ChannelCache,
        target: NodeId,
        addr: &str,
    ) -> Result<Channel, tonic::transport::Error> {
        let mut map = cache.lock().expect("channel cache lock");
        if let Some((a, ch)) = map.get(&target) {
            if a == addr {
                return Ok(ch.clone());
            }
        }
        let ch = self
            .transport
            .endpoint(addr, &node_name(target))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .connect_lazy();
        map.insert(target, (addr.to_string(), ch.clone()));
        Ok(ch)
    }
}

impl Network {
    /// A one-off channel to whoever answers at `addr`, which with TLS must prove to be
    /// `server_name` (`node-<id>`, or [`crate::security::identity::ANY_NODE_NAME`] for any node
    /// of the CA). Not cached: `member add` checks an address before it is a member's.
    pub async fn probe_channel(
        &self,
        addr: &str,
        server_name: &str,
        timeout: Duration,
    ) -> Result<Channel, String> {
        let ep = self
            .transport
            .endpoint(addr, server_name)
            .map_err(|e| crate::errors::error_chain(&e))?
            .connect_timeout(timeout)
            .timeout(timeout);
        // TCP and the TLS handshake within the timeout (a frozen process still accepts TCP).
        tokio::time::timeout(timeout, ep.connect())
            .await
            .map_err(|_| format!("no TLS handshake within {timeout:?}"))?
            .map_err(|e| crate::errors::error_chain(&e))
    }

    /// Whether this node's transport is TLS (a peer's identity is then its certificate's).
    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        let channel = self
            .raft_channel(target, &node.addr)
            .map_err(|e| e.to_string());
        PeerClient {
            target,
            addr: node.addr.clone(),
            channel,
            stats: self.stats.clone(),
            timeout_floor: self.rpc_timeout_floor,
            ran_voters: self.ran_voters.clone(),
        }
    }
}

/// A connection to one peer, as openraft's replication and election tasks use it.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    channel: Result<Channel, String>,
    stats: Arc<PeerStats>,
    timeout_floor: Duration,
    ran_voters: RanVoters,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = timeout.max(self.timeout_floor);
        // openraft drops this future at its own deadline (the heartbeat interval for appends),
        // before ours: the guard records that as a failure too, so a peer that never answers
        // is seen as down whichever deadline fires first.
        let mut outcome = Outcome {
            client: self,
            result: Some(Err("no answer within openraft's deadline".to_string())),
        };
        let unreachable =
            |msg: String| RPCError::Unreachable(Unreachable::new(&TransportError(msg)));
        if self.stats.is_blocked(self.target) {
            let msg = format!("peer {} blocked by fault injection", self.target);
            outcome.result = Some(Err(msg.clone()));
            return Err(unreachable(msg));
        }
        let channel = match self.channel.clone() {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("bad address {}: {e}", self.addr);
                outcome.result = Some(Err(msg.clone()));
                return Err(unreachable(msg));
            }
        };
        let payload = serde_json::to_vec(req).map_err(|e| {
            // Our own encoding failed: nothing was learnt about the peer.
            outcome.result = None;
            RPCError::Network(NetworkError::new(&e))
        })?;
        let mut client = RaftServiceClient::new(channel).max_decoding_message_size(64 << 20);
        let mut request = tonic::Request::new(RaftRequest { payload });
        if self.ran_voters.contains(self.target) {
            request.metadata_mut().insert(
                VOTER_THAT_RAN,
                tonic::metadata::MetadataValue::from_static("1"),
            );
        }
        let fut = async {
            match rpc {
                Rpc::AppendEntries => client.append_entries(request).await,
                Rpc::Vote => client.vote(request).await,
                Rpc::InstallSnapshot => client.install_snapshot(request).await,
            }
        };
        let reply = match tokio::time::timeout(timeout, fut).await {
            Err(_) => {
                let msg = format!("rpc to {} timed out after {timeout:?}", self.addr);
                outcome.result = Some(Err(msg.clone()));
                return Err(RPCError::Network(NetworkError::new(&TransportError(msg))));
            }
            // No answer from the peer: refused, reset mid-call (a killed peer's connection
            // ends in UNKNOWN "transport error"), cancelled.
            Ok(Err(status)) if no_answer(status.code()) => {
                let msg = format!("{}: {}", self.addr, crate::errors::status_text(&status));
                outcome.result = Some(Err(msg.clone()));
                return Err(unreachable(msg));
            }
            // The security layer (TLS) and the Raft service (any mode) refuse a vote from a
            // node that is not a member / voter of the peer's cluster.
            Ok(Err(status))
                if matches!(rpc, Rpc::Vote) && status.code() == tonic::Code::PermissionDenied =>
            {
                outcome.result = Some(Ok(()));
                self.stats.refused(self.target, status.message());
                return Err(RPCError::Network(NetworkError::new(&status)));
            }
            Ok(Err(status)) => {
                // The peer answered, with a refusal: it is up (the refusal itself is an
                // error openraft reports).
                outcome.result = Some(Ok(()));
                return Err(RPCError::Network(NetworkError::new(&status)));
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        outcome.result = Some(Ok(()));
        self.stats.heard(self.target);
        decode_reply(self.target, &reply.payload)
    }
}

/// Codes a call ends with when the peer did not answer it (tonic's own transport failures).
fn no_answer(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unavailable | Unknown | Cancelled | DeadlineExceeded)
}

/// Records a call's outcome in the peer's health when it ends, however it ends (returned, or
/// dropped by openraft's deadline).
struct Outcome<'a> {
    client: &'a PeerClient,
    /// `None`: nothing was learnt about the peer.
    result: Option<Result<(), String>>,
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.result.take() {
            let c = self.client;
            c.stats.record(
                c.target,
                &c.addr,
                r.as_ref().map(|_| ()).map_err(String::as_str),
            );
        }
    }
}

/// A peer's reply: the JSON of openraft's `Result<Resp, E>`. Bytes that are not one are a
/// network error (never a panic); the peer's own error is a remote error.
pub(crate) fn decode_reply<Resp, E>(
    target: NodeId,
    payload: &[u8],
) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
where
    Resp: DeserializeOwned,
    E: std::error::Error + DeserializeOwned,
{
    let res: Result<Resp, E> =
        serde_json::from_slice(payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    res.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    #[tracing::instrument(level = "trace", skip_all, fields(rpc = "append_entries", peer = self.target))]
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Rpc::AppendEntries, &rpc, option.hard_ttl()).await
    }

    #[tracing::instrument(level = "trace", skip_all, fields(rpc = "install_snapshot", peer = self.target))]
    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Rpc::InstallSnapshot, &rpc, option.hard_ttl())
            .await
    }

    #[tracing::instrument(level = "trace", skip_all, fields(rpc = "vote", peer = self.target))]
    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Rpc::Vote, &rpc, option.hard_ttl()).await
    }

    fn backoff(&self) -> Backoff {
        // 50 ms doubling to 1 s: a restarted peer is retried quickly, a dead one costs little.
        Backoff::new((0..).map(|i: u32| Duration::from_millis((50u64 << i.min(5)).min(1000))))
    }
}
