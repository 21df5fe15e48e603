//! MHA-compatible external scripts, run on the manager with MHA's arguments
//! (`--command=stop --ssh_user=… --host=… --ip=… --port=…`) and MHA's exit-code meanings
//! (0 OK, 10 continue, anything else abort). No password is ever passed: scripts read their own
//! credentials, as with MHA. A hook is an entry of this manager's `[hooks]` (program and fixed
//! leading arguments), exec'd as argv: no shell, no splitting, nothing from the network.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::local_config::Hook;

/// What a script did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookOutput {
    pub code: Option<i32>,
    /// The last lines of stdout + stderr, for the journal.
    pub tail: String,
}

/// Runs `hook` (its program with its fixed arguments) with `args` appended, killing it after
/// `timeout`.
pub async fn run(hook: &Hook, args: &[String], timeout: Duration) -> Result<HookOutput, String> {
    run_with_env(hook, args, &[], timeout).await
}

/// [`run`] with extra environment variables (how a secret reaches a script: never argv).
pub async fn run_with_env(
    hook: &Hook,
    args: &[String],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<HookOutput, String> {
    let program = hook.program.display();
    let mut cmd = Command::new(&hook.program);
    cmd.args(&hook.args)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "{program} did not finish within {timeout:?} (killed)"
        )),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Ok(Ok(out)) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
            Ok(HookOutput {
                code: out.status.code(),
                tail,
            })
        }
    }
}

/// MHA's shutdown_script arguments for the old master.
/// `command` is `stop` (the host is unreachable over SSH: power it off) or `stopssh` (SSH
/// works, mysqld must be stopped).
pub fn shutdown_args(
    command: &str,
    ssh_user: &str,
    host: &str,
    ip: &str,
    port: u16,
) -> Vec<String> {
    vec![
        format!("--command={command}"),
        format!("--ssh_user={ssh_user}"),
        format!("--host={host}"),
        format!("--ip={ip}"),
        format!("--port={port}"),
    ]
}

/// The old master's half of MHA's master_ip_failover_script arguments.
pub fn orig_master_args(
    command: &str,
    ssh_user: &str,
    host: &str,
    ip: &str,
    port: u16,
) -> Vec<String> {
    vec![
        format!("--command={command}"),
        format!("--ssh_user={ssh_user}"),
        format!("--orig_master_host={host}"),
        format!("--orig_master_ip={ip}"),
        format!("--orig_master_port={port}"),
    ]
}

/// The new master's half (`--command=start`). MHA also passes `--new_master_password`; a
/// password never goes into process arguments here, so scripts find it in the environment
/// variable [`NEW_MASTER_PASSWORD_ENV`] instead.
pub fn new_master_args(host: &str, ip: &str, port: u16, user: &str) -> Vec<String> {
    vec![
        format!("--new_master_host={host}"),
        format!("--new_master_ip={ip}"),
        format!("--new_master_port={port}"),
        format!("--new_master_user={user}"),
    ]
}

/// The servers of an online switch as MHA's master_ip_online_change_script is told them.
pub struct OnlineChange<'a> {
    pub command: &'a str,
    /// (name, ip, port) of the original and of the new master.
    pub orig: (&'a str, &'a str, u16),
    pub new: (&'a str, &'a str, u16),
    pub user: &'a str,
    pub ssh_user: &'a str,
    pub orig_master_is_new_slave: bool,
}

/// MHA's master_ip_online_change_script arguments (MasterRotate.pm), passwords excepted: they
/// are in [`ORIG_MASTER_PASSWORD_ENV`] and [`NEW_MASTER_PASSWORD_ENV`].
pub fn online_change_args(c: &OnlineChange) -> Vec<String> {
    let mut args = vec![
        format!("--command={}", c.command),
        format!("--orig_master_host={}", c.orig.0),
        format!("--orig_master_ip={}", c.orig.1),
        format!("--orig_master_port={}", c.orig.2),
        format!("--orig_master_user={}", c.user),
        format!("--orig_master_ssh_user={}", c.ssh_user),
        format!("--new_master_host={}", c.new.0),
        format!("--new_master_ip={}", c.new.1),
        format!("--new_master_port={}", c.new.2),
        format!("--new_master_user={}", c.user),
        format!("--new_master_ssh_user={}", c.ssh_user),
    ];
    if c.orig_master_is_new_slave {
        args.push("--orig_master_is_new_slave".into());
    }
    args
}

pub const NEW_MASTER_PASSWORD_ENV: &str = "MHA_NEW_MASTER_PASSWORD";

/// master_ip_online_change_script's `--orig_master_password`, likewise in the environment.
pub const ORIG_MASTER_PASSWORD_ENV: &str = "MHA_ORIG_MASTER_PASSWORD";

/// MHA's meaning of a script's exit code: 0 OK, 10 OK with a warning (continue), anything
/// else (or a signal) aborts.
pub fn verdict(out: &HookOutput) -> Result<&'static str, String> {
    match out.code {
        Some(0) => Ok("ok"),
        Some(10) => Ok("exit 10: continuing"),
        c => Err(format!("exited {c:?}: {}", out.tail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(program: &str, args: &[&str]) -> Hook {
        Hook {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// MHA's argument names (MasterRotate.pm), the flag only when asked, no password.
    #[test]
    fn online_change_arguments() {
        let c = OnlineChange {
            command: "stop",
            orig: ("db1", "10.0.0.1", 3306),
            new: ("db2", "10.0.0.2", 3307),
            user: "mha",
            ssh_user: "root",
            orig_master_is_new_slave: true,
        };
        let args = online_change_args(&c);
        for want in [
            "--command=stop",
            "--orig_master_host=db1",
            "--orig_master_ip=10.0.0.1",
            "--orig_master_port=3306",
            "--orig_master_user=mha",
            "--orig_master_ssh_user=root",
            "--new_master_host=db2",
            "--new_master_ip=10.0.0.2",
            "--new_master_port=3307",
            "--new_master_user=mha",
            "--new_master_ssh_user=root",
            "--orig_master_is_new_slave",
        ] {
            assert!(args.contains(&want.to_string()), "{want} in {args:?}");
        }
        assert!(!args.iter().any(|a| a.contains("password")));
        let plain = online_change_args(&OnlineChange {
            orig_master_is_new_slave: false,
            ..c
        });
        assert!(!plain.contains(&"--orig_master_is_new_slave".to_string()));
    }

    #[tokio::test]
    async fn exit_codes_and_output() {
        let sh = hook("/bin/sh", &["-c"]);
        let ok = run(&sh, &["echo hi; exit 10".into()], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ok.code, Some(10));
        assert_eq!(ok.tail, "hi");
        let slow = run(&sh, &["sleep 5".into()], Duration::from_millis(100)).await;
        assert!(slow.unwrap_err().contains("killed"));
        assert!(
            run(&hook("/nonexistent/x", &[]), &[], Duration::from_secs(1))
                .await
                .unwrap_err()
                .contains("cannot start")
        );
    }

    /// argv, no shell: fixed arguments come first, then MHA's, each one argument as given
    /// (spaces and shell characters included).
    #[tokio::test]
    async fn argv_without_shell() {
        let h = hook(
            "/bin/sh",
            &["-c", "printf '%s|' \"$@\"", "sh", "--log=/var/log/a b"],
        );
        let out = run(&h, &["--host=$(id)".into()], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out.tail, "--log=/var/log/a b|--host=$(id)|");
    }
}
