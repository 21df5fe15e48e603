//! `mhactl certs`: the cluster's own CA and the certificates of its managers and operators.
//! Runs locally; talks to no manager.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{exit, fail, out};
use crate::security::certs::{write_file, Authority, CertError, Issued};
use crate::security::Role;

#[derive(Subcommand, Debug)]
pub enum CertsCmd {
    /// Create a new cluster CA and certificates for the given managers and clients.
    Init(InitArgs),
    /// Issue (or re-issue, for rotation) one certificate with an existing CA.
    Issue(IssueArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Directory to write into (created 0700). Refused if it already holds a CA.
    #[arg(long)]
    pub dir: PathBuf,
    /// Cluster name, recorded in the CA's subject.
    #[arg(long, default_value = "mha")]
    pub cluster: String,
    /// Manager ids to issue node certificates for: 1,2,3.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<u64>,
    /// Extra names (IPs or DNS names) put in every node certificate, for tools that verify a
    /// manager by its address.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Client certificates, NAME[=ROLE] with ROLE reader|operator|admin; a bare role name
    /// (admin, operator, reader) names a client with that role.
    #[arg(long, value_delimiter = ',', default_value = "admin")]
    pub clients: Vec<String>,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    /// Directory holding ca.crt and ca.key; the new files are written there.
    #[arg(long)]
    pub dir: PathBuf,
    /// A manager's id.
    #[arg(long, conflicts_with = "client", required_unless_present = "client")]
    pub node: Option<u64>,
    /// Extra names (IPs or DNS names) for the node certificate.
    #[arg(long, value_delimiter = ',', requires = "node")]
    pub hosts: Vec<String>,
    /// A client's name.
    #[arg(long, requires = "role")]
    pub client: Option<String>,
    /// The client's role: reader, operator or admin.
    #[arg(long, value_parser = parse_role)]
    pub role: Option<Role>,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?}: expected reader, operator or admin"))
}

/// NAME[=ROLE] → (name, role).
fn client_spec(spec: &str) -> Result<(String, Role), String> {
    match spec.split_once('=') {
        Some((name, role)) => Ok((name.to_string(), parse_role(role)?)),
        None => parse_role(spec)
            .map(|r| (spec.to_string(), r))
            .map_err(|_| {
                format!("client {spec:?}: give NAME=ROLE (role reader, operator or admin)")
            }),
    }
}

/// Writes `stem.crt` (0644) and `stem.key` (0600); returns the certificate's path.
fn write_pair(dir: &Path, stem: &str, issued: &Issued) -> Result<PathBuf, CertError> {
    let cert = dir.join(format!("{stem}.crt"));
    write_file(&dir.join(format!("{stem}.key")), &issued.key_pem, 0o600)?;
    write_file(&cert, &issued.cert_pem, 0o644)?;
    Ok(cert)
}

fn init(a: &InitArgs) -> Result<Vec<PathBuf>, String> {
    let clients = a
        .clients
        .iter()
        .map(|c| client_spec(c))
        .collect::<Result<Vec<_>, _>>()?;
    if a.dir.join("ca.key").exists() {
        return Err(format!(
            "{} already holds a CA (ca.key); use `mhactl certs issue` to add certificates",
            a.dir.display()
        ));
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&a.dir)
        .map_err(|e| format!("{}: {e}", a.dir.display()))?;
    let ca = Authority::create(&a.cluster).map_err(|e| e.to_string())?;
    write_file(&a.dir.join("ca.key"), ca.key_pem(), 0o600).map_err(|e| e.to_string())?;
    write_file(&a.dir.join("ca.crt"), ca.cert_pem(), 0o644).map_err(|e| e.to_string())?;
    let mut written = vec![a.dir.join("ca.crt")];
    for id in &a.nodes {
        let issued = ca.issue_node(*id, &a.hosts).map_err(|e| e.to_string())?;
        written
            .push(write_pair(&a.dir, &format!("node-{id}"), &issued).map_err(|e| e.to_string())?);
    }
    for (name, role) in clients {
        let issued = ca.issue_client(&name, role).map_err(|e| e.to_string())?;
        written.push(
            write_pair(&a.dir, &format!("client-{name}"), &issued).map_err(|e| e.to_string())?,
        );
    }
    Ok(written)
}

fn issue(a: &IssueArgs) -> Result<Vec<PathBuf>, String> {
    let read = |f: &str| {
        std::fs::read_to_string(a.dir.join(f))
            .map_err(|e| format!("{}: {e}", a.dir.join(f).display()))
    };
    let ca = Authority::load(&read("ca.crt")?, &read("ca.key")?).map_err(|e| e.to_string())?;
    let (stem, issued) = match (&a.node, &a.client, a.role) {
        (Some(id), _, _) => (format!("node-{id}"), ca.issue_node(*id, &a.hosts)),
        (None, Some(name), Some(role)) => (format!("client-{name}"), ca.issue_client(name, role)),
        _ => return Err("give --node ID, or --client NAME --role ROLE".into()),
    };
    let issued = issued.map_err(|e| e.to_string())?;
    Ok(vec![
        write_pair(&a.dir, &stem, &issued).map_err(|e| e.to_string())?
    ])
}

pub fn execute(cmd: &CertsCmd) -> i32 {
    let (result, json) = match cmd {
        CertsCmd::Init(a) => (init(a), a.json),
        CertsCmd::Issue(a) => (issue(a), a.json),
    };
    match result {
        Ok(paths) if json => {
            let files: Vec<serde_json::Value> = paths
                .iter()
                .map(|p| {
                    let key = p.with_extension("key");
                    serde_json::json!({
                        "cert": p.display().to_string(),
                        "key": key.exists().then(|| key.display().to_string()),
                    })
                })
                .collect();
            out(&format!(
                "{:#}\n",
                serde_json::json!({ "schema": 1, "written": files })
            ));
            exit::OK
        }
        Ok(paths) => {
            for p in paths {
                let key = p.with_extension("key");
                if key.exists() {
                    out(&format!("wrote {}  (key {})\n", p.display(), key.display()));
                } else {
                    out(&format!("wrote {}\n", p.display()));
                }
            }
            exit::OK
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_specs() {
        assert_eq!(client_spec("admin").unwrap(), ("admin".into(), Role::Admin));
        assert_eq!(
            client_spec("alice=operator").unwrap(),
            ("alice".into(), Role::Operator)
        );
        assert!(client_spec("alice").is_err());
        assert!(client_spec("bob=root").is_err());
    }

    #[test]
    fn init_writes_private_keys_and_refuses_a_second_ca() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        let args = InitArgs {
            dir: dir.clone(),
            cluster: "lab".into(),
            nodes: vec![1, 2],
            hosts: vec!["10.0.0.1".into()],
            clients: vec!["admin".into(), "mon=reader".into()],
            json: false,
        };
        let written = init(&args).unwrap();
        assert_eq!(written.len(), 5, "{written:?}");
        let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ca.key"), 0o600);
        assert_eq!(mode("node-2.key"), 0o600);
        assert_eq!(mode("client-mon.key"), 0o600);
        assert_eq!(mode("."), 0o700);
        assert!(init(&args).unwrap_err().contains("already holds a CA"));
        let again = IssueArgs {
            dir: dir.clone(),
            node: Some(3),
            hosts: vec![],
            client: None,
            role: None,
            json: false,
        };
        assert_eq!(issue(&again).unwrap(), vec![dir.join("node-3.crt")]);
    }
}
