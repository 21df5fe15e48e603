//! The suspected master's host over SSH, as the managers found it while corroborating the
//! suspicion: the leader knocks on it itself, and every follower's probe knocks alongside its
//! ping (a follower whose ping the master answered reached it too). A run that begins from that verdict a moment later takes "no manager reaches the host"
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

    /// `manager`'s knock in `round`: `reached` the host (or its mysqld answered that manager),
    /// or not within the bound.
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

    /// Whether `manager`'s knock of round `round` is still under way (begun, not recorded):
    /// a run that begins the moment the verdict commits may be a few milliseconds ahead of
    /// the leader's own knock, which ends on the same bound as the followers'.
    pub fn knocking(&self, group: &str, round: Option<u64>, manager: u64) -> bool {
        let book = self.0.lock().unwrap();
        book.get(group).is_some_and(|k| {
            round == Some(k.round)
                && !k.reached
                && !k.silent.contains(&manager)
                && k.began.elapsed() < FRESH
        })
    }

    /// When the knocks of verdict round `round` on `master`'s host began, if they are fresh,
    /// every one of `managers` (the members now, the leader included) found it silent, and no
    /// manager reached it (nor its mysqld): the standing of asking every manager at the run's
    /// start (failover/choose.rs), a moment older. A member that did not say (down, a learner,
    /// which corroboration does not ask, or its knock unfinished when its ping ended) leaves
    /// the run to knock for itself.
    pub fn silent_since(
        &self,
        group: &str,
        round: Option<u64>,
        master: &str,
        managers: &[u64],
    ) -> Option<Instant> {
        let book = self.0.lock().unwrap();
        let k = book.get(group)?;
        (round == Some(k.round)
            && k.master == master
            && !k.reached
            && !managers.is_empty()
            && managers.iter().all(|m| k.silent.contains(m))
            && k.began.elapsed() < FRESH)
            .then_some(k.began)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_only_when_every_member_found_it_so() {
        let b = SilenceBook::default();
        b.begin("g", 3, "db1");
        b.record("g", 3, 1, false);
        b.record("g", 3, 2, false);
        assert_eq!(
            b.silent_since("g", Some(3), "db1", &[1, 2, 3]),
            None,
            "2 of 3: the third may reach it"
        );
        b.record("g", 3, 3, false);
        assert!(b.silent_since("g", Some(3), "db1", &[1, 2, 3]).is_some());
        assert_eq!(
            b.silent_since("g", Some(3), "db1", &[1, 2, 4]),
            None,
            "manager 4 replaced 3 since: it never knocked"
        );
        assert_eq!(
            b.silent_since("g", Some(3), "db2", &[1, 2, 3]),
            None,
            "another master"
        );
        assert_eq!(
            b.silent_since("g", Some(3), "db1", &[1, 2, 3, 4, 5]),
            None,
            "3 of 5"
        );
        b.record("g", 3, 4, true);
        assert_eq!(
            b.silent_since("g", Some(3), "db1", &[1, 2, 3]),
            None,
            "one manager reached it"
        );
    }

    #[test]
    fn only_the_verdicts_own_round_and_the_leaders_own_knock_count() {
        let b = SilenceBook::default();
        b.begin("g", 3, "db1");
        b.record("g", 3, 2, false);
        b.record("g", 3, 3, false);
        b.record("g", 3, 4, false);
        assert_eq!(
            b.silent_since("g", Some(3), "db1", &[1, 2, 3]),
            None,
            "without the leader's own"
        );
        assert!(b.knocking("g", Some(3), 1), "the leader's knock under way");
        b.record("g", 3, 1, false);
        assert!(!b.knocking("g", Some(3), 1));
        assert!(b.silent_since("g", Some(3), "db1", &[1, 2, 3]).is_some());
        assert_eq!(
            b.silent_since("g", Some(2), "db1", &[1, 2, 3]),
            None,
            "round 2's run"
        );
        assert_eq!(
            b.silent_since("g", None, "db1", &[1, 2, 3]),
            None,
            "a manual run"
        );
        b.begin("g", 4, "db1");
        b.record("g", 3, 1, false);
        assert_eq!(
            b.silent_since("g", Some(4), "db1", &[1]),
            None,
            "a knock of round 3"
        );
        assert_eq!(
            b.silent_since("h", Some(4), "db1", &[1]),
            None,
            "another group"
        );
    }
}
