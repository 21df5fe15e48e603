//! A short shell command on a DB host over SSH, answered by what it prints: the building block
//! of the VIP's moves and of the replica hosts' refusals, which echo what they found or did.

use std::time::Duration;

use super::{SshError, SshPool};

#[derive(Debug, thiserror::Error)]
pub enum HostCommandError {
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

/// Runs `cmd` on `host`; its standard output, or an error with its exit status and stderr.
pub(super) async fn run(
    ssh: &SshPool,
    host: &str,
    port: u16,
    cmd: &str,
    timeout: Duration,
) -> Result<String, HostCommandError> {
    let out = ssh.exec(host, port, cmd, timeout).await?;
    if !out.success() {
        return Err(HostCommandError::Command {
            host: host.to_string(),
            command: cmd.to_string(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` on `host`: whether the word it echoed last is `word`.
pub(super) async fn says(
    ssh: &SshPool,
    host: &str,
    port: u16,
    cmd: &str,
    timeout: Duration,
    word: &str,
) -> Result<bool, HostCommandError> {
    Ok(last_word(&run(ssh, host, port, cmd, timeout).await?) == word)
}

/// The last line a command printed, trimmed: the word it echoes at the end. Whatever a login
/// script printed before it (a banner, a `.bashrc` line) is not read as the answer.
pub(super) fn last_word(out: &str) -> &str {
    out.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
}

/// Asserts that every command is valid shell for the POSIX shell and for bash (a login shell
/// may be either).
#[cfg(test)]
pub(super) fn assert_parses(cmds: &[String]) {
    for sh in ["sh", "bash"] {
        for c in cmds {
            let out = std::process::Command::new(sh)
                .args(["-n", "-c", c])
                .output()
                .expect("shell");
            assert!(
                out.status.success(),
                "{sh}: {c}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_answer_is_the_last_line() {
        assert_eq!(super::last_word("added\n"), "added");
        assert_eq!(
            super::last_word("Welcome to db2\n\n  removed  \n\n"),
            "removed"
        );
        assert_eq!(super::last_word(""), "");
    }
}
