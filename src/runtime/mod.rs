//! Background work of a node: the leader-only master monitors and failover executors, the
//! manager's self-registration, what it observes of its peers (observer.rs), and the admin
//! operations that read live servers. Side effects happen here (through `adapters/`), never in
//! state/ or engine/.

pub mod attempts;
pub mod credentials;
pub mod error;
pub mod failover;
mod features;
pub mod groups;
pub mod metrics;
pub mod monitor;
pub mod observed_view;
pub mod observer;
pub mod pause;
pub mod peers;
pub mod pinger;
pub mod registration;
pub mod rejoin;
pub mod relay_purge;
pub mod removal;
pub mod ssh_pools;
pub mod supervisor;
pub mod switchover;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::local_config::LocalConfig;
use crate::raft::{NodeId, RaftHandle};

/// Who this manager is, from its own configuration.
#[derive(Clone, Debug)]
pub struct Identity {
    pub zone: String,
    /// The address peers and mhactl reach this manager at.
    pub advertise: String,
    /// Where mhactl reaches it when the admin API has its own listener.
    pub admin_advertise: Option<String>,
    /// The name the first leader gives the cluster.
    pub cluster_name: String,
}

/// What the runtime works with: the Raft handle, this manager's identity and local config, and
/// what the runtime itself owns (monitor counters, kept SSH sessions).
pub struct Runtime {
    pub raft: RaftHandle,
    pub me: Identity,
    /// This manager's hooks, credentials and SSH profiles: every name a group spec uses is
    /// resolved here (invariant 7).
    pub local: Arc<LocalConfig>,
    /// Counters of the master monitors run on this node.
    pub monitor: monitor::MonitorStats,
    /// Kept SSH sessions per group (warmed by monitoring, used by failovers).
    pub ssh: ssh_pools::SshPools,
    /// The failover steps other leaders delegated to this node, between consecutive steps.
    pub delegated: failover::delegate::DelegatedRuns,
    /// Set while this manager knows it was removed from the cluster (runtime/removal.rs).
    pub removed: removal::Removed,
    /// The last relay-log purge attempt per replica of file/position groups.
    pub relay_purge: relay_purge::PurgeBook,
    /// The last automatic rejoin attempt per replaced master (`[failover] auto_rejoin`).
    pub auto_rejoin: rejoin::auto::RejoinBook,
    /// What this node counts and times, for Prometheus (server/http.rs).
    pub metrics: metrics::Metrics,
    /// The leader's latest reading of each replica (metrics, the replica health check).
    pub replicas_seen: monitor::seen::SeenBook,
    /// The suspected masters' hosts over SSH, as the leader's corroboration found them.
    pub host_silence: monitor::host_silence::SilenceBook,
}

impl Runtime {
    pub fn new(raft: RaftHandle, me: Identity, local: Arc<LocalConfig>) -> Arc<Runtime> {
        Arc::new(Runtime {
            raft,
            me,
            local,
            monitor: Default::default(),
            ssh: Default::default(),
            delegated: Default::default(),
            removed: Default::default(),
            relay_purge: Default::default(),
            auto_rejoin: Default::default(),
            metrics: Default::default(),
            replicas_seen: Default::default(),
            host_silence: Default::default(),
        })
    }

    pub fn id(&self) -> NodeId {
        self.raft.id()
    }

    /// Starts the node's background loops; they end when `stop` turns true.
    pub fn spawn_loops(self: &Arc<Self>, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(monitor::supervise(self.clone(), stop.clone())),
            tokio::spawn(failover::supervise(self.clone(), stop.clone())),
            tokio::spawn(relay_purge::supervise(self.clone(), stop.clone())),
            tokio::spawn(rejoin::auto::supervise(self.clone(), stop.clone())),
            tokio::spawn(registration::run(self.clone(), stop.clone())),
            tokio::spawn(removal::watch(self.clone(), stop.clone())),
            tokio::spawn(observer::log_leader_changes(self.clone(), stop.clone())),
            tokio::spawn(observer::watch_peers(self.clone(), stop)),
        ]
    }
}
