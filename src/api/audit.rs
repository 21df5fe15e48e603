//! The audit trail on the wire.

use super::pb;
use crate::state::audit::{AuditEntry, AuditRecord};

impl From<&AuditRecord> for pb::AuditRecord {
    fn from(r: &AuditRecord) -> Self {
        let e = &r.entry;
        pb::AuditRecord {
            seq: r.seq,
            at_ms: r.at_ms,
            manager: e.manager,
            who: e.who.clone(),
            from: e.from.clone(),
            rpc: e.rpc.clone(),
            what: e.what.clone(),
            result: e.result.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// Every field is plain data: nothing to refuse.
impl From<pb::AuditRecord> for AuditRecord {
    fn from(r: pb::AuditRecord) -> Self {
        AuditRecord {
            seq: r.seq,
            at_ms: r.at_ms,
            entry: AuditEntry {
                manager: r.manager,
                who: r.who,
                from: r.from,
                rpc: r.rpc,
                what: r.what,
                result: r.result,
                detail: r.detail,
            },
        }
    }
}
