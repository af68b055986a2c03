//! Generates the Nacos gRPC messages and services from `proto/nacos_grpc_service.proto`,
//! compiled by protox (pure Rust: building needs no protoc). `Any.value` becomes shared
//! bytes, so one encoded push serves every subscriber; the services use a codec with small
//! buffers (`grpc::codec`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/nacos_grpc_service.proto";
    println!("cargo:rerun-if-changed={proto}");
    let files = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".")
        .codec_path("crate::grpc::codec::SmallCodec")
        // hyper serves the services (grpc::server); clients bring their own channel.
        .build_transport(false)
        .compile_fds(files)?;
    Ok(())
}
