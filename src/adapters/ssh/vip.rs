//! The virtual IP, moved over SSH (built-in alternative to MHA's master_ip_failover_script):
//! every operation checks first and does only what is missing (idempotent, as failover steps
//! must be), and the gratuitous ARP that tells clients the new MAC is sent in the background so
//! it never blocks the failover.

use std::time::Duration;

use super::{shell_quote, SshError, SshPool};

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

/// A shell test for "the interface carries the VIP" (exact address/prefix match).
fn has_vip(vip: &Vip) -> String {
    format!(
        "ip -o addr show dev {} | tr -s ' ' '\\n' | grep -qxF {}",
        shell_quote(&vip.interface),
        shell_quote(&vip.cidr)
    )
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
        &format!("if {}; then echo yes; else echo no; fi", has_vip(vip)),
        timeout,
    )
    .await?;
    Ok(out.trim() == "yes")
}

/// Removes the VIP from `host` if it is there (check and act in one SSH round trip). Returns
/// whether anything was removed.
pub async fn remove(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    let cmd = format!(
        "if {}; then ip addr del {} dev {} && echo removed; else echo absent; fi",
        has_vip(vip),
        shell_quote(&vip.cidr),
        shell_quote(&vip.interface)
    );
    Ok(run(ssh, host, port, &cmd, timeout).await?.trim() == "removed")
}

/// Adds the VIP on `host` if missing and announces it with gratuitous ARP in the background
/// (`arping -U`, detached: the failover does not wait for it), in one SSH round trip. Returns
/// whether it was added.
pub async fn add(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    let cmd = format!(
        "if {has}; then r=present; else ip addr add {cidr} dev {dev} || exit $?; r=added; fi; \
         (arping -q -U -c 3 -I {dev} {ip} >/dev/null 2>&1 &); echo $r",
        has = has_vip(vip),
        cidr = shell_quote(&vip.cidr),
        dev = shell_quote(&vip.interface),
        ip = shell_quote(vip.ip())
    );
    Ok(run(ssh, host, port, &cmd, timeout).await?.trim() == "added")
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
