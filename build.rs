//! Compiles proto/*.proto with protox (pure Rust), so a fresh machine needs no system `protoc`.
//! Generated code goes to OUT_DIR and is never checked in.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/raft.proto", "proto/admin.proto", "proto/probe.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Ordered maps: replies (and mhactl's --json) list servers in a stable order.
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
