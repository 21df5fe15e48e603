//! Who may call what: one table, every gRPC method of every service, checked before any
//! handler runs. A method missing from the table is refused (a test keeps the table in step with
//! proto/).

use tonic::Status;

use super::identity::{Principal, Role};

/// What a method requires of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Manager nodes only (Raft, probes, registration). The handler also checks that the id
    /// the message claims is the certificate's.
    Peer,
    /// An operator certificate of at least this role.
    Role(Role),
    /// At least this role, or a manager node (calls managers make to each other as part of
    /// answering an operator: the status fan-out, `check ssh` from every zone).
    RoleOrPeer(Role),
}

/// gRPC path → required access. Admin reads are `reader`; anything that acts on the database
/// servers or runs a hook is `operator`; what changes the cluster or its groups is `admin`.
pub const RPC_ACCESS: &[(&str, Access)] = &[
    ("/mha.raft.v1.RaftService/AppendEntries", Access::Peer),
    ("/mha.raft.v1.RaftService/Vote", Access::Peer),
    ("/mha.raft.v1.RaftService/InstallSnapshot", Access::Peer),
    ("/mha.probe.v1.ProbeService/ProbeMaster", Access::Peer),
    ("/mha.probe.v1.ProbeService/Reach", Access::Peer),
    ("/mha.probe.v1.ProbeService/RunStep", Access::Peer),
    ("/mha.probe.v1.ProbeService/DelegateGuard", Access::Peer),
    ("/mha.probe.v1.ProbeService/DelegateCommit", Access::Peer),
    ("/mha.admin.v1.AdminService/RegisterManager", Access::Peer),
    (
        "/mha.admin.v1.AdminService/NodeStatus",
        Access::RoleOrPeer(Role::Reader),
    ),
    (
        "/mha.admin.v1.AdminService/ClusterStatus",
        Access::Role(Role::Reader),
    ),
    (
        "/mha.admin.v1.AdminService/ListGroups",
        Access::Role(Role::Reader),
    ),
    (
        "/mha.admin.v1.AdminService/FailoverHistory",
        Access::Role(Role::Reader),
    ),
    (
        "/mha.admin.v1.AdminService/CheckRepl",
        Access::Role(Role::Operator),
    ),
    (
        "/mha.admin.v1.AdminService/CheckSsh",
        Access::Role(Role::Operator),
    ),
    (
        "/mha.admin.v1.AdminService/CheckSshLocal",
        Access::RoleOrPeer(Role::Operator),
    ),
    (
        "/mha.admin.v1.AdminService/FailoverDryRun",
        Access::Role(Role::Operator),
    ),
    (
        "/mha.admin.v1.AdminService/StartFailover",
        Access::Role(Role::Operator),
    ),
    (
        "/mha.admin.v1.AdminService/AckFailover",
        Access::Role(Role::Operator),
    ),
    // Maintenance mode changes what the managers do on their own: an operator's call, as a
    // manual failover is.
    (
        "/mha.admin.v1.AdminService/PauseGroups",
        Access::Role(Role::Operator),
    ),
    (
        "/mha.admin.v1.AdminService/ResumeGroups",
        Access::Role(Role::Operator),
    ),
    // Acts on a database server (read_only, CHANGE MASTER), as a failover does.
    (
        "/mha.admin.v1.AdminService/RejoinServer",
        Access::Role(Role::Operator),
    ),
    // A planned switch acts on every server of the group, as a manual failover does.
    (
        "/mha.admin.v1.AdminService/StartSwitchover",
        Access::Role(Role::Operator),
    ),
    // Who did what: names, addresses and error texts are for operators, not every reader.
    (
        "/mha.admin.v1.AdminService/Audit",
        Access::Role(Role::Operator),
    ),
    (
        "/mha.admin.v1.AdminService/InitCluster",
        Access::Role(Role::Admin),
    ),
    (
        "/mha.admin.v1.AdminService/AddMember",
        Access::Role(Role::Admin),
    ),
    (
        "/mha.admin.v1.AdminService/RemoveMember",
        Access::Role(Role::Admin),
    ),
    (
        "/mha.admin.v1.AdminService/AddGroup",
        Access::Role(Role::Admin),
    ),
    (
        "/mha.admin.v1.AdminService/UpdateGroup",
        Access::Role(Role::Admin),
    ),
    (
        "/mha.admin.v1.AdminService/RemoveGroup",
        Access::Role(Role::Admin),
    ),
];

