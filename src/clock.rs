//! Wall-clock milliseconds for proposals and display. Replicated state never reads it: `apply`
//! takes the time from the log entry (ARCHITECTURE.md invariant 1).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
