//! When removing a voter needs the operator's `--yes`: when the cluster left behind could not
//! survive one more manager failure. Kept to one explainable rule: after the removal, of the
//! remaining voters those this leader hears from now must still form a quorum with one of them
//! gone. That covers shrinking below three voters (two voters need both; one has no spare) and
//! removing a healthy voter while another is down. Removing a learner never needs it.

use std::collections::BTreeSet;

use super::NodeId;

fn list(ids: &BTreeSet<NodeId>) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why removing voter `id` leaves a cluster that one more failure stops, or None when it does
/// not. `voters_after`: the voters once `id` is gone; `reachable`: those of them this leader
/// hears from now (itself included).
pub fn removal_risk(
    id: NodeId,
    voters_after: &BTreeSet<NodeId>,
    reachable: &BTreeSet<NodeId>,
) -> Option<String> {
    let n = voters_after.len();
    let quorum = n / 2 + 1;
    let answering: BTreeSet<NodeId> = voters_after.intersection(reachable).copied().collect();
    if answering.len() > quorum {
        return None;
    }
    let after = format!(
        "after removing {id} the cluster has {n} voter{} ({}) and a quorum needs {quorum}",
        if n == 1 { "" } else { "s" },
        list(voters_after)
    );
    Some(if answering.len() == n {
        format!("{after}: the loss of any one manager stops it (no failover, no changes)")
    } else {
        let silent: BTreeSet<NodeId> = voters_after.difference(&answering).copied().collect();
        format!(
            "{after}, and {} do{} not answer now: {}",
            list(&silent),
            if silent.len() == 1 { "es" } else { "" },
            if answering.len() < quorum {
                "it would have no quorum at all".to_string()
            } else {
                "the loss of one more manager stops it (no failover, no changes)".to_string()
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn three_healthy_voters_left_need_no_confirmation() {
        assert_eq!(removal_risk(4, &set(&[1, 2, 3]), &set(&[1, 2, 3])), None);
        assert_eq!(
            removal_risk(6, &set(&[1, 2, 3, 4, 5]), &set(&[1, 2, 3, 4])),
            None
        );
    }

    #[test]
    fn fewer_than_three_voters_need_it() {
        assert_eq!(
            removal_risk(3, &set(&[1, 2]), &set(&[1, 2])).unwrap(),
            "after removing 3 the cluster has 2 voters (1, 2) and a quorum needs 2: the loss \
             of any one manager stops it (no failover, no changes)"
        );
        assert!(removal_risk(2, &set(&[1]), &set(&[1]))
            .unwrap()
            .starts_with("after removing 2 the cluster has 1 voter (1) and a quorum needs 1"));
    }

    #[test]
    fn a_silent_voter_left_behind_counts_as_lost() {
        // Four voters left, one down: 3 answer, a quorum is 3, no spare.
        assert_eq!(
            removal_risk(5, &set(&[1, 2, 3, 4]), &set(&[1, 2, 3])).unwrap(),
            "after removing 5 the cluster has 4 voters (1, 2, 3, 4) and a quorum needs 3, and \
             4 does not answer now: the loss of one more manager stops it (no failover, no \
             changes)"
        );
        // Three left, two down: no quorum at all.
        assert!(removal_risk(4, &set(&[1, 2, 3]), &set(&[1]))
            .unwrap()
            .ends_with("2, 3 do not answer now: it would have no quorum at all"));
        // Removing the dead one of four leaves three healthy voters: fine.
        assert_eq!(removal_risk(4, &set(&[1, 2, 3]), &set(&[1, 2, 3, 9])), None);
    }
}
