//! The virtual IP, moved over SSH (built-in alternative to MHA's master_ip_failover_script):
//! every operation checks first and does only what is missing (idempotent, as failover steps
//! must be), and the gratuitous ARP that tells clients the new MAC is sent in the background so
//! it never blocks the failover.

use std::time::Duration;

use crate::adapters::ssh::{shell_quote, SshError, SshPool};

/// A VIP (`10.0.0.100/24`) on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub cidr: String,
    pub interface: String,
}

impl Vip {
    pub fn ip(&self) -> &str {
        self.cidr.split('/').next().unwrap_or(&self.cidr)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("{host}: `{command}` exited {status:?}: {stderr}")]
    Command {
        host: String,
        command: String,
        status: Option<u32>,
        stderr: String,
    },
}

async fn run(
    ssh: &SshPool,
    host: &str,
    port: u16,
    cmd: &str,
    timeout: Duration,
) -> Result<String, VipError> {
    let out = ssh.exec(host, port, cmd, timeout).await?;
    if !out.success() {
        return Err(VipError::Command {
            host: host.to_string(),
            command: cmd.to_string(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip addr add|del VIP dev IFACE` on the host.
async fn ip_addr(
    ssh: &SshPool,
    host: &str,
    port: u16,
    op: &str,
    vip: &Vip,
    timeout: Duration,
) -> Result<(), VipError> {
    let cmd = format!(
        "ip addr {op} {} dev {}",
        shell_quote(&vip.cidr),
        shell_quote(&vip.interface)
    );
    run(ssh, host, port, &cmd, timeout).await.map(|_| ())
}

/// Whether `host` currently holds the VIP.
pub async fn present(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    let out = run(
        ssh,
        host,
        port,
        &format!("ip -o addr show dev {}", shell_quote(&vip.interface)),
        timeout,
    )
    .await?;
    Ok(out.split_whitespace().any(|w| w == vip.cidr))
}

/// Removes the VIP from `host` if it is there. Returns whether anything was removed.
pub async fn remove(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    if !present(ssh, host, port, vip, timeout).await? {
        return Ok(false);
    }
    ip_addr(ssh, host, port, "del", vip, timeout).await?;
    Ok(true)
}

/// Adds the VIP on `host` if missing, then announces it with gratuitous ARP in the background
/// (`arping -U`, detached: the failover does not wait for it). Returns whether it was added.
pub async fn add(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    let added = if present(ssh, host, port, vip, timeout).await? {
        false
    } else {
        ip_addr(ssh, host, port, "add", vip, timeout).await?;
        true
    };
    let arp = format!(
        "(arping -q -U -c 3 -I {} {} >/dev/null 2>&1 &) ; true",
        shell_quote(&vip.interface),
        shell_quote(vip.ip())
    );
    run(ssh, host, port, &arp, timeout).await?;
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_of_cidr() {
        let v = Vip {
            cidr: "10.0.0.100/24".into(),
            interface: "eth0".into(),
        };
        assert_eq!(v.ip(), "10.0.0.100");
    }
}
