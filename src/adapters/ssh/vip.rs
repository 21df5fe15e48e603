//! The virtual IP, moved over SSH (built-in alternative to MHA's master_ip_failover_script):
//! every operation checks first and does only what is missing (idempotent, as failover steps
//! must be), and the gratuitous ARP that tells clients the new MAC is sent in the background so
//! it never blocks the failover.
//!
//! No connection attempt to the VIP goes unanswered while it moves. Fencing does not take the
//! address off the old master's host: it keeps it and answers every TCP packet to it with a
//! reset (an iptables REJECT rule), so clients that still send there fail at once and retry,
//! instead of waiting a second for a SYN retransmit into silence. Only once the new master holds
//! the VIP is it released from the old host (rule and address), and the new host announces it
//! again, so a client that learned the old MAC in between is corrected at once. Where the old
//! host has no iptables, fencing removes the address as before, and says so.

use std::time::Duration;

use super::iptables::{self, IPTABLES};
use super::shell::{last_word, run, says, HostCommandError};
use super::{shell_quote, SshPool};

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

/// What a VIP operation can fail with.
pub type VipError = HostCommandError;

/// The iptables rule that fences the VIP on a host: every TCP packet to it answered with a
/// reset (new connections refused, established ones broken).
fn reject_rule(vip: &Vip) -> String {
    format!(
        "INPUT -d {}/32 -p tcp -j REJECT --reject-with tcp-reset",
        shell_quote(vip.ip())
    )
}

/// Shell that deletes every copy of the fencing rule ([`iptables::drop_rule`]): it fails when
/// a copy may remain, so that the VIP is never added behind its REJECT.
fn drop_reject_rule(vip: &Vip) -> String {
    iptables::drop_rule(&reject_rule(vip), "the VIP's fencing rule")
}

/// A shell test for "the interface carries the VIP" (exact address/prefix match). One `ip`
/// process (`to ADDRESS` lists only that address) and a `case`: every process is a millisecond
/// or two on a failover's path.
fn has_vip(vip: &Vip) -> String {
    format!(
        "case \" $(ip -o addr show dev {dev} to {ip}) \" in *{cidr}*) true;; *) false;; esac",
        dev = shell_quote(&vip.interface),
        ip = shell_quote(vip.ip()),
        cidr = shell_quote(&format!(" {} ", vip.cidr))
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
    let cmd = format!("if {}; then echo yes; else echo no; fi", has_vip(vip));
    says(ssh, host, port, &cmd, timeout, "yes").await
}

/// What fencing did to the VIP on the old master's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fenced {
    /// Kept, every TCP packet to it answered with a reset.
    Rejecting,
    /// Removed (no iptables on the host): attempts to it go unanswered until it moves.
    Removed,
    /// The host did not hold it.
    Absent,
}

/// Fences the VIP on `host` if it holds it (one SSH round trip): the REJECT rule inserted
/// first in INPUT, then proven from the host itself — a connection to the VIP's `mysql_port`
/// must not be accepted (where mysqld sits behind a DNAT, a container's published port, the
/// packets never reach INPUT and the rule would fence nothing). Without iptables, or when the
/// rule does not hold, the address is removed instead. The rule is inserted without checking
/// for it first (one iptables process less on the failover's path): a fence run again leaves
/// a second copy, and every release deletes every copy.
pub async fn fence(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    mysql_port: u16,
    timeout: Duration,
) -> Result<Fenced, VipError> {
    let cmd = fence_cmd(vip, mysql_port);
    Ok(
        match last_word(&run(ssh, host, port, &cmd, timeout).await?) {
            "rejecting" => Fenced::Rejecting,
            "removed" => Fenced::Removed,
            _ => Fenced::Absent,
        },
    )
}

fn fence_cmd(vip: &Vip, mysql_port: u16) -> String {
    let rule = reject_rule(vip);
    let knock = shell_quote(&format!("exec 3<>/dev/tcp/{}/{mysql_port}", vip.ip()));
    format!(
        "if {has}; then \
           if command -v iptables >/dev/null 2>&1 && \
              {IPTABLES} -I {rule} && \
              ! timeout 0.3 bash -c {knock} 2>/dev/null; then \
             echo rejecting; \
           else ip addr del {cidr} dev {dev} && echo removed; fi; \
         else echo absent; fi",
        has = has_vip(vip),
        cidr = shell_quote(&vip.cidr),
        dev = shell_quote(&vip.interface)
    )
}

