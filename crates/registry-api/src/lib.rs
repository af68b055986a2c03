//! maregistry's HTTP API (docs/spec.md §3, §6): hyper 1.x handlers over the registry and
//! the cluster, which they reach through one trait, `registry_cluster::Coordinator`.
//!
//! Modules, from the wire inwards:
//! - `server` — [`serve`]: the accept loop, HTTP/1.1 keep-alive connections, connection
//!   slots, and graceful shutdown driven by a future the caller passes in.
//! - `router` — finds the route, checks head, method and token, dispatches, counts; it
//!   only dispatches.
//! - `routes` — the route table ([`ENDPOINTS`]) and what each route needs; the running
//!   cluster mode's own routes come after it.
//! - `auth` — [`Auth`]: the tokens, the access level of a route, the one check.
//! - `limits` — [`Limits`] and the size limits of a request head.
//! - `headers` — the headers and content types every part shares.
//! - `request` — query parameters (decoded strictly) and the size- and time-limited body.
//! - `write` — the write pipeline every protocol goes through: accept (or relay to the
//!   leader), submit, relay after all when leadership moved; heartbeats that heal.
//! - `forward` — a follower relays a request to the leader, answer unchanged.
//! - `handlers` — the seed's API and the operators' endpoints, one file per family, and
//!   the mode's routes handed to the mode.
//! - `nacos`, `eureka` — the protocol facades, a folder each: parameters, names, the
//!   instance mapping, caches or views, encoding, endpoints.
//! - `nacos2` — the Nacos 2/3 gRPC protocol with pushes ([`serve_grpc`], its own
//!   listener), on the v1 facade's mapping and the same write pipeline.
//! - `watch` — [`Watch`]: the blocking queries waiting per service.
//! - `metrics` — the Prometheus metrics: per-request counters and latency, and what is
//!   read at scrape time.
//! - `encoding` — gzip of large answers.
//! - `answer` — building answers (JSON, text, the version header).
//! - `error` — [`ApiError`] and the one function that turns it into a status and the JSON
//!   error object; `FacadeError`, the facades' one error type.
//! - `app` — [`App`]: what every handler shares.
//!
//! Every handler is total: bad input becomes a 4xx answer, never a panic.
#![deny(missing_docs)]

mod answer;
mod app;
mod auth;
mod body;
mod encoding;
mod error;
mod eureka;
mod forward;
mod handlers;
mod headers;
mod limits;
mod metrics;
mod nacos;
pub mod nacos2;
mod request;
mod router;
mod routes;
mod server;
mod transport;
mod watch;
mod write;

pub use app::App;
pub use auth::Auth;
pub use body::Body;
pub use error::{ApiError, Undecodable};
pub use headers::{FORWARDED_HEADER, VERSION_HEADER};
pub use limits::{Limits, MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use nacos2::{serve_grpc, GrpcSettings};
pub use request::parse_duration;
pub use routes::ENDPOINTS;
pub use server::serve;
pub use watch::Watch;
