//! The suspected master's host over SSH, as the managers found it while corroborating the
//! suspicion: the leader knocks on it itself, and every follower's probe knocks alongside its
//! ping. A run that begins from that verdict a moment later takes "no manager reaches the host"
//! from here instead of knocking again: a powered-off host never answers, so each knock of it
//! costs its whole bound (`reach::KNOCK` when a run knocks), and that second was phase 1's
//! (issue #18).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Beyond this, what was found while corroborating is too old to stand in for a knock.
pub const FRESH: Duration = Duration::from_secs(5);

/// One suspicion round's knocks on the master's host.
#[derive(Debug)]
struct Knocks {
    round: u64,
    master: String,
    /// When the knocks began: the conservative age of "silent".
    began: Instant,
    /// Managers whose knock the host did not answer within its bound.
    silent: BTreeSet<u64>,
    /// Some manager reached it: the host is up, whatever its mysqld does.
    reached: bool,
}

/// group → the knocks of its latest suspicion round (kept on the leader only).
#[derive(Clone, Default)]
pub struct SilenceBook(Arc<Mutex<BTreeMap<String, Knocks>>>);

impl SilenceBook {
    /// A new round's knocks begin (what an older round found is dropped).
    pub fn begin(&self, group: &str, round: u64, master: &str) {
        self.0.lock().unwrap().insert(
            group.to_string(),
            Knocks {
                round,
                master: master.to_string(),
                began: Instant::now(),
                silent: BTreeSet::new(),
                reached: false,
            },
        );
    }

    /// `manager`'s knock in `round`: `reached` the host, or not within the bound.
    pub fn record(&self, group: &str, round: u64, manager: u64, reached: bool) {
        let mut book = self.0.lock().unwrap();
        let Some(k) = book.get_mut(group).filter(|k| k.round == round) else {
            return;
        };
        if reached {
            k.reached = true;
        } else {
            k.silent.insert(manager);
        }
    }

    /// When the knocks on `master`'s host began, if they are fresh, nobody reached it, and
    /// the leader's own knock plus those of a majority of `voters` in all found it silent:
    /// the same standing as asking every manager at the run's start (failover/choose.rs), a
    /// moment older.
    pub fn silent_since(
        &self,
        group: &str,
        master: &str,
        leader: u64,
        voters: usize,
    ) -> Option<Instant> {
        let book = self.0.lock().unwrap();
        let k = book.get(group)?;
        let majority = voters / 2 + 1;
        (k.master == master
            && !k.reached
            && k.silent.contains(&leader)
            && k.silent.len() >= majority
            && k.began.elapsed() < FRESH)
            .then_some(k.began)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_only_when_the_leader_and_a_majority_found_it_so() {
        let b = SilenceBook::default();
        b.begin("g", 3, "db1");
        b.record("g", 3, 1, false);
        assert_eq!(b.silent_since("g", "db1", 1, 3), None, "the leader alone");
        b.record("g", 3, 2, false);
        assert!(b.silent_since("g", "db1", 1, 3).is_some());
        assert_eq!(b.silent_since("g", "db2", 1, 3), None, "another master");
        assert_eq!(b.silent_since("g", "db1", 1, 5), None, "2 of 5");
        b.record("g", 3, 3, true);
        assert_eq!(
            b.silent_since("g", "db1", 1, 3),
            None,
            "one manager reached it"
        );
    }

    #[test]
    fn the_leader_must_have_knocked_and_old_rounds_do_not_count() {
        let b = SilenceBook::default();
        b.begin("g", 3, "db1");
        b.record("g", 3, 2, false);
        b.record("g", 3, 3, false);
        assert_eq!(
            b.silent_since("g", "db1", 1, 3),
            None,
            "without the leader's own"
        );
        b.begin("g", 4, "db1");
        b.record("g", 3, 1, false);
        assert_eq!(b.silent_since("g", "db1", 1, 3), None, "a knock of round 3");
        assert_eq!(b.silent_since("h", "db1", 1, 3), None, "another group");
    }
}
