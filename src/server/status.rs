//! The one place where node errors become `tonic::Status`. "Not leader" carries the leader's id
//! and address in metadata so mhactl can follow it.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::api::{LEADER_ADDR_KEY, LEADER_ID_KEY, NEEDS_CONFIRMATION_KEY};
use crate::raft::NodeError;
use crate::state::Rejection;

/// One gRPC code per rule of the replicated state.
fn rejection_code(r: &Rejection) -> Code {
    match r {
        Rejection::NoSuchGroup { .. } | Rejection::NoSuchRun { .. } => Code::NotFound,
        Rejection::GroupExists { .. }
        | Rejection::ClusterNamed { .. }
        | Rejection::ServerInOtherGroup { .. } => Code::AlreadyExists,
        Rejection::GroupBusy { .. }
        | Rejection::RunActive { .. }
        | Rejection::FailoverRefused { .. }
        | Rejection::RunUnfinished { .. }
        | Rejection::Journal(_)
        | Rejection::VerdictExists { .. }
        | Rejection::RejoinStale { .. } => Code::FailedPrecondition,
    }
}

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        let code = match &e {
            NodeError::NotLeader { leader: Some(_) } => Code::FailedPrecondition,
            NodeError::NotLeader { leader: None } => Code::Unavailable,
            NodeError::LeadershipLost { .. } => Code::Unavailable,
            NodeError::Timeout(_) => Code::DeadlineExceeded,
            NodeError::Membership(_) => Code::FailedPrecondition,
            NodeError::InvalidArgument(_) => Code::InvalidArgument,
            NodeError::JoinRefused(_) | NodeError::NeedsConfirmation(_) | NodeError::Refused(_) => {
                Code::FailedPrecondition
            }
            NodeError::Rejected(r) => rejection_code(r),
            NodeError::AlreadyInitialized => Code::AlreadyExists,
            NodeError::Fatal(_) => Code::Internal,
        };
        let mut status = Status::new(code, e.to_string());
        if let NodeError::NeedsConfirmation(_) = &e {
            status
                .metadata_mut()
                .insert(NEEDS_CONFIRMATION_KEY, MetadataValue::from_static("1"));
        }
        if let NodeError::NotLeader {
            leader: Some((id, addr)),
        } = &e
        {
            let md = status.metadata_mut();
            if let Ok(v) = MetadataValue::try_from(id.to_string()) {
                md.insert(LEADER_ID_KEY, v);
            }
            if let Ok(v) = MetadataValue::try_from(addr.as_str()) {
                md.insert(LEADER_ADDR_KEY, v);
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::leader_redirect;

    /// A not-leader error turns into a redirect that mhactl can follow; others do not.
    #[test]
    fn not_leader_round_trips_as_redirect() {
        let s: Status = NodeError::NotLeader {
            leader: Some((2, "10.0.0.2:7101".into())),
        }
        .into();
        assert_eq!(leader_redirect(&s).as_deref(), Some("10.0.0.2:7101"));
        let s: Status = NodeError::NotLeader { leader: None }.into();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(leader_redirect(&s), None);
        let s: Status = NodeError::InvalidArgument("x".into()).into();
        assert_eq!(s.code(), Code::InvalidArgument);
    }

    /// Each rule of the replicated state answers with its own code, and its text.
    #[test]
    fn rejections_map_to_one_code_each() {
        let cases = [
            (
                Rejection::NoSuchGroup { group: "g".into() },
                Code::NotFound,
                "group g does not exist",
            ),
            (
                Rejection::GroupExists { group: "g".into() },
                Code::AlreadyExists,
                "group g already exists (use update)",
            ),
            (
                Rejection::RunActive {
                    group: "g".into(),
                    run: 3,
                },
                Code::FailedPrecondition,
                "failover run 3 of group g is still active",
            ),
        ];
        for (r, code, text) in cases {
            let s: Status = NodeError::Rejected(r).into();
            assert_eq!(s.code(), code);
            assert_eq!(s.message(), text);
            // A refusal is not a redirect: mhactl must not go looking for another leader.
            assert_eq!(leader_redirect(&s), None);
        }
    }
}
