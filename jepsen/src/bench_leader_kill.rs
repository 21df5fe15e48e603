//! Bench: SIGKILL the Raft leader of three real `mhad` processes on loopback and time until a
//! different node answers the admin API as a leader acknowledged by a quorum. The killed node is
//! restarted and allowed to catch up before the next kill.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mha_raft::ctl::cluster_status;
use mha_raft::ctl::AdminClient;
use mha_raft::proto::admin::ClusterStatusReply;
use mha_raft::security::certs::{write_file, Authority, Issued};
use mha_raft::security::{Role, TlsFiles, TlsMaterial, Transport};

use crate::stats::summarize;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of leader kills.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// The mhad binary (default: next to this executable).
    #[arg(long)]
    mhad: Option<PathBuf>,
    /// Extra flags passed to every mhad (e.g. "--election-timeout-min-ms 300").
    #[arg(long, allow_hyphen_values = true)]
    mhad_args: Option<String>,
    /// Managers without TLS (plaintext), to measure what mutual TLS costs.
    #[arg(long)]
    insecure: bool,
}

struct Node {
    id: u64,
    addr: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A CA for the three loopback managers (mutual TLS, as in production): node certificates in
/// `dir` and the admin transport for the harness.
fn loopback_pki(dir: &Path) -> anyhow::Result<Transport> {
    let ca = Authority::create("bench")?;
    let write = |stem: &str, issued: Issued| -> anyhow::Result<()> {
        write_file(&dir.join(format!("{stem}.crt")), &issued.cert_pem, 0o644)?;
        write_file(&dir.join(format!("{stem}.key")), &issued.key_pem, 0o600)?;
        Ok(())
    };
    write_file(&dir.join("ca.crt"), ca.cert_pem(), 0o644)?;
    for id in 1..=3 {
        write(&format!("node-{id}"), ca.issue_node(id, &[])?)?;
    }
    write("client-admin", ca.issue_client("admin", Role::Admin)?)?;
    Ok(Transport::Tls(Arc::new(TlsMaterial::load(&TlsFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("client-admin.crt"),
        key: dir.join("client-admin.key"),
    })?)))
}

fn default_mhad() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("exe dir")?.join("mhad");
    if !p.exists() {
        bail!(
            "{} not found; build it (cargo build --release --bins) or pass --mhad",
            p.display()
        );
    }
    Ok(p)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mhad = match args.mhad.clone() {
        Some(p) => p,
        None => default_mhad()?,
    };
    let extra: Vec<String> = args
        .mhad_args
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let tmp = tempfile::tempdir()?;
    let tls = tmp.path().join("tls");
    std::fs::create_dir_all(&tls)?;
    let transport = if args.insecure {
        Transport::Insecure
    } else {
        loopback_pki(&tls)?
    };
    // The flags that give node `id` its transport.
    let tls_args = |id: u64| -> Vec<std::ffi::OsString> {
        if args.insecure {
            return vec!["--insecure".into()];
        }
        vec![
            "--tls-ca".into(),
            tls.join("ca.crt").into(),
            "--tls-cert".into(),
            tls.join(format!("node-{id}.crt")).into(),
            "--tls-key".into(),
            tls.join(format!("node-{id}.key")).into(),
        ]
    };
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            Node {
                id,
                addr: format!("127.0.0.1:{port}"),
                dir: tmp.path().join(format!("n{id}")),
                child: None,
            }
        })
        .collect();
    let members = nodes
        .iter()
        .map(|n| format!("{}={}", n.id, n.addr))
        .collect::<Vec<_>>()
        .join(",");
    let spawn = |n: &mut Node| -> anyhow::Result<()> {
        std::fs::create_dir_all(&n.dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.dir.join("mhad.log"))?;
        let child = Command::new(&mhad)
            .args([
                "--id",
                &n.id.to_string(),
                "--listen",
                &n.addr,
                "--initial-members",
                &members,
            ])
            .arg("--data-dir")
            .arg(n.dir.join("data"))
            .args(tls_args(n.id))
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", mhad.display()))?;
        n.child = Some(child);
        Ok(())
    };
    for n in nodes.iter_mut() {
        spawn(n)?;
    }
    let all = AdminClient::new(
        nodes.iter().map(|n| n.addr.clone()).collect(),
        Duration::from_millis(500),
        transport.clone(),
    )?;
    println!(
        "bench leader-kill: 3 mhad on loopback ({}, {}), {} kills, mhad flags: {:?}",
        mhad.display(),
        if args.insecure {
            "plaintext"
        } else {
            "mutual TLS"
        },
        args.runs,
        extra
    );

    let mut samples = Vec::new();
    for run in 1..=args.runs {
        let stable = wait_for(&all, Duration::from_secs(30), |r| {
            r.has_quorum
                && r.managers
                    .iter()
                    .all(|m| m.reachable && m.applied_index == r.managers[0].applied_index)
        })
        .await
        .context("cluster did not stabilise")?;
        let old = stable.leader_id.context("no leader")?;
        let victim = nodes
            .iter_mut()
            .find(|n| n.id == old)
            .context("leader not ours")?;
        let t0 = Instant::now();
        if let Some(mut c) = victim.child.take() {
            c.kill()?;
            c.wait()?;
        }
        let survivors = AdminClient::new(
            nodes
                .iter()
                .filter(|n| n.id != old)
                .map(|n| n.addr.clone())
                .collect(),
            Duration::from_millis(500),
            transport.clone(),
        )?;
        let after = wait_for(&survivors, Duration::from_secs(30), |r| {
            r.has_quorum && r.leader_id.is_some_and(|l| l != old)
        })
        .await
        .context("no new leader")?;
        let took = t0.elapsed();
        println!(
            "run {run:>3}: leader {old} killed -> leader {} in {:.0} ms",
            after.leader_id.unwrap_or(0),
            took.as_secs_f64() * 1000.0
        );
        samples.push(took);
        let victim = nodes.iter_mut().find(|n| n.id == old).context("victim")?;
        spawn(victim)?;
    }
    if let Some(s) = summarize(&samples) {
        println!("leader SIGKILL -> new leader serving admin calls: {s}");
    }
    Ok(())
}

/// Polls the cluster status (every 5 ms) until `cond` holds.
async fn wait_for(
    client: &AdminClient,
    timeout: Duration,
    cond: impl Fn(&ClusterStatusReply) -> bool,
) -> anyhow::Result<ClusterStatusReply> {
    let start = Instant::now();
    loop {
        if let Ok(r) = cluster_status::fetch(client, &[]).await {
            if cond(&r) {
                return Ok(r);
            }
        }
        if start.elapsed() > timeout {
            bail!("condition not reached within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
