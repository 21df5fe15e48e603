//! One manager node: opens its store, starts openraft and the gRPC server, bootstraps a new
//! cluster once, and runs the node's background tasks until shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::NodeConfig;
use crate::errors::human_duration;
use crate::proto::admin::admin_service_server::AdminServiceServer;
use crate::proto::probe::probe_service_server::ProbeServiceServer;
use crate::proto::raft::raft_service_server::RaftServiceServer;
use crate::raft::{self, Metrics, Network, NodeId, Raft, SharedState};
use crate::server::{AdminSvc, ProbeSvc, RaftSvc};
use crate::state::{Cmd, CmdResult, Proposal};
use crate::store::{Store, StoreError};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft storage: {0}")]
    Storage(#[from] openraft::StorageError<NodeId>),
    #[error("raft config: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
}

/// Errors of operations on a running node. `is_retryable` decides whether a caller may retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    #[error("not the leader{}", leader_hint(.leader))]
    NotLeader { leader: Option<(NodeId, String)> },
    #[error("not committed within {0:?} (no quorum?)")]
    Timeout(Duration),
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("already initialized: this node already belongs to a cluster")]
    AlreadyInitialized,
    #[error("node is shutting down or failed: {0}")]
    Fatal(String),
}

fn leader_hint(leader: &Option<(NodeId, String)>) -> String {
    match leader {
        Some((id, addr)) => format!(" (leader is {id} at {addr})"),
        None => " (no leader known)".to_string(),
    }
}

impl NodeError {
    pub fn is_retryable(&self) -> bool {
        match self {
            NodeError::NotLeader { .. } => true,
            NodeError::Timeout(_) => true,
            NodeError::Membership(_) => false,
            NodeError::InvalidArgument(_) => false,
            NodeError::AlreadyInitialized => false,
            NodeError::Fatal(_) => false,
        }
    }
}

/// State shared by the gRPC services and background tasks of one node.
pub struct NodeInner {
    pub config: NodeConfig,
    pub raft: Raft,
    pub state: SharedState,
    pub network: Network,
    pub store: Store,
    /// Counters of the master monitors run on this node.
    pub monitor: crate::runtime::monitor::MonitorStats,
    /// Kept SSH sessions per group (warmed by monitoring, used by failovers).
    pub ssh: crate::runtime::ssh_pools::SshPools,
}

impl NodeInner {
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// A copy of the current Raft metrics (never hold the watch borrow across an await).
    pub fn metrics(&self) -> Metrics {
        self.raft.metrics().borrow().clone()
    }

    /// True only while this node is leader AND a quorum acknowledged it within the leader lease.
    /// A leader cut off into a minority stops acting before a new leader can be elected.
    pub fn is_acting_leader(&self) -> bool {
        acting_leader(&self.metrics(), self.config.raft.leader_lease())
    }

