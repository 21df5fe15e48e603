//! How a node serves and is reached: TLS or `--insecure`, and the optional separate admin
//! listener. Validated like the rest of the config: every error names its key.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{check_host_port, ConfigError};
use crate::security::TlsFiles;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsConfig {
    /// The cluster CA certificate (PEM).
    pub ca: Option<PathBuf>,
    /// This manager's certificate (PEM), issued by the CA to node-<id>.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    pub key: Option<PathBuf>,
}

pub(super) fn merge_tls(
    base: Option<RawTlsConfig>,
    over: Option<RawTlsConfig>,
) -> Option<RawTlsConfig> {
    if base.is_none() && over.is_none() {
        return None;
    }
    let (b, o) = (base.unwrap_or_default(), over.unwrap_or_default());
    Some(RawTlsConfig {
        ca: o.ca.or(b.ca),
        cert: o.cert.or(b.cert),
        key: o.key.or(b.key),
    })
}

/// A separate listener for the admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminListen {
    pub listen: SocketAddr,
    pub advertise: String,
}

pub(super) fn admin_listen(
    listen: Option<String>,
    advertise: Option<String>,
    peer: SocketAddr,
) -> Result<Option<AdminListen>, ConfigError> {
    let Some(l) = listen else {
        if advertise.is_some() {
            return Err(ConfigError::invalid(
                "admin_advertise",
                "set without admin_listen",
            ));
        }
        return Ok(None);
    };
    let listen: SocketAddr = l.parse().map_err(|_| {
        ConfigError::invalid(
            "admin_listen",
            format!("not an ip:port socket address: {l:?}"),
        )
    })?;
    if listen.port() == peer.port()
        && (listen.ip() == peer.ip() || listen.ip().is_unspecified() || peer.ip().is_unspecified())
    {
        return Err(ConfigError::invalid(
            "admin_listen",
            format!("{listen} overlaps listen ({peer}); give the admin API its own port"),
        ));
    }
    let advertise = match advertise {
        Some(a) => {
            check_host_port(&a).map_err(|m| ConfigError::invalid("admin_advertise", m))?;
            a
        }
        None if listen.ip().is_unspecified() => {
            return Err(ConfigError::invalid(
                "admin_advertise",
                format!("required when admin_listen is a wildcard address ({listen})"),
            ))
        }
        None => listen.to_string(),
    };
    Ok(Some(AdminListen { listen, advertise }))
}

/// How this node serves and calls its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportConfig {
    Tls(TlsFiles),
    /// `insecure = true`: plaintext, every caller anonymous and allowed.
    Insecure,
}

pub(super) fn transport(
    tls: Option<RawTlsConfig>,
    insecure: bool,
) -> Result<TransportConfig, ConfigError> {
    let tls = tls.filter(|t| t.ca.is_some() || t.cert.is_some() || t.key.is_some());
    match (tls, insecure) {
        (Some(_), true) => Err(ConfigError::invalid(
            "insecure",
            "set together with [tls]: choose TLS (remove insecure) or plaintext (remove [tls])",
        )),
        (None, true) => Ok(TransportConfig::Insecure),
        (None, false) => Err(ConfigError::invalid(
            "tls",
            "required: [tls] ca, cert and key (made by `mhactl certs init`), or --insecure to \
             serve plaintext without authentication",
        )),
        (Some(t), false) => {
            let need = |v: Option<PathBuf>, key: &'static str| {
                v.ok_or_else(|| ConfigError::invalid(key, "required when [tls] is set"))
            };
            Ok(TransportConfig::Tls(TlsFiles {
                ca: need(t.ca, "tls.ca")?,
                cert: need(t.cert, "tls.cert")?,
                key: need(t.key, "tls.key")?,
            }))
        }
    }
}
