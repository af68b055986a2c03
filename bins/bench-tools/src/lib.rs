//! Shared bits of the bench-only binaries: how instance number `i` of a load is named,
//! so that the loader and the wrk scripts agree on it, and the Nacos gRPC load client's
//! connection ([`grpc`]).
#![deny(missing_docs)]

pub mod grpc;

/// The service instance `i` belongs to, among `services`.
pub fn service(i: u64, services: u64) -> String {
    format!("bench.Service{}", i % services.max(1))
}

/// A distinct IPv4 host for each `i` below 2^24.
pub fn host(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}
