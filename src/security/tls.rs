//! Transport security of a node or of mhactl: TLS with the cluster CA and a certificate of our
//! own (mutual: both sides verify the other against the CA), or plaintext when the operator
//! asked for it with `--insecure`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use super::identity::{principal_of, Principal};

/// Where the PEM files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster CA certificate: the only issuer trusted, for peers and for clients.
    pub ca: PathBuf,
    /// This process's certificate, signed by the cluster CA.
    pub cert: PathBuf,
    /// Its private key (must not be readable by group or others).
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {path}: {message}")]
    File {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Identity(String),
}

/// The loaded PEM material. The key stays in memory only; Debug never shows it.
pub struct TlsMaterial {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    principal: Principal,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        what,
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A private key file readable by group or others is refused, as ssh refuses such keys.
fn check_private(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| TlsError::File {
            what: "tls key",
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(TlsError::File {
            what: "tls key",
            path: path.to_path_buf(),
            message: format!(
                "mode {:o} lets group or others read it; chmod 600 it",
                mode & 0o777
            ),
        });
    }
    Ok(())
}

/// The DER of the first certificate of a PEM file.
fn first_der(pem_bytes: &[u8], path: &Path) -> Result<Vec<u8>, TlsError> {
    let bad = |message: String| TlsError::File {
        what: "tls cert",
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(pem_bytes).map_err(|_| bad("not PEM text".into()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes())
        .map_err(|e| bad(format!("no PEM certificate: {e}")))?;
    Ok(pem.contents)
}

impl TlsMaterial {
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let ca_pem = read("tls ca", &files.ca)?;
        let cert_pem = read("tls cert", &files.cert)?;
        check_private(&files.key)?;
        let key_pem = read("tls key", &files.key)?;
        let der = first_der(&cert_pem, &files.cert)?;
        let principal = principal_of(&der).map_err(|message| TlsError::File {
            what: "tls cert",
            path: files.cert.clone(),
            message,
        })?;
        Ok(TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem,
            principal,
        })
    }

    /// Who our own certificate says we are.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// Server side: our certificate, and client certificates verified against the CA. A client
    /// without one still completes the handshake, so that it gets a gRPC UNAUTHENTICATED with
    /// an explanation instead of a bare TLS alert; the authorization layer refuses it.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(true)
            // A connection that never finishes its handshake is dropped, not kept forever.
            .timeout(std::time::Duration::from_secs(10))
    }

    /// Client side: the server must present a certificate from the CA valid for `server_name`,
    /// and we present ours.
    pub fn client_config(&self, server_name: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(self.identity())
            .domain_name(server_name)
    }
}

/// How a process talks to managers and how a manager serves.
#[derive(Clone, Debug)]
pub enum Transport {
    Tls(Arc<TlsMaterial>),
    /// Plaintext, unauthenticated: only with an explicit `--insecure`.
    Insecure,
}

impl Transport {
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// An endpoint for `addr` (host:port) whose server must prove to be `server_name`.
    pub fn endpoint(
        &self,
        addr: &str,
        server_name: &str,
    ) -> Result<Endpoint, tonic::transport::Error> {
        let host_port = addr
            .strip_prefix("https://")
            .or_else(|| addr.strip_prefix("http://"))
            .unwrap_or(addr);
        match self {
            Transport::Insecure => Endpoint::from_shared(format!("http://{host_port}")),
            Transport::Tls(m) => Endpoint::from_shared(format!("https://{host_port}"))?
                .tls_config(m.client_config(server_name)),
        }
    }
}
