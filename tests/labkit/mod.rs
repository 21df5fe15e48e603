//! The lab harness shared by the lab test binaries: bring a lab up (as root, one at a time per
//! process), drive it with deploy/lab/lab and mhactl, tear it down on drop.
#![allow(dead_code)]

use std::path::PathBuf;
pub use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
pub use std::time::{Duration, Instant};

pub use serde_json::Value;

pub mod groups;
pub mod health;
pub mod runs;
pub mod secrets;
pub mod writer;
#[allow(unused_imports)]
pub use groups::LabGroup;
#[allow(unused_imports)]
pub use runs::*;
#[allow(unused_imports)]
pub use writer::Writer;

pub const MHAD: &str = env!("CARGO_BIN_EXE_mhad");
pub const MHACTL: &str = env!("CARGO_BIN_EXE_mhactl");
pub const WAIT: Duration = Duration::from_secs(60);
/// How often [`wait_for`] looks again.
pub const POLL: Duration = Duration::from_millis(50);

pub static LAB_LOCK: Mutex<()> = Mutex::new(());

pub fn lab_tool() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/lab/lab")
}

/// Polls `cond` every [`POLL`] until it returns `Ok(value)`, and returns the value. `Err(state)`
/// means "not yet" and carries what was observed; once `timeout` has passed, the test panics
/// naming `what` it waited for and the last observed state.
#[track_caller]
pub fn wait_for<T, S: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> Result<T, S>,
) -> T {
    let start = Instant::now();
    loop {
        match cond() {
            Ok(v) => return v,
            Err(state) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {state}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// [`wait_for`] for a condition that must await (an adapter call), without blocking the
/// runtime's thread between looks.
pub async fn wait_for_async<T, S: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    mut cond: impl AsyncFnMut() -> Result<T, S>,
) -> T {
    let start = Instant::now();
    loop {
        match cond().await {
            Ok(v) => return v,
            Err(state) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {state}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// The lab's directory (deploy/lab/lab's LAB_DIR).
pub fn lab_dir() -> String {
    std::env::var("MHA_LAB_DIR").unwrap_or_else(|_| "/var/tmp/mhalab".into())
}

/// One of the lab's generated passwords (`mha` or `repl`).
/// SSH settings for the lab's hosts as root, with one of the lab's keys (`id_rsa`,
/// `id_ed25519`).
pub fn ssh_cfg(
    key: &str,
    known_hosts: String,
    accept_unknown: bool,
) -> mha_raft::adapters::ssh::SshConfig {
    mha_raft::adapters::ssh::SshConfig {
        user: "root".into(),
        key_path: format!("{}/ssh/{key}", lab_dir()).into(),
        known_hosts: known_hosts.into(),
        accept_unknown_host_keys: accept_unknown,
        connect_timeout: Duration::from_secs(3),
    }
}

pub fn lab_secret(name: &str) -> mha_raft::secret::Secret {
    mha_raft::secret::Secret::new(
        std::fs::read_to_string(format!("{}/secrets/{name}.pw", lab_dir()))
            .unwrap()
            .trim(),
    )
}

/// mhactl against the given endpoints (e.g. one manager alone), as the lab's admin.
pub fn mhactl_at(endpoints: &str, args: &[&str]) -> Output {
    mhactl_as("admin", endpoints, args)
}

/// mhactl with the lab client certificate `client` (admin, operator, reader: see `lab up`).
pub fn mhactl_as(client: &str, endpoints: &str, args: &[&str]) -> Output {
    let tls = format!("{}/tls", lab_dir());
    Command::new(MHACTL)
        .env("MHACTL_CA", format!("{tls}/ca.crt"))
        .env("MHACTL_CERT", format!("{tls}/client-{client}.crt"))
        .env("MHACTL_KEY", format!("{tls}/client-{client}.key"))
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .output()
        .expect("mhactl")
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A running lab; torn down on drop.
pub struct Lab {
    _guard: MutexGuard<'static, ()>,
    pub endpoints: String,
    pub group_file: String,
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({:?}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

impl Lab {
    /// Brings a fresh lab up, or returns None (test skipped, said loudly) when not root.
    pub fn up(args: &[&str]) -> Option<Lab> {
        Self::up_with_env(args, &[])
    }

    /// Like `up`, with extra environment for the lab tool and the managers it starts (e.g.
    /// MHAD_FAILPOINT).
    pub fn up_with_env(args: &[&str], env: &[(&str, &str)]) -> Option<Lab> {
        if !is_root() {
            eprintln!("SKIPPED: lab tests need root");
            return None;
        }
        let guard = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        tracing_init();
        tracing::info!(?args, "--- lab up");
        run(Command::new(lab_tool())
            .arg("up")
            .args(args)
            .args(["--mhad", MHAD])
            .envs(env.iter().copied()));
        let env = String::from_utf8(run(Command::new(lab_tool()).arg("env")).stdout).unwrap();
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .map(|v| v.trim_matches('\'').to_string())
                .unwrap_or_else(|| panic!("lab env lacks {k}"))
        };
        let lab = Lab {
            _guard: guard,
            endpoints: get("MHACTL_ENDPOINTS"),
            group_file: get("MHA_LAB_GROUP_FILE"),
        };
        if !args.contains(&"--no-managers") {
            lab.wait_quorum();
        }
        Some(lab)
    }

    pub fn lab(&self, args: &[&str]) -> Output {
        run(Command::new(lab_tool()).args(args))
    }

    /// Runs SQL on a host as root; the statements go through stdin (never argv: some carry
    /// passwords).
    pub fn sql(&self, host: &str, sql: &str) -> String {
        self.try_sql(host, sql)
            .unwrap_or_else(|| panic!("SQL on {host} failed: {sql}"))
    }

    /// Like `sql`, but a failing statement (e.g. the table does not exist yet) is None.
    pub fn try_sql(&self, host: &str, sql: &str) -> Option<String> {
        self.try_sql_at(host, &[], sql)
    }

    /// `try_sql` with options for `lab exec` (e.g. `--group K`).
    fn try_sql_at(&self, host: &str, exec_opts: &[&str], sql: &str) -> Option<String> {
        use std::io::Write;
        let mut child = Command::new(lab_tool())
            .args(["exec", host])
            .args(exec_opts)
            .args(["--", "mariadb", "-N", "-B"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()?
            .write_all(format!("{sql}\n").as_bytes())
            .ok()?;
        let out = child.wait_with_output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn mhactl(&self, args: &[&str]) -> Output {
        mhactl_at(&self.endpoints, args)
    }

    pub fn wait_quorum(&self) {
        wait_for("the managers to form a quorum", WAIT, || {
            let out = self.mhactl(&["cluster", "status", "--json"]);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if v["has_quorum"] == true && v["cluster"] == "lab" {
                Ok(())
            } else {
                Err(format!("{v} {}", String::from_utf8_lossy(&out.stderr)))
            }
        })
    }

    /// Adds the lab's group from its group file as `edit` rewrites it (e.g. a `[ping]` table).
    pub fn add_group_edited(&self, edit: impl FnOnce(String) -> String) -> String {
        let text = std::fs::read_to_string(&self.group_file).unwrap();
        let path = format!("{}.edited.toml", self.group_file);
        std::fs::write(&path, edit(text)).unwrap();
        self.group_add(&path)
    }

    /// Adds the lab's group from its group file.
    pub fn add_group(&self) -> String {
        self.group_add(&self.group_file)
    }

    /// `mhactl group add -f path`, which must succeed; its output.
    pub fn group_add(&self, path: &str) -> String {
        let out = self.mhactl(&["group", "add", "-f", path]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "group add: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    pub fn group_json(&self) -> Value {
        let out = self.mhactl(&["group", "list", "--json"]);
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0].clone()
    }

    pub fn check(&self, what: &str) -> (i32, String) {
        let out = self.mhactl(&["check", what, "--group", "lab"]);
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(lab_tool()).arg("down").output();
    }
}

pub fn tracing_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
}
