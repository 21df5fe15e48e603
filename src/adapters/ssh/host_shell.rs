//! A shell kept running on a host over one session channel, fed one command at a time.
//!
//! A command sent as its own `exec` costs the host an sshd session process and a login shell
//! started for it: 3–4 ms on the lab's hosts, more while a failover's processes share the
//! cores. A kept shell runs it in a subshell instead (one fork, nothing executed), so the
//! commands on a failover's path (the VIP's fence and add, the dead master's binlog read) and
//! the keep-warm checks of many groups cost the hosts less.
//!
//! Each command goes to the shell as one line:
//!
//! ```text
//! ( eval 'COMMAND' ) </dev/null; printf '\n%s %d\n' MARK $?; printf '\n%s\n' MARK >&2
//! ```
//!
//! - The subshell keeps the command's `exit`, `cd`, variables and syntax errors to itself, and
//!   `</dev/null` keeps it off the shell's own input (the next commands).
//! - MARK is this shell's secret (16 random bytes) and the command's number. Stdout is read up
//!   to the mark and the exit status after it, stderr up to its own mark. Nothing a command
//!   prints can end its frame early, binary data included: whatever feeds it (a binlog's rows)
//!   cannot know the mark.
//! - Output is byte for byte what `exec` gives; the status of a command killed by a signal is
//!   128 + the signal's number (the shell's `$?`) where `exec` says none.

use std::io::Read;
use std::sync::Arc;

use futures::FutureExt;
use russh::client;
use russh::ChannelMsg;

use super::{shell_quote, Conn, ExecOutput, Slot};

/// What the kept shell runs as: the user's login shell (the one `exec` runs commands with),
/// reading commands from the channel.
const SHELL: &str = "exec \"${SHELL:-/bin/sh}\" -s";

/// Why a command did not run to its end in the shell.
#[derive(Debug)]
pub(super) enum Fault {
    /// The shell was gone before the command reached it: it did not run there.
    Unsent(String),
    /// The shell ended after the command was sent: whether it ran is not known.
    Broken(String),
}

/// A shell on one host, owned by one caller at a time.
pub(super) struct HostShell {
    /// None once closed.
    channel: Option<russh::Channel<client::Msg>>,
    pub(super) conn: Arc<Conn>,
    _slot: Slot,
    secret: String,
    sent: u64,
}

impl HostShell {
    /// Starts the shell on `channel` (a session channel of `conn`) and checks it answers a
    /// first command; what a login script printed before that is dropped.
    pub(super) async fn start(
        channel: russh::Channel<client::Msg>,
        conn: Arc<Conn>,
        slot: Slot,
    ) -> Result<HostShell, Fault> {
        let secret = secret().map_err(|e| Fault::Unsent(format!("no random mark: {e}")))?;
        channel
            .exec(true, SHELL)
            .await
            .map_err(|e| Fault::Unsent(e.to_string()))?;
        let mut shell = HostShell {
            channel: Some(channel),
            conn,
            _slot: slot,
            secret,
            sent: 0,
        };
        let out = shell.run("true").await.map_err(|f| match f {
            Fault::Unsent(m) | Fault::Broken(m) => Fault::Unsent(m),
        })?;
        if !out.success() {
            return Err(Fault::Unsent(format!(
                "the kept shell did not start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(shell)
    }

    /// Whether the shell is still waiting for a command: its connection open, and nothing
    /// arrived since its last command that says otherwise (an end of file, a close, an exit
    /// status; output from something the last command left running, which would be read as
    /// the next command's).
    pub(super) fn alive(&mut self) -> bool {
        if self.conn.handle.is_closed() {
            return false;
        }
        let Some(ch) = self.channel.as_mut() else {
            return false;
        };
        loop {
            match ch.wait().now_or_never() {
                None => return true,
                Some(None)
                | Some(Some(
                    ChannelMsg::Eof
                    | ChannelMsg::Close
                    | ChannelMsg::ExitStatus { .. }
                    | ChannelMsg::ExitSignal { .. }
                    | ChannelMsg::Data { .. }
                    | ChannelMsg::ExtendedData { .. },
                )) => return false,
                // Window adjustments, replies to requests: nothing about the shell.
                Some(Some(_)) => {}
            }
        }
    }

    /// Runs `command` and collects what it printed and its exit status.
    pub(super) async fn run(&mut self, command: &str) -> Result<ExecOutput, Fault> {
        let Some(ch) = self.channel.as_mut() else {
            return Err(Fault::Unsent("the kept shell is closed".into()));
        };
        self.sent += 1;
        let mark = format!("{}-{}", self.secret, self.sent);
        let line = format!(
            "( eval {} ) </dev/null; printf '\\n%s %d\\n' {mark} $?; printf '\\n%s\\n' {mark} >&2\n",
            shell_quote(command)
        );
        ch.data(line.as_bytes())
            .await
            .map_err(|e| Fault::Unsent(e.to_string()))?;
        let out_mark = format!("\n{mark} ");
        let err_mark = format!("\n{mark}\n");
        let mut out = ExecOutput::default();
        let (mut status, mut err_done) = (None, false);
        while status.is_none() || !err_done {
            match ch.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    out.stdout.extend_from_slice(&data);
                    if status.is_none() {
                        status = take_status(&mut out.stdout, &out_mark, data.len());
                    }
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    out.stderr.extend_from_slice(&data);
                    if !err_done {
                        err_done = take_mark(&mut out.stderr, &err_mark, data.len());
                    }
                }
                Some(
                    ChannelMsg::Eof
                    | ChannelMsg::Close
                    | ChannelMsg::ExitStatus { .. }
                    | ChannelMsg::ExitSignal { .. },
                )
                | None => {
                    self.close();
                    return Err(Fault::Broken(
                        "the kept shell ended while running the command".into(),
                    ));
                }
                _ => {}
            }
        }
        out.status = status;
        Ok(out)
    }

    /// Closes the channel (the shell ends once its command, if any, is done).
    pub(super) fn close(&mut self) {
        if let Some(ch) = self.channel.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = ch.close().await;
                });
            }
        }
    }
}

