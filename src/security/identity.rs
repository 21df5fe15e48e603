//! Who is calling: the principal a verified client certificate names.
//!
//! Certificates of a cluster (made by `mhactl certs`) say who they belong to in their subject:
//! a manager node has OU `node` and CN `node-<id>`; an operator or tool has OU = its role
//! (`reader`, `operator`, `admin`) and CN = its name. The chain has already been verified
//! against the cluster CA by TLS when a certificate reaches this module.

use std::fmt;

/// What an operator or tool may do on the admin API. Ordered: each role includes the ones
/// before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Status, history, group list, check status.
    Reader,
    /// Reader + failover, ack, checks that touch the servers.
    Operator,
    /// Operator + manager membership and replication groups.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reader, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The organizational unit of manager node certificates.
pub const NODE_UNIT: &str = "node";

/// The common name (and DNS name) a node certificate binds its id to.
pub fn node_name(id: u64) -> String {
    format!("node-{id}")
}

/// The DNS name every node certificate carries: what mhactl verifies when it does not know
/// which node answers at an address (any node of the cluster's CA will do).
pub const ANY_NODE_NAME: &str = "mhad";

/// The authenticated caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A manager node, by the id its certificate binds.
    Node(u64),
    /// An operator or tool.
    Client { name: String, role: Role },
    /// Nobody is authenticated: the server runs with `--insecure` and allows every call.
    Anonymous,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Node(id) => write!(f, "{}", node_name(*id)),
            Principal::Client { name, role } => write!(f, "{name} ({role})"),
            Principal::Anonymous => f.write_str("anonymous (insecure)"),
        }
    }
}

/// The principal a (verified) DER certificate names.
pub fn principal_of(der: &[u8]) -> Result<Principal, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let cn = first(&mut subject.iter_common_name())
        .ok_or_else(|| format!("certificate subject {subject} has no CN"))?;
    let unit = first(&mut subject.iter_organizational_unit()).ok_or_else(|| {
        format!(
            "certificate {cn:?} has no OU: expected \"node\" or a role (reader, operator, admin)"
        )
    })?;
    if unit == NODE_UNIT {
        return cn
            .strip_prefix("node-")
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| *id > 0)
            .map(Principal::Node)
            .ok_or_else(|| format!("node certificate with CN {cn:?}: expected node-<id>"));
    }
    let role = Role::parse(&unit).ok_or_else(|| {
        format!("certificate {cn:?} has OU {unit:?}: expected \"node\" or a role (reader, operator, admin)")
    })?;
    Ok(Principal::Client { name: cn, role })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Reader < Role::Operator && Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
