//! Error helpers shared by every layer.

/// An error with its whole `source()` chain ("transport error: tcp connect error: Connection
/// refused"), so the operator sees the cause, not only the outermost wrapper.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    append_sources(e.to_string(), e.source())
}

/// `head` followed by every cause not already contained in it, joined by ": ".
fn append_sources(mut out: String, mut cur: Option<&dyn std::error::Error>) -> String {
    while let Some(e) = cur {
        let msg = e.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = e.source();
    }
    out
}

/// A gRPC status as an operator reads it: the message, then the causes, without tonic's debug
/// rendering of the status fields.
pub fn status_text(s: &tonic::Status) -> String {
    append_sources(s.message().to_string(), std::error::Error::source(s))
}

/// A duration for humans: "850 ms", "1.6 ms", "2.4 s".
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_micros(1590)), "1.6 ms");
        assert_eq!(human_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(human_duration(Duration::from_millis(24_000)), "24.0 s");
    }

    #[test]
    fn status_text_has_message_not_debug() {
        let s = tonic::Status::unavailable("tcp connect error");
        assert_eq!(status_text(&s), "tcp connect error");
    }
}
