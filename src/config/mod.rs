//! Node configuration: a TOML file, overridden by environment variables and flags.
//!
//! [`RawConfig`] is the serde shape of the file (every key optional, unknown keys rejected); the
//! binary fills a second `RawConfig` from env + flags and [`RawConfig::merge`] layers them.
//! [`NodeConfig::try_from`] validates the result into the config the library uses. Every
//! validation error names the key it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::local_config::{LocalConfig, RawCredential, RawHook, RawSshProfile};

mod describe;
mod listen;
use listen::{admin_listen, merge_tls, transport};
pub use listen::{AdminListen, RawTlsConfig, TransportConfig};

/// A configuration problem, tied to the key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl ConfigError {
    fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            message: message.into(),
        }
    }
}

/// The file (and override) shape. All keys optional here; defaults and requirements are applied
/// in [`NodeConfig::try_from`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// This manager's id: a positive integer, unique in the cluster, never reused.
    pub id: Option<u64>,
    /// Address to listen on for peers and mhactl (`ip:port`). Default 127.0.0.1:7101.
    pub listen: Option<String>,
    /// A separate address for mhactl and other admin clients (`ip:port`). When set, `listen`
    /// serves only the other managers (client certificates are refused there) and this one
    /// the admin API, so a firewall can keep the peer port among managers.
    pub admin_listen: Option<String>,
    /// Address mhactl uses to reach `admin_listen` (`host:port`); defaults to admin_listen
    /// (which must then not be a wildcard).
    pub admin_advertise: Option<String>,
    /// Plain-HTTP listener for Prometheus (`/metrics`) and the load balancers' health checks
    /// (`/health`, `/leader`, `/groups/...`), `ip:port`. Off when unset. Read-only: it serves
    /// no secret and takes no action (docs/operations.md).
    pub metrics_listen: Option<String>,
    /// Address other managers and mhactl use to reach this node (`host:port`). Defaults to this
    /// node's entry in `initial_members`, else `listen` (which must then not be a wildcard).
    pub advertise: Option<String>,
    /// Failure domain of this manager (zone, rack, data centre). Default "zone-<id>".
    pub zone: Option<String>,
    /// Directory for the Raft log, snapshots and state. Created if missing.
    pub data_dir: Option<PathBuf>,
    /// Name of the manager cluster, recorded once by the first leader. Default "mha".
    pub cluster_name: Option<String>,
    /// Voters of a new cluster as `id=host:port` items. Used once, to bootstrap an empty node;
    /// ignored afterwards. Leave empty on a node that joins with `mhactl member add`.
    pub initial_members: Option<Vec<String>>,
    /// Log output: "text" (default) or "json".
    pub log_format: Option<String>,
    /// How much mhad itself logs: error, warn, info (default), debug or trace. Libraries
    /// (openraft, the HTTP/2 stack, sled) keep their quiet levels; RUST_LOG overrides all.
    pub log_level: Option<String>,
    /// Hooks this manager may run, by name (`[hooks]`, src/local_config.rs).
    pub hooks: Option<BTreeMap<String, RawHook>>,
    /// Where this manager reads passwords, by name (`[credentials]`).
    pub credentials: Option<BTreeMap<String, RawCredential>>,
    /// SSH key, known_hosts and DB-host client_bindir, by name (`[ssh_profiles.NAME]`).
    pub ssh_profiles: Option<BTreeMap<String, RawSshProfile>>,
    /// Raft timings and log compaction.
    pub raft: Option<RawRaftConfig>,
    /// Mutual TLS with the cluster CA, for peers and for mhactl. Required unless `insecure`.
    pub tls: Option<RawTlsConfig>,
    /// Serve plaintext and accept every caller without authentication. For throwaway test
    /// setups only; logged as a warning at every start.
    pub insecure: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRaftConfig {
    /// Leader heartbeat period. Default 40 ms.
    pub heartbeat_interval_ms: Option<u64>,
    /// A follower that hears nothing from the leader for `election_timeout_max` (openraft's vote
    /// lease) plus a random time in [min, max] starts an election. Defaults 125 / 250 ms: a dead
    /// leader is replaced in ~0.5 s median on a LAN (docs/benchmarks.md); slower or busier
    /// links need more (docs/operations.md).
    pub election_timeout_min_ms: Option<u64>,
    pub election_timeout_max_ms: Option<u64>,
    /// Build a snapshot after this many new log entries. Default 1000.
    pub snapshot_logs_since_last: Option<u64>,
    /// Entries kept in the log behind the latest snapshot (for lagging followers). Default 500.
    pub max_logs_to_keep: Option<u64>,
    /// How long a proposal may wait to be committed before the caller gets a timeout. Default 5000.
    pub propose_timeout_ms: Option<u64>,
}

