//! The switchover handler's wire shapes and audit texts.

use crate::api::pb;
use crate::runtime::switchover::Started;

/// The audit trail's "what" of a switchover call.
pub fn what(r: &pb::SwitchoverRequest) -> String {
    let o = r.options.clone().unwrap_or_default();
    let mut what = format!("group {}", r.group);
    if let Some(m) = o.new_master.filter(|m| !m.is_empty()) {
        what.push_str(&format!(", new master {m}"));
    }
    if o.orig_master_is_new_slave {
        what.push_str(", orig master is new slave");
    }
    if r.check_only {
        what.push_str(" (check only)");
    }
    what
}

pub fn reply(s: Started) -> pb::SwitchoverReply {
    pb::SwitchoverReply {
        lines: s.passed.lines,
        new_master: s.passed.new_master,
        rule: s.passed.rule,
        run_id: s.run.unwrap_or_default(),
    }
}

/// The audit trail's result detail.
pub fn detail(r: &pb::SwitchoverReply) -> String {
    match r.run_id {
        0 => format!("checked: new master would be {}", r.new_master),
        id => format!("run {id}: to {}", r.new_master),
    }
}
