//! Process-level harness: real `mhad` binaries on loopback ports with mutual TLS (certificates
//! made by `mhactl certs init`), driven with `mhactl` as an operator would.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const MHAD: &str = env!("CARGO_BIN_EXE_mhad");
pub const MHACTL: &str = env!("CARGO_BIN_EXE_mhactl");
pub const WAIT: Duration = Duration::from_secs(30);

/// One CA for every cluster of this test binary, made by `mhactl certs init` as an operator
/// would: node certificates for ids 1..9 and the three client roles.
pub fn pki() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(MHACTL)
            .args(["certs", "init", "--cluster", "test", "--dir"])
            .arg(tmp.path().join("tls"))
            .args(["--nodes", "1,2,3,4,5,6,7,8,9"])
            .args(["--clients", "admin,operator,reader"])
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One mhad process; its stderr goes to `dir/mhad.log`.
pub struct Proc {
    pub id: u64,
    pub addr: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub members: String,
    /// RUST_LOG for the process; None: mhad's own default filter (what an operator gets).
    pub rust_log: Option<&'static str>,
}

impl Proc {
    pub fn spawn(&mut self) {
        self.spawn_with(&[]);
    }

    pub fn spawn_with(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mhad.log"))
            .unwrap();
        let mut cmd = Command::new(MHAD);
        cmd.args([
            "--id",
            &self.id.to_string(),
            "--listen",
            &self.addr,
            "--zone",
            &format!("zone-{}", self.id),
        ])
        .arg("--data-dir")
        .arg(self.dir.join("data"))
        .arg("--tls-ca")
        .arg(tls_file("ca.crt"))
        .arg("--tls-cert")
        .arg(tls_file(&format!("node-{}.crt", self.id)))
        .arg("--tls-key")
        .arg(tls_file(&format!("node-{}.key", self.id)))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log);
        if !self.members.is_empty() {
            cmd.args(["--initial-members", &self.members]);
        }
        match self.rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        self.child = Some(cmd.spawn().expect("spawn mhad"));
    }

    /// SIGKILL, as `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn term(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(
                start.elapsed() < WAIT,
                "mhad {} did not exit after SIGTERM",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mhad.log")).unwrap_or_default()
    }

    /// Waits until the process accepts connections at its address (a manager about to be
    /// added must answer the leader's check).
    pub fn wait_listening(&self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(
                start.elapsed() < WAIT,
                "mhad {} never listened at {}:\n{}",
                self.id,
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
    pub _tmp: tempfile::TempDir,
}

impl Cluster {
    /// `n` processes that bootstrap one cluster from `initial_members`, logging at INFO.
    pub fn start(n: u64) -> Cluster {
        Cluster::start_logging(n, Some("info,openraft=warn"))
    }

    /// The same with mhad's default log filter (`None`) or the one given.
    pub fn start_logging(n: u64, rust_log: Option<&'static str>) -> Cluster {
        Cluster::start_with(n, rust_log, &[])
    }

    /// The same, each mhad started with `extra` arguments too.
    pub fn start_with(n: u64, rust_log: Option<&'static str>, extra: &[&str]) -> Cluster {
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
        let mut procs = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let dir = tmp.path().join(format!("n{}", i + 1));
            std::fs::create_dir_all(&dir).unwrap();
            let mut p = Proc {
                id: i as u64 + 1,
                addr: addr.clone(),
                dir,
                child: None,
                members: members.clone(),
                rust_log,
            };
            p.spawn_with(extra);
            procs.push(p);
        }
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
    mhactl_as("admin", endpoints, args)
}

pub fn mhactl_as(client: &str, endpoints: &str, args: &[&str]) -> Output {
    Command::new(MHACTL)
        .env("MHACTL_CA", tls_file("ca.crt"))
        .env("MHACTL_CERT", tls_file(&format!("client-{client}.crt")))
        .env("MHACTL_KEY", tls_file(&format!("client-{client}.key")))
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .output()
        .expect("run mhactl")
}

pub fn status_json(endpoints: &str) -> (i32, Option<Value>) {
    let out = mhactl(endpoints, &["cluster", "status", "--json"]);
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).ok(),
    )
}

/// Polls `mhactl cluster status --json` until `cond` holds.
pub fn wait_status(endpoints: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let (0, Some(v)) = status_json(endpoints) {
            if cond(&v) {
                return v;
            }
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Table rows of the human status output (they start with the manager id).
pub fn manager_rows(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .count()
}

pub fn leader_id(v: &Value) -> Option<u64> {
    v["leader"]["id"].as_u64()
}

pub fn all_followers_caught_up(v: &Value, n: usize) -> bool {
    let m = v["managers"].as_array().unwrap();
    m.len() == n
        && m.iter().all(|r| {
            r["reachable"] == true && r["zone"].as_str().is_some_and(|z| z.starts_with("zone-"))
        })
        && m.iter()
            .all(|r| r["applied_index"] == m[0]["applied_index"])
}