impl RawConfig {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::File {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// `self` overridden by every key set in `over`.
    pub fn merge(self, over: RawConfig) -> RawConfig {
        let raft_base = self.raft.unwrap_or_default();
        let raft_over = over.raft.unwrap_or_default();
        RawConfig {
            id: over.id.or(self.id),
            listen: over.listen.or(self.listen),
            admin_listen: over.admin_listen.or(self.admin_listen),
            admin_advertise: over.admin_advertise.or(self.admin_advertise),
            metrics_listen: over.metrics_listen.or(self.metrics_listen),
            advertise: over.advertise.or(self.advertise),
            zone: over.zone.or(self.zone),
            data_dir: over.data_dir.or(self.data_dir),
            cluster_name: over.cluster_name.or(self.cluster_name),
            initial_members: over.initial_members.or(self.initial_members),
            log_format: over.log_format.or(self.log_format),
            log_level: over.log_level.or(self.log_level),
            tls: merge_tls(self.tls, over.tls),
            insecure: over.insecure.or(self.insecure),
            hooks: over.hooks.or(self.hooks),
            credentials: over.credentials.or(self.credentials),
            ssh_profiles: over.ssh_profiles.or(self.ssh_profiles),
            raft: Some(RawRaftConfig {
                heartbeat_interval_ms: raft_over
                    .heartbeat_interval_ms
                    .or(raft_base.heartbeat_interval_ms),
                election_timeout_min_ms: raft_over
                    .election_timeout_min_ms
                    .or(raft_base.election_timeout_min_ms),
                election_timeout_max_ms: raft_over
                    .election_timeout_max_ms
                    .or(raft_base.election_timeout_max_ms),
                snapshot_logs_since_last: raft_over
                    .snapshot_logs_since_last
                    .or(raft_base.snapshot_logs_since_last),
                max_logs_to_keep: raft_over.max_logs_to_keep.or(raft_base.max_logs_to_keep),
                propose_timeout_ms: raft_over
                    .propose_timeout_ms
                    .or(raft_base.propose_timeout_ms),
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated Raft settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftTimings {
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub snapshot_logs_since_last: u64,
    pub max_logs_to_keep: u64,
    pub propose_timeout: Duration,
}

impl Default for RaftTimings {
    fn default() -> Self {
        RaftTimings {
            heartbeat_interval: Duration::from_millis(40),
            election_timeout_min: Duration::from_millis(125),
            election_timeout_max: Duration::from_millis(250),
            snapshot_logs_since_last: 1000,
            max_logs_to_keep: 500,
            propose_timeout: Duration::from_millis(5000),
        }
    }
}

impl RaftTimings {
    /// How long a leader may go without a quorum acknowledgement and still act as leader.
    /// openraft 0.9 followers refuse votes for `election_timeout_max` after last hearing from
    /// the leader and then wait at least `election_timeout_min` more, so a new leader cannot be
    /// elected sooner than max + min after the old one's last acknowledged heartbeat; the old
    /// leader stops acting after min — well before.
    pub fn leader_lease(&self) -> Duration {
        self.election_timeout_min
    }

    /// How long past its lease a leader keeps its leader-only tasks (monitors, failover
    /// executors) through a lapse in the same term, each action waiting for the lease: they
    /// must be gone before a new leader can exist (max + min after the last acknowledgement),
    /// with a supervisor tick (50 ms) and 50 ms to spare. 150 ms at the defaults.
    pub fn lapse_keep(&self) -> Duration {
        self.election_timeout_max
            .saturating_sub(Duration::from_millis(100))
    }

    pub fn to_openraft(&self, cluster_name: &str) -> openraft::Config {
        openraft::Config {
            cluster_name: cluster_name.to_string(),
            heartbeat_interval: self.heartbeat_interval.as_millis() as u64,
            election_timeout_min: self.election_timeout_min.as_millis() as u64,
            election_timeout_max: self.election_timeout_max.as_millis() as u64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.max_logs_to_keep,
            ..Default::default()
        }
    }
}

/// The validated configuration of one manager node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: u64,
    pub listen: SocketAddr,
    /// The separate admin listener and the address clients reach it at, if configured.
    pub admin: Option<AdminListen>,
    /// The metrics and health HTTP listener, if configured.
    pub metrics_listen: Option<SocketAddr>,
    pub advertise: String,
    pub zone: String,
    pub data_dir: PathBuf,
    pub cluster_name: String,
    /// Voters to bootstrap with when the store is empty; empty for a joining node.
    pub initial_members: BTreeMap<u64, String>,
    pub log_format: LogFormat,
    /// mhad's own log level (`log_level`); see [`crate::telemetry::mhad_filter`].
    pub log_level: tracing::level_filters::LevelFilter,
    /// This manager's own hooks, credentials and SSH profiles (invariant 7).
    pub local: LocalConfig,
    pub raft: RaftTimings,
    pub transport: TransportConfig,
}

/// Validation of every field, in file order, each error naming its key (long, and flat on
/// purpose).
impl TryFrom<RawConfig> for NodeConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let id = raw.id.ok_or_else(|| {
            ConfigError::invalid("id", "required (a positive integer, unique per manager)")
        })?;
        if id == 0 {
            return Err(ConfigError::invalid(
                "id",
                "must be a positive integer, got 0",
            ));
        }
        let listen_s = raw.listen.unwrap_or_else(|| "127.0.0.1:7101".to_string());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            ConfigError::invalid(
                "listen",
                format!("not an ip:port socket address: {listen_s:?}"),
            )
        })?;

        let initial_members = parse_members(raw.initial_members.as_deref().unwrap_or_default())?;
        if !initial_members.is_empty() && !initial_members.contains_key(&id) {
            return Err(ConfigError::invalid(
                "initial_members",
                format!(
                    "this node (id {id}) is not listed; list every initial voter including this node, or \
                     leave initial_members empty on a node that joins an existing cluster"
                ),
            ));
        }

        let advertise = match (raw.advertise, initial_members.get(&id)) {
            (Some(a), _) => {
                check_host_port(&a).map_err(|m| ConfigError::invalid("advertise", m))?;
                a
            }
            (None, Some(own)) => own.clone(),
            (None, None) if listen.ip().is_unspecified() => {
                return Err(ConfigError::invalid(
                    "advertise",
                    format!("required when listen is a wildcard address ({listen})"),
                ))
            }
            (None, None) => listen.to_string(),
        };
        if let Some(own) = initial_members.get(&id) {
            if *own != advertise {
                return Err(ConfigError::invalid(
                    "initial_members",
                    format!("this node's entry {own:?} differs from its advertise address {advertise:?}"),
                ));
            }
        }

        let zone = raw.zone.unwrap_or_else(|| format!("zone-{id}"));
        if zone.trim().is_empty() {
            return Err(ConfigError::invalid("zone", "must not be empty"));
        }
        let data_dir = raw
            .data_dir
            .ok_or_else(|| ConfigError::invalid("data_dir", "required"))?;
        check_writable_dir(&data_dir).map_err(|m| ConfigError::invalid("data_dir", m))?;

        let cluster_name = raw.cluster_name.unwrap_or_else(|| "mha".to_string());
        if cluster_name.trim().is_empty() {
            return Err(ConfigError::invalid("cluster_name", "must not be empty"));
        }
        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "log_format",
                    format!("expected \"text\" or \"json\", got {other:?}"),
                ))
            }
        };
        let log_level = match raw.log_level.as_deref().unwrap_or("info") {
            "error" => tracing::level_filters::LevelFilter::ERROR,
            "warn" => tracing::level_filters::LevelFilter::WARN,
            "info" => tracing::level_filters::LevelFilter::INFO,
            "debug" => tracing::level_filters::LevelFilter::DEBUG,
            "trace" => tracing::level_filters::LevelFilter::TRACE,
            other => {
                return Err(ConfigError::invalid(
                    "log_level",
                    format!("expected error, warn, info, debug or trace, got {other:?}"),
                ))
            }
        };
        let local = LocalConfig::from_raw(
            raw.hooks.unwrap_or_default(),
            raw.credentials.unwrap_or_default(),
            raw.ssh_profiles.unwrap_or_default(),
        )
        .map_err(|(key, message)| ConfigError::invalid(key, message))?;

        let raft = raft_timings(raw.raft.unwrap_or_default())?;
        let transport = transport(raw.tls, raw.insecure.unwrap_or(false))?;
        let admin = admin_listen(raw.admin_listen, raw.admin_advertise, listen)?;
        let metrics_listen = raw
            .metrics_listen
            .map(|m| {
                m.parse::<SocketAddr>().map_err(|_| {
                    ConfigError::invalid("metrics_listen", format!("expected ip:port, got {m:?}"))
                })
            })
            .transpose()?;
        if metrics_listen.is_some_and(|m| m.port() == listen.port() && m.ip() == listen.ip()) {
            return Err(ConfigError::invalid(
                "metrics_listen",
                "must differ from listen (the gRPC port)",
            ));
        }
        Ok(NodeConfig {
            id,
            listen,
            admin,
            metrics_listen,
            advertise,
            zone,
            data_dir,
            cluster_name,
            initial_members,
            log_format,
            log_level,
            local,
            raft,
            transport,
        })
    }
}

