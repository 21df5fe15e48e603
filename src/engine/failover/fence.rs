//! Phase 2, dead-master shutdown: what is done to the old master, decided on what the knocks
//! found. First (before anything is known): the VIP is fenced on its host over SSH when there is
//! one, else SSH is only tried; its mysqld is fenced by SQL if it answers. Then MHA's scripts:
//! master_ip_failover_script `stopssh` when SSH reaches the host, `stop` when it does not; the
//! shutdown_script `stop` (power off) when SSH cannot reach the host, `stopssh` when SSH works
//! but mysqld neither answered nor refused (hung or paused: it could wake up writable). A
//! mysqld that refused connections is down; one that answered is fenced by SQL.

use super::PlanError;
use crate::model::{FencePlan, HookCommand, HostFence, OldMysqld};

/// The first action on the old master's host.
pub fn host_action(ssh: Result<(), &str>, vip: bool) -> HostFence {
    match ssh {
        Err(e) => HostFence::NoSsh(e.to_string()),
        Ok(()) if vip => HostFence::FenceVip,
        Ok(()) => HostFence::CheckSsh,
    }
}

/// What the knocks on the old master found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FenceFacts {
    /// SSH reached its host (the VIP removal or the check succeeded).
    pub ssh_reachable: bool,
    pub mysqld: OldMysqld,
    /// A master_ip_failover_script is configured.
    pub ip_failover_script: bool,
}

pub fn plan(f: &FenceFacts) -> FencePlan {
    let ip_failover = f.ip_failover_script.then_some(if f.ssh_reachable {
        HookCommand::StopSsh
    } else {
        HookCommand::Stop
    });
    let shutdown = if !f.ssh_reachable {
        Some(HookCommand::Stop)
    } else if f.mysqld == OldMysqld::Silent {
        Some(HookCommand::StopSsh)
    } else {
        None
    };
    FencePlan {
        ip_failover,
        shutdown,
        host_unreachable: !f.ssh_reachable,
    }
}

/// The journal's line when the plan calls for the shutdown_script and none is configured: the
/// run goes on, and says what could not be done.
pub fn shutdown_unconfigured(old: &str, command: HookCommand, vip: bool) -> String {
    match command {
        HookCommand::Stop => format!(
            "{old}: no shutdown_script configured: the old master's host could not be powered \
             off{}",
            if vip {
                " and the VIP could not be removed from it"
            } else {
                ""
            }
        ),
        HookCommand::StopSsh => format!(
            "{old}: no shutdown_script configured to stop a mysqld that does not answer: it \
             comes back writable unless my.cnf has read_only=ON"
        ),
    }
}

/// MHA's reading of the shutdown_script's exit: 0 = powered off, 10 = mysqld stopped and SSH
/// works; anything else aborts (the old master may still take writes).
pub fn shutdown_verdict(old: &str, code: Option<i32>, tail: &str) -> Result<String, PlanError> {
    match code {
        Some(0) => Ok(format!("{old}: powered off by shutdown_script")),
        Some(10) => Ok(format!(
            "{old}: shutdown_script stopped mysqld (exit 10): {tail}"
        )),
        code => Err(PlanError::ShutdownScript {
            code,
            tail: tail.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HookCommand::{Stop, StopSsh};
    use OldMysqld::{Down, Fenced, Silent};

    /// MHA's choice of commands, table-driven: (SSH reaches the host, mysqld, ip script
    /// configured) → (ip_failover, shutdown).
    #[test]
    fn commands() {
        type Case = (
            &'static str,
            bool,
            OldMysqld,
            bool,
            Option<HookCommand>,
            Option<HookCommand>,
        );
        let cases: [Case; 8] = [
            (
                "host unreachable (power cut / cut off)",
                false,
                Silent,
                false,
                None,
                Some(Stop),
            ),
            (
                "host unreachable, mysqld refused",
                false,
                Down,
                false,
                None,
                Some(Stop),
            ),
            (
                "host unreachable, ip script",
                false,
                Silent,
                true,
                Some(Stop),
                Some(Stop),
            ),
            (
                "mysqld hung, host up",
                true,
                Silent,
                false,
                None,
                Some(StopSsh),
            ),
            (
                "mysqld hung, ip script",
                true,
                Silent,
                true,
                Some(StopSsh),
                Some(StopSsh),
            ),
            ("mysqld down, host up", true, Down, false, None, None),
            (
                "mysqld answered and was fenced",
                true,
                Fenced,
                false,
                None,
                None,
            ),
            ("fenced, ip script", true, Fenced, true, Some(StopSsh), None),
        ];
        for (case, ssh, mysqld, script, ip, shutdown) in cases {
            let p = plan(&FenceFacts {
                ssh_reachable: ssh,
                mysqld,
                ip_failover_script: script,
            });
            assert_eq!(
                (p.ip_failover, p.shutdown, p.host_unreachable),
                (ip, shutdown, !ssh),
                "{case}"
            );
        }
        assert_eq!(Stop.to_string(), "stop");
        assert_eq!(StopSsh.to_string(), "stopssh");
    }

    /// The VIP is fenced over SSH when there is one; without SSH the host counts as unreachable.
    #[test]
    fn host_actions() {
        assert_eq!(host_action(Ok(()), true), HostFence::FenceVip);
        assert_eq!(host_action(Ok(()), false), HostFence::CheckSsh);
        assert_eq!(
            host_action(Err("no key"), true),
            HostFence::NoSsh("no key".into())
        );
    }

    /// The shutdown_script's exit codes, and the journal's line without a script.
    #[test]
    fn shutdown_script() {
        assert_eq!(
            shutdown_verdict("db1", Some(0), ""),
            Ok("db1: powered off by shutdown_script".into())
        );
        assert_eq!(
            shutdown_verdict("db1", Some(10), "killed 123"),
            Ok("db1: shutdown_script stopped mysqld (exit 10): killed 123".into())
        );
        for c in [Some(1), Some(2), None] {
            let e = shutdown_verdict("db1", c, "oops").unwrap_err();
            assert!(e.to_string().contains("may still accept writes"), "{e}");
        }
        assert_eq!(
            shutdown_unconfigured("db1", Stop, true),
            "db1: no shutdown_script configured: the old master's host could not be powered \
             off and the VIP could not be removed from it"
        );
        assert!(shutdown_unconfigured("db1", Stop, false).ends_with("powered off"));
        assert!(shutdown_unconfigured("db1", StopSsh, true).contains("read_only=ON"));
    }
}
