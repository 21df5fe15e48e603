//! Adapters to the outside world. Only runtime/ and server/ (through runtime) call them; state/
//! and engine/ never do.

pub mod binlog;
pub mod call_errors;
pub mod hooks;
pub mod mysql;
pub mod ssh;
