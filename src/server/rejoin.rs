//! The rejoin handler: run in a task of its own, audited however it ends.

use std::sync::Arc;

use tonic::Status;

use super::audit::{self, Call, Outcome};
use crate::api::pb::{RejoinReply, RejoinRequest};
use crate::runtime::Runtime;

/// The audit trail's "what" of a rejoin call.
pub fn what(r: &RejoinRequest) -> String {
    format!(
        "group {}, server {}{}",
        r.group,
        r.server,
        if r.check_only { " (check only)" } else { "" }
    )
}

/// Runs the rejoin in its own task: a client that gives up (or is cut off) does not stop it
/// half way, and the audit trail still records how it ended.
pub async fn serve(
    node: Arc<Runtime>,
    call: Call,
    r: RejoinRequest,
) -> Result<RejoinReply, Status> {
    let task = tokio::spawn(async move {
        let res = crate::runtime::rejoin::rejoin(
            &node,
            &r.group,
            &r.server,
            crate::runtime::rejoin::Options {
                check_only: r.check_only,
                automatic: false,
            },
        )
        .await
        .map(|report| RejoinReply {
            lines: report.lines,
            rejoined: report.rejoined,
        })
        .map_err(Status::from);
        let outcome = Outcome::of(&res, |r| {
            if r.rejoined {
                "rejoined".into()
            } else {
                "checked".into()
            }
        });
        audit::record(&node, call, outcome).await;
        res
    });
    task.await
        .map_err(|e| Status::internal(format!("rejoin: {e}")))?
}
