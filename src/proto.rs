//! Generated gRPC code (build.rs → OUT_DIR). Conversions between the admin messages and domain
//! types live in one place, both directions: `crate::api`.

#[allow(clippy::all, missing_docs)]
pub mod raft {
    tonic::include_proto!("mha.raft.v1");
}

#[allow(clippy::all, missing_docs)]
pub mod admin {
    tonic::include_proto!("mha.admin.v1");
}

#[allow(clippy::all, missing_docs)]
pub mod probe {
    tonic::include_proto!("mha.probe.v1");
}
