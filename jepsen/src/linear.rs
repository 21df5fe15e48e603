//! Linearizability of one read/write/compare-and-set register (the Wing–Gong search with
//! Lowe's memoisation, as in Knossos): is there an order of the operations, consistent with
//! their real-time order, in which every acknowledged result is what a single register would
//! have answered? Operations that ended `info` may have taken effect at any point after their
//! invocation, or never; operations that ended `fail` did not happen and are left out.

use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegOp {
    /// A read that returned this value (None: the key did not exist yet).
    Read(Option<i64>),
    Write(i64),
    /// Compare-and-set that succeeded: the value was `from`, it became `to`.
    Cas {
        from: i64,
        to: i64,
    },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub op: RegOp,
    /// Invocation time (any monotonic unit).
    pub call: u64,
    /// Completion time; None when the outcome is unknown (`info`).
    pub ret: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order exists; the entries (by index) that could never be placed after the longest
    /// order found.
    NotLinearizable {
        stuck_at: Vec<usize>,
        prefix: usize,
    },
}

fn apply(op: RegOp, v: Option<i64>) -> Option<Option<i64>> {
    match op {
        RegOp::Read(x) => (x == v).then_some(v),
        RegOp::Write(x) => Some(Some(x)),
        RegOp::Cas { from, to } => (v == Some(from)).then_some(Some(to)),
    }
}

/// Checks a single register's history, starting from `initial`.
pub fn check(entries: &[Entry], initial: Option<i64>) -> Verdict {
    let n = entries.len();
    // Reads with unknown outcome constrain nothing.
    let relevant: Vec<usize> = (0..n)
        .filter(|&i| !(entries[i].ret.is_none() && matches!(entries[i].op, RegOp::Read(_))))
        .collect();
    let required: Vec<usize> = relevant
        .iter()
        .copied()
        .filter(|&i| entries[i].ret.is_some())
        .collect();
    let words = n.div_ceil(64);
    let mut done = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, Option<i64>)> = HashSet::new();
    let mut best = 0usize;
    let mut best_stuck = Vec::new();
    // Explicit stack: (chosen entry, value before it).
    let mut stack: Vec<(usize, Option<i64>)> = Vec::new();
    let mut value = initial;
    let mut count = 0usize;
    let is_done = |d: &Vec<u64>, i: usize| d[i / 64] & (1 << (i % 64)) != 0;
    // Candidates are tried in index order; `next_from` resumes the scan after a backtrack.
    let mut next_from = 0usize;
    loop {
        if required.iter().all(|&i| is_done(&done, i)) {
            return Verdict::Linearizable;
        }
        // An entry may go next only if no pending required entry returned before it began.
        let horizon = required
            .iter()
            .filter(|&&i| !is_done(&done, i))
            .map(|&i| entries[i].ret.expect("required"))
            .min()
            .unwrap_or(u64::MAX);
        let mut advanced = false;
        for (k, &i) in relevant.iter().enumerate().skip(next_from) {
            if is_done(&done, i) || entries[i].call > horizon {
                continue;
            }
            let Some(v2) = apply(entries[i].op, value) else {
                continue;
            };
            let mut d2 = done.clone();
            d2[i / 64] |= 1 << (i % 64);
            if !seen.insert((d2.clone(), v2)) {
                continue;
            }
            stack.push((k, value));
            done = d2;
            value = v2;
            count += 1;
            next_from = 0;
            advanced = true;
            break;
        }
        if advanced {
            continue;
        }
        if count >= best {
            best = count;
            best_stuck = required
                .iter()
                .copied()
                .filter(|&i| !is_done(&done, i))
                .take(5)
                .collect();
        }
        let Some((k, v_before)) = stack.pop() else {
            return Verdict::NotLinearizable {
                stuck_at: best_stuck,
                prefix: best,
            };
        };
        let i = relevant[k];
        done[i / 64] &= !(1 << (i % 64));
        value = v_before;
        count -= 1;
        next_from = k + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(op: RegOp, call: u64, ret: Option<u64>) -> Entry {
        Entry { op, call, ret }
    }

    #[test]
    fn sequential_history() {
        let h = [
            e(RegOp::Write(1), 0, Some(1)),
            e(RegOp::Read(Some(1)), 2, Some(3)),
            e(RegOp::Cas { from: 1, to: 2 }, 4, Some(5)),
            e(RegOp::Read(Some(2)), 6, Some(7)),
        ];
        assert_eq!(check(&h, None), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_a_completed_write_is_caught() {
        let h = [
            e(RegOp::Write(1), 0, Some(1)),
            e(RegOp::Write(2), 2, Some(3)),
            e(RegOp::Read(Some(1)), 4, Some(5)),
        ];
        assert!(matches!(check(&h, None), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn concurrent_operations_may_order_either_way() {
        // The write overlaps both reads: old-then-new is fine.
        let h = [
            e(RegOp::Write(1), 0, Some(1)),
            e(RegOp::Write(2), 2, Some(10)),
            e(RegOp::Read(Some(1)), 3, Some(4)),
            e(RegOp::Read(Some(2)), 5, Some(6)),
        ];
        assert_eq!(check(&h, None), Verdict::Linearizable);
        // New-then-old is not.
        let h = [
            e(RegOp::Write(1), 0, Some(1)),
            e(RegOp::Write(2), 2, Some(10)),
            e(RegOp::Read(Some(2)), 3, Some(4)),
            e(RegOp::Read(Some(1)), 5, Some(6)),
        ];
        assert!(matches!(check(&h, None), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn unknown_writes_may_or_may_not_have_happened() {
        let took = [
            e(RegOp::Write(1), 0, Some(1)),
            e(RegOp::Write(7), 2, None),
            e(RegOp::Read(Some(7)), 10, Some(11)),
        ];
        assert_eq!(check(&took, None), Verdict::Linearizable);
        let did_not = [
            e(RegOp::Write(1), 0, Some(1)),
            e(RegOp::Write(7), 2, None),
            e(RegOp::Read(Some(1)), 10, Some(11)),
        ];
        assert_eq!(check(&did_not, None), Verdict::Linearizable);
        // A value nobody wrote is never explained.
        let bogus = [
            e(RegOp::Write(1), 0, Some(1)),
            e(RegOp::Read(Some(9)), 10, Some(11)),
        ];
        assert!(matches!(
            check(&bogus, None),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn many_concurrent_processes_stay_tractable() {
        // 3 processes, 600 operations, each read sees the latest completed write.
        let mut h = Vec::new();
        let mut t = 0;
        for i in 0..200 {
            h.push(e(RegOp::Write(i), t, Some(t + 3)));
            h.push(e(RegOp::Read(Some(i)), t + 4, Some(t + 6)));
            h.push(e(RegOp::Cas { from: i, to: i }, t + 5, Some(t + 7)));
            t += 8;
        }
        assert_eq!(check(&h, None), Verdict::Linearizable);
    }
}
