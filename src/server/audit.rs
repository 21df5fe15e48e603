//! The admin API's audit trail: every admin write, once it is over, is logged at INFO (who,
//! from, rpc, what, result) and recorded in the replicated state by the leader that served it
//! (`Cmd::Audit`, the last 1000 kept).
//!
//! What is not recorded, and why (docs/operations.md, "Audit"):
//! - a call this node answered with "not leader": mhactl follows the redirect and the leader
//!   records the call it serves;
//! - a call refused by the authorization layer before any handler ran: logged at WARN there,
//!   never committed (a flood of refused calls must not cost a Raft commit each);
//! - an entry whose own proposal fails (the leader lost its leadership or its quorum right after
//!   the write): logged at WARN; the operator's call keeps its answer;
//! - an entry while a member has not declared that it knows `Cmd::Audit` (a manager of an older
//!   build during a rolling upgrade): an older build could not decode the entry and would stop
//!   replicating. The leader waits up to 10 s in the background (a member just added, or just
//!   started, registers itself within a second), then gives up with an INFO line.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Request, Status};

use crate::api::leader_redirect;
use crate::runtime::Runtime;
use crate::security::Caller;
use crate::state::audit::{AuditEntry, FEATURE_AUDIT};
use crate::state::Cmd;

/// How long a record waits in the background for the new cluster's leader (`cluster init`) and
/// for every member to declare that it knows audit entries.
const PATIENCE: Duration = Duration::from_secs(10);

/// One admin write being served: who asked what.
pub struct Call {
    caller: Caller,
    rpc: &'static str,
    what: String,
}

impl Call {
    pub fn new<T>(req: &Request<T>, rpc: &'static str, what: String) -> Call {
        Call {
            caller: Caller::of(req),
            rpc,
            what,
        }
    }
}

/// How a write ended, as the caller saw it.
pub enum Outcome {
    Ok(String),
    Failed(Status),
}

impl Outcome {
    pub fn of<T>(res: &Result<T, Status>, detail: impl FnOnce(&T) -> String) -> Outcome {
        match res {
            Ok(t) => Outcome::Ok(detail(t)),
            Err(s) => Outcome::Failed(s.clone()),
        }
    }

    /// "Not leader": the caller goes to the leader, which records what it serves.
    fn is_redirect(&self) -> bool {
        match self {
            Outcome::Ok(_) => false,
            Outcome::Failed(s) => {
                leader_redirect(s).is_some()
                    || (s.code() == Code::Unavailable && s.message().starts_with("not the leader"))
            }
        }
    }
}

fn entry(node: &Runtime, call: Call, outcome: Outcome) -> AuditEntry {
    let (result, detail) = match outcome {
        Outcome::Ok(d) => ("ok".to_string(), d),
        Outcome::Failed(s) => (code_name(s.code()).to_string(), s.message().to_string()),
    };
    AuditEntry {
        manager: node.id(),
        who: call.caller.principal.to_string(),
        from: call.caller.addr.map(|a| a.to_string()).unwrap_or_default(),
        rpc: call.rpc.to_string(),
        what: call.what,
        result,
        detail,
    }
    .bounded()
}

fn log(e: &AuditEntry) {
    tracing::info!(
        who = %e.who,
        from = %e.from,
        rpc = %e.rpc,
        what = %e.what,
        result = %e.result,
        detail = %e.detail,
        "admin write"
    );
}

/// Why this node cannot record an entry in the replicated state now.
enum Blocked {
    NotLeader,
    /// A member has not declared the `audit` feature (yet).
    Lacking(u64),
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::NotLeader => f.write_str("this manager is not the acting leader"),
            Blocked::Lacking(id) => write!(
                f,
                "manager {id} has not declared that it knows audit entries (an older build, \
                 or not registered yet)"
            ),
        }
    }
}

fn blocked(node: &Runtime) -> Option<Blocked> {
    if !node.raft.is_acting_leader() {
        return Some(Blocked::NotLeader);
    }
    let members: Vec<u64> = node
        .raft
        .metrics()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .collect();
    node.raft
        .read(|c| c.lacking_feature(members, FEATURE_AUDIT))
        .map(Blocked::Lacking)
}

async fn commit(node: &Runtime, e: AuditEntry) {
    let rpc = e.rpc.clone();
    if let Err(err) = node.raft.propose(Cmd::Audit { entry: Box::new(e) }).await {
        tracing::warn!(rpc = %rpc, error = %err, "audit entry not recorded in the replicated state");
    }
}

fn not_recorded(e: &AuditEntry, why: &Blocked) {
    tracing::info!(rpc = %e.rpc, "audit entry not recorded in the replicated state: {why}");
}

/// Logs the write at INFO and records it in the replicated state (see the module doc): at once,
/// before the caller gets its answer, when every member knows audit entries; otherwise in the
/// background once they do (a member just added registers itself within a second), for at
/// most [`PATIENCE`].
pub async fn record(node: &Arc<Runtime>, call: Call, outcome: Outcome) {
    if outcome.is_redirect() {
        tracing::debug!(
            rpc = call.rpc,
            "not the leader: the leader records the call"
        );
        return;
    }
    let e = entry(node, call, outcome);
    log(&e);
    match blocked(node) {
        None => commit(node, e).await,
        Some(why @ Blocked::NotLeader) => not_recorded(&e, &why),
        Some(Blocked::Lacking(_)) => {
            tokio::spawn(record_when_possible(node.clone(), e));
        }
    }
}

/// [`record`] for `cluster init`, in the background: the new cluster first elects its leader
/// and its members register. Recorded when this node becomes that leader (the call was made to
/// it); otherwise the entry is only in this manager's log.
pub fn record_init(node: Arc<Runtime>, call: Call, outcome: Outcome) {
    let e = entry(&node, call, outcome);
    log(&e);
    tokio::spawn(record_when_possible(node, e));
}

async fn record_when_possible(node: Arc<Runtime>, e: AuditEntry) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let Some(why) = blocked(&node) else {
            return commit(&node, e).await;
        };
        let led_by_other = node.raft.leader().is_some_and(|(id, _)| id != node.id());
        if led_by_other || tokio::time::Instant::now() >= deadline {
            return not_recorded(&e, &why);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The canonical name of a gRPC code, as in the gRPC documentation.
fn code_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_not_audited_refusals_are() {
        let s: Status = crate::raft::NodeError::NotLeader {
            leader: Some((2, "10.0.0.2:7101".into())),
        }
        .into();
        assert!(Outcome::Failed(s).is_redirect());
        let s: Status = crate::raft::NodeError::NotLeader { leader: None }.into();
        assert!(Outcome::Failed(s).is_redirect());
        let s: Status = crate::raft::NodeError::Rejected(crate::state::Rejection::NoSuchGroup {
            group: "g".into(),
        })
        .into();
        assert!(!Outcome::Failed(s).is_redirect());
        assert!(!Outcome::Failed(Status::permission_denied("x")).is_redirect());
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
    }
}