fn raft_timings(r: RawRaftConfig) -> Result<RaftTimings, ConfigError> {
    let d = RaftTimings::default();
    let ms = |v: Option<u64>, def: Duration| v.map(Duration::from_millis).unwrap_or(def);
    let t = RaftTimings {
        heartbeat_interval: ms(r.heartbeat_interval_ms, d.heartbeat_interval),
        election_timeout_min: ms(r.election_timeout_min_ms, d.election_timeout_min),
        election_timeout_max: ms(r.election_timeout_max_ms, d.election_timeout_max),
        snapshot_logs_since_last: r
            .snapshot_logs_since_last
            .unwrap_or(d.snapshot_logs_since_last),
        max_logs_to_keep: r.max_logs_to_keep.unwrap_or(d.max_logs_to_keep),
        propose_timeout: ms(r.propose_timeout_ms, d.propose_timeout),
    };
    if t.heartbeat_interval.is_zero() {
        return Err(ConfigError::invalid(
            "raft.heartbeat_interval_ms",
            "must be > 0",
        ));
    }
    if t.election_timeout_min <= t.heartbeat_interval {
        return Err(ConfigError::invalid(
            "raft.election_timeout_min_ms",
            format!(
                "must be greater than raft.heartbeat_interval_ms ({:?})",
                t.heartbeat_interval
            ),
        ));
    }
    if t.election_timeout_max <= t.election_timeout_min {
        return Err(ConfigError::invalid(
            "raft.election_timeout_max_ms",
            format!(
                "must be greater than raft.election_timeout_min_ms ({:?})",
                t.election_timeout_min
            ),
        ));
    }
    if t.snapshot_logs_since_last == 0 {
        return Err(ConfigError::invalid(
            "raft.snapshot_logs_since_last",
            "must be > 0",
        ));
    }
    if t.propose_timeout.is_zero() {
        return Err(ConfigError::invalid(
            "raft.propose_timeout_ms",
            "must be > 0",
        ));
    }
    Ok(t)
}

