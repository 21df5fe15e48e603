//! Whether each peer answers, decided from every call this node makes to it (Raft RPCs and the
//! liveness pings of `runtime/observer.rs`), so that a peer going away is logged once and its
//! return once, with how long it was gone — instead of one line per failed RPC (openraft retries
//! a dead peer every second and logs each failure at ERROR; telemetry.rs filters those).
//!
//! Pure: the caller passes the time and logs what comes back; tests drive it with made-up
//! instants.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::NodeId;

/// Failures for this long with no answer in between make a peer "down". Shorter hiccups (an
/// fsync stall, openraft cutting an append off at its 50 ms deadline, a reconnect) stay below
/// it, so a slow but alive peer does not flap in the log.
pub const DOWN_AFTER: Duration = Duration::from_secs(1);

/// A change worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The peer has not answered for `silent_for`; `error` is the latest failure.
    Down { error: String, silent_for: Duration },
    /// It answers again after being unanswering for `outage` (from its first failure).
    Back { outage: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    /// Failing since `since` with no answer in between; `last` is the latest failure.
    Failing {
        since: Instant,
        last: Instant,
    },
    /// Down (logged) since its first failure at `since`.
    Down {
        since: Instant,
    },
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    state: State,
    /// The latest call to it, answered or not.
    contacted: Instant,
}

/// Per-peer up/down state. Peers never called are not tracked.
#[derive(Debug)]
pub struct PeerHealth {
    down_after: Duration,
    peers: HashMap<NodeId, Peer>,
}

impl Default for PeerHealth {
    fn default() -> Self {
        PeerHealth::new(DOWN_AFTER)
    }
}

impl PeerHealth {
    pub fn new(down_after: Duration) -> Self {
        PeerHealth {
            down_after,
            peers: HashMap::new(),
        }
    }

    /// `peer` answered at `now`.
    pub fn answered(&mut self, peer: NodeId, now: Instant) -> Option<Change> {
        let before = self.peers.insert(
            peer,
            Peer {
                state: State::Up,
                contacted: now,
            },
        );
        match before.map(|p| p.state) {
            Some(State::Down { since }) => Some(Change::Back {
                outage: now.saturating_duration_since(since),
            }),
            _ => None,
        }
    }

    /// A call to `peer` failed at `now` (refused, timed out, cut off).
    pub fn failed(&mut self, peer: NodeId, now: Instant, error: &str) -> Option<Change> {
        let down_after = self.down_after;
        let p = self.peers.entry(peer).or_insert(Peer {
            state: State::Up,
            contacted: now,
        });
        p.contacted = now;
        match p.state {
            State::Down { .. } => None,
            // Still failing, and without a gap in which nothing was learnt about it.
            State::Failing { since, last } if now.saturating_duration_since(last) <= down_after => {
                let silent_for = now.saturating_duration_since(since);
                if silent_for >= down_after {
                    p.state = State::Down { since };
                    Some(Change::Down {
                        error: error.to_string(),
                        silent_for,
                    })
                } else {
                    p.state = State::Failing { since, last: now };
                    None
                }
            }
            // The first failure, or the first after a long silence of ours (a follower stops
            // calling peers): the clock starts now, so an old failure cannot make it "down".
            State::Up | State::Failing { .. } => {
                p.state = State::Failing {
                    since: now,
                    last: now,
                };
                None
            }
        }
    }

    /// Whether this node called `peer` (with any outcome) within `within` before `now`.
    pub fn contacted_within(&self, peer: NodeId, now: Instant, within: Duration) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| now.saturating_duration_since(p.contacted) < within)
    }

    pub fn is_down(&self, peer: NodeId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| matches!(p.state, State::Down { .. }))
    }

    /// Forgets peers that `keep` rejects (removed members: nothing of theirs will come back).
    pub fn retain(&mut self, keep: impl Fn(NodeId) -> bool) {
        self.peers.retain(|id, _| keep(*id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = DOWN_AFTER;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A dead peer retried every 100 ms: one Down once the failures have lasted DOWN_AFTER,
    /// nothing for the retries after it, one Back with the whole outage when it answers.
    #[test]
    fn down_once_back_once() {
        let t0 = Instant::now();
        let mut h = PeerHealth::new(D);
        assert_eq!(h.answered(3, t0), None);
        let mut changes = Vec::new();
        for i in 1..=30u64 {
            changes.extend(h.failed(3, t0 + ms(100 * i), "connection refused"));
        }
        assert_eq!(
            changes,
            vec![Change::Down {
                error: "connection refused".into(),
                silent_for: D,
            }]
        );
        assert!(h.is_down(3));
        assert_eq!(
            h.answered(3, t0 + ms(3500)),
            Some(Change::Back { outage: ms(3400) })
        );
        assert!(!h.is_down(3));
        assert_eq!(h.answered(3, t0 + ms(3600)), None);
    }

    /// Failures that an answer interrupts before DOWN_AFTER (a slow peer, a reconnect) are
    /// never logged, however often they happen.
    #[test]
    fn short_hiccups_are_silent() {
        let t0 = Instant::now();
        let mut h = PeerHealth::new(D);
        for round in 0..10u64 {
            let t = t0 + ms(1000 * round);
            assert_eq!(h.failed(2, t, "timeout"), None);
            assert_eq!(h.failed(2, t + ms(900), "timeout"), None);
            assert_eq!(h.answered(2, t + ms(950)), None);
        }
        assert!(!h.is_down(2));
    }

    /// Two failures far apart with nothing in between (this node stopped calling the peer, as
    /// a follower does) do not add up to an outage: the clock restarts at the later one.
    #[test]
    fn a_gap_restarts_the_clock() {
        let t0 = Instant::now();
        let mut h = PeerHealth::new(D);
        assert_eq!(h.failed(2, t0, "x"), None);
        assert_eq!(h.failed(2, t0 + ms(60_000), "x"), None);
        assert!(!h.is_down(2));
        assert!(h.failed(2, t0 + ms(61_000), "x").is_some());
    }

    /// A peer that was never reached is reported down after DOWN_AFTER too (it was down when
    /// this node started), and peers are tracked independently.
    #[test]
    fn peers_are_independent_and_unknown_counts_as_up() {
        let t0 = Instant::now();
        let mut h = PeerHealth::new(D);
        assert_eq!(h.failed(2, t0, "refused"), None);
        assert_eq!(h.answered(3, t0), None);
        assert!(matches!(
            h.failed(2, t0 + D, "refused"),
            Some(Change::Down { .. })
        ));
        assert!(h.is_down(2) && !h.is_down(3));
        assert!(h.contacted_within(3, t0 + ms(10), ms(500)));
        assert!(!h.contacted_within(3, t0 + ms(600), ms(500)));
        assert!(!h.contacted_within(4, t0, ms(500)));
        h.retain(|id| id != 2);
        assert!(!h.is_down(2));
        assert_eq!(h.answered(2, t0 + ms(5000)), None, "forgotten, so no Back");
    }
}
