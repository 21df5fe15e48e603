//! A replica's word about its master, weighed: an IO thread that says "connected" counts as
//! disconnected once nothing at all (no event, no heartbeat) has arrived from the master for
//! twice the heartbeat period. A hung master (SIGSTOP, stuck kernel, frozen VM) closes no
//! socket, so the IO thread itself says "Yes" until `slave_net_timeout` runs out; the master's
//! heartbeats stop at once. A live master sends an event or, when idle, a heartbeat at least
//! once per period, so two readings `2 × period` apart that show no change mean the master
//! has sent nothing for at least that long.
//!
//! The readings are compared (counters and read coordinates), not timestamps: MariaDB has no
//! last-heartbeat time (only `Slave_received_heartbeats`), and under load a master sends events
//! instead of heartbeats, which the read coordinates show. Nothing depends on clocks agreeing.

use crate::model::{IoThread, ReplicaIo, ReplicaPulse};

/// How long to watch a replica whose IO thread says connected before its silence counts: twice
/// its heartbeat period. None when that cannot be done within `budget_ms` (the time the
/// corroboration round gives a replica) or the period is unknown or off: the IO thread's word
/// then stands alone, as before heartbeats were read.
pub fn watch_ms(first: &ReplicaPulse, budget_ms: u64) -> Option<u64> {
    first.heartbeats?;
    let period = first.heartbeat_period_ms.filter(|p| *p > 0)?;
    let window = period.saturating_mul(2);
    (window <= budget_ms).then_some(window)
}

/// How often to re-read a watched replica: a live master shows itself within a period, so a
/// reading every half period ends the watch early for it.
pub fn poll_ms(first: &ReplicaPulse) -> u64 {
    (first.heartbeat_period_ms.unwrap_or(1000) / 2).clamp(50, 1000)
}

/// The MASTER_HEARTBEAT_PERIOD (ms) to name when pointing a replica whose period is `current`
/// (None: unknown): the group's `configured` period, unless the replica already has a shorter
/// one (an operator's choice is never lengthened); with `configured` 0, the replica's own.
/// It must always be named: a CHANGE MASTER to a new host resets the period to the server's
/// default (slave_net_timeout / 2). None: nothing to name.
pub fn period_to_set(configured: u64, current: Option<u64>) -> Option<u64> {
    let current = current.filter(|c| *c > 0);
    match (configured, current) {
        (0, c) => c,
        (n, Some(c)) => Some(n.min(c)),
        (n, None) => Some(n),
    }
}

/// Whether anything arrived from the master between two readings.
pub fn moved(first: &ReplicaPulse, last: &ReplicaPulse) -> bool {
    first.received != last.received || first.heartbeats != last.heartbeats
}

