//! The open-files limit. A leader holds a few sockets per server it watches (the master's ping
//! and sentinel connections, one per replica, SSH sessions): about 1,400 for 200 groups of three
//! servers, more than the 1024 a process gets by default. mhad raises its soft limit to the hard
//! limit at start (no privilege needed) and says what it has, so an exhausted limit is never a
//! mystery; the example systemd unit raises the hard limit too.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Below this many descriptors mhad warns at start: enough for about 100 groups of three.
const WARN_BELOW: u64 = 4096;

/// Raises the soft limit to the hard one; returns the limit now in force (None: unlimited).
pub fn raise() -> Option<u64> {
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = ?before.current, "could not raise the open-files limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    match now {
        Some(n) if n < WARN_BELOW => tracing::warn!(
            limit = n,
            "open-files limit {n}: a leader needs about 7 per group of three servers \
             (raise LimitNOFILE / ulimit -Hn)"
        ),
        Some(n) if Some(n) != before.current => {
            tracing::info!(limit = n, before = ?before.current, "open-files limit raised")
        }
        _ => {}
    }
    now
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let now = super::raise();
        let r = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now, r.current);
        assert_eq!(r.current, r.maximum);
    }
}