impl Drop for HostShell {
    fn drop(&mut self) {
        self.close();
    }
}

/// 16 random bytes, hex.
fn secret() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Where `needle` starts in `hay`, looking only where it could newly appear now that `added`
/// bytes came at the end.
fn find_new(hay: &[u8], needle: &[u8], added: usize) -> Option<usize> {
    let from = hay.len().saturating_sub(added + needle.len());
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The most a status line holds after its mark (digits and the newline).
const STATUS_LINE: usize = 8;

/// Once stdout holds `mark` and the status line after it: the status, with the mark line cut
/// off what the command printed.
fn take_status(out: &mut Vec<u8>, mark: &str, added: usize) -> Option<u32> {
    // The status line may arrive in pieces: the mark is looked for again (within the status
    // line's length of the end) until the line's end is there too.
    let at = find_new(out, mark.as_bytes(), added + STATUS_LINE)?;
    let after = &out[at + mark.len()..];
    let end = after.iter().position(|b| *b == b'\n')?;
    let status = std::str::from_utf8(&after[..end])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    out.truncate(at);
    Some(status)
}

/// Whether stderr holds `mark` (cut off, with what follows).
fn take_mark(err: &mut Vec<u8>, mark: &str, added: usize) -> bool {
    match find_new(err, mark.as_bytes(), added) {
        Some(at) => {
            err.truncate(at);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_found_across_pieces() {
        let mark = "\nabc-1 ";
        let mut out = b"hello".to_vec();
        assert_eq!(take_status(&mut out, mark, 5), None);
        out.extend_from_slice(b"\nabc-1 1");
        assert_eq!(take_status(&mut out, mark, 8), None);
        out.extend_from_slice(b"27\n");
        assert_eq!(take_status(&mut out, mark, 3), Some(127));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn output_without_a_final_newline_is_kept_as_it_was() {
        let mark = "\nm-2 ";
        let mut out = b"\x00\x01binary".to_vec();
        out.extend_from_slice(b"\nm-2 0\n");
        let n = out.len();
        assert_eq!(take_status(&mut out, mark, n), Some(0));
        assert_eq!(out, b"\x00\x01binary");
        let mut out = b"line\n\nm-2 3\n".to_vec();
        let n = out.len();
        assert_eq!(take_status(&mut out, mark, n), Some(3));
        assert_eq!(out, b"line\n");
    }

    #[test]
    fn stderr_mark_cut_off() {
        let mark = "\nm-1\n";
        let mut err = b"oops\n".to_vec();
        assert!(!take_mark(&mut err, mark, 5));
        err.extend_from_slice(b"\nm-1\n");
        assert!(take_mark(&mut err, mark, 5));
        assert_eq!(err, b"oops\n");
    }

    /// The line sent for a command is one valid command for the POSIX shell and bash, and
    /// frames what the command prints, whatever it does to its own shell.
    #[test]
    fn framing_runs_in_sh_and_bash() {
        for sh in ["sh", "bash"] {
            for (cmd, want_out, want_status) in [
                ("echo out; echo err >&2; exit 3", "out\n", 3u32),
                ("printf 'no newline'", "no newline", 0),
                ("if then", "", 2),
                ("cd /; x=1; echo \"it's $x\"", "it's 1\n", 0),
            ] {
                let line = format!(
                    "( eval {} ) </dev/null; printf '\\n%s %d\\n' M-1 $?; printf '\\n%s\\n' M-1 >&2\n\
                     echo next",
                    shell_quote(cmd)
                );
                let o = std::process::Command::new(sh)
                    .args(["-c", &line])
                    .output()
                    .unwrap();
                let mut out = o.stdout.clone();
                let n = out.len();
                let status = take_status(&mut out, "\nM-1 ", n);
                // What remains after the mark line belongs to the next command.
                assert_eq!(
                    status,
                    Some(want_status),
                    "{sh}: {cmd}: {}",
                    String::from_utf8_lossy(&o.stdout)
                );
                if want_status != 2 {
                    assert_eq!(String::from_utf8_lossy(&out), want_out, "{sh}: {cmd}");
                }
                assert!(String::from_utf8_lossy(&o.stdout).ends_with("next\n"));
            }
        }
    }
}