/// The replica's evidence from its first and last readings, `elapsed_ms` apart. `budget_ms` as
/// for [`watch_ms`]. The detail says why, for the verdict in the journal.
pub fn judge(
    first: &ReplicaPulse,
    last: &ReplicaPulse,
    elapsed_ms: u64,
    budget_ms: u64,
) -> ReplicaIo {
    if last.io_thread != IoThread::Yes {
        return ReplicaIo::Disconnected {
            detail: format!("IO thread {:?}", last.io_thread),
        };
    }
    let Some(window) = watch_ms(first, budget_ms) else {
        let why = match (first.heartbeats, first.heartbeat_period_ms) {
            (None, _) => "heartbeats not readable".to_string(),
            (_, None | Some(0)) => "heartbeats off".to_string(),
            (_, Some(p)) => format!(
                "heartbeat period {p} ms: twice that is longer than the {budget_ms} ms this \
                 round can wait"
            ),
        };
        return ReplicaIo::Connected {
            detail: format!("IO thread running ({why}: its word is taken as it is)"),
        };
    };
    if moved(first, last) {
        return ReplicaIo::Connected {
            detail: format!("IO thread running, received from the master within {elapsed_ms} ms"),
        };
    }
    if elapsed_ms < window {
        // Not watched long enough to say (the caller stops early only on a change).
        return ReplicaIo::Connected {
            detail: format!(
                "IO thread running, nothing received in {elapsed_ms} ms (< {window} ms watched)"
            ),
        };
    }
    let period = first.heartbeat_period_ms.unwrap_or(0);
    ReplicaIo::Disconnected {
        detail: format!(
            "IO thread says connected, but nothing (no event, no heartbeat) arrived from the \
             master in {elapsed_ms} ms, more than twice the heartbeat period ({period} ms): \
             counted as disconnected"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulse(io: IoThread, received: &str, hb: Option<u64>, period: Option<u64>) -> ReplicaPulse {
        ReplicaPulse {
            io_thread: io,
            received: received.into(),
            heartbeats: hb,
            heartbeat_period_ms: period,
        }
    }

    /// (first, last, elapsed, budget) → connected?, and a word the detail must hold.
    #[test]
    fn judged_table() {
        use IoThread::*;
        let p = |hb, r: &str| pulse(Yes, r, Some(hb), Some(500));
        let cases: Vec<(&str, ReplicaPulse, ReplicaPulse, u64, u64, bool, &str)> = vec![
            (
                "hung master: nothing for 2 periods",
                p(7, "f.1:100"),
                p(7, "f.1:100"),
                1000,
                1500,
                false,
                "counted as disconnected",
            ),
            (
                "idle live master: a heartbeat",
                p(7, "f.1:100"),
                p(8, "f.1:100"),
                510,
                1500,
                true,
                "within 510 ms",
            ),
            (
                "busy live master: events, no heartbeat",
                p(7, "f.1:100"),
                p(7, "f.1:900"),
                100,
                1500,
                true,
                "received",
            ),
            (
                "not watched long enough",
                p(7, "f.1:100"),
                p(7, "f.1:100"),
                600,
                1500,
                true,
                "< 1000 ms",
            ),
            (
                "IO thread gave up meanwhile",
                p(7, "f.1:100"),
                pulse(Connecting, "f.1:100", Some(7), Some(500)),
                300,
                1500,
                false,
                "Connecting",
            ),
            (
                "no counter (MySQL without performance_schema)",
                pulse(Yes, "x", None, None),
                pulse(Yes, "x", None, None),
                0,
                1500,
                true,
                "not readable",
            ),
            (
                "heartbeats off",
                pulse(Yes, "x", Some(0), Some(0)),
                pulse(Yes, "x", Some(0), Some(0)),
                0,
                1500,
                true,
                "heartbeats off",
            ),
            (
                "operator's long period: IO thread's word",
                pulse(Yes, "x", Some(3), Some(2500)),
                pulse(Yes, "x", Some(3), Some(2500)),
                0,
                1500,
                true,
                "2500 ms",
            ),
        ];
        for (case, first, last, elapsed, budget, connected, word) in cases {
            let io = judge(&first, &last, elapsed, budget);
            let (is_connected, detail) = match &io {
                ReplicaIo::Connected { detail } => (true, detail),
                ReplicaIo::Disconnected { detail } | ReplicaIo::Unreachable { detail } => {
                    (false, detail)
                }
            };
            assert_eq!(is_connected, connected, "{case}: {io:?}");
            assert!(detail.contains(word), "{case}: {detail}");
        }
    }

    /// The manager's period, never lengthening an operator's; 0 keeps the replica's own.
    #[test]
    fn period_named_on_change_master() {
        assert_eq!(period_to_set(500, Some(2500)), Some(500));
        assert_eq!(period_to_set(500, Some(200)), Some(200));
        assert_eq!(period_to_set(500, None), Some(500));
        assert_eq!(period_to_set(500, Some(0)), Some(500));
        assert_eq!(period_to_set(0, Some(2500)), Some(2500));
        assert_eq!(period_to_set(0, None), None);
    }

    #[test]
    fn watch_window_and_polling() {
        let p = |period| pulse(IoThread::Yes, "", Some(1), period);
        assert_eq!(watch_ms(&p(Some(500)), 1500), Some(1000));
        assert_eq!(watch_ms(&p(Some(500)), 1000), Some(1000));
        assert_eq!(watch_ms(&p(Some(2500)), 1500), None);
        assert_eq!(watch_ms(&p(Some(0)), 1500), None);
        assert_eq!(
            watch_ms(&pulse(IoThread::Yes, "", None, Some(500)), 1500),
            None
        );
        assert_eq!(poll_ms(&p(Some(500))), 250);
        assert_eq!(poll_ms(&p(Some(20))), 50);
        assert_eq!(poll_ms(&p(None)), 500);
    }
}