    /// Waits (at most `timeout`) until this node has applied at least `index`, so a follower
    /// answering for the leader sees what the leader saw. Returns whether it got there.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        if index == 0 {
            return true;
        }
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "catch up with the leader")
            .await
            .is_ok()
    }

    /// This node's applied log index.
    pub fn applied_index(&self) -> u64 {
        self.metrics().last_applied.map(|l| l.index).unwrap_or(0)
    }

    /// The leader this node knows of, with its address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        leader_of(&self.metrics())
    }

    /// Proposes a command and waits until it is committed and applied on this (leader) node.
    #[tracing::instrument(skip_all, fields(node = self.config.id, cmd = %cmd))]
    pub async fn propose(&self, cmd: Cmd) -> Result<CmdResult, NodeError> {
        let proposal = Proposal {
            at_ms: now_ms(),
            cmd,
        };
        let timeout = self.config.raft.propose_timeout;
        match tokio::time::timeout(timeout, self.raft.client_write(proposal)).await {
            Err(_) => Err(NodeError::Timeout(timeout)),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(self.write_error(e)),
        }
    }

    fn write_error(&self, e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> NodeError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => NodeError::NotLeader {
                leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
            },
            RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
                NodeError::Membership(c.to_string())
            }
            RaftError::Fatal(f) => NodeError::Fatal(f.to_string()),
        }
    }

    /// Adds a manager: as a learner (waiting until it has caught up), then as a voter unless
    /// `learner_only`; records its address and zone. Returns the steps taken, for the operator.
    #[tracing::instrument(skip_all, fields(node = self.config.id, member = id))]
    pub async fn add_member(
        &self,
        id: NodeId,
        addr: String,
        zone: String,
        learner_only: bool,
    ) -> Result<Vec<String>, NodeError> {
        crate::config::check_host_port(&addr).map_err(NodeError::InvalidArgument)?;
        if id == 0 {
            return Err(NodeError::InvalidArgument(
                "id must be a positive integer".into(),
            ));
        }
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if let Some(n) = membership.get_node(&id) {
            if n.addr != addr {
                return Err(NodeError::InvalidArgument(format!(
                    "id {id} is already a member at {}",
                    n.addr
                )));
            }
        }
        if let Some((other, _)) = membership
            .nodes()
            .find(|(nid, n)| n.addr == addr && **nid != id)
        {
            return Err(NodeError::InvalidArgument(format!(
                "address {addr} already belongs to member {other}"
            )));
        }
        let mut steps = Vec::new();
        let t = Instant::now();
        self.raft
            .add_learner(id, BasicNode { addr: addr.clone() }, true)
            .await
            .map_err(|e| self.write_error(e))?;
        steps.push(format!(
            "added {id} ({addr}) as learner; caught up in {}",
            human_duration(t.elapsed())
        ));
        self.propose(Cmd::RegisterManager { id, addr, zone })
            .await?;
        if !learner_only {
            let t = Instant::now();
            self.raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.write_error(e))?;
            steps.push(format!(
                "promoted {id} to voter in {}",
                human_duration(t.elapsed())
            ));
        }
        Ok(steps)
    }

    /// Removes a manager (voter or learner) from the cluster and forgets its metadata.
    #[tracing::instrument(skip_all, fields(node = self.config.id, member = id))]
    pub async fn remove_member(&self, id: NodeId) -> Result<Vec<String>, NodeError> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&id).is_none() {
            return Err(NodeError::InvalidArgument(format!("{id} is not a member")));
        }
        let is_voter = membership.voter_ids().any(|v| v == id);
        if is_voter && membership.voter_ids().count() == 1 {
            return Err(NodeError::InvalidArgument(format!(
                "{id} is the last voter; refusing to remove it"
            )));
        }
        let mut steps = Vec::new();
        let t = Instant::now();
        if is_voter {
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.write_error(e))?;
            steps.push(format!(
                "removed voter {id} in {}",
                human_duration(t.elapsed())
            ));
        } else {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.write_error(e))?;
            steps.push(format!(
                "removed learner {id} in {}",
                human_duration(t.elapsed())
            ));
        }
        // The leader may have removed itself and stepped down; then the next leader's
        // registration loop is not needed for this record and it stays until forgotten later.
        match self.propose(Cmd::ForgetManager { id }).await {
            Ok(_) => steps.push(format!("forgot manager {id}'s metadata")),
            Err(e) => steps.push(format!("metadata of {id} kept: {e}")),
        }
        Ok(steps)
    }

    /// Bootstraps an uninitialised cluster with `members` (this node alone when empty).
    pub async fn init_cluster(&self, members: BTreeMap<NodeId, String>) -> Result<(), NodeError> {
        let members = if members.is_empty() {
            BTreeMap::from([(self.config.id, self.config.advertise.clone())])
        } else {
            members
        };
        if !members.contains_key(&self.config.id) {
            return Err(NodeError::InvalidArgument(format!(
                "members must include this node ({})",
                self.config.id
            )));
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(NodeError::AlreadyInitialized)
            }
            Err(RaftError::APIError(e)) => Err(NodeError::InvalidArgument(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(NodeError::Fatal(f.to_string())),
        }
    }
}

pub fn acting_leader(m: &Metrics, lease: Duration) -> bool {
    m.state == ServerState::Leader
        && m.millis_since_quorum_ack
            .is_some_and(|ms| ms < lease.as_millis() as u64)
}

