//! Who acts a failover's steps: the leader, or the member it delegates them to because that
//! member reaches servers the leader cannot (a partition that leaves the leader its quorum but
//! not its view of the data hosts). The leader keeps the journal either way: every step is
//! begun and ended in its term; only the actions move.

use crate::model::ReachView;

/// What a run's steps need to reach: every survivor's mysqld (to read, stop, repoint and
/// promote them) and every host over SSH (the survivors' for relay logs, diffs and the VIP; the
/// old master's to remove its VIP and save its binlog). The old master's mysqld is not needed:
/// a failover runs because it is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needs {
    pub mysql: Vec<String>,
    pub ssh: Vec<String>,
}

impl Needs {
    /// `ssh`: whether the group uses SSH at all (without it, nobody's SSH view counts).
    pub fn of(survivors: &[String], old_master: &str, ssh: bool) -> Needs {
        let mut hosts: Vec<String> = Vec::new();
        if ssh {
            hosts.extend(survivors.iter().cloned());
            hosts.push(old_master.to_string());
        }
        Needs {
            mysql: survivors.to_vec(),
            ssh: hosts,
        }
    }

    /// `server`'s host over SSH is not needed after all: every manager found it
    /// silent a moment ago, so no view can cover it.
    pub fn drop_ssh(&mut self, server: &str) {
        self.ssh.retain(|s| s != server);
    }

    /// How much of this a view covers: survivors first (without them no failover completes),
    /// then hosts over SSH (without the old master's, its binlog cannot be saved).
    pub fn cover(&self, v: &ReachView) -> Cover {
        Cover {
            mysql: self.mysql.iter().filter(|s| v.mysql.contains(*s)).count(),
            ssh: self.ssh.iter().filter(|s| v.ssh.contains(*s)).count(),
        }
    }

    pub fn full(&self) -> Cover {
        Cover {
            mysql: self.mysql.len(),
            ssh: self.ssh.len(),
        }
    }
}

/// How many of the needed servers a view reaches (compared survivors first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cover {
    pub mysql: usize,
    pub ssh: usize,
}

impl std::fmt::Display for Cover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} mysqld, {} over SSH", self.mysql, self.ssh)
    }
}

/// The manager that acts, and why (for the log and the journal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub manager: u64,
    pub reason: String,
}

/// Whether the leader's own view is enough: then it acts without asking anyone.
pub fn leader_suffices(needs: &Needs, leader_view: &ReachView) -> bool {
    needs.cover(leader_view) == needs.full()
}

/// Picks who acts from the views gathered (the leader's among them): the leader while nobody
/// reaches more than it does; else the manager that reaches the most (survivors first, then
/// SSH; the lowest id among equals). `excluded`: managers that stopped answering while acting.
pub fn choose(leader: u64, views: &[ReachView], needs: &Needs, excluded: &[u64]) -> Actor {
    let full = needs.full();
    let leader_cover = views
        .iter()
        .find(|v| v.manager == leader)
        .map(|v| needs.cover(v))
        .unwrap_or(Cover { mysql: 0, ssh: 0 });
    let best = views
        .iter()
        .filter(|v| v.manager != leader && !excluded.contains(&v.manager))
        .map(|v| (needs.cover(v), v.manager))
        // Highest cover, then lowest id.
        .max_by(|(ca, ia), (cb, ib)| ca.cmp(cb).then(ib.cmp(ia)));
    match best {
        Some((cover, manager)) if cover > leader_cover => Actor {
            manager,
            reason: format!(
                "the leader reaches {leader_cover} of {full}; manager {manager} reaches {cover}"
            ),
        },
        _ => Actor {
            manager: leader,
            reason: if leader_cover == full {
                format!("the leader reaches every server ({full})")
            } else {
                format!("the leader reaches {leader_cover} of {full}; no manager reaches more")
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Needs {
        Needs::of(&["db2".into(), "db3".into()], "db1", true)
    }

    #[test]
    fn needs_cover_survivors_and_every_host() {
        let n = needs();
        assert_eq!(n.mysql, ["db2", "db3"]);
        assert_eq!(n.ssh, ["db2", "db3", "db1"]);
        let no_ssh = Needs::of(&["db2".into()], "db1", false);
        assert!(no_ssh.ssh.is_empty());
    }

    /// (case, views, excluded, expected actor)
    #[test]
    fn who_acts() {
        let all = |m| ReachView::new(m, ["db2", "db3"], ["db1", "db2", "db3"]);
        let blind = |m| ReachView::new(m, [], []);
        let no_old_host = |m| ReachView::new(m, ["db2", "db3"], ["db2", "db3"]);
        let cases: Vec<(&str, Vec<ReachView>, Vec<u64>, u64)> = vec![
            ("leader sees everything", vec![all(1), all(2)], vec![], 1),
            ("leader alone, blind", vec![blind(1)], vec![], 1),
            (
                "leader cut from the survivors, zone 2 sees all",
                vec![blind(1), all(2), blind(3)],
                vec![],
                2,
            ),
            (
                "leader cannot reach the old master's host, others can",
                vec![no_old_host(1), all(3), all(2)],
                vec![],
                2,
            ),
            (
                "a peer that sees only the old host does not beat survivors",
                vec![
                    no_old_host(1),
                    ReachView::new(2, ["db2"], ["db1", "db2", "db3"]),
                ],
                vec![],
                1,
            ),
            (
                "nobody reaches more: the leader acts",
                vec![no_old_host(1), no_old_host(2)],
                vec![],
                1,
            ),
            (
                "an excluded delegate is passed over",
                vec![blind(1), all(2), no_old_host(3)],
                vec![2],
                3,
            ),
            (
                "only excluded ones see more: the leader acts",
                vec![blind(1), all(2)],
                vec![2],
                1,
            ),
        ];
        for (case, views, excluded, want) in cases {
            let got = choose(1, &views, &needs(), &excluded);
            assert_eq!(got.manager, want, "{case}: {}", got.reason);
        }
    }

    #[test]
    fn leader_suffices_only_with_a_full_view() {
        let n = needs();
        assert!(leader_suffices(
            &n,
            &ReachView::new(1, ["db2", "db3"], ["db1", "db2", "db3"])
        ));
        assert!(!leader_suffices(
            &n,
            &ReachView::new(1, ["db2", "db3"], ["db2", "db3"])
        ));
    }

    #[test]
    fn reasons_say_what_each_reaches() {
        let views = vec![
            ReachView::new(1, [], []),
            ReachView::new(2, ["db2", "db3"], ["db1", "db2", "db3"]),
        ];
        let a = choose(1, &views, &needs(), &[]);
        assert_eq!(
            a.reason,
            "the leader reaches 0 mysqld, 0 over SSH of 2 mysqld, 3 over SSH; manager 2 reaches 2 mysqld, 3 over SSH"
        );
    }
}
