//! Tracing setup shared by the binaries. `RUST_LOG` overrides the default filter; openraft logs
//! routine transient events (a peer down, a retried RPC) at WARN/ERROR, so it is quietened unless
//! asked for.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let res = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = res;
}

/// The default filter for mhad.
pub const MHAD_DEFAULT_FILTER: &str = "info,openraft=error,h2=warn,tower=warn,hyper=warn,sled=warn";