pub fn leader_of(m: &Metrics) -> Option<(NodeId, String)> {
    let id = m.current_leader?;
    let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
    Some((id, addr))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Bootstraps from `initial_members`, once. Nodes started together would race to initialise;
/// each waits in proportion to its rank among the initial members, and only initialises if by
/// then it has neither joined a cluster nor voted in an election (the lowest id normally wins and
/// the others simply join it; if it is down, the next one bootstraps instead).
async fn bootstrap(node: Arc<NodeInner>, mut stop: watch::Receiver<bool>) {
    let cfg = &node.config;
    let rank = cfg
        .initial_members
        .keys()
        .position(|id| *id == cfg.id)
        .unwrap_or(0) as u32;
    let delay = (cfg.raft.election_timeout_min + cfg.raft.election_timeout_max) * rank;
    tokio::select! {
        _ = stop.wait_for(|s| *s) => return,
        _ = tokio::time::sleep(delay) => {}
    }
    let m = node.metrics();
    let joined = m.membership_config.membership().nodes().next().is_some();
    if joined || m.vote.leader_id.term > 0 {
        tracing::info!("joined the cluster bootstrapped by another initial member");
        return;
    }
    tracing::info!(members = ?cfg.initial_members, "bootstrapping a new cluster from initial_members");
    match node.init_cluster(cfg.initial_members.clone()).await {
        Ok(()) | Err(NodeError::AlreadyInitialized) => {}
        Err(e) => tracing::error!(error = %e, "bootstrap failed"),
    }
}

/// A running manager node.
pub struct ManagerNode {
    inner: Arc<NodeInner>,
    stop_tx: watch::Sender<bool>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ManagerNode {
    /// Binds the configured listen address and starts.
    pub async fn start(config: NodeConfig) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Self::start_on(config, listener).await
    }

    /// Starts on an already bound listener (tests bind ephemeral ports first).
    pub async fn start_on(config: NodeConfig, listener: TcpListener) -> Result<Self, StartError> {
        let store = Store::open(&config.data_dir)?;
        let (log_store, sm) = raft::open_storage(store.clone())?;
        let state = sm.shared();
        let network = Network::new(
            Duration::from_millis(300),
            config.raft.election_timeout_min / 2,
        );
        let raft_config = Arc::new(config.raft.to_openraft(&config.cluster_name).validate()?);
        let raft = Raft::new(config.id, raft_config, network.clone(), log_store, sm).await?;
        let inner = Arc::new(NodeInner {
            config,
            raft: raft.clone(),
            state,
            network,
            store,
            monitor: Default::default(),
            ssh: Default::default(),
        });

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(
                    RaftServiceServer::new(RaftSvc::new(raft.clone()))
                        .max_decoding_message_size(64 << 20),
                )
                .add_service(AdminServiceServer::new(AdminSvc::new(inner.clone())))
                .add_service(ProbeServiceServer::new(ProbeSvc::new(inner.clone())))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                    let _ = server_stop.wait_for(|s| *s).await;
                }),
        );

        let cfg = &inner.config;
        let mut tasks = Vec::new();
        if !cfg.initial_members.is_empty() && !raft.is_initialized().await? {
            tasks.push(tokio::spawn(bootstrap(inner.clone(), stop_rx.clone())));
        }
        tracing::info!(id = cfg.id, listen = %cfg.listen, advertise = %cfg.advertise, zone = %cfg.zone, "mhad started");

        tasks.push(tokio::spawn(crate::runtime::monitor::supervise(
            inner.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(crate::runtime::failover::supervise(
            inner.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(crate::runtime::registration::run(
            inner.clone(),
            stop_rx,
        )));
        Ok(ManagerNode {
            inner,
            stop_tx,
            server,
            tasks,
        })
    }

    pub fn inner(&self) -> &Arc<NodeInner> {
        &self.inner
    }

    /// Clean shutdown: stop background tasks, stop Raft, stop serving, flush the store.
    pub async fn shutdown(self) {
        let _ = self.stop_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let _ = self.server.await;
        if let Err(e) = self.inner.store.flush().await {
            tracing::error!(error = %e, "final flush failed");
        }
        tracing::info!(id = self.inner.config.id, "mhad stopped");
    }
}
