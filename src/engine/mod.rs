//! Sans-I/O decisions: facts in, decisions out. No sockets, no clocks, no sleeps: callers pass
//! what they observed and the time. Unit-tested without any server.

pub mod detector;
pub mod failover;
pub mod gtid;
pub mod rejoin;
pub mod repl_filter;
pub mod selection;
pub mod switchover;
pub mod topology;
