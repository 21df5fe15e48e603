//! How long one ping of the master may take. A hung master answers nothing, so the bound is
//! what each failed ping costs; it must not make a slow but alive master look dead, which is
//! why it never goes under a multiple of what this master has been taking, and why a ping
//! timing out only ever makes the master *suspect*: the Dead verdict still needs the other
//! managers' probes (which keep the full ping interval as their bound) and the replicas.

/// What a ping may cost: at most the ping interval (MHA's bound); at least 8 × the slowest of
/// the recent successful pings (`slowest_recent_ms`), so that a master that is merely slow
/// keeps room to answer; and otherwise half the interval while the master is alive, the
/// suspect interval once it is suspect (each re-probe of a hung master then costs that much,
/// not a whole interval). Until this monitor has seen the master answer (None: how slow it is
/// is unknown, and the `insert` ping's first connection creates its table), the interval.
pub fn ping_timeout_ms(
    interval_ms: u64,
    suspect_interval_ms: u64,
    suspect: bool,
    slowest_recent_ms: Option<u64>,
) -> u64 {
    let Some(slowest_recent_ms) = slowest_recent_ms else {
        return interval_ms.max(1);
    };
    let floor = if suspect {
        suspect_interval_ms
    } else {
        interval_ms / 2
    };
    let adaptive = slowest_recent_ms.saturating_mul(8);
    floor.max(adaptive).min(interval_ms).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (interval, suspect interval, suspect, slowest recent) → bound.
    #[test]
    fn bounds_table() {
        let cases = [
            ("alive, fast master", 1000, 200, false, Some(2), 500),
            ("suspect, fast master", 1000, 200, true, Some(2), 200),
            (
                "no answer seen yet: MHA's bound",
                1000,
                200,
                true,
                None,
                1000,
            ),
            (
                "suspect, slow master keeps room",
                1000,
                200,
                true,
                Some(60),
                480,
            ),
            (
                "very slow master: never above the interval",
                1000,
                200,
                true,
                Some(400),
                1000,
            ),
            ("alive, slow master", 1000, 200, false, Some(90), 720),
            ("short interval", 200, 100, true, Some(1), 100),
        ];
        for (case, interval, suspect_interval, suspect, slowest, want) in cases {
            assert_eq!(
                ping_timeout_ms(interval, suspect_interval, suspect, slowest),
                want,
                "{case}"
            );
        }
    }
}
