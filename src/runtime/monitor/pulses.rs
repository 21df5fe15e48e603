//! The replicas' pulses, read before anything is suspect. A suspicion round watches each
//! replica whose IO thread says "connected" for twice the heartbeat period (engine::detector::
//! pulse). When the master went silent well before the round opened (a hung master, or replicas
//! cut from it while it lived), that silence is already on record here: a reading taken earlier
//! and unchanged since proves nothing arrived from the master since it was taken, so the round
//! need not wait the whole window again (corroboration.rs credits at most one heartbeat period
//! of it: a brief stall must still be seen to end).
//!
//! One kept connection per replica and one reading per ping interval, on the leader only (the
//! book dies with the group's monitor). The book keeps the *oldest* reading a replica has not
//! moved from: an unchanged reading adds nothing, and replacing it would shorten the silence
//! it proves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::adapters::mysql::{Login, Session};
use crate::engine::detector::pulse;
use crate::model::ReplicaPulse;
use crate::runtime::credentials::login;
use crate::secret::Secret;
use crate::state::group::{Group, Role};

/// A replica's reading: what it said, about which source, and when the answer had come (so
/// the silence measured from it is never overstated).
#[derive(Clone, Debug)]
pub struct Reading {
    pub at: Instant,
    pub source: (String, u16),
    pub pulse: ReplicaPulse,
}

/// The latest informative reading per replica name.
#[derive(Clone, Default)]
pub struct PulseBook(Arc<Mutex<HashMap<String, Reading>>>);

impl PulseBook {
    pub fn get(&self, replica: &str) -> Option<Reading> {
        self.0.lock().expect("pulse book").get(replica).cloned()
    }

    /// Records `r` unless the book already holds an older reading it does not differ from.
    pub fn record(&self, replica: &str, r: Reading) {
        let mut book = self.0.lock().expect("pulse book");
        let keep_older = book
            .get(replica)
            .is_some_and(|old| old.source == r.source && !pulse::moved(&old.pulse, &r.pulse));
        if !keep_older {
            book.insert(replica.to_string(), r);
        }
    }

    fn forget(&self, replica: &str) {
        self.0.lock().expect("pulse book").remove(replica);
    }

    /// The earlier reading of `replica` that `now` (a reading just taken, of `source`) has not
    /// moved from: the master has sent nothing to it since that reading's time.
    pub fn silent_since(
        &self,
        replica: &str,
        source: &(String, u16),
        now: &ReplicaPulse,
    ) -> Option<Reading> {
        self.get(replica)
            .filter(|old| &old.source == source && !pulse::moved(&old.pulse, now))
    }
}

/// Reads every replica of the group once per `every`, into `book`, until aborted.
pub async fn keep(
    g: Group,
    password: Secret,
    every: Duration,
    book: PulseBook,
    seen: super::seen::SeenBook,
) {
    let replicas: Vec<(String, Login)> = g
        .topology
        .servers
        .values()
        .filter(|s| s.role == Role::Replica)
        .filter_map(|s| g.spec.server(&s.name))
        .map(|s| (s.name.clone(), login(&g.spec, s, &password)))
        .collect();
    // A reading must come back well within the interval, or it tells nothing timely.
    let timeout = every.min(Duration::from_millis(500));
    let mut sessions: Vec<Option<Session>> = replicas.iter().map(|_| None).collect();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        join_all(
            replicas
                .iter()
                .zip(sessions.iter_mut())
                .map(|((name, login), session)| {
                    read_one(&g.spec.name, name, login, session, timeout, (&book, &seen))
                }),
        )
        .await;
    }
}

async fn read_one(
    group: &str,
    name: &str,
    login: &Login,
    session: &mut Option<Session>,
    timeout: Duration,
    (book, seen): (&PulseBook, &super::seen::SeenBook),
) {
    if session.is_none() {
        *session = login.connect(timeout).await.ok();
    }
    let Some(s) = session.as_mut() else {
        book.forget(name);
        seen.failed(group, name, "cannot connect".into());
        return;
    };
    s.set_timeout(timeout);
    let reading = s.replica_pulse().await;
    match &reading {
        Ok(Some((status, _))) => seen.record(group, name, super::seen::Seen::of(status)),
        Ok(None) => seen.failed(group, name, "not a replica".into()),
        Err(_) => seen.failed(group, name, "replica status could not be read".into()),
    }
    match reading {
        // Only a running IO thread's silence says something about the master; a reading taken
        // while it was reconnecting must not be reused once it is back.
        Ok(Some((status, p))) if p.io_thread == crate::model::IoThread::Yes => book.record(
            name,
            Reading {
                at: Instant::now(),
                source: (status.source_host, status.source_port),
                pulse: p,
            },
        ),
        Ok(_) => book.forget(name),
        Err(e) => {
            tracing::debug!(replica = name, error = %e, "pulse reading failed");
            book.forget(name);
            *session = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IoThread;

    fn reading(at: Instant, received: &str, hb: u64) -> Reading {
        Reading {
            at,
            source: ("db1".into(), 3306),
            pulse: ReplicaPulse {
                io_thread: IoThread::Yes,
                received: received.into(),
                heartbeats: Some(hb),
                heartbeat_period_ms: Some(500),
            },
        }
    }

    #[test]
    fn the_oldest_unchanged_reading_is_kept() {
        let book = PulseBook::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(900);
        book.record("db2", reading(t0, "f.1:100", 7));
        // Nothing arrived: the older reading proves the longer silence.
        book.record("db2", reading(t1, "f.1:100", 7));
        assert_eq!(book.get("db2").map(|r| r.at), Some(t0));
        // A heartbeat arrived: the silence starts again.
        book.record("db2", reading(t1, "f.1:100", 8));
        assert_eq!(book.get("db2").map(|r| r.at), Some(t1));
    }

    #[test]
    fn silence_is_only_claimed_for_the_same_source_and_no_change() {
        let book = PulseBook::default();
        let t0 = Instant::now();
        book.record("db2", reading(t0, "f.1:100", 7));
        let db1 = ("db1".to_string(), 3306);
        let now = reading(t0, "f.1:100", 7).pulse;
        assert!(book.silent_since("db2", &db1, &now).is_some());
        assert!(book
            .silent_since("db2", &("db3".to_string(), 3306), &now)
            .is_none());
        let moved = reading(t0, "f.1:180", 7).pulse;
        assert!(book.silent_since("db2", &db1, &moved).is_none());
        assert!(book.silent_since("db3", &db1, &now).is_none());
    }
}
