//! SSH adapter (russh): key authentication (ed25519, RSA), host keys verified against a
//! known_hosts file (accepting unknown keys is an explicit, logged opt-in; a changed key is
//! always refused), exec with timeout returning exit status/stdout/stderr, reading a byte range
//! of a remote file, writing a remote file, and one connection kept and reused per host.
//! Commands without input run in shells kept on each host (kept_shells.rs, host_shell.rs).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{
    check_known_hosts_path, load_secret_key, PrivateKeyWithHashAlg, PublicKeyOrCertificate,
};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::Mutex as AsyncMutex;

use host_shell::HostShell;
use kept_shells::{InShell, Shells};

#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("{host}: host key verification failed: {reason}")]
    HostKey { host: String, reason: String },
    #[error("{host}: cannot connect: {message}")]
    Connect { host: String, message: String },
    #[error("{host}: authentication as {user} failed")]
    Auth { host: String, user: String },
    #[error("{host}: {what} timed out after {after:?}")]
    Timeout {
        host: String,
        what: &'static str,
        after: Duration,
    },
    #[error("ssh key {path}: {message}")]
    Key { path: String, message: String },
    #[error("{host}: {message}")]
    Channel { host: String, message: String },
    /// This manager has no usable SSH settings for the group (e.g. its ssh_profile is not
    /// defined in this manager's config file).
    #[error("{0}")]
    Config(String),
}

impl SshError {
    /// The kind of failure, as the error metric labels it.
    pub fn kind(&self) -> &'static str {
        match self {
            SshError::HostKey { .. } => "host_key",
            SshError::Connect { .. } => "connect",
            SshError::Auth { .. } => "auth",
            SshError::Timeout { .. } => "timeout",
            SshError::Key { .. } => "key",
            SshError::Channel { .. } => "channel",
            SshError::Config(_) => "config",
        }
    }

    /// Counts this failure of a call to `host` in the error metric; returns it.
    fn counted(self, host: &str) -> Self {
        super::call_errors::record(super::call_errors::Service::Ssh, host, self.kind());
        self
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            SshError::HostKey { .. } => false,
            SshError::Connect { .. } => true,
            SshError::Auth { .. } => false,
            SshError::Timeout { .. } => true,
            SshError::Key { .. } => false,
            SshError::Channel { .. } => true,
            SshError::Config(_) => false,
        }
    }
}

/// How to reach hosts over SSH.
#[derive(Clone, Debug)]
pub struct SshConfig {
    pub user: String,
    pub key_path: PathBuf,
    pub known_hosts: PathBuf,
    /// Accept (and log) host keys missing from known_hosts. A *changed* key is refused anyway.
    pub accept_unknown_host_keys: bool,
    pub connect_timeout: Duration,
}

/// Output of a remote command.
#[derive(Clone, Debug, Default)]
pub struct ExecOutput {
    /// None when the command was killed by a signal or the channel closed without a status.
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

struct Verifier {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    accept_unknown: bool,
    rejection: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.rejection.lock().expect("lock") =
                Some("host certificates are not supported".into());
            return Ok(false);
        };
        let verdict = match check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(true) => Ok(()),
            Ok(false) if self.accept_unknown => {
                tracing::warn!(host = %self.host, "accepting host key not in known_hosts (accept_unknown_host_keys)");
                Ok(())
            }
            Ok(false) => Err(format!(
                "no key for {} in {}",
                self.host,
                self.known_hosts.display()
            )),
            Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
                "HOST KEY CHANGED (known_hosts {} line {line}); refusing to connect",
                self.known_hosts.display()
            )),
            Err(e) => Err(format!("known_hosts {}: {e}", self.known_hosts.display())),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(reason) => {
                *self.rejection.lock().expect("lock") = Some(reason);
                Ok(false)
            }
        }
    }
}