/// Releases the VIP from `host`: the address removed if there, then the fencing rule deleted
/// (one SSH round trip) — in that order, so the host never holds the address without the rule;
/// if the removal fails the rule stays. Returns whether the address was there.
pub async fn release(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    says(ssh, host, port, &release_cmd(vip), timeout, "removed").await
}

/// A rule left behind once the address is gone fences nothing (the host does not hold the
/// VIP): its failed deletion is said on stderr, and deleted again by the host's next add.
fn release_cmd(vip: &Vip) -> String {
    format!(
        "if {has}; then ip addr del {cidr} dev {dev} || exit $?; r=removed; else r=absent; fi; \
         {drop}; echo $r",
        drop = drop_reject_rule(vip),
        has = has_vip(vip),
        cidr = shell_quote(&vip.cidr),
        dev = shell_quote(&vip.interface)
    )
}

/// Gratuitous ARP for the VIP from `host`, in the background (the command returns at once).
pub async fn announce(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<(), VipError> {
    run(ssh, host, port, &garp(vip), timeout).await.map(|_| ())
}

/// Shell that sends gratuitous ARP for the VIP, detached.
fn garp(vip: &Vip) -> String {
    format!(
        "(arping -q -U -c 3 -I {dev} {ip} >/dev/null 2>&1 &)",
        dev = shell_quote(&vip.interface),
        ip = shell_quote(vip.ip())
    )
}

/// Adds the VIP on `host` if missing and announces it with gratuitous ARP in the background
/// (`arping -U`, detached: the failover does not wait for it), in one SSH round trip. A fencing
/// rule left on this host from a failover away from it is deleted first. Returns whether the
/// address was added.
pub async fn add(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    says(ssh, host, port, &add_cmd(vip), timeout, "added").await
}

/// The rule must be gone before the address serves: a failed deletion fails the add.
fn add_cmd(vip: &Vip) -> String {
    format!("{} || exit $?; {}", drop_reject_rule(vip), add_address(vip))
}

/// Deletes every copy of the fencing rule from `host` unless the host holds the VIP (one SSH
/// round trip), so that [`add_unfenced`] can follow: a failover runs it alongside its SQL on
/// the new master, taking the iptables processes off the path between writable and the VIP.
/// A host that holds the VIP already (the old master's host, or an address a failed release
/// left) keeps its rule: deleting it then would let clients in before the new master is
/// writable, so [`add`] deletes it after. Returns whether the rule is gone (false: held).
pub async fn unfence(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    says(ssh, host, port, &unfence_cmd(vip), timeout, "unfenced").await
}

fn unfence_cmd(vip: &Vip) -> String {
    format!(
        "if {has}; then echo held; else {drop} || exit $?; echo unfenced; fi",
        has = has_vip(vip),
        drop = drop_reject_rule(vip)
    )
}

/// [`add`] on a host [`unfence`]d just before: the address and the announcement only.
pub async fn add_unfenced(
    ssh: &SshPool,
    host: &str,
    port: u16,
    vip: &Vip,
    timeout: Duration,
) -> Result<bool, VipError> {
    says(ssh, host, port, &add_address(vip), timeout, "added").await
}

/// Shell that adds the VIP unless the interface has it, announces it, and echoes `added` or
/// `present`. The add is tried first (one process in the common case); only when it fails is
/// the address looked for, and an add that failed for another reason is run again for its
/// error and exit status.
fn add_address(vip: &Vip) -> String {
    let add = format!(
        "ip addr add {cidr} dev {dev}",
        cidr = shell_quote(&vip.cidr),
        dev = shell_quote(&vip.interface)
    );
    format!(
        "if {add} 2>/dev/null; then r=added; elif {has}; then r=present; else {add} || exit $?; \
         r=added; fi; {garp}; echo $r",
        has = has_vip(vip),
        garp = garp(vip)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command is valid shell for the POSIX shell and bash (a login shell may be
    /// either), with values that need quoting.
    #[test]
    fn commands_parse() {
        let v = Vip {
            cidr: "10.0.0.100/24".into(),
            interface: "eth 0'x".into(),
        };
        super::super::shell::assert_parses(&[
            fence_cmd(&v, 3306),
            release_cmd(&v),
            add_cmd(&v),
            unfence_cmd(&v),
            add_address(&v),
            garp(&v),
        ]);
    }

    #[test]
    fn ip_of_cidr() {
        let v = Vip {
            cidr: "10.0.0.100/24".into(),
            interface: "eth0".into(),
        };
        assert_eq!(v.ip(), "10.0.0.100");
    }
}
