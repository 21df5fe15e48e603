//! One kept SSH pool per group on this manager. Monitoring keeps the sessions warm (a cheap
//! `true` every few seconds), so a failover never pays for a handshake: fencing, the VIP and
//! hooks over SSH cost one round trip each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;

use crate::adapters::ssh::{SshConfig, SshError, SshPool};
use crate::local_config::LocalConfig;
use crate::state::group::{GroupSpec, SshSpec};

/// How long an SSH connect to a failover target may take: a dead host costs at most this.
pub const FAILOVER_SSH_CONNECT: Duration = Duration::from_secs(1);

/// The SSH settings of a group on this manager: the user from the spec, key and known_hosts
/// from the `[ssh_profiles]` entry it names in this manager's config.
pub fn ssh_config(
    local: &LocalConfig,
    ssh: &SshSpec,
    connect_timeout: Duration,
) -> Result<SshConfig, SshError> {
    let profile =
        super::credentials::ssh_profile(local, ssh).map_err(|e| SshError::Config(e.to_string()))?;
    Ok(SshConfig {
        user: ssh.user.clone(),
        key_path: profile.key.clone(),
        known_hosts: profile.known_hosts.clone(),
        accept_unknown_host_keys: profile.accept_unknown_host_keys,
        connect_timeout,
    })
}

#[derive(Default)]
pub struct SshPools {
    pools: Mutex<BTreeMap<String, (SshSpec, Arc<SshPool>)>>,
}

impl SshPools {
    /// The group's pool, rebuilt when its SSH settings changed.
    pub fn get(&self, local: &LocalConfig, spec: &GroupSpec) -> Result<Arc<SshPool>, SshError> {
        let mut pools = self.pools.lock().expect("ssh pools lock");
        if let Some((s, p)) = pools.get(&spec.name) {
            if *s == spec.ssh {
                return Ok(p.clone());
            }
        }
        let pool = Arc::new(SshPool::new(ssh_config(
            local,
            &spec.ssh,
            FAILOVER_SSH_CONNECT,
        )?)?);
        pools.insert(spec.name.clone(), (spec.ssh.clone(), pool.clone()));
        Ok(pool)
    }
}

/// Keeps a session open to every server of the group until aborted.
pub async fn keep_warm(pool: Arc<SshPool>, spec: GroupSpec) {
    loop {
        join_all(spec.servers.iter().map(|s| {
            let pool = pool.clone();
            let (host, port) = s.ssh_target(&spec.ssh);
            async move {
                if let Err(e) = pool.check(&host, port).await {
                    tracing::debug!(server = %host, error = %e, "ssh keep-warm failed");
                }
            }
        }))
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
