//! Test-only fault injection (cargo feature `failpoints`): `MHAD_FAILPOINT=<when>:<step>` makes
//! this process SIGKILL itself at that point of a failover run, the first time the step runs
//! (attempt 1), so the manager that takes over (same environment) is not killed again. `when`
//! is `begin` (right after the step-begin entry is committed, before any side effect) or `act`
//! (after the step's side effects, before its end is committed); `pause:<step>` freezes the
//! process (SIGSTOP) right after the begin, for the zombie-leader scenario (someone else sends
//! SIGCONT); `applied:<step>` kills it right after a relay-log diff was applied in that step,
//! before the apply is journaled; `refused:fence` kills it right after phase 2 placed a replica
//! host's refusal of a dark old master, before the deletion. `break:fence` skips phase 2
//! altogether (the jepsen red gate). `fail:<step>` makes the step fail (attempt 1) without
//! acting, as a timeout would: an online switchover then rolls back. Without the feature this
//! compiles to nothing.

use crate::state::journal::StepName;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Begin,
    Act,
    /// A diff was applied to a server, its journal record not yet committed.
    Applied,
    /// A manager the leader delegated the step to is about to act it.
    Delegate,
    /// Phase 2 placed a replica host's refusal of its dark master, not yet deleted.
    Refused,
}

/// Whether `spec` (the variable's value) names this point.
pub fn matches(spec: &str, when: When, step: StepName) -> bool {
    let Some((w, s)) = spec.trim().split_once(':') else {
        return false;
    };
    let w_ok = match when {
        When::Begin => w == "begin",
        When::Act => w == "act",
        When::Applied => w == "applied",
        When::Delegate => w == "delegate",
        When::Refused => w == "refused",
    };
    w_ok && serde_json::to_value(step)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        == Some(s.to_string())
}

#[cfg(feature = "failpoints")]
pub fn hit(when: When, step: StepName, attempt: u32) {
    let Ok(spec) = std::env::var("MHAD_FAILPOINT") else {
        return;
    };
    let freeze = (when == When::Begin
        && spec.starts_with("pause:")
        && matches(&spec.replacen("pause:", "begin:", 1), when, step))
        || (when == When::Delegate
            && spec.starts_with("delegate-pause:")
            && matches(
                &spec.replacen("delegate-pause:", "delegate:", 1),
                when,
                step,
            ));
    if attempt == 1 && freeze {
        // The zombie leader: frozen (SIGSTOP) right after the begin, until someone SIGCONTs it.
        tracing::error!(failpoint = %spec, "FAILPOINT: freezing this manager (SIGSTOP)");
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &std::process::id().to_string()])
            .status();
        tracing::warn!(failpoint = %spec, "FAILPOINT: resumed (SIGCONT)");
        return;
    }
    if attempt == 1 && matches(&spec, when, step) {
        tracing::error!(failpoint = %spec, "FAILPOINT: killing this manager (SIGKILL)");
        // SIGKILL, like `kill -9`: no destructor, no flush, no goodbye to the peers.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_when: When, _step: StepName, _attempt: u32) {}

/// Whether `MHAD_FAILPOINT` stops this process at `step` (`begin:`, `pause:`, `act:`): that
/// step's entries are then committed on their own, as the point promises, rather than gathered
/// with the steps after it (state/batch.rs). A kill while entries are gathered would otherwise
/// leave nothing of the step journaled, and the next leader, at attempt 1 again, would be
/// killed in turn.
#[cfg(feature = "failpoints")]
pub fn stops_at(step: StepName) -> bool {
    std::env::var("MHAD_FAILPOINT").is_ok_and(|v| {
        let v = v.trim().replacen("pause:", "begin:", 1);
        matches(&v, When::Begin, step) || matches(&v, When::Act, step)
    })
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn stops_at(_step: StepName) -> bool {
    false
}

/// The red gate (jepsen/): `MHAD_FAILPOINT=break:<what>` deliberately breaks a safety
/// mechanism (`fence`: phase 2 does nothing), to prove the checkers can fail.
#[cfg(feature = "failpoints")]
pub fn broken(what: &str) -> bool {
    std::env::var("MHAD_FAILPOINT").is_ok_and(|v| v.trim() == format!("break:{what}"))
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn broken(_what: &str) -> bool {
    false
}

/// `MHAD_FAILPOINT=fail:<step>`: the step fails on its first attempt (see the module doc).
#[cfg(feature = "failpoints")]
pub fn fails(step: StepName, attempt: u32) -> bool {
    attempt == 1
        && std::env::var("MHAD_FAILPOINT").is_ok_and(|v| {
            v.trim()
                .strip_prefix("fail:")
                .is_some_and(|s| matches(&format!("begin:{s}"), When::Begin, step))
        })
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn fails(_step: StepName, _attempt: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(matches("begin:fence", When::Begin, StepName::Fence));
        assert!(matches(
            "act:promote_new_master",
            When::Act,
            StepName::PromoteNewMaster
        ));
        assert!(!matches("begin:fence", When::Act, StepName::Fence));
        assert!(!matches("begin:fence", When::Begin, StepName::ConfigCheck));
        assert!(!matches("garbage", When::Begin, StepName::Fence));
    }
}
