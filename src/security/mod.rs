//! Security of the manager cluster: mutual TLS between managers and with mhactl, the principal a
//! certificate names, the one table of who may call which RPC, the layer that enforces it, and
//! the cluster's own CA (`mhactl certs`).
//!
//! Sits beside `model` near the bottom: it knows nothing of Raft, the runtime or the services;
//! the server, the Raft network and mhactl use it.

pub mod certs;
pub mod identity;
pub mod layer;
pub mod policy;
pub mod tls;

pub use identity::{Principal, Role};
pub use layer::{AuthLayer, Caller};
pub use tls::{TlsFiles, TlsMaterial, Transport};
