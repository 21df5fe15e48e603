//! One manager node: opens its store, starts openraft and the gRPC server, bootstraps a new
//! cluster once, and runs the node's background tasks until shutdown.

pub mod fd_limit;
mod peer_check;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::{NodeConfig, TransportConfig};
use crate::proto::admin::admin_service_server::AdminServiceServer;
use crate::proto::probe::probe_service_server::ProbeServiceServer;
use crate::proto::raft::raft_service_server::RaftServiceServer;
use crate::raft::fresh_gate::FreshGate;
use crate::raft::{self, Network, NodeError, NodeId, Raft, RaftHandle};
use crate::runtime::{Identity, Runtime};
use crate::security::layer::MemberCheck;
use crate::security::tls::TlsError;
use crate::security::{AuthLayer, Principal, TlsMaterial, Transport};
use crate::server::redirect::{AdminAddrs, AdminRedirectLayer};
use crate::server::{AdminSvc, ProbeSvc, RaftSvc};
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
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    #[error("tls: {0}")]
    TlsServer(#[from] tonic::transport::Error),
    /// An empty data dir on a node the cluster knows (peer_check.rs).
    #[error("{0}")]
    LostState(String),
}

/// The node's transport from its configuration: TLS material loaded and checked to be this
/// node's own (a certificate issued to another id would let it speak for that node), or
/// plaintext with a warning.
fn transport(config: &NodeConfig) -> Result<Transport, TlsError> {
    match &config.transport {
        TransportConfig::Insecure => {
            tracing::warn!(
                "running with --insecure: plaintext, and ANY client that reaches {} can change \
                 members and groups and start failovers; use [tls] outside throwaway tests",
                config.listen
            );
            Ok(Transport::Insecure)
        }
        TransportConfig::Tls(files) => {
            let material = TlsMaterial::load(files)?;
            if *material.principal() != Principal::Node(config.id) {
                return Err(TlsError::Identity(format!(
                    "{} is issued to {}, but this manager's id is {}: issue one with \
                     `mhactl certs issue --node {}`",
                    files.cert.display(),
                    material.principal(),
                    config.id,
                    config.id
                )));
            }
            Ok(Transport::Tls(Arc::new(material)))
        }
    }
}

/// Bootstraps from `initial_members`, once. Nodes started together would race to initialise;
/// each waits in proportion to its rank among the initial members, and only initialises if by
/// then it has neither joined a cluster nor voted in an election (the lowest id normally wins and
/// the others simply join it; if it is down, the next one bootstraps instead).
async fn bootstrap(config: Arc<NodeConfig>, raft: RaftHandle, mut stop: watch::Receiver<bool>) {
    let cfg = &config;
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
    let m = raft.metrics();
    let joined = m.membership_config.membership().nodes().next().is_some();
    if joined || m.vote.leader_id.term > 0 {
        tracing::info!("joined the cluster bootstrapped by another initial member");
        return;
    }
    tracing::info!(members = ?cfg.initial_members, "bootstrapping a new cluster from initial_members");
    match raft
        .init_cluster(&cfg.advertise, cfg.initial_members.clone())
        .await
    {
        Ok(()) | Err(NodeError::AlreadyInitialized) => {}
        Err(e) => tracing::error!(error = %e, "bootstrap failed"),
    }
}

type ServerTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// Serves the node's gRPC services until `stop`: on one listener, or — with a separate admin
/// listener — Raft, probes and the managers' own admin calls on the peer listener (client
/// certificates refused there) and the admin API on its own, where "not leader" redirects name
/// the leader's admin address.
fn serve(
    transport: &Transport,
    raft: &Raft,
    gate: &Arc<FreshGate>,
    runtime: &Arc<Runtime>,
    peer: TcpListener,
    admin: Option<TcpListener>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<ServerTask>, tonic::transport::Error> {
    let r = raft.clone();
    let members: MemberCheck = Arc::new(move |id| {
        let m = r.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        membership.nodes().next().is_none() || membership.get_node(&id).is_some()
    });
    let builder = || -> Result<_, tonic::transport::Error> {
        let b = tonic::transport::Server::builder().max_concurrent_streams(256);
        Ok(match transport {
            Transport::Tls(m) => (
                b.tls_config(m.server_config())?,
                AuthLayer::certificates().members(members.clone()),
            ),
            Transport::Insecure => (b, AuthLayer::insecure()),
        })
    };
    let until_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // Request size limits: Raft carries log batches and snapshots; the admin API carries group
    // specs and small requests; a probe is a few fields.
    let admin_svc = || {
        AdminServiceServer::new(AdminSvc::new(runtime.clone())).max_decoding_message_size(1 << 20)
    };
    let (b, auth) = builder()?;
    let peer_auth = if admin.is_some() {
        auth.peer_only()
    } else {
        auth
    };
    let mut tasks = vec![tokio::spawn(
        b.layer(peer_auth)
            .add_service(
                RaftServiceServer::new(RaftSvc::new(raft.clone(), gate.clone()))
                    .max_decoding_message_size(64 << 20),
            )
            .add_service(admin_svc())
            .add_service(
                ProbeServiceServer::new(ProbeSvc::new(runtime.clone()))
                    .max_decoding_message_size(64 << 10),
            )
            .serve_with_incoming_shutdown(TcpListenerStream::new(peer), until_stop(stop.clone())),
    )];
    if let Some(admin) = admin {
        let (b, auth) = builder()?;
        let rt = runtime.clone();
        let lookup: AdminAddrs = Arc::new(move |id| {
            rt.raft
                .read(|c| c.managers.get(&id).and_then(|m| m.admin_addr.clone()))
        });
        tasks.push(tokio::spawn(
            b.layer(auth)
                .layer(AdminRedirectLayer::new(lookup))
                .add_service(admin_svc())
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(admin),
                    until_stop(stop.clone()),
                ),
        ));
    }
    Ok(tasks)
}

