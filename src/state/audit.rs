//! The audit trail: who changed what through the admin API, from where, and how it ended. The
//! leader that served a write records it with [`super::Cmd::Audit`] once the write is over; the
//! state keeps the last [`AUDIT_HISTORY`] records, oldest first, each stamped with its log
//! entry's time and a sequence number that counts every record ever made.
//!
//! Every text field is bounded and free of control characters here, in `apply`, so a long or
//! hostile value (a certificate's CN, a group name nobody validated) can neither bloat the
//! snapshot nor forge a line of `mhactl audit`'s table or of a log.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How many records the replicated state keeps (the oldest go first).
pub const AUDIT_HISTORY: usize = 1000;

/// The most characters kept of `what` and `detail` (an ellipsis marks a cut).
pub const AUDIT_TEXT_MAX: usize = 300;

/// The most characters kept of `who`, `from` and `rpc`.
pub const AUDIT_NAME_MAX: usize = 128;

/// A manager that knows [`super::Cmd::Audit`] registers this feature; the leader records audit
/// entries only once every member has (an older build cannot decode the command: a mixed
/// cluster during a rolling upgrade would stop replicating to it).
pub const FEATURE_AUDIT: &str = "audit";

/// What this build's managers can apply beyond the commands every build knows.
pub const FEATURES: &[&str] = &[
    FEATURE_AUDIT,
    super::ownership::FEATURE_EXCLUSIVE_SERVERS,
    super::pause::FEATURE_PAUSE,
    super::group::FEATURE_IGNORE_FAIL,
    super::rejoin::FEATURE_REJOIN,
    super::switchover::FEATURE_SWITCHOVER,
    super::history::FEATURE_PRUNE_RUNS,
    super::batch::FEATURE_JOURNAL_BATCH,
    super::verdict_begins::FEATURE_VERDICT_BEGINS,
];

/// One admin write as the leader that served it saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditEntry {
    /// The manager that served the call (the leader).
    pub manager: u64,
    /// The caller: a client certificate's name and role ("alice (operator)"), a manager node
    /// ("node-2"), or "anonymous (insecure)".
    pub who: String,
    /// The caller's socket address ("" when unknown).
    pub from: String,
    /// The admin RPC ("AddGroup").
    pub rpc: String,
    /// Its main arguments ("group lab (db1,db2,db3)"); never a password or a secret.
    pub what: String,
    /// "ok", or the gRPC code the caller got ("NOT_FOUND").
    pub result: String,
    /// What changed ("run 3") or why it failed (the error's message).
    pub detail: String,
}

impl AuditEntry {
    pub fn ok(&self) -> bool {
        self.result == "ok"
    }

    /// The entry with every field bounded and cleaned (see the module doc).
    pub fn bounded(&self) -> AuditEntry {
        AuditEntry {
            manager: self.manager,
            who: clean(&self.who, AUDIT_NAME_MAX),
            from: clean(&self.from, AUDIT_NAME_MAX),
            rpc: clean(&self.rpc, AUDIT_NAME_MAX),
            what: clean(&self.what, AUDIT_TEXT_MAX),
            result: clean(&self.result, AUDIT_NAME_MAX),
            detail: clean(&self.detail, AUDIT_TEXT_MAX),
        }
    }
}

/// Control characters (newlines, escapes) become spaces; at most `max` characters are kept.
pub fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max + 1)
        .collect();
    if out.chars().count() > max {
        out = out.chars().take(max - 1).collect();
        out.push('…');
    }
    out
}

/// One record of the trail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1 for the first record the cluster ever made; never reused.
    pub seq: u64,
    /// The log entry's time (the recording leader's clock, ms since the Unix epoch).
    pub at_ms: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// The last [`AUDIT_HISTORY`] records, oldest first, and how many were ever made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditLog {
    pub records: VecDeque<AuditRecord>,
    pub total: u64,
}

impl AuditLog {
    pub fn is_empty(&self) -> bool {
        self.total == 0 && self.records.is_empty()
    }

    /// Appends a record (bounded), dropping the oldest beyond [`AUDIT_HISTORY`].
    pub fn push(&mut self, entry: &AuditEntry, at_ms: u64) {
        self.total = self.total.saturating_add(1);
        self.records.push_back(AuditRecord {
            seq: self.total,
            at_ms,
            entry: entry.bounded(),
        });
        while self.records.len() > AUDIT_HISTORY {
            self.records.pop_front();
        }
    }

    /// The newest `limit` records (all with 0), oldest first.
    pub fn last(&self, limit: usize) -> Vec<AuditRecord> {
        let n = if limit == 0 {
            self.records.len()
        } else {
            limit.min(self.records.len())
        };
        self.records
            .iter()
            .skip(self.records.len() - n)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_bounds_and_strips_control_characters() {
        assert_eq!(clean("a\nb\tc", 10), "a b c");
        assert_eq!(clean("abcdef", 4), "abc…");
        assert_eq!(clean("abcd", 4), "abcd");
        assert_eq!(clean("ééééé", 3).chars().count(), 3);
    }
}
