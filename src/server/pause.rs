//! The pause/resume handlers' wire shapes and audit texts.

use crate::api::pb;
use crate::runtime::pause::GroupPause;

/// The audit trail's "what" of a pause or resume call.
pub fn what(groups: &[String], all: bool, reason: &str) -> String {
    let which = if all {
        "all groups".to_string()
    } else {
        format!("group {}", groups.join(","))
    };
    match reason {
        "" => which,
        r => format!("{which}: {r}"),
    }
}

pub fn reply(done: &[GroupPause]) -> pb::PauseReply {
    pb::PauseReply {
        groups: done
            .iter()
            .map(|g| pb::GroupPause {
                group: g.group.clone(),
                pause: g.pause.as_ref().map(Into::into),
                changed: g.changed,
            })
            .collect(),
    }
}

/// The audit trail's result detail: which groups changed.
pub fn detail(r: &pb::PauseReply) -> String {
    let changed: Vec<&str> = r
        .groups
        .iter()
        .filter(|g| g.changed)
        .map(|g| g.group.as_str())
        .collect();
    match changed.len() {
        0 => "nothing changed".into(),
        _ => format!("changed: {}", changed.join(",")),
    }
}
