//! In-process cluster harness: real `ManagerNode`s (tonic on ephemeral loopback ports, sled in
//! temp dirs) with condition-based waits.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use std::time::{Duration, Instant};

use std::sync::Arc;

use mha_raft::config::{LogFormat, NodeConfig, RaftTimings, TransportConfig};
use mha_raft::local_config::LocalConfig;
use mha_raft::node::ManagerNode;
use mha_raft::raft::RaftHandle;
use mha_raft::runtime::Runtime;
use mha_raft::security::certs::{write_file, Authority, Issued};
use mha_raft::security::{Role, TlsFiles, TlsMaterial, Transport};
use mha_raft::state::group::{CredentialRef, GroupSpec, LegacySsh, PingSpec, ServerSpec, SshSpec};
use mha_raft::state::ClusterState;
use tokio::net::TcpListener;

pub const WAIT: Duration = Duration::from_secs(20);

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub async fn wait_until<F: FnMut() -> bool>(timeout: Duration, what: &str, mut cond: F) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn fast_timings() -> RaftTimings {
    RaftTimings {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        propose_timeout: Duration::from_secs(3),
        ..RaftTimings::default()
    }
}

pub fn init_tracing() {
    mha_raft::telemetry::init(LogFormat::Text, "warn,openraft=off");
}

/// A CA of the test's own, writing node and client certificates into a temporary directory.
pub struct TestPki {
    ca: Authority,
    dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        TestPki {
            ca: Authority::create("test").unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, stem: &str, issued: Issued) -> TlsFiles {
        let d = self.dir.path();
        write_file(&d.join("ca.crt"), self.ca.cert_pem(), 0o644).unwrap();
        write_file(&d.join(format!("{stem}.crt")), &issued.cert_pem, 0o644).unwrap();
        write_file(&d.join(format!("{stem}.key")), &issued.key_pem, 0o600).unwrap();
        TlsFiles {
            ca: d.join("ca.crt"),
            cert: d.join(format!("{stem}.crt")),
            key: d.join(format!("{stem}.key")),
        }
    }

    pub fn node(&self, id: u64) -> TlsFiles {
        self.write(&format!("node-{id}"), self.ca.issue_node(id, &[]).unwrap())
    }

    pub fn client(&self, name: &str, role: Role) -> TlsFiles {
        self.write(
            &format!("client-{name}"),
            self.ca.issue_client(name, role).unwrap(),
        )
    }

    /// mhactl's transport with a client certificate of `role`.
    pub fn transport(&self, role: Role) -> Transport {
        let files = self.client(role.as_str(), role);
        Transport::Tls(Arc::new(TlsMaterial::load(&files).unwrap()))
    }
}

pub struct TestCluster {
    nodes: BTreeMap<u64, Option<ManagerNode>>,
    configs: BTreeMap<u64, NodeConfig>,
    pub pki: TestPki,
    /// Every node's own hooks, credentials and SSH profiles.
    local: LocalConfig,
    /// Plaintext (`--insecure`) instead of mutual TLS.
    insecure: bool,
    _dirs: Vec<tempfile::TempDir>,
}

impl TestCluster {
    /// Starts `n` voters bootstrapped from initial_members.
    pub async fn start(n: u64, timings: RaftTimings) -> Self {
        Self::start_with_local(n, timings, LocalConfig::default()).await
    }

    /// [`TestCluster::start`] with `local` as every node's local config.
    pub async fn start_with_local(n: u64, timings: RaftTimings, local: LocalConfig) -> Self {
        Self::start_inner(n, timings, local, false).await
    }

    /// [`TestCluster::start`] in plaintext (`--insecure`).
    pub async fn start_insecure(n: u64, timings: RaftTimings) -> Self {
        Self::start_inner(n, timings, LocalConfig::default(), true).await
    }

