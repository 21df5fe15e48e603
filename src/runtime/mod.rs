//! Background loops of a node. Side effects happen here, never in state/ or engine/.

pub mod failover;
pub mod fence;
pub mod groups;
pub mod monitor;
pub mod pinger;
pub mod registration;
pub mod ssh_pools;
pub mod vip;