/// A running manager node.
pub struct ManagerNode {
    config: Arc<NodeConfig>,
    runtime: Arc<Runtime>,
    store: Store,
    gate: Arc<FreshGate>,
    stop_tx: watch::Sender<bool>,
    servers: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
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
        let transport = transport(&config)?;
        let store = Store::open(&config.data_dir)?;
        let (log_store, sm) = raft::open_storage(store.clone())?;
        let state = sm.shared();
        let network = Network::new(
            Duration::from_millis(300),
            config.raft.election_timeout_min / 2,
            transport.clone(),
        );
        // Before anything can be replicated to an empty node: did it run before?
        let mut may_bootstrap = !config.initial_members.is_empty();
        if may_bootstrap && store.promised_nothing() {
            let answers = peer_check::ask(&config, &network).await;
            match peer_check::judge(&config, &answers) {
                peer_check::Verdict::Bootstrap => {}
                peer_check::Verdict::Join => {
                    tracing::info!(
                        "the initial members already formed the cluster: waiting to be \
                         replicated to, not bootstrapping"
                    );
                    may_bootstrap = false;
                }
                peer_check::Verdict::Refuse(why) => return Err(StartError::LostState(why)),
            }
        }
        let raft_config = Arc::new(config.raft.to_openraft(&config.cluster_name).validate()?);
        let raft = Raft::new(config.id, raft_config, network.clone(), log_store, sm).await?;
        let gate = FreshGate::new(
            store.clone(),
            config.id,
            config.data_dir.display().to_string(),
            peer_check::rejoin_advice(&config),
        );
        let (metrics, applied) = (raft.metrics(), state.clone());
        network.ran_voters().set(move |peer| {
            let voter = metrics
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == peer);
            voter
                && applied
                    .read()
                    .expect("state lock poisoned")
                    .cluster
                    .managers
                    .get(&peer)
                    .is_some_and(|m| m.ran)
        });
        let handle = RaftHandle::new(
            config.id,
            raft.clone(),
            state,
            network,
            config.raft.leader_lease(),
            config.raft.propose_timeout,
        )
        .with_lapse_keep(config.raft.lapse_keep());
        let runtime = Runtime::new(
            handle.clone(),
            Identity {
                zone: config.zone.clone(),
                advertise: config.advertise.clone(),
                admin_advertise: config.admin.as_ref().map(|a| a.advertise.clone()),
                cluster_name: config.cluster_name.clone(),
            },
            Arc::new(config.local.clone()),
        );
        let config = Arc::new(config);

        let (stop_tx, stop_rx) = watch::channel(false);
        let admin_listener = match &config.admin {
            Some(a) => {
                Some(
                    TcpListener::bind(a.listen)
                        .await
                        .map_err(|source| StartError::Bind {
                            addr: a.listen,
                            source,
                        })?,
                )
            }
            None => None,
        };
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                crate::server::http::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let servers = serve(
            &transport,
            &raft,
            &gate,
            &runtime,
            listener,
            admin_listener,
            &stop_rx,
        )?;

        let mut tasks = Vec::new();
        if may_bootstrap && !raft.is_initialized().await? {
            tasks.push(tokio::spawn(bootstrap(
                config.clone(),
                handle,
                stop_rx.clone(),
            )));
        }
        if let Some(l) = metrics_listener {
            tasks.push(tokio::spawn(crate::server::http::serve(
                runtime.clone(),
                l,
                stop_rx.clone(),
            )));
        }
        tracing::info!(
            id = config.id,
            version = env!("CARGO_PKG_VERSION"),
            commit = crate::telemetry::GIT_COMMIT,
            listen = %config.listen,
            advertise = %config.advertise,
            admin_listen = ?config.admin.as_ref().map(|a| a.listen),
            metrics_listen = ?config.metrics_listen,
            data_dir = %config.data_dir.display(),
            cluster = %config.cluster_name,
            zone = %config.zone,
            tls = transport.is_tls(),
            "mhad started"
        );
        tasks.extend(runtime.spawn_loops(stop_rx));
        Ok(ManagerNode {
            config,
            runtime,
            store,
            gate,
            stop_tx,
            servers,
            tasks,
        })
    }

    /// The node's Raft handle (tests drive and inspect nodes through it).
    pub fn raft(&self) -> &RaftHandle {
        &self.runtime.raft
    }

    /// The node's runtime (tests inspect what it knows of itself, e.g. that it was removed).
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Becomes `Some(why)` when this node found that it lost the state it had promised (a
    /// leader counts it as a voter that ran, its store is empty): it must stop (fresh_gate.rs).
    pub fn lost_state(&self) -> watch::Receiver<Option<String>> {
        self.gate.lost()
    }

    /// Clean shutdown: stop background tasks, stop Raft, stop serving, flush the store.
    pub async fn shutdown(self) {
        let _ = self.stop_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.runtime.raft.raft().shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        for s in self.servers {
            let _ = s.await;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "final flush failed");
        }
        tracing::info!(id = self.config.id, "mhad stopped");
    }
}
