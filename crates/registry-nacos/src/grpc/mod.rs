//! The Nacos 2/3 client protocol over gRPC (docs/spec.md §6.3): the naming half, with
//! pushes, on the same registry as every other protocol. Nacos clients find it on the HTTP
//! port + 1000.
//!
//! By job: `proto` (the generated messages and services), `wire` (the JSON envelope and
//! Nacos's error codes), `connections` (each TCP connection, set up on its bi-stream,
//! owning what it publishes and subscribes to), `naming` (the unary requests), `config`
//! (the config requests and their pushes), `hub` (the
//! registry's changes as pushes to make), `service_info` (a service as clients read it,
//! encoded once per change), `tasks` (pushing, liveness, renewing, a connection's end),
//! `state` ([`GrpcSettings`] and what the facade keeps), `server` (the listener), `gather`
//! (a connection's writes sent once per turn of its task).

#[doc(hidden)]
mod answered;
pub mod codec;
mod config;
mod connections;
#[doc(hidden)]
pub mod gather;
mod hub;
mod naming;
#[allow(missing_docs)]
pub mod proto;
mod server;
mod service_info;
mod state;
mod tasks;
mod wire;

pub(crate) use server::serve_grpc;
pub use state::GrpcSettings;
pub(crate) use state::Nacos2;
