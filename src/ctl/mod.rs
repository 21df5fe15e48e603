//! mhactl: one module per subcommand, each with clap `Args`, a pure `build_request`, and
//! `execute`. Shared: the admin client that tolerates down endpoints and follows the leader.

pub mod audit;
pub mod certs;
pub mod check;
pub mod cli;
pub mod client;
pub mod cluster_init;
pub mod cluster_status;
pub mod confirm;
pub mod failover;
pub mod group;
pub mod group_summary;
pub mod import_mha;
pub mod journal_view;
pub mod member;
pub mod pause;
pub mod rejoin;
pub mod switchover;
pub mod table;

pub use client::{AdminClient, CtlError};

/// mhactl's exit codes.
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    /// The manager cluster has no quorum (no leader acknowledged by a majority): `cluster
    /// status` without one, and any command that needs the leader when the managers that
    /// answered are fewer than a quorum of voters or none of them leads.
    pub const NO_QUORUM: i32 = 3;
}

/// Writes to stdout, ignoring a closed pipe (`mhactl ... | head` must not panic).
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|_| o.flush());
}

/// Reports an error on stderr; returns its exit code: a [`CtlError`]'s own (no quorum is 3),
/// else the generic error code. (Generic over any message, so every subcommand's error path
/// stays `fail(e)`; the downcast finds the one type that carries its own code.)
pub fn fail<E: std::fmt::Display + 'static>(e: E) -> i32 {
    eprintln!("error: {e}");
    match (&e as &dyn std::any::Any).downcast_ref::<CtlError>() {
        Some(c) => c.exit_code(),
        None => exit::ERROR,
    }
}
