//! The shells kept on each host (host_shell.rs), as the pool hands them out: up to
//! [`MAX_SHELLS_PER_HOST`] per host, started when a command needs one, given back after each
//! command, closed when anything about them is in doubt.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::host_shell::{Fault, HostShell};
use super::{Conn, ExecOutput, HostKey, SshError, SshPool};

/// Kept shells per host at most (host_shell.rs), started as commands need them: a burst past
/// this many runs the rest as commands of their own.
const MAX_SHELLS_PER_HOST: usize = 4;
/// After a shell failed to start on a host, commands there run on their own for this long
/// before a shell is tried again (a login shell that cannot read commands from its input
/// would otherwise cost every command a second channel).
const SHELL_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A shell's start (its exec and a first command) takes a few ms: past this it is given up.
const SHELL_START_MAX: Duration = Duration::from_secs(1);

/// A host's kept shells: the idle ones, how many exist (idle, running a command, starting)
/// and until when none is started after a failed start.
#[derive(Default)]
pub(super) struct Shells {
    idle: Vec<HostShell>,
    open: usize,
    no_start_until: Option<Instant>,
}

impl Shells {
    /// The idle shells on `conn`, no longer counted (their connection is being dropped).
    pub(super) fn take_idle_on(&mut self, conn: &Arc<Conn>) -> Vec<HostShell> {
        let (gone, kept) = std::mem::take(&mut self.idle)
            .into_iter()
            .partition(|sh| Arc::ptr_eq(&sh.conn, conn));
        self.idle = kept;
        self.open = self.open.saturating_sub(gone.len());
        gone
    }

    /// Every idle shell, no longer counted; the ones leased out stay counted until their
    /// callers are done with them.
    pub(super) fn take_idle(&mut self) -> Vec<HostShell> {
        self.open = self.open.saturating_sub(self.idle.len());
        std::mem::take(&mut self.idle)
    }
}

/// A shell taken from (or being started for) a host, counted in its `open`; given back, it is
/// idle again; dropped otherwise (a failed command, a timeout, a cancelled call), it is closed
/// and no longer counted.
struct Lease<'a> {
    pool: &'a SshPool,
    key: HostKey,
    shell: Option<HostShell>,
    given_back: bool,
}

impl Lease<'_> {
    /// Idle again, unless something foreign showed in its output or its connection was
    /// dropped meanwhile (then it is closed, as when dropped).
    fn give_back(mut self) {
        match self.shell.take() {
            Some(sh) if sh.reusable() && !sh.conn.forgotten.load(Ordering::Relaxed) => {
                let mut shells = self.pool.shells.lock().expect("shells");
                shells.entry(self.key.clone()).or_default().idle.push(sh);
                self.given_back = true;
            }
            other => self.shell = other,
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.given_back {
            return;
        }
        // Closed outside the lock (HostShell's drop spawns the close).
        let shell = self.shell.take();
        if let Some(s) = self.pool.shells.lock().expect("shells").get_mut(&self.key) {
            s.open = s.open.saturating_sub(1);
        }
        drop(shell);
    }
}

/// How a command tried in a kept shell came out.
pub(super) enum InShell {
    Ran(Result<ExecOutput, SshError>),
    /// No shell took it: run it on its own.
    Elsewhere,
}

