//! One server, one group: a database server (its host and port) is managed by at most one
//! replication group. Two groups naming the same server would each monitor it and each start a
//! failover when it dies, promoting servers independently (issue #14: both runs began within
//! 50 ms). The rule is checked in `apply` (so two concurrent `group add`s cannot both win) and
//! by the leader before it contacts any server (so the operator gets the answer at once).
//!
//! Servers compare by normalized address: the host lower-cased, without a trailing dot or IPv6
//! brackets, IP literals in canonical form, and the port. A host name and an IP address of the
//! same machine are not recognised as the same server (that would need DNS, which `apply`
//! cannot do).

use std::net::IpAddr;

use super::group::{GroupSpec, ServerSpec};
use super::{ClusterState, Rejection};

/// A manager whose build applies [`super::Cmd::PutGroup`]'s `exclusive` rule registers this
/// feature; the leader sets the flag only once every member has (an older build would ignore
/// it and could accept a command this one refuses: the states would part).
pub const FEATURE_EXCLUSIVE_SERVERS: &str = "exclusive-servers";

/// The comparable form of a server's address.
pub fn address_key(host: &str, port: u16) -> (String, u16) {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    let h = h.trim_end_matches('.');
    let host = match h.parse::<IpAddr>() {
        // An IPv4-mapped IPv6 address is the IPv4 server.
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Ok(ip) => ip.to_string(),
        Err(_) => h.to_ascii_lowercase(),
    };
    (host, port)
}

fn key_of(s: &ServerSpec) -> (String, u16) {
    address_key(&s.host, s.port)
}

impl ClusterState {
    /// The first server of `spec` that another group already manages, as the refusal to give.
    /// The group `spec` names itself is not "another group" (an update keeps its servers).
    pub fn server_conflict(&self, spec: &GroupSpec) -> Option<Rejection> {
        for s in &spec.servers {
            let key = key_of(s);
            for (gname, g) in self.groups.iter().filter(|(n, _)| **n != spec.name) {
                if let Some(other) = g.spec.servers.iter().find(|o| key_of(o) == key) {
                    return Some(Rejection::ServerInOtherGroup {
                        server: s.endpoint(),
                        name: other.name.clone(),
                        group: gname.clone(),
                    });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::group::{tests::spec, ReplicationMode, Topology};
    use crate::state::{Cmd, CmdResult};

    fn put(name: &str, hosts: &[(&str, u16)], replace: bool, exclusive: bool) -> Cmd {
        let mut s = spec(name);
        s.servers = hosts
            .iter()
            .enumerate()
            .map(|(i, (h, p))| ServerSpec {
                name: format!("db{}", i + 1),
                host: h.to_string(),
                port: *p,
                ..s.servers[0].clone()
            })
            .collect();
        Cmd::PutGroup {
            spec: Box::new(s),
            topology: Box::new(Topology {
                master: "db1".into(),
                servers: Default::default(),
                mode: ReplicationMode::MariadbGtid,
                semisync: false,
                warnings: vec![],
                discovered_at_ms: 0,
            }),
            replace,
            exclusive,
        }
    }

    #[test]
    fn addresses_normalize() {
        let k = |h: &str, p| address_key(h, p);
        assert_eq!(k("DB2.Example.COM.", 3306), k("db2.example.com", 3306));
        assert_eq!(k("[::1]", 3306), k("0:0:0:0:0:0:0:1", 3306));
        assert_eq!(k("::ffff:10.0.0.2", 3306), k("10.0.0.2", 3306));
        assert_eq!(k(" 10.0.0.2 ", 3306), k("10.0.0.2", 3306));
        assert_ne!(k("10.0.0.2", 3306), k("10.0.0.2", 3307));
        assert_ne!(k("10.0.0.2", 3306), k("10.0.0.20", 3306));
    }

    /// A second group naming a server of the first is refused, naming the group and the
    /// server; whichever of two concurrent adds is applied second loses.
    #[test]
    fn a_server_of_another_group_is_refused() {
        let mut s = ClusterState::default();
        let a = put("gA", &[("10.0.0.1", 3306), ("10.0.0.2", 3306)], false, true);
        assert_eq!(s.apply(&a, 1), CmdResult::Ok);
        let b = put("gB", &[("10.0.0.9", 3306), ("10.0.0.2", 3306)], false, true);
        let before = s.groups.clone();
        let CmdResult::Rejected(r) = s.apply(&b, 2) else {
            panic!("overlap accepted");
        };
        assert_eq!(
            r.to_string(),
            "server 10.0.0.2:3306 (db2) already belongs to group gA"
        );
        assert_eq!(s.groups, before);
        // The same host on another port is another server.
        let c = put("gB", &[("10.0.0.9", 3306), ("10.0.0.2", 3307)], false, true);
        assert_eq!(s.apply(&c, 3), CmdResult::Ok);
    }

    /// An update may keep its own servers, but not take one of another group; the spelling of
    /// the address does not matter.
    #[test]
    fn updates_keep_their_own_servers_only() {
        let mut s = ClusterState::default();
        s.apply(
            &put("gA", &[("10.0.0.1", 3306), ("10.0.0.2", 3306)], false, true),
            1,
        );
        s.apply(&put("gB", &[("db8", 3306), ("db9", 3306)], false, true), 2);
        let same = put("gA", &[("10.0.0.1", 3306), ("10.0.0.2", 3306)], true, true);
        assert_eq!(s.apply(&same, 3), CmdResult::Ok);
        let grab = put(
            "gB",
            &[("DB8.", 3306), ("::ffff:10.0.0.1", 3306)],
            true,
            true,
        );
        assert!(matches!(
            s.apply(&grab, 4),
            CmdResult::Rejected(Rejection::ServerInOtherGroup { .. })
        ));
        assert_eq!(s.groups["gB"].spec.servers[0].host, "db8");
    }

    /// Entries written before the rule (or by a leader whose cluster has an older build) carry
    /// no `exclusive` flag and apply as they always did: a replayed log gives the same state.
    #[test]
    fn entries_without_the_flag_apply_as_before() {
        let mut s = ClusterState::default();
        s.apply(
            &put(
                "gA",
                &[("10.0.0.1", 3306), ("10.0.0.2", 3306)],
                false,
                false,
            ),
            1,
        );
        let b = put(
            "gB",
            &[("10.0.0.2", 3306), ("10.0.0.3", 3306)],
            false,
            false,
        );
        assert_eq!(s.apply(&b, 2), CmdResult::Ok);
        let json = r#"{"type":"put_group","spec":SPEC,"topology":TOPO,"replace":false}"#
            .replace(
                "SPEC",
                &serde_json::to_string(&s.groups["gB"].spec).unwrap(),
            )
            .replace(
                "TOPO",
                &serde_json::to_string(&s.groups["gB"].topology).unwrap(),
            );
        let old: Cmd = serde_json::from_str(&json).unwrap();
        assert!(matches!(
            old,
            Cmd::PutGroup {
                exclusive: false,
                ..
            }
        ));
        // And a flag-free entry serialises as an older build wrote it.
        assert!(!serde_json::to_string(&b).unwrap().contains("exclusive"));
    }
}
