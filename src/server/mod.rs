//! tonic services: `RaftService` (peers only) and `AdminService` (mhactl). Handlers are thin:
//! unpack, delegate to the node, convert errors in one place ([`status`]).

mod admin_service;
mod audit;
mod cluster_view;
pub mod http;
mod pause;
mod probe_service;
mod raft_service;
pub mod redirect;
mod rejoin;
pub mod status;
mod switchover;

pub use admin_service::AdminSvc;
pub use probe_service::ProbeSvc;
pub use raft_service::RaftSvc;
