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
use std::sync::atomic::Ordering;
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
    /// Something foreign was seen in its output: not used again.
    tainted: bool,
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
            tainted: false,
        };
        let out = shell.run("true").await.map_err(|f| match f {
            Fault::Unsent(m) | Fault::Broken(m) => Fault::Unsent(m),
        })?;
        // What came before the first command's start is a login script's, not foreign.
        shell.tainted = false;
        if !out.success() {
            return Err(Fault::Unsent(format!(
                "the kept shell did not start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(shell)
    }

    /// Whether the shell is still waiting for a command: its connection open and in use,
    /// nothing foreign seen in its output, and nothing arrived since its last command that says
    /// otherwise (an end of file, a close, an exit status; output from something a command left
    /// running, which would be read as the next command's).
    pub(super) fn alive(&mut self) -> bool {
        if self.tainted
            || self.conn.handle.is_closed()
            || self.conn.forgotten.load(Ordering::Relaxed)
        {
            return false;
        }
        let Some(ch) = self.channel.as_mut() else {
            return false;
        };
        loop {
            // Unconstrained: a task out of its scheduling budget would be told "not ready"
            // whatever is queued.
            match tokio::task::unconstrained(ch.wait()).now_or_never() {
                None => return true,
                Some(None)
                | Some(Some(
                    ChannelMsg::Eof
                    | ChannelMsg::Close
                    | ChannelMsg::ExitStatus { .. }
                    | ChannelMsg::ExitSignal { .. }
                    | ChannelMsg::Data { .. }
                    | ChannelMsg::ExtendedData { .. }
                    | ChannelMsg::Failure,
                )) => return false,
                // Window adjustments, replies to requests: nothing about the shell.
                Some(Some(_)) => {}
            }
        }
    }

    /// Whether the shell may take another command: nothing foreign was seen in its output.
    pub(super) fn reusable(&self) -> bool {
        !self.tainted
    }

    /// Runs `command` and collects what it printed and its exit status. What arrives before
    /// the command's start marks, or after its end marks, is not its output: it is left out,
    /// and the shell is not used again (something a command left running writes to it).
    pub(super) async fn run(&mut self, command: &str) -> Result<ExecOutput, Fault> {
        let Some(ch) = self.channel.as_mut() else {
            return Err(Fault::Unsent("the kept shell is closed".into()));
        };
        self.sent += 1;
        let start = format!("{}+{}", self.secret, self.sent);
        let mark = format!("{}-{}", self.secret, self.sent);
        let line = format!(
            "printf '%s\\n' {start}; printf '%s\\n' {start} >&2; ( eval {} ) </dev/null; \
             printf '\\n%s %d\\n' {mark} $?; printf '\\n%s\\n' {mark} >&2\n",
            shell_quote(command)
        );
        ch.data(line.as_bytes())
            .await
            .map_err(|e| Fault::Unsent(e.to_string()))?;
        let start = format!("{start}\n");
        let mut out = Frame::new(&start, format!("\n{mark} "));
        let mut err = Frame::new(&start, format!("\n{mark}\n"));
        let mut status = None;
        while status.is_none() || !err.done {
            match ch.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    if let Some(s) = out.push(&data, take_status) {
                        status = Some(s);
                    }
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    err.push(&data, take_mark);
                }
                Some(
                    ChannelMsg::Eof
                    | ChannelMsg::Close
                    | ChannelMsg::ExitStatus { .. }
                    | ChannelMsg::ExitSignal { .. }
                    | ChannelMsg::Failure,
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
        self.tainted |= out.foreign || err.foreign;
        Ok(ExecOutput {
            status,
            stdout: out.buf,
            stderr: err.buf,
        })
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

/// Once stdout holds `mark` and the status line after it: the status, and whether anything
/// followed the line; the mark line and what follows are cut off what the command printed.
fn take_status(out: &mut Vec<u8>, mark: &str, added: usize) -> Option<(u32, bool)> {
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
    let extra = after.len() > end + 1;
    out.truncate(at);
    Some((status, extra))
}

/// One stream of a command's output: what came before its start line (foreign), the output,
/// its end.
struct Frame {
    start: String,
    end: String,
    buf: Vec<u8>,
    started: bool,
    done: bool,
    foreign: bool,
}

impl Frame {
    fn new(start: &str, end: String) -> Frame {
        Frame {
            start: start.to_string(),
            end,
            buf: Vec::new(),
            started: false,
            done: false,
            foreign: false,
        }
    }

    /// Takes `data`; `ended` finds the end mark (what it yields, and whether anything followed
    /// it), returned once the end is there.
    fn push<T>(
        &mut self,
        data: &[u8],
        ended: impl Fn(&mut Vec<u8>, &str, usize) -> Option<(T, bool)>,
    ) -> Option<T> {
        if self.done {
            self.foreign = true;
            return None;
        }
        self.buf.extend_from_slice(data);
        let mut added = data.len();
        if !self.started {
            let at = find_new(&self.buf, self.start.as_bytes(), self.buf.len())?;
            self.foreign |= at > 0;
            self.buf.drain(..at + self.start.len());
            self.started = true;
            added = self.buf.len();
        }
        let (value, extra) = ended(&mut self.buf, &self.end, added)?;
        self.foreign |= extra;
        self.done = true;
        Some(value)
    }
}

/// Once stderr holds `mark`: whether anything followed it; the mark and what follows are cut
/// off.
fn take_mark(err: &mut Vec<u8>, mark: &str, added: usize) -> Option<((), bool)> {
    let at = find_new(err, mark.as_bytes(), added)?;
    let extra = err.len() > at + mark.len();
    err.truncate(at);
    Some(((), extra))
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
        assert_eq!(take_status(&mut out, mark, 3), Some((127, false)));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn output_without_a_final_newline_is_kept_as_it_was() {
        let mark = "\nm-2 ";
        let mut out = b"\x00\x01binary".to_vec();
        out.extend_from_slice(b"\nm-2 0\n");
        let n = out.len();
        assert_eq!(take_status(&mut out, mark, n), Some((0, false)));
        assert_eq!(out, b"\x00\x01binary");
        let mut out = b"line\n\nm-2 3\n".to_vec();
        let n = out.len();
        assert_eq!(take_status(&mut out, mark, n), Some((3, false)));
        assert_eq!(out, b"line\n");
    }

    #[test]
    fn stderr_mark_cut_off() {
        let mark = "\nm-1\n";
        let mut err = b"oops\n".to_vec();
        assert_eq!(take_mark(&mut err, mark, 5), None);
        err.extend_from_slice(b"\nm-1\n");
        assert_eq!(take_mark(&mut err, mark, 5), Some(((), false)));
        assert_eq!(err, b"oops\n");
    }

    /// What comes before a command's start line or after its end is foreign (something an
    /// earlier command left writing): left out of the output, and said.
    #[test]
    fn foreign_output_is_left_out_and_said() {
        let framed = |pieces: &[&[u8]]| {
            let mut f = Frame::new("S+1\n", "\nS-1 ".into());
            let mut status = None;
            for p in pieces {
                if let Some(s) = f.push(p, take_status) {
                    status = Some(s);
                }
            }
            (
                status,
                String::from_utf8_lossy(&f.buf).into_owned(),
                f.foreign,
            )
        };
        assert_eq!(
            framed(&[b"S+", b"1\nout\n", b"\nS-1 0\n"]),
            (Some(0), "out\n".into(), false)
        );
        assert_eq!(
            framed(&[b"stray\nS+1\nout", b"\nS-1 4\n"]),
            (Some(4), "out".into(), true)
        );
        assert_eq!(
            framed(&[b"S+1\nout\nS-1 0\n"]),
            (Some(0), "out".into(), false)
        );
        assert_eq!(
            framed(&[b"S+1\n\nS-1 0\nlater"]),
            (Some(0), "".into(), true)
        );
        assert_eq!(
            framed(&[b"S+1\n\nS-1 0\n", b"later"]),
            (Some(0), "".into(), true)
        );
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
                    "printf '%s\\n' M+1; printf '%s\\n' M+1 >&2; ( eval {} ) </dev/null; \
                     printf '\\n%s %d\\n' M-1 $?; printf '\\n%s\\n' M-1 >&2\n\
                     echo next",
                    shell_quote(cmd)
                );
                let o = std::process::Command::new(sh)
                    .args(["-c", &line])
                    .output()
                    .unwrap();
                let mut f = Frame::new("M+1\n", "\nM-1 ".into());
                let status = f.push(&o.stdout, take_status);
                let mut e = Frame::new("M+1\n", "\nM-1\n".into());
                assert!(
                    e.push(&o.stderr, take_mark).is_some(),
                    "{sh}: {cmd}: stderr"
                );
                // "next" follows the end mark: the shell went on after the command.
                assert!(f.foreign, "{sh}: {cmd}");
                assert_eq!(
                    status,
                    Some(want_status),
                    "{sh}: {cmd}: {}",
                    String::from_utf8_lossy(&o.stdout)
                );
                if want_status != 2 {
                    assert_eq!(String::from_utf8_lossy(&f.buf), want_out, "{sh}: {cmd}");
                }
                assert!(String::from_utf8_lossy(&o.stdout).ends_with("next\n"));
            }
        }
    }
}