    async fn start_inner(n: u64, timings: RaftTimings, local: LocalConfig, insecure: bool) -> Self {
        init_tracing();
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listeners.insert(id, l);
        }
        let members: BTreeMap<u64, String> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
            .collect();
        let mut c = TestCluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            pki: TestPki::new(),
            local,
            insecure,
            _dirs: Vec::new(),
        };
        for (id, l) in listeners {
            let cfg = c.config(
                id,
                l.local_addr().unwrap(),
                members.clone(),
                timings.clone(),
            );
            let node = ManagerNode::start_on(cfg.clone(), l).await.unwrap();
            c.configs.insert(id, cfg);
            c.nodes.insert(id, Some(node));
        }
        c
    }

    fn config(
        &mut self,
        id: u64,
        addr: SocketAddr,
        members: BTreeMap<u64, String>,
        raft: RaftTimings,
    ) -> NodeConfig {
        let dir = tempfile::tempdir().unwrap();
        let cfg = NodeConfig {
            id,
            listen: addr,
            metrics_listen: None,
            advertise: addr.to_string(),
            zone: format!("zone-{}", (b'a' + id as u8 - 1) as char),
            data_dir: dir.path().to_path_buf(),
            cluster_name: "test".into(),
            initial_members: members,
            log_format: LogFormat::Text,
            log_level: tracing::level_filters::LevelFilter::INFO,
            local: self.local.clone(),
            raft,
            transport: if self.insecure {
                TransportConfig::Insecure
            } else {
                TransportConfig::Tls(self.pki.node(id))
            },
            admin: None,
        };
        self._dirs.push(dir);
        cfg
    }

    /// Starts a node with no initial_members (to be added with add_member).
    pub async fn start_joiner(&mut self, id: u64) -> String {
        self.start_joiner_with(id, |_| {}).await
    }

    /// [`TestCluster::start_joiner`] with its config changed by `f` first.
    pub async fn start_joiner_with(&mut self, id: u64, f: impl FnOnce(&mut NodeConfig)) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let timings = self.configs.values().next().unwrap().raft.clone();
        let mut cfg = self.config(id, addr, BTreeMap::new(), timings);
        f(&mut cfg);
        let node = ManagerNode::start_on(cfg.clone(), l).await.unwrap();
        self.configs.insert(id, cfg);
        self.nodes.insert(id, Some(node));
        addr.to_string()
    }

    pub fn node(&self, id: u64) -> &RaftHandle {
        self.nodes[&id].as_ref().expect("node is stopped").raft()
    }

    pub fn runtime(&self, id: u64) -> &Arc<Runtime> {
        self.nodes[&id].as_ref().expect("node is stopped").runtime()
    }

    pub fn live(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The address node `id` serves peers and mhactl on.
    /// AddGroup (or UpdateGroup) sent to `leader`'s admin API with an admin certificate, as
    /// mhactl sends it.
    pub async fn put_group(
        &self,
        leader: &str,
        spec: &GroupSpec,
        update: bool,
    ) -> Result<(), tonic::Status> {
        use mha_raft::api::pb;
        use mha_raft::proto::admin::admin_service_client::AdminServiceClient;
        let channel = self
            .pki
            .transport(Role::Admin)
            .endpoint(leader, "mhad")
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = AdminServiceClient::new(channel);
        let req = pb::PutGroupRequest {
            spec: Some(spec.into()),
        };
        if update {
            client.update_group(req).await.map(|_| ())
        } else {
            client.add_group(req).await.map(|_| ())
        }
    }

    pub fn addr(&self, id: u64) -> String {
        self.configs[&id].advertise.clone()
    }

    pub fn zone(&self, id: u64) -> String {
        self.configs[&id].zone.clone()
    }

    /// The acting leader among live nodes, if exactly one acts.
    pub fn acting_leader(&self) -> Option<u64> {
        let acting: Vec<u64> = self
            .live()
            .into_iter()
            .filter(|id| self.node(*id).is_acting_leader())
            .collect();
        (acting.len() == 1).then(|| acting[0])
    }

    /// Waits for an acting leader that every node in `among` follows.
    pub async fn wait_leader_among(&self, among: &[u64]) -> u64 {
        let mut leader = 0;
        wait_until(WAIT, "a leader followed by all given nodes", || {
            let Some(l) = self.acting_leader().filter(|l| among.contains(l)) else {
                return false;
            };
            leader = l;
            among
                .iter()
                .all(|id| self.node(*id).metrics().current_leader == Some(l))
        })
        .await;
        leader
    }

    pub async fn wait_leader(&self) -> u64 {
        let live = self.live();
        self.wait_leader_among(&live).await
    }

    /// Waits until every node in `ids` has applied at least `index`.
    pub async fn wait_applied(&self, ids: &[u64], index: u64) {
        wait_until(WAIT, &format!("nodes {ids:?} applied {index}"), || {
            ids.iter().all(|id| {
                self.node(*id)
                    .metrics()
                    .last_applied
                    .map(|l| l.index)
                    .unwrap_or(0)
                    >= index
            })
        })
        .await;
    }

    pub fn state(&self, id: u64) -> ClusterState {
        self.node(id).read(|c| c.clone())
    }

    pub fn last_applied(&self, id: u64) -> u64 {
        self.node(id)
            .metrics()
            .last_applied
            .map(|l| l.index)
            .unwrap_or(0)
    }

    /// Clean stop (SIGTERM path).
    pub async fn stop(&mut self, id: u64) {
        if let Some(n) = self.nodes.get_mut(&id).and_then(Option::take) {
            n.shutdown().await;
        }
    }

    /// Restarts a stopped node on its old address with its old data dir.
    pub async fn restart(&mut self, id: u64) {
        assert!(self.nodes[&id].is_none(), "node {id} is running");
        let cfg = self.configs[&id].clone();
        let l = bind_retry(cfg.listen).await;
        self.nodes
            .insert(id, Some(ManagerNode::start_on(cfg, l).await.unwrap()));
    }

    /// Cuts all traffic between `side` and every other node (both directions).
    pub fn partition(&self, side: &[u64]) {
        let all: Vec<u64> = self.configs.keys().copied().collect();
        for a in self.live() {
            for b in &all {
                if side.contains(&a) != side.contains(b) {
                    self.node(a).network().stats().block(*b);
                }
            }
        }
    }

    pub fn heal(&self) {
        for id in self.live() {
            self.node(id).network().stats().unblock_all();
        }
    }

    pub async fn shutdown(mut self) {
        for id in self.live() {
            self.stop(id).await;
        }
    }
}

async fn bind_retry(addr: SocketAddr) -> TcpListener {
    let start = Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if start.elapsed() < Duration::from_secs(5) => {
                tracing::debug!(error = %e, "rebind retry");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

/// A group spec naming only the local entries the test clusters define (credentials `mha` and
/// `repl`, SSH profile `default`), with `servers` as (name, host, port), all candidates.
pub fn group_spec(name: &str, servers: &[(String, String, u16)]) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        user: "mha".into(),
        password: CredentialRef::Name("mha".into()),
        repl_user: "repl".into(),
        repl_password: CredentialRef::Name("repl".into()),
        ssh: SshSpec {
            user: "root".into(),
            port: 22,
            profile: "default".into(),
            legacy: LegacySsh::default(),
        },
        vip: None,
        vip_interface: None,
        ping: PingSpec::default(),
        servers: servers
            .iter()
            .map(|(n, host, port)| ServerSpec {
                name: n.clone(),
                host: host.clone(),
                port: *port,
                candidate_master: true,
                no_master: false,
                ssh_host: None,
                ssh_port: None,
                master_binlog_dir: None,
                ignore_fail: false,
            })
            .collect(),
        failover: Default::default(),
    }
}
