//! The stable-leadership checker: in a scenario whose nemeses never cut, stop or kill a
//! manager, the managers' term never changes. A term change there is a spurious election —
//! the Raft timings too tight for the machine's load — which costs a failover its leader.

use crate::checker::{check, Check};
use crate::sampler::Sample;

/// No manager's term moves past the highest term of the first sample that saw a manager. The
/// summary also counts the samples in which the leader's lease had lapsed (no quorum
/// acknowledgement within the default lease): it stops acting then (monitors and executors
/// restart) though no election follows. Counted, not failed: a figure to watch.
pub fn leadership_stable(samples: &[Sample]) -> Check {
    let name = "leadership-stable";
    let max_term = |s: &Sample| s.managers.iter().map(|m| m.term).max();
    let Some((first, term)) = samples
        .iter()
        .find_map(|s| max_term(s).map(|t| (s.time_ms, t)))
    else {
        return check(name, true, "no manager sampled".into(), None);
    };
    for s in samples {
        if let Some(later) = max_term(s).filter(|t| *t > term) {
            return check(
                name,
                false,
                format!(
                    "term {term} (sampled at {first} ms) became {later} at {} ms although no \
                     manager was cut, stopped or killed: a spurious election",
                    s.time_ms
                ),
                Some(serde_json::json!(s)),
            );
        }
    }
    let lease = mha_raft::config::RaftTimings::default()
        .leader_lease()
        .as_millis() as u64;
    let lapsed = samples
        .iter()
        .filter(|s| {
            s.managers
                .iter()
                .any(|m| m.role == "leader" && m.quorum_ack_ms.is_some_and(|a| a > lease))
        })
        .count();
    check(
        name,
        true,
        format!(
            "{} samples, term {term} throughout: no election without a manager fault; the \
             leader's lease ({lease} ms) lapsed in {lapsed} sample(s)",
            samples.len()
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::Manager;

    fn at(time_ms: u64, terms: &[u64]) -> Sample {
        Sample {
            time_ms,
            vip: vec![],
            vip_fenced: vec![],
            writable: vec![],
            managers: terms
                .iter()
                .enumerate()
                .map(|(i, t)| Manager {
                    id: i as u64 + 1,
                    role: "follower".into(),
                    term: *t,
                    quorum_ack_ms: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_term_change_without_a_manager_fault_is_caught() {
        // A follower still catching up on the term at the first sample is not an election.
        assert!(leadership_stable(&[at(1, &[4, 4, 3]), at(2, &[4, 4, 4])]).valid);
        // A sample that reached no manager says nothing.
        assert!(leadership_stable(&[at(1, &[]), at(2, &[4]), at(3, &[])]).valid);
        let bad = leadership_stable(&[at(1, &[4, 4, 4]), at(2, &[4, 5, 4])]);
        assert!(!bad.valid, "{}", bad.summary);
        assert!(bad.summary.contains("4 ") && bad.summary.contains("became 5"));
    }
}