struct Conn {
    handle: Handle<Verifier>,
    /// Channels open at once on this connection: sshd refuses more than its MaxSessions (10
    /// by default) per connection. Every group with a server on the host shares the host's
    /// connections; when each is full, another is opened (see [`SshPool::slot`]).
    channels: Arc<tokio::sync::Semaphore>,
    /// Dropped from the pool (a call on it timed out): its kept shells are not used again.
    forgotten: std::sync::atomic::AtomicBool,
}

/// Channels one connection opens at once: below OpenSSH's default MaxSessions (10).
const MAX_CHANNELS: usize = 8;
/// Connections kept to one host at most (32 commands at once); past that a call waits for a
/// channel, and the wait counts against its timeout.
const MAX_CONNS_PER_HOST: usize = 4;

/// A session channel sshd refused (under load its MaxSessions still counts sessions being torn
/// down, or a fork failed) is asked for again after this, doubling up to [`REOPEN_PAUSE_MAX`],
/// [`REOPEN_TRIES`] times in all (about 0.3 s, well within a 1 s knock), within the caller's
/// timeout; then the refusal is the error (an sshd that refuses sessions for good says so).
const REOPEN_PAUSE: Duration = Duration::from_millis(20);
const REOPEN_PAUSE_MAX: Duration = Duration::from_millis(200);
const REOPEN_TRIES: u32 = 5;

type HostKey = (String, u16);
/// A channel slot on a connection, given back when dropped.
type Slot = tokio::sync::OwnedSemaphorePermit;

/// SSH connections to many hosts, kept and reused: one per host, more while it is busy.
pub struct SshPool {
    cfg: SshConfig,
    key: Arc<russh::keys::PrivateKey>,
    conns: AsyncMutex<HashMap<HostKey, Vec<Arc<Conn>>>>,
    /// One new connection at a time per host: a burst of callers (ten groups fencing one host)
    /// opens what it needs one by one, never a storm of handshakes (sshd's MaxStartups).
    connecting: Mutex<HashMap<HostKey, Arc<AsyncMutex<()>>>>,
    /// When a command last ran to completion on each host: a keep-warm within the window
    /// has nothing to do (several groups' monitors share the connection).
    last_ok: Mutex<HashMap<(String, u16), Instant>>,
    /// The shells kept on each host (host_shell.rs).
    shells: Mutex<HashMap<HostKey, Shells>>,
}

/// Quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl SshPool {
    pub fn new(cfg: SshConfig) -> Result<Self, SshError> {
        let key = load_secret_key(&cfg.key_path, None).map_err(|e| SshError::Key {
            path: cfg.key_path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(SshPool {
            cfg,
            key: Arc::new(key),
            conns: AsyncMutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            last_ok: Mutex::new(HashMap::new()),
            shells: Mutex::new(HashMap::new()),
        })
    }

    async fn connect(&self, host: &str, port: u16) -> Result<Arc<Conn>, SshError> {
        let rejection = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            host: host.to_string(),
            port,
            known_hosts: self.cfg.known_hosts.clone(),
            accept_unknown: self.cfg.accept_unknown_host_keys,
            rejection: rejection.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(5)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let to = self.cfg.connect_timeout;
        let h = host.to_string();
        let fut = async {
            let mut handle = client::connect(config, (host, port), verifier)
                .await
                .map_err(|e| match rejection.lock().expect("lock").take() {
                    Some(reason) => SshError::HostKey {
                        host: h.clone(),
                        reason,
                    },
                    None => SshError::Connect {
                        host: h.clone(),
                        message: e.to_string(),
                    },
                })?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            let auth = handle
                .authenticate_publickey(
                    &self.cfg.user,
                    PrivateKeyWithHashAlg::new(self.key.clone(), hash),
                )
                .await
                .map_err(|e| SshError::Connect {
                    host: h.clone(),
                    message: e.to_string(),
                })?;
            if !auth.success() {
                return Err(SshError::Auth {
                    host: h.clone(),
                    user: self.cfg.user.clone(),
                });
            }
            Ok(Conn {
                handle,
                channels: Arc::new(tokio::sync::Semaphore::new(MAX_CHANNELS)),
                forgotten: Default::default(),
            })
        };
        match tokio::time::timeout(to, fut).await {
            Err(_) => Err(SshError::Timeout {
                host: host.to_string(),
                what: "connect",
                after: to,
            }),
            Ok(r) => r.map(Arc::new),
        }
    }

    /// A channel slot on a kept connection to `host`: a free one, else on a new connection
    /// (one handshake at a time per host), else — every connection of the host full — the
    /// first to free up. Closed connections are dropped on the way.
    async fn slot(&self, host: &str, port: u16) -> Result<(Arc<Conn>, Slot), SshError> {
        let key = (host.to_string(), port);
        if let Some(s) = self.free_slot(&key).await {
            return Ok(s);
        }
        // Per host: a dead host's connect timeout must not stall the other hosts (fencing the
        // old master and moving the VIP to the new one run in parallel).
        let lock = self
            .connecting
            .lock()
            .expect("connecting")
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.lock().await;
        if let Some(s) = self.free_slot(&key).await {
            return Ok(s);
        }
        let full = self.conns.lock().await.get(&key).and_then(|l| {
            (l.len() >= MAX_CONNS_PER_HOST)
                .then(|| l.first().cloned())
                .flatten()
        });
        if let Some(c) = full {
            drop(guard);
            let slot = c
                .channels
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            return Ok((c, slot));
        }
        let c = self.connect(host, port).await?;
        let slot = c
            .channels
            .clone()
            .try_acquire_owned()
            .expect("a new connection has free channels");
        self.conns
            .lock()
            .await
            .entry(key)
            .or_default()
            .push(c.clone());
        Ok((c, slot))
    }

    /// A session channel on one of the host's connections, with the slot it holds; `used`
    /// names the connection (the one to drop if the call times out). A refused open is asked
    /// again (see [`REOPEN_PAUSE`]): it says the host is busy, not that it is gone.
    async fn open_channel(
        &self,
        host: &str,
        port: u16,
        used: &Mutex<Option<Arc<Conn>>>,
    ) -> Result<(russh::Channel<client::Msg>, Slot), SshError> {
        let mut pause = REOPEN_PAUSE;
        let mut tries = 0;
        loop {
            tries += 1;
            let (conn, slot) = self.slot(host, port).await?;
            *used.lock().expect("used") = Some(conn.clone());
            match conn.handle.channel_open_session().await {
                Ok(ch) => return Ok((ch, slot)),
                Err(russh::Error::ChannelOpenFailure(reason)) if tries < REOPEN_TRIES => {
                    tracing::debug!(
                        host,
                        ?reason,
                        "sshd refused a session channel: asking again"
                    );
                    drop(slot);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(REOPEN_PAUSE_MAX);
                }
                Err(e) => {
                    return Err(SshError::Channel {
                        host: host.to_string(),
                        message: if tries > 1 {
                            format!("{e} ({tries} times)")
                        } else {
                            e.to_string()
                        },
                    })
                }
            }
        }
    }

    async fn free_slot(&self, key: &HostKey) -> Option<(Arc<Conn>, Slot)> {
        let mut conns = self.conns.lock().await;
        let list = conns.get_mut(key)?;
        list.retain(|c| !c.handle.is_closed());
        list.iter().find_map(|c| {
            let slot = c.channels.clone().try_acquire_owned().ok()?;
            Some((c.clone(), slot))
        })
    }

    /// Drops `conn` (a call on it timed out: it may be wedged) so later calls use another;
    /// the host's other connections, and the calls running on this one, are left alone.
    async fn forget(&self, host: &str, port: u16, conn: &Arc<Conn>) {
        let key = (host.to_string(), port);
        conn.forgotten.store(true, Ordering::Relaxed);
        if let Some(list) = self.conns.lock().await.get_mut(&key) {
            list.retain(|c| !Arc::ptr_eq(c, conn));
        }
        // Its idle shells go with it (closed once out of the lock).
        let gone: Vec<HostShell> = {
            let mut shells = self.shells.lock().expect("shells");
            match shells.get_mut(&key) {
                Some(s) => s.take_idle_on(conn),
                None => Vec::new(),
            }
        };
        drop(gone);
    }

    /// Opens (or reuses) the connection and runs `true` in a session of its own (which proves
    /// more than a kept shell answering: sshd still opens sessions and starts commands);
    /// returns how long that took.
    pub async fn check(&self, host: &str, port: u16) -> Result<Duration, SshError> {
        let t = Instant::now();
        let out = self
            .exec_with_input(host, port, "true", None, self.cfg.connect_timeout)
            .await?;
        if !out.success() {
            return Err(SshError::Channel {
                host: host.into(),
                message: format!("`true` exited {:?}", out.status),
            });
        }
        Ok(t.elapsed())
    }

    /// `check`, unless a command completed on the host within `window` (the session is warm:
    /// another group's monitor or a step just used it). None when skipped.
    pub async fn check_unless_fresh(
        &self,
        host: &str,
        port: u16,
        window: Duration,
    ) -> Result<Option<Duration>, SshError> {
        let key = (host.to_string(), port);
        let fresh = self
            .last_ok
            .lock()
            .expect("last_ok")
            .get(&key)
            .is_some_and(|t| t.elapsed() < window);
        if fresh {
            return Ok(None);
        }
        let took = self.check(host, port).await?;
        // A kept shell ready for the next command (started if none; an idle one is looked at,
        // the longest idle first, and left if it ended or something wrote to it).
        if let InShell::Ran(Err(e)) = self
            .exec_in_shell(host, port, "true", self.cfg.connect_timeout)
            .await
        {
            tracing::debug!(host, error = %e, "kept shell not warmed");
        }
        Ok(Some(took))
    }

    /// Whether the host's sshd answers on the kept session (opened if need be), within
    /// `timeout`: a session channel opened and closed, no command run (nothing forked on the
    /// host), so asking costs the host next to nothing.
    pub async fn answers(&self, host: &str, port: u16, timeout: Duration) -> Result<(), SshError> {
        let used = Mutex::new(None);
        let fut = async {
            let (ch, _slot) = self.open_channel(host, port, &used).await?;
            let _ = ch.close().await;
            Ok(())
        };
        let res = match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(SshError::Timeout {
                host: host.to_string(),
                what: "a session channel",
                after: timeout,
            }),
            Ok(r) => r,
        };
        res.map_err(|e| e.counted(host))
    }

    /// Runs `command` (a shell command line) and collects its output, within `timeout`: in a
    /// shell kept on the host (host_shell.rs), else as a command of its own.
    pub async fn exec(
        &self,
        host: &str,
        port: u16,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, SshError> {
        let started = Instant::now();
        match self.exec_in_shell(host, port, command, timeout).await {
            InShell::Ran(res) => res,
            InShell::Elsewhere => {
                let left = timeout.saturating_sub(started.elapsed());
                self.exec_with_input(host, port, command, None, left).await
            }
        }
    }

    #[tracing::instrument(level = "debug", skip(self, input, timeout), fields(host, port))]
    pub async fn exec_with_input(
        &self,
        host: &str,
        port: u16,
        command: &str,
        input: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput, SshError> {
        // The connection the command runs on, once it has a channel slot: the one dropped if
        // the command times out.
        let used: Mutex<Option<Arc<Conn>>> = Mutex::new(None);
        let started = Instant::now();
        let fut = async {
            let (mut ch, _slot) = self.open_channel(host, port, &used).await?;
            let chan_err = |e: russh::Error| SshError::Channel {
                host: host.to_string(),
                message: e.to_string(),
            };
            ch.exec(true, command).await.map_err(chan_err)?;
            if let Some(data) = input {
                ch.data(data).await.map_err(chan_err)?;
            }
            ch.eof().await.map_err(chan_err)?;
            let mut out = ExecOutput::default();
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    _ => {}
                }
            }
            Ok(out)
        };
        let res = match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(self.command_timed_out(host, port, &used, timeout).await),
            Ok(r) => r,
        };
        self.command_done(host, port, started, "session", res)
    }

    /// A command on `host` outlived `timeout`: the connection it ran on (`used`) may be wedged,
    /// so it is dropped and the next call reconnects. Returns the error.
    async fn command_timed_out(
        &self,
        host: &str,
        port: u16,
        used: &Mutex<Option<Arc<Conn>>>,
        timeout: Duration,
    ) -> SshError {
        let conn = used.lock().expect("used").take();
        if let Some(conn) = conn {
            self.forget(host, port, &conn).await;
        }
        SshError::Timeout {
            host: host.to_string(),
            what: "command",
            after: timeout,
        }
    }

    /// The end of a command on `host` (`via`: in a session of its own or a kept shell): logged
    /// with its time; a success marks the host's sessions warm (a keep-warm within the window
    /// has nothing to do), a failure is counted in the error metric.
    fn command_done<T>(
        &self,
        host: &str,
        port: u16,
        started: Instant,
        via: &'static str,
        res: Result<T, SshError>,
    ) -> Result<T, SshError> {
        tracing::debug!(
            via,
            elapsed_us = started.elapsed().as_micros() as u64,
            ok = res.is_ok(),
            "command ran"
        );
        if res.is_ok() {
            self.last_ok
                .lock()
                .expect("last_ok")
                .insert((host.to_string(), port), Instant::now());
        }
        res.map_err(|e| e.counted(host))
    }

    /// Reads `len` bytes (all to the end when None) of a remote file starting at `offset`.
    pub async fn read_range(
        &self,
        host: &str,
        port: u16,
        path: &str,
        offset: u64,
        len: Option<u64>,
        timeout: Duration,
    ) -> Result<Vec<u8>, SshError> {
        // One process, no pipe: `tail | head` under pipefail fails when head stops reading a
        // large file early (tail dies of SIGPIPE).
        let cmd = match len {
            Some(n) => format!(
                "dd if={} iflag=skip_bytes,count_bytes skip={offset} count={n} bs=65536 status=none",
                shell_quote(path)
            ),
            None => format!("tail -c +{} {}", offset + 1, shell_quote(path)),
        };
        let out = self.exec(host, port, &cmd, timeout).await?;
        if !out.success() {
            return Err(SshError::Channel {
                host: host.into(),
                message: format!(
                    "reading {path}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(out.stdout)
    }

    /// Writes `data` to a remote file, mode 0600, atomically (temp file, then rename).
    pub async fn write_file(
        &self,
        host: &str,
        port: u16,
        path: &str,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), SshError> {
        let cmd = remote::write_file(path);
        let out = self
            .exec_with_input(host, port, &cmd, Some(data), timeout)
            .await?;
        if !out.success() {
            return Err(SshError::Channel {
                host: host.into(),
                message: format!(
                    "writing {path}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(())
    }

    /// Closes every kept connection.
    pub async fn close_all(&self) {
        let conns: Vec<Arc<Conn>> = self
            .conns
            .lock()
            .await
            .drain()
            .flat_map(|(_, c)| c)
            .collect();
        // The idle shells go; the count keeps the ones leased out (they are closed when
        // their callers finish, their connections being gone).
        let shells: Vec<HostShell> = {
            let mut all = self.shells.lock().expect("shells");
            all.values_mut().flat_map(Shells::take_idle).collect()
        };
        drop(shells);
        for c in conns {
            c.forgotten.store(true, Ordering::Relaxed);
            let _ = c
                .handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await;
        }
    }
}

pub mod egress;
mod host_shell;
mod iptables;
mod kept_shells;
pub mod remote;
mod shell;
pub mod vip;

pub use shell::HostCommandError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
