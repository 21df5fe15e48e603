//! A replica host's own connections to its dark master, refused on the replica host for a
//! moment (an iptables OUTPUT rule answering with a reset).
//!
//! Why: a semi-sync replica's IO thread, on its way out of `STOP SLAVE IO_THREAD`, connects to
//! its master to kill its dump thread there. Against a host that answers nothing (powered off,
//! cut from the network) that connect waits out `rpl_semi_sync_slave_kill_conn_timeout`, 1 s
//! at the least, on the failover's path. Refused locally, the connect fails at once and the
//! stop takes milliseconds. Phase 2 places the rule just before the stop and deletes it right
//! after; a resumed phase 2 deletes whatever an interrupted one left.
//!
//! The rule only touches the replica host's connections to the old master's MySQL port, which
//! phase 2 is cutting anyway (the old master is being fenced); it never stays: a rule left
//! behind would keep that replica from ever replicating from the old master again.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::iptables::{drop_rule, insert_rule};
use super::shell::{last_word, run, HostCommandError};
use super::SshPool;

/// The rule: this host's TCP connections to `ip:port` answered with a reset. An address, never
/// a name: iptables would resolve a name on the host, and a failed lookup would let a deletion
/// pass for done.
fn rule(ip: Ipv4Addr, port: u16) -> String {
    format!("OUTPUT -d {ip}/32 -p tcp --dport {port} -j REJECT --reject-with tcp-reset")
}

/// What placing the refusal came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    Refusing,
    /// The host has no usable iptables (not root, none installed): nothing was placed.
    NotPlaced,
    /// The insert was cut off, or the host said something else (a login script's output):
    /// the rule may be there, so it is deleted afterwards all the same.
    Unclear,
}

/// Places the refusal of `to:to_port` on `host` (one SSH round trip).
pub async fn refuse(
    ssh: &SshPool,
    host: &str,
    port: u16,
    to: Ipv4Addr,
    to_port: u16,
    timeout: Duration,
) -> Result<Placed, HostCommandError> {
    let out = run(
        ssh,
        host,
        port,
        &insert_rule(&rule(to, to_port), "refusing"),
        timeout,
    )
    .await?;
    Ok(match last_word(&out) {
        "refusing" => Placed::Refusing,
        "none" => Placed::NotPlaced,
        _ => Placed::Unclear,
    })
}

/// Deletes every copy of the refusal of `to:to_port` from `host`. Err when a copy may remain
/// (the deletion kept timing out on the xtables lock): the caller says where, and how to
/// delete it.
pub async fn allow(
    ssh: &SshPool,
    host: &str,
    port: u16,
    to: Ipv4Addr,
    to_port: u16,
    timeout: Duration,
) -> Result<(), HostCommandError> {
    let what = "the refusal of the old master";
    run(
        ssh,
        host,
        port,
        &drop_rule(&rule(to, to_port), what),
        timeout,
    )
    .await
    .map(|_| ())
}

/// The command an operator runs on a replica host to delete a refusal left behind.
pub fn manual_allow(to: Ipv4Addr, to_port: u16) -> String {
    format!("iptables -D {}", rule(to, to_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 11);

    #[test]
    fn commands_parse() {
        let r = rule(IP, 3306);
        super::super::shell::assert_parses(&[
            insert_rule(&r, "refusing"),
            drop_rule(&r, "the refusal"),
            manual_allow(IP, 3306),
        ]);
    }

    #[test]
    fn the_rule_names_the_address_and_port() {
        assert_eq!(
            manual_allow(IP, 3307),
            "iptables -D OUTPUT -d 10.77.0.11/32 -p tcp --dport 3307 -j REJECT --reject-with \
             tcp-reset"
        );
    }
}
