//! The SSH pools of this manager: one per SSH identity (user, key, known_hosts), shared by
//! every group with those settings, so one kept connection per host serves them all.
//! Monitoring keeps the sessions warm (a cheap `true` every few seconds), so a failover never
//! pays for a handshake: fencing, the VIP and hooks over SSH cost one round trip each.

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

/// Who a pool logs in as and how it trusts hosts: groups that agree share one pool, so one
/// connection per host serves every group with a server there.
type PoolKey = (String, std::path::PathBuf, std::path::PathBuf, bool);

#[derive(Default)]
pub struct SshPools {
    pools: Mutex<BTreeMap<PoolKey, Arc<SshPool>>>,
}

impl SshPools {
    /// The pool for the group's SSH settings (user, key, known_hosts as this manager's
    /// profile names them), shared with every group that has the same.
    pub fn get(&self, local: &LocalConfig, spec: &GroupSpec) -> Result<Arc<SshPool>, SshError> {
        let cfg = ssh_config(local, &spec.ssh, FAILOVER_SSH_CONNECT)?;
        let key = (
            cfg.user.clone(),
            cfg.key_path.clone(),
            cfg.known_hosts.clone(),
            cfg.accept_unknown_host_keys,
        );
        let mut pools = self.pools.lock().expect("ssh pools lock");
        if let Some(p) = pools.get(&key) {
            return Ok(p.clone());
        }
        let pool = Arc::new(SshPool::new(cfg)?);
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    /// How many pools (distinct SSH identities) this manager keeps.
    pub fn len(&self) -> usize {
        self.pools.lock().expect("ssh pools lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How often a session is kept warm.
const WARM_EVERY: Duration = Duration::from_secs(5);

/// Keeps a session open to every server of the group until aborted. A host whose session ran
/// a command within the last round (another group's keep-warm, a step) is skipped: a hundred
/// groups on three hosts cost three commands per round, not three hundred.
pub async fn keep_warm(pool: Arc<SshPool>, spec: GroupSpec) {
    loop {
        join_all(spec.servers.iter().map(|s| {
            let pool = pool.clone();
            let (host, port) = s.ssh_target(&spec.ssh);
            async move {
                if let Err(e) = pool.check_unless_fresh(&host, port, WARM_EVERY).await {
                    tracing::debug!(server = %host, error = %e, "ssh keep-warm failed");
                }
            }
        }))
        .await;
        tokio::time::sleep(WARM_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_config::SshProfile;

    /// A throwaway key made for this test (ssh-keygen -t ed25519): nothing trusts it.
    const TEST_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDTMb0XnXVa81FHGz8mGQI/qkXsVqqHuBtk0ruazBvF+AAAAIjUxjhi1MY4
YgAAAAtzc2gtZWQyNTUxOQAAACDTMb0XnXVa81FHGz8mGQI/qkXsVqqHuBtk0ruazBvF+A
AAAECe3ueqMIvqUhrSkMMx9E712biEi0NLesHF0X8QBIkda9MxvReddVrzUUcbPyYZAj+q
RexWqoe4G2TSu5rMG8X4AAAABHRlc3QB
-----END OPENSSH PRIVATE KEY-----
";

    fn spec(name: &str, user: &str) -> GroupSpec {
        let mut g = crate::state::group::tests::spec(name);
        g.ssh.user = user.into();
        g
    }

    #[test]
    fn groups_with_the_same_ssh_identity_share_one_pool() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, TEST_KEY).unwrap();
        let mut local = LocalConfig::default();
        local.ssh_profiles.insert(
            "default".into(),
            SshProfile {
                key,
                known_hosts: dir.path().join("known_hosts"),
                accept_unknown_host_keys: false,
                client_bindir: None,
            },
        );
        let pools = SshPools::default();
        let a = pools.get(&local, &spec("app1", "root")).unwrap();
        let b = pools.get(&local, &spec("app2", "root")).unwrap();
        let c = pools.get(&local, &spec("app3", "mha")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(pools.len(), 2);
    }
}