pub fn access_for(path: &str) -> Option<Access> {
    RPC_ACCESS.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

/// The method's short name for messages ("AddMember").
fn method(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether `principal` may call `path`; the refusal says who was refused what and what it needs.
pub fn authorize(path: &str, principal: &Principal) -> Result<(), Status> {
    let Some(access) = access_for(path) else {
        return Err(Status::permission_denied(format!(
            "{path} is not an mha-raft method"
        )));
    };
    let allowed = match (access, principal) {
        (_, Principal::Anonymous) => true,
        (Access::Peer | Access::RoleOrPeer(_), Principal::Node(_)) => true,
        (Access::Role(need) | Access::RoleOrPeer(need), Principal::Client { role, .. }) => {
            *role >= need
        }
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let needs = match access {
        Access::Peer => "a manager node certificate".to_string(),
        Access::Role(r) => format!("role {r} or higher"),
        Access::RoleOrPeer(r) => format!("role {r} or higher"),
    };
    Err(Status::permission_denied(format!(
        "{principal} may not call {}: it needs {needs}",
        method(path)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `rpc` of every proto file, as its gRPC path.
    fn proto_methods() -> Vec<String> {
        let files = [
            include_str!("../../proto/admin.proto"),
            include_str!("../../proto/raft.proto"),
            include_str!("../../proto/probe.proto"),
        ];
        let mut out = Vec::new();
        for text in files {
            let package = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("package "))
                .map(|p| p.trim_end_matches(';').to_string())
                .expect("package line");
            let mut service = String::new();
            for line in text.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("service ") {
                    service = rest.split_whitespace().next().unwrap().to_string();
                }
                if let Some(rest) = line.strip_prefix("rpc ") {
                    let name = rest.split('(').next().unwrap().trim();
                    out.push(format!("/{package}.{service}/{name}"));
                }
            }
        }
        out
    }

    #[test]
    fn the_table_covers_every_method_of_every_service_and_nothing_else() {
        let methods = proto_methods();
        assert!(methods.len() >= 20, "{methods:?}");
        for m in &methods {
            assert!(access_for(m).is_some(), "{m} has no entry in RPC_ACCESS");
        }
        for (p, _) in RPC_ACCESS {
            assert!(methods.contains(&p.to_string()), "{p} is not in proto/");
        }
    }

    #[test]
    fn roles_nodes_and_unknown_methods() {
        let client = |role| Principal::Client {
            name: "x".into(),
            role,
        };
        let add = "/mha.admin.v1.AdminService/AddMember";
        let fail = "/mha.admin.v1.AdminService/StartFailover";
        let status = "/mha.admin.v1.AdminService/ClusterStatus";
        let vote = "/mha.raft.v1.RaftService/Vote";
        assert!(authorize(status, &client(Role::Reader)).is_ok());
        assert!(authorize(fail, &client(Role::Reader)).is_err());
        assert!(authorize(fail, &client(Role::Operator)).is_ok());
        assert!(authorize(add, &client(Role::Operator)).is_err());
        assert!(authorize(add, &client(Role::Admin)).is_ok());
        // An admin is an operator, not a manager: Raft is for nodes only.
        let e = authorize(vote, &client(Role::Admin)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("manager node certificate"), "{e}");
        assert!(authorize(vote, &Principal::Node(2)).is_ok());
        // Nodes have no operator rights of their own.
        assert!(authorize(add, &Principal::Node(2)).is_err());
        assert!(authorize("/x.Y/Z", &Principal::Anonymous).is_err());
        let e = authorize(add, &client(Role::Reader)).unwrap_err();
        assert_eq!(
            e.message(),
            "x (reader) may not call AddMember: it needs role admin or higher"
        );
    }
}
