//! Real `mhad` processes on loopback with TLS, driven with `mhactl` as an operator would, and
//! read through their logs. (tests/process.rs has its own copy of the start-up half; it can move
//! here once the branches that change it are merged.)
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const MHAD: &str = env!("CARGO_BIN_EXE_mhad");
pub const MHACTL: &str = env!("CARGO_BIN_EXE_mhactl");
/// The bound of every wait on a condition.
pub const WAIT: Duration = Duration::from_secs(30);

/// One CA for every cluster of the test binary, made by `mhactl certs init`.
fn pki() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(MHACTL)
            .args(["certs", "init", "--cluster", "test", "--dir"])
            .arg(tmp.path().join("tls"))
            .args(["--nodes", "1,2,3"])
            .args(["--clients", "admin,reader"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmp
    })
    .path()
}

pub fn tls_file(name: &str) -> PathBuf {
    pki().join("tls").join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One mhad process. Its stderr goes to `dir/mhad.log`, with mhad's default log filter (no
/// RUST_LOG): what an operator gets.
pub struct Proc {
    pub id: u64,
    pub addr: String,
    dir: PathBuf,
    child: Option<Child>,
    members: String,
}

impl Proc {
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(MHAD);
        cmd.args(["--id", &self.id.to_string(), "--listen", &self.addr])
            .args(["--zone", &format!("zone-{}", self.id)])
            .args(["--initial-members", &self.members])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--tls-ca")
            .arg(tls_file("ca.crt"))
            .arg("--tls-cert")
            .arg(tls_file(&format!("node-{}.crt", self.id)))
            .arg("--tls-key")
            .arg(tls_file(&format!("node-{}.key", self.id)))
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn mhad"));
    }

    /// SIGKILL, as `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("mhad.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where the log ends now: [`Proc::log_since`] reads what comes after.
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    pub fn log_since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or_default().to_string()
    }

    /// Waits until the log after `mark` has a line containing every one of `parts`.
    pub fn wait_log(&self, mark: usize, parts: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let log = self.log_since(mark);
            if let Some(l) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.to_string();
            }
            assert!(
                start.elapsed() < WAIT,
                "node {}: no line with {parts:?} in:\n{log}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Cluster {
    pub procs: Vec<Proc>,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// `n` processes that bootstrap one cluster from `initial_members`.
    pub fn start(n: u64) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let addrs: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let members = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let procs = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let dir = tmp.path().join(format!("n{}", i + 1));
                std::fs::create_dir_all(&dir).unwrap();
                let mut p = Proc {
                    id: i as u64 + 1,
                    addr: addr.clone(),
                    dir,
                    child: None,
                    members: members.clone(),
                };
                p.spawn();
                p
            })
            .collect();
        Cluster { procs, _tmp: tmp }
    }

    pub fn endpoints(&self) -> String {
        self.procs
            .iter()
            .map(|p| p.addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn proc(&mut self, id: u64) -> &mut Proc {
        self.procs.iter_mut().find(|p| p.id == id).unwrap()
    }

    /// Waits for a leader with a quorum and every manager reachable and caught up; returns the
    /// status.
    pub fn wait_healthy(&self) -> Value {
        let n = self.procs.len();
        wait_status(
            &self.endpoints(),
            "a leader and every manager caught up",
            |v| {
                let m = v["managers"].as_array().unwrap();
                v["has_quorum"] == true
                    && m.len() == n
                    && m.iter().all(|r| r["reachable"] == true)
                    && m.iter()
                        .all(|r| r["applied_index"] == m[0]["applied_index"])
            },
        )
    }
}

pub fn mhactl(endpoints: &str, args: &[&str]) -> Output {
    Command::new(MHACTL)
        .env("MHACTL_CA", tls_file("ca.crt"))
        .env("MHACTL_CERT", tls_file("client-admin.crt"))
        .env("MHACTL_KEY", tls_file("client-admin.key"))
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .output()
        .expect("run mhactl")
}

/// Polls `mhactl cluster status --json` until `cond` holds.
pub fn wait_status(endpoints: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let out = mhactl(endpoints, &["cluster", "status", "--json"]);
        if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
            if out.status.success() && cond(&v) {
                return v;
            }
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn leader_id(v: &Value) -> Option<u64> {
    v["leader"]["id"].as_u64()
}
