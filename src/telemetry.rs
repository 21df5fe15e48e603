//! Tracing setup shared by the binaries. `RUST_LOG` overrides the default filter.
//!
//! openraft logs every failed RPC to a peer at ERROR (a dead peer: once a second per replication
//! stream, twice per election round). Our network layer logs a peer going down and coming back
//! once each (raft/peer_health.rs), so those openraft lines say nothing new: [`RoutinePeerErrors`]
//! drops them, unless the filter asks for debug anywhere (then nothing is hidden).

use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, default_filter: &str) {
    let from_env = EnvFilter::try_from_default_env().ok();
    // openraft's routine peer errors are dropped unless RUST_LOG asks for more than INFO
    // (`--log-level debug` raises mhad's own code, not openraft's).
    let quiet = from_env
        .as_ref()
        .is_none_or(|f| f.max_level_hint().is_none_or(|l| l <= LevelFilter::INFO))
        .then_some(RoutinePeerErrors);
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let res = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .finish()
            .with(quiet)
            .try_init(),
        LogFormat::Text => builder.finish().with(quiet).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = res;
}

/// The git commit this build was made from (build.rs), `-dirty` when the tree had changes.
pub const GIT_COMMIT: &str = env!("MHA_GIT_COMMIT");

/// `--version` of mhad and mhactl: the release, the commit and the build date.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MHA_GIT_COMMIT"),
    ", built ",
    env!("MHA_BUILD_DATE"),
    ")"
);

/// The default filter for mhad.
pub const MHAD_DEFAULT_FILTER: &str = "info,openraft=error,h2=warn,tower=warn,hyper=warn,sled=warn";

/// The libraries that are chatty below WARN (openraft logs each failed RPC at ERROR and its
/// internals at DEBUG; the others their connection handling).
const QUIET_LIBRARIES: &str = "openraft=error,h2=warn,tower=warn,hyper=warn,sled=warn,\
                               russh=warn,mysql_async=warn,rustls=warn,tonic=warn,axum=warn";

/// mhad's filter for `--log-level`: mhad's own code (this crate and the binary) at `level`,
/// every other crate at INFO at most, the chatty ones quieter still. `info` is
/// [`MHAD_DEFAULT_FILTER`] (what mhad always logged).
pub fn mhad_filter(level: LevelFilter) -> String {
    let own = level.to_string().to_ascii_lowercase();
    if level == LevelFilter::INFO {
        MHAD_DEFAULT_FILTER.to_string()
    } else if level < LevelFilter::INFO {
        format!("{own},openraft=error")
    } else {
        format!("info,mha_raft={own},mhad={own},{QUIET_LIBRARIES}")
    }
}

/// Drops openraft's log lines about a peer that does not answer (see the module doc).
pub struct RoutinePeerErrors;

impl<S: Subscriber> Layer<S> for RoutinePeerErrors {
    fn event_enabled(&self, event: &Event<'_>, _cx: Context<'_, S>) -> bool {
        let target = event.metadata().target();
        if !target.starts_with("openraft") {
            return true;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        !is_routine_peer_error(&f.message, &f.error)
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    error: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "err" | "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }
}

/// An openraft event (message, error) that only says a peer did not answer: unreachable
/// (refused, reset, blocked), or no answer within a deadline (openraft's or ours). Refusals
/// and errors a peer reports are kept: they are not an outage.
pub fn is_routine_peer_error(message: &str, error: &str) -> bool {
    let about_an_rpc = matches!(message, "RPCError" | "while requesting vote" | "timeout")
        || message.starts_with("error replication to target");
    let no_answer = error.starts_with("Unreachable node")
        || error.starts_with("timeout after")
        || error.contains("timed out after");
    about_an_rpc && no_answer
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    /// `--log-level` raises or lowers mhad's own lines only: openraft never goes below ERROR,
    /// and the filter parses.
    #[test]
    fn log_levels() {
        assert_eq!(mhad_filter(LevelFilter::INFO), MHAD_DEFAULT_FILTER);
        assert_eq!(mhad_filter(LevelFilter::WARN), "warn,openraft=error");
        let debug = mhad_filter(LevelFilter::DEBUG);
        assert!(
            debug.starts_with("info,mha_raft=debug,mhad=debug,openraft=error"),
            "{debug}"
        );
        for l in [
            LevelFilter::ERROR,
            LevelFilter::WARN,
            LevelFilter::DEBUG,
            LevelFilter::TRACE,
        ] {
            let f = mhad_filter(l);
            assert!(EnvFilter::try_new(&f).is_ok(), "{f}");
            assert!(f.contains("openraft=error"), "{f}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines openraft 0.9.25 writes for a dead peer (copied from a run) are routine; a
    /// refusal or a storage error is not.
    #[test]
    fn what_counts_as_routine() {
        let unreachable = "Unreachable node: mha_raft::raft::network::TransportError: \
                           127.0.0.1:27103: tcp connect error";
        assert!(is_routine_peer_error("RPCError", unreachable));
        assert!(is_routine_peer_error("while requesting vote", unreachable));
        assert!(is_routine_peer_error(
            "RPCError",
            "timeout after 50ms when AppendEntries 1->3"
        ));
        assert!(is_routine_peer_error(
            "timeout",
            "timeout after 150ms when Vote 1->3"
        ));
        assert!(is_routine_peer_error(
            "error replication to target=3",
            "NetworkError: rpc to 127.0.0.1:27103 timed out after 125ms"
        ));
        assert!(!is_routine_peer_error(
            "RPCError",
            "NetworkError: status: PermissionDenied, message: \"node 4 is not a member\""
        ));
        assert!(!is_routine_peer_error(
            "error replication to target=3",
            "StorageError: failed to write log"
        ));
        assert!(!is_routine_peer_error(
            "quit RaftCore::main on error",
            unreachable
        ));
    }
}