/// Parses `id=host:port` items (a flag may also pass one comma-separated string).
pub fn parse_members(items: &[String]) -> Result<BTreeMap<u64, String>, ConfigError> {
    let key = "initial_members";
    let mut out = BTreeMap::new();
    let mut addrs = BTreeSet::new();
    for item in items
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (id, addr) = item.split_once('=').ok_or_else(|| {
            ConfigError::invalid(key, format!("expected id=host:port, got {item:?}"))
        })?;
        let id: u64 = id.trim().parse().ok().filter(|i| *i > 0).ok_or_else(|| {
            ConfigError::invalid(
                key,
                format!("bad id in {item:?}: a positive integer is required"),
            )
        })?;
        let addr = addr.trim().to_string();
        check_host_port(&addr).map_err(|m| ConfigError::invalid(key, format!("{item:?}: {m}")))?;
        if !addrs.insert(addr.clone()) {
            return Err(ConfigError::invalid(
                key,
                format!("address {addr} is listed twice"),
            ));
        }
        if out.insert(id, addr).is_some() {
            return Err(ConfigError::invalid(key, format!("duplicate id {id}")));
        }
    }
    Ok(out)
}

/// `host:port` with a non-empty host and a valid non-zero port.
pub fn check_host_port(s: &str) -> Result<(), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("not host:port: {s:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("bad host in {s:?}"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("bad port in {s:?}")),
    }
}

fn check_writable_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let probe = dir.join(".mhad-write-probe");
    std::fs::write(&probe, b"ok").map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests;
