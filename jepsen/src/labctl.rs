//! Driving deploy/lab/lab from the harness.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// Runs the lab tool with `args` and `env`; its stdout on success.
pub fn lab_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/lab/lab");
    let out = Command::new(&tool)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("run {}", tool.display()))?;
    if !out.status.success() {
        bail!("lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn lab(args: &[&str]) -> anyhow::Result<String> {
    lab_env(args, &[])
}

/// A value of `lab env` (MHACTL_ENDPOINTS, MHA_LAB_GROUP_FILE, ...).
pub fn lab_var(key: &str) -> anyhow::Result<String> {
    let env = lab(&["env"])?;
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")))
        .map(|v| v.trim_matches('\'').to_string())
        .with_context(|| format!("lab env lacks {key}"))
}

/// The mhad binary: the given path, or the one next to this executable.
pub fn mhad_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(p) => Ok(p),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("exe dir")?
            .join("mhad")),
    }
}

/// Adds the group (JSON of GroupSpec), retrying while the managers settle (no leader yet, the
/// master not yet answering), for at most a minute.
pub async fn add_group(
    client: &mha_raft::ctl::AdminClient,
    spec: &mha_raft::state::group::GroupSpec,
) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    loop {
        let req = mha_raft::api::pb::PutGroupRequest {
            spec: Some(spec.into()),
        };
        match client
            .call(|mut c| {
                let req = req.clone();
                async move { c.add_group(req).await }
            })
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > std::time::Duration::from_secs(60) => {
                bail!("the group could not be added: {e}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

/// The admin transport the lab's `env` names: its CA and admin client certificate, or plaintext
/// for a lab brought up with `--insecure`.
pub fn lab_transport() -> anyhow::Result<mha_raft::security::Transport> {
    let env = lab(&["env"])?;
    let get = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .map(|v| PathBuf::from(v.trim_matches('\'')))
    };
    mha_raft::ctl::client::client_transport(
        get("MHACTL_CA"),
        get("MHACTL_CERT"),
        get("MHACTL_KEY"),
        get("MHACTL_INSECURE").is_some(),
    )
    .context("lab credentials")
}

/// An admin client to the lab's managers (every endpoint `lab env` names), each call bounded
/// by `timeout`.
pub fn lab_client(timeout: std::time::Duration) -> anyhow::Result<mha_raft::ctl::AdminClient> {
    Ok(mha_raft::ctl::AdminClient::new(
        lab_var("MHACTL_ENDPOINTS")?
            .split(',')
            .map(String::from)
            .collect(),
        timeout,
        lab_transport()?,
    )?)
}
