//! The lab harness shared by the lab test binaries: bring a lab up (as root, one at a time per
//! process), drive it with deploy/lab/lab and mhactl, tear it down on drop.
#![allow(dead_code)]

use std::path::PathBuf;
pub use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
pub use std::time::{Duration, Instant};

pub use serde_json::Value;

pub mod runs;
#[allow(unused_imports)]
pub use runs::*;

pub const MHAD: &str = env!("CARGO_BIN_EXE_mhad");
pub const MHACTL: &str = env!("CARGO_BIN_EXE_mhactl");
pub const WAIT: Duration = Duration::from_secs(60);

pub static LAB_LOCK: Mutex<()> = Mutex::new(());

pub fn lab_tool() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/lab/lab")
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
        use std::io::Write;
        let mut child = Command::new(lab_tool())
            .args(["exec", host, "--", "mariadb", "-N", "-B"])
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
        Command::new(MHACTL)
            .arg("--endpoints")
            .arg(&self.endpoints)
            .args(args)
            .output()
            .expect("mhactl")
    }

    pub fn wait_quorum(&self) {
        let start = Instant::now();
        loop {
            let out = self.mhactl(&["cluster", "status", "--json"]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                if v["has_quorum"] == true && v["cluster"] == "lab" {
                    return;
                }
            }
            assert!(start.elapsed() < WAIT, "managers never formed a quorum");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn add_group(&self) -> String {
        let out = self.mhactl(&["group", "add", "-f", &self.group_file]);
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
