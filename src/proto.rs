//! Generated gRPC code (build.rs → OUT_DIR). Conversions to and from domain types live next to
//! the services that use them (src/server/).

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
