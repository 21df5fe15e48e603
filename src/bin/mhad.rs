//! mhad: one manager node. Configuration from a TOML file (--config), overridden by MHAD_*
//! environment variables, overridden by flags. Exit 2 on a configuration error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mha_raft::config::{NodeConfig, RawConfig, RawRaftConfig, RawTlsConfig};
use mha_raft::node::ManagerNode;
use mha_raft::telemetry;

#[derive(Parser, Debug)]
#[command(
    name = "mhad",
    version = mha_raft::telemetry::LONG_VERSION,
    about = "Raft-replicated MySQL/MariaDB failover manager node"
)]
#[command(
    after_help = "Example:\n  mhad --id 1 --listen 127.0.0.1:7101 --data-dir data/n1 \\\n       --initial-members 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103"
)]
struct Cli {
    /// TOML config file (every key documented in deploy/examples/mhad-zone-a.toml).
    #[arg(long, short = 'c', env = "MHAD_CONFIG")]
    config: Option<PathBuf>,
    /// Validate the configuration, print the effective one as TOML (secrets never: hooks,
    /// credentials and SSH profiles by name), and exit.
    #[arg(long)]
    check_config: bool,
    /// This manager's id: a positive integer, unique in the cluster, never reused.
    #[arg(long, env = "MHAD_ID")]
    id: Option<u64>,
    /// ip:port for the other managers and mhactl (default 127.0.0.1:7101).
    #[arg(long, env = "MHAD_LISTEN")]
    listen: Option<String>,
    /// A separate ip:port for mhactl (then `--listen` serves only the other managers).
    #[arg(long, env = "MHAD_ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// host:port mhactl uses to reach --admin-listen (default: --admin-listen).
    #[arg(long, env = "MHAD_ADMIN_ADVERTISE")]
    admin_advertise: Option<String>,
    /// ip:port of a plain-HTTP listener for Prometheus (/metrics) and health checks (/health,
    /// /leader, /groups/G/master, /groups/G/servers/S/master|replica); off when unset.
    /// Example: --metrics-listen 10.0.1.10:9104
    #[arg(long, env = "MHAD_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// host:port the others use to reach this manager (default: its initial_members entry,
    /// else --listen).
    #[arg(long, env = "MHAD_ADVERTISE")]
    advertise: Option<String>,
    /// Failure domain (zone, rack, data centre) of this manager; a master's death is
    /// corroborated from several zones (default zone-<id>).
    #[arg(long, env = "MHAD_ZONE")]
    zone: Option<String>,
    /// Directory of the Raft log, snapshots and state (created if missing, mode 0700).
    #[arg(long, env = "MHAD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The cluster's name, recorded once by the first leader (default mha).
    #[arg(long, env = "MHAD_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// The voters of a new cluster, id=host:port,... (bootstrap of an empty data dir only;
    /// a manager added later starts without it and is added with `mhactl member add`).
    /// id=host:port,... (bootstrap only).
    #[arg(long, env = "MHAD_INITIAL_MEMBERS", value_delimiter = ',')]
    initial_members: Option<Vec<String>>,
    /// Log lines as text (default) or json (one object per line); RUST_LOG filters them.
    /// text | json
    #[arg(long, env = "MHAD_LOG_FORMAT")]
    log_format: Option<String>,
    /// How much mhad itself logs: error | warn | info (default) | debug | trace. openraft,
    /// the HTTP/2 stack and sled stay at their quiet levels (RUST_LOG, when set, overrides
    /// everything).
    #[arg(long, env = "MHAD_LOG_LEVEL")]
    log_level: Option<String>,
    /// Raft heartbeat interval in ms (default 40).
    #[arg(long, env = "MHAD_HEARTBEAT_INTERVAL_MS")]
    heartbeat_interval_ms: Option<u64>,
    /// Raft election timeout, lower bound in ms (default 125); it bounds the leader's lease.
    #[arg(long, env = "MHAD_ELECTION_TIMEOUT_MIN_MS")]
    election_timeout_min_ms: Option<u64>,
    /// Raft election timeout, upper bound in ms (default 250).
    #[arg(long, env = "MHAD_ELECTION_TIMEOUT_MAX_MS")]
    election_timeout_max_ms: Option<u64>,
    /// Log entries between snapshots (default 1000).
    #[arg(long, env = "MHAD_SNAPSHOT_LOGS_SINCE_LAST")]
    snapshot_logs_since_last: Option<u64>,
    /// Log entries kept behind the last snapshot for lagging followers (default 500).
    #[arg(long, env = "MHAD_MAX_LOGS_TO_KEEP")]
    max_logs_to_keep: Option<u64>,
    /// How long a proposal may wait to be committed, in ms (default 5000).
    #[arg(long, env = "MHAD_PROPOSE_TIMEOUT_MS")]
    propose_timeout_ms: Option<u64>,
    /// Cluster CA certificate (PEM): peers and mhactl must present certificates it issued.
    #[arg(long, env = "MHAD_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// This manager's certificate (PEM), issued by the CA to node-<id> (`mhactl certs`).
    #[arg(long, env = "MHAD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(long, env = "MHAD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve plaintext and accept every caller unauthenticated (throwaway test setups only;
    /// a warning is logged at every start).
    #[arg(long)]
    insecure: bool,
}

impl Cli {
    fn overrides(&self) -> RawConfig {
        RawConfig {
            id: self.id,
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.clone(),
            admin_advertise: self.admin_advertise.clone(),
            metrics_listen: self.metrics_listen.clone(),
            advertise: self.advertise.clone(),
            zone: self.zone.clone(),
            data_dir: self.data_dir.clone(),
            cluster_name: self.cluster_name.clone(),
            initial_members: self.initial_members.clone(),
            log_format: self.log_format.clone(),
            log_level: self.log_level.clone(),
            tls: Some(RawTlsConfig {
                ca: self.tls_ca.clone(),
                cert: self.tls_cert.clone(),
                key: self.tls_key.clone(),
            }),
            insecure: self.insecure.then_some(true),
            hooks: None,
            credentials: None,
            ssh_profiles: None,
            raft: Some(RawRaftConfig {
                heartbeat_interval_ms: self.heartbeat_interval_ms,
                election_timeout_min_ms: self.election_timeout_min_ms,
                election_timeout_max_ms: self.election_timeout_max_ms,
                snapshot_logs_since_last: self.snapshot_logs_since_last,
                max_logs_to_keep: self.max_logs_to_keep,
                propose_timeout_ms: self.propose_timeout_ms,
            }),
        }
    }

    fn load(&self) -> anyhow::Result<NodeConfig> {
        let file = match &self.config {
            Some(p) => RawConfig::from_file(p)?,
            None => RawConfig::default(),
        };
        Ok(NodeConfig::try_from(file.merge(self.overrides()))?)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mhad: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        print!("{}", config.describe());
        return ExitCode::SUCCESS;
    }
    telemetry::init(config.log_format, &telemetry::mhad_filter(config.log_level));
    mha_raft::node::fd_limit::raise();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "mhad failed");
            eprintln!("mhad: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let node = ManagerNode::start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut lost = node.lost_state();
    let lost = tokio::select! {
        _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); None }
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); None }
        why = lost.wait_for(Option::is_some) => why.ok().and_then(|w| w.clone()),
    };
    node.shutdown().await;
    match lost {
        // The node refused to act as the voter it was before its data dir was lost.
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}
