//! mha-raft: a Raft-replicated failover manager for MySQL/MariaDB replication.
//!
//! Layers (data flows down): `ctl` (mhactl) → `server` (gRPC) → `node`/`runtime` → `raft`
//! (openraft adapters) → `store` (sled). `state` is the deterministic replicated state machine;
//! see docs/architecture.md.

pub mod adapters;
pub mod api;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod engine;
pub mod errors;
pub mod failpoint;
pub mod group_file;
pub mod group_render;
pub mod local_config;
pub mod mha_import;
pub mod model;
pub mod node;
pub mod proto;
pub mod raft;
pub mod runtime;
pub mod secret;
pub mod security;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
