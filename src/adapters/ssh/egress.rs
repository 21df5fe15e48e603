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

use std::time::Duration;

use super::iptables::{drop_rule, insert_rule};
use super::shell::{run, says, HostCommandError};
use super::{shell_quote, SshPool};

/// The rule: this host's TCP connections to `ip:port` answered with a reset.
fn rule(ip: &str, port: u16) -> String {
    format!(
        "OUTPUT -d {} -p tcp --dport {port} -j REJECT --reject-with tcp-reset",
        shell_quote(ip)
    )
}

/// Places the refusal of `to_host:to_port` on `host` (one SSH round trip). Ok(false): the host
/// has no usable iptables (not root, none installed): nothing was placed.
pub async fn refuse(
    ssh: &SshPool,
    host: &str,
    port: u16,
    to_host: &str,
    to_port: u16,
    timeout: Duration,
) -> Result<bool, HostCommandError> {
    let cmd = insert_rule(&rule(to_host, to_port), "refusing");
    says(ssh, host, port, &cmd, timeout, "refusing").await
}

/// Deletes every copy of the refusal of `to_host:to_port` from `host`. Err when a copy may
/// remain (the deletion kept timing out): the caller says where, and how to delete it.
pub async fn allow(
    ssh: &SshPool,
    host: &str,
    port: u16,
    to_host: &str,
    to_port: u16,
    timeout: Duration,
) -> Result<(), HostCommandError> {
    let what = "the refusal of the old master";
    run(
        ssh,
        host,
        port,
        &drop_rule(&rule(to_host, to_port), what),
        timeout,
    )
    .await
    .map(|_| ())
}

/// The command an operator runs on a replica host to delete a refusal left behind.
pub fn manual_allow(to_host: &str, to_port: u16) -> String {
    format!("iptables -D {}", rule(to_host, to_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        let r = rule("db1 'x", 3306);
        for sh in ["sh", "bash"] {
            for c in [
                insert_rule(&r, "refusing"),
                drop_rule(&r, "the refusal"),
                manual_allow("db1 'x", 3306),
            ] {
                let out = std::process::Command::new(sh)
                    .args(["-n", "-c", &c])
                    .output()
                    .expect("shell");
                assert!(out.status.success(), "{sh}: {c}");
            }
        }
    }

    #[test]
    fn the_rule_names_the_port() {
        assert_eq!(
            manual_allow("10.77.0.11", 3307),
            "iptables -D OUTPUT -d '10.77.0.11' -p tcp --dport 3307 -j REJECT --reject-with \
             tcp-reset"
        );
    }
}