impl SshPool {
    /// `command` in one of the host's kept shells (one started if none is idle and the host
    /// has fewer than [`MAX_SHELLS_PER_HOST`]). A host that cannot be reached is the
    /// command's error, as it would be on its own; a shell that cannot start, or that was gone
    /// before the command reached it, leaves the command to run on its own.
    #[tracing::instrument(level = "debug", skip(self, timeout), fields(host, port))]
    pub(super) async fn exec_in_shell(
        &self,
        host: &str,
        port: u16,
        command: &str,
        timeout: Duration,
    ) -> InShell {
        let used: Mutex<Option<Arc<Conn>>> = Mutex::new(None);
        let started = Instant::now();
        let key = (host.to_string(), port);
        let fut = async {
            let mut lease = match self.lease_shell(&key, &used, timeout).await {
                Ok(Some(l)) => l,
                Ok(None) => return InShell::Elsewhere,
                Err(e) => return InShell::Ran(Err(e)),
            };
            let shell = lease.shell.as_mut().expect("a lease holds its shell");
            match shell.run(command).await {
                Ok(out) => {
                    lease.give_back();
                    InShell::Ran(Ok(out))
                }
                Err(Fault::Unsent(why)) => {
                    tracing::debug!(%why, "kept shell gone: the command runs on its own");
                    InShell::Elsewhere
                }
                Err(Fault::Broken(message)) => InShell::Ran(Err(SshError::Channel {
                    host: host.to_string(),
                    message,
                })),
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            // As for a command of its own: the connection may be wedged.
            Err(_) => InShell::Ran(self.command_done(
                host,
                port,
                started,
                "kept shell",
                Err(self.command_timed_out(host, port, &used, timeout).await),
            )),
            Ok(InShell::Ran(r)) => {
                InShell::Ran(self.command_done(host, port, started, "kept shell", r))
            }
            Ok(InShell::Elsewhere) => InShell::Elsewhere,
        }
    }

    /// An idle live shell of the host (the longest idle first), or a new one; None when the
    /// host has its [`MAX_SHELLS_PER_HOST`] busy, or a shell cannot start there. A start is
    /// bounded by half the command's time (1 s at most), so that the command still has time to
    /// run on its own; the host is left without new shells for [`SHELL_RETRY_AFTER`] from the
    /// start on, until one starts (a start cut off by the caller's timeout leaves it so).
    async fn lease_shell(
        &self,
        key: &HostKey,
        used: &Mutex<Option<Arc<Conn>>>,
        timeout: Duration,
    ) -> Result<Option<Lease<'_>>, SshError> {
        loop {
            let taken = {
                let mut shells = self.shells.lock().expect("shells");
                let s = shells.entry(key.clone()).or_default();
                if !s.idle.is_empty() {
                    Some(s.idle.remove(0))
                } else if s.open >= MAX_SHELLS_PER_HOST
                    || s.no_start_until.is_some_and(|t| Instant::now() < t)
                {
                    return Ok(None);
                } else {
                    s.open += 1;
                    s.no_start_until = Some(Instant::now() + SHELL_RETRY_AFTER);
                    None
                }
            };
            let mut lease = Lease {
                pool: self,
                key: key.clone(),
                shell: taken,
                given_back: false,
            };
            if let Some(sh) = lease.shell.as_mut() {
                if sh.alive() {
                    *used.lock().expect("used") = Some(sh.conn.clone());
                    return Ok(Some(lease));
                }
                // Ended while idle (sshd restarted, the host rebooted), or written to by
                // something else: dropped, next.
                continue;
            }
            let set_retry = |until: Option<Instant>| {
                if let Some(s) = self.shells.lock().expect("shells").get_mut(key) {
                    s.no_start_until = until;
                }
            };
            let (ch, slot) = match self.open_channel(&key.0, key.1, used).await {
                Ok(c) => c,
                Err(e) => {
                    // The host, not the shell: a shell is started once it answers again.
                    set_retry(None);
                    return Err(e);
                }
            };
            let conn = used.lock().expect("used").clone().expect("channel's conn");
            let bound = (timeout / 2).min(SHELL_START_MAX);
            let fault = match tokio::time::timeout(bound, HostShell::start(ch, conn, slot)).await {
                Ok(Ok(sh)) => {
                    set_retry(None);
                    lease.shell = Some(sh);
                    return Ok(Some(lease));
                }
                Ok(Err(f)) => format!("{f:?}"),
                Err(_) => format!("no answer within {bound:?}"),
            };
            tracing::warn!(host = %key.0, %fault, "cannot keep a shell on this host: its commands run on their own for a while");
            return Ok(None);
        }
    }
}
