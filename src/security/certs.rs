//! A cluster's own certificate authority and the certificates it issues (`mhactl certs`).
//!
//! Subjects follow [`super::identity`]: nodes get OU `node`, CN and DNS name `node-<id>`, and the
//! DNS name `mhad` (what mhactl verifies); clients get OU = role and CN = name. Keys are ECDSA
//! P-256, generated here and written 0600.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::identity::{node_name, Role, ANY_NODE_NAME, NODE_UNIT};

/// How long certificates are valid. Rotation (docs/operations.md) re-issues leaves from the same
/// CA; the CA itself lasts longer.
const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 825;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster CA: issues node and client certificates.
pub struct Authority {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    // A day of slack for clocks that are slightly behind the issuer's.
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
}

/// A plain name: letters, digits, '-', '_', '.'; what a CN of ours may hold.
pub fn check_name(what: &str, name: &str) -> Result<(), CertError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(CertError::Invalid(format!(
            "{what} {name:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

impl Authority {
    /// A new CA for the cluster `cluster`.
    pub fn create(cluster: &str) -> Result<Self, CertError> {
        check_name("cluster name", cluster)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("mha-raft CA {cluster}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "mha-raft");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// An existing CA, to issue more certificates (a new node, a rotation).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Authority {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    fn issue(
        &self,
        common_name: &str,
        unit: &str,
        sans: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<Issued, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "mha-raft");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, unit);
        params.subject_alt_names = sans;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, LEAF_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A manager node's certificate: server and client (it calls its peers), bound to `id`.
    /// `hosts` (IPs or DNS names) are added as subject alternative names for tools that verify
    /// a node by its address.
    pub fn issue_node(&self, id: u64, hosts: &[String]) -> Result<Issued, CertError> {
        if id == 0 {
            return Err(CertError::Invalid("node id must be positive".into()));
        }
        let mut sans = vec![
            SanType::DnsName(node_name(id).try_into()?),
            SanType::DnsName(ANY_NODE_NAME.try_into()?),
        ];
        for h in hosts {
            sans.push(match h.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(h.clone().try_into()?),
            });
        }
        self.issue(
            &node_name(id),
            NODE_UNIT,
            sans,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// An operator's or tool's certificate with `role`.
    pub fn issue_client(&self, name: &str, role: Role) -> Result<Issued, CertError> {
        check_name("client name", name)?;
        self.issue(
            name,
            role.as_str(),
            Vec::new(),
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
    }
}

/// Writes `contents` to `path` atomically (temporary file + rename) with `mode`, so that a
/// reader never sees a half-written key and a rotation replaces the file in one step.
pub fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), CertError> {
    let err = |e: std::io::Error| CertError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::identity::{principal_of, Principal};

    fn der(pem: &str) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents
    }

    #[test]
    fn issued_certificates_name_their_principal() {
        let ca = Authority::create("lab").unwrap();
        let node = ca.issue_node(3, &["10.0.0.3".into(), "m3".into()]).unwrap();
        assert_eq!(
            principal_of(&der(&node.cert_pem)).unwrap(),
            Principal::Node(3)
        );
        let ops = ca.issue_client("alice", Role::Operator).unwrap();
        assert_eq!(
            principal_of(&der(&ops.cert_pem)).unwrap(),
            Principal::Client {
                name: "alice".into(),
                role: Role::Operator
            }
        );
        // A reloaded CA issues certificates of the same authority.
        let again = Authority::load(ca.cert_pem(), ca.key_pem()).unwrap();
        let n4 = again.issue_node(4, &[]).unwrap();
        let (n4_der, ca_der) = (der(&n4.cert_pem), der(ca.cert_pem()));
        let (_, c4) = x509_parser::parse_x509_certificate(&n4_der).unwrap();
        let (_, cac) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(c4.issuer(), cac.subject());
        assert!(c4.verify_signature(Some(cac.public_key())).is_ok());
        assert!(ca.issue_client("a b", Role::Reader).is_err());
        assert!(ca.issue_client("../x", Role::Reader).is_err());
    }
}
