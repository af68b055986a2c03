//! maregistry's server (docs/spec.md §3, §6): the HTTP/TLS listener, the route table, the
//! gateway every write goes through, the seed API, the console, metrics and the cluster
//! endpoints, over the registry and the cluster, which it reaches through one trait,
//! `registry_cluster::Coordinator`. It names no protocol: each protocol family is a crate
//! over the gateway that plugs in as a [`Facade`].
//!
//! Modules, from the wire inwards:
//! - `server` — [`serve`]: the accept loop, HTTP/1.1 keep-alive connections, connection
//!   slots, and graceful shutdown driven by a future the caller passes in; the pieces a
//!   facade's own listener shares ([`handshake`], [`AcceptBackoff`], [`warn_at_limit`]).
//! - `transport` — one accepted connection, plain or TLS, as hyper reads it.
//! - `router` — finds the route, checks head, method and token, dispatches, counts; it
//!   only dispatches.
//! - `routes` — the route table ([`ENDPOINTS`], then the facades' prefixes
//!   ([`FacadeRoute`]), then the
//!   running cluster mode's own routes) and what each route needs.
//! - `auth` — [`Auth`]: the tokens, the access level of a route, the token check.
//! - `access` — users, logins and the one access check by permission ([`access::Caller`],
//!   `App::authorize`), with `--auth-enabled`.
//! - `limits` — [`Limits`] and the size limits of a request head.
//! - `headers` — the headers and content types every part shares.
//! - `request` — query parameters (decoded strictly) and the size- and time-limited body.
//! - `body` — [`Body`]: an answer's body, whole or streamed.
//! - `gateway` — the write path every protocol goes through: [`Op`]s in, applied here or
//!   relayed to the leader once, one [`Outcome`] out; heartbeats that heal.
//! - `forward` — a follower relays a request to the leader, answer unchanged.
//! - `handlers` — the seed's API and the operators' endpoints, one file per family, and
//!   the mode's routes handed to the mode.
//! - `watch` — [`Watch`]: the blocking queries waiting per service.
//! - `metrics` — the Prometheus metrics: per-request counters and latency, and what is
//!   read at scrape time (the facades add theirs).
//! - `encoding` — gzip of large answers (facades use it for their own).
//! - `answer` — building answers (JSON, text, the version header).
//! - `error` — [`ApiError`] and the one function that turns it into a status and the JSON
//!   error object; [`FacadeError`], the facades' one error type.
//! - `app` — [`App`]: what every handler shares, and what a facade may use of the node;
//!   [`Facade`]: how a protocol family plugs in (routes, observer, metrics, its own
//!   listener).
//!
//! Every handler is total: bad input becomes a 4xx answer, never a panic.
#![deny(missing_docs)]

pub mod access;
pub mod answer;
mod app;
pub mod auth;
mod body;
pub mod encoding;
mod error;
mod forward;
mod gateway;
mod handlers;
pub mod headers;
mod limits;
mod metrics;
pub mod request;
mod router;
mod routes;
mod server;
mod transport;
mod watch;

pub use app::{App, ConsolePage, Facade, Peer, Shutdown};
pub use auth::Auth;
pub use body::Body;
pub use error::{ApiError, FacadeError, Undecodable};
pub use gateway::{config_resource, ConfigPublish, ConfigStep, Op, Ops, Origin, Outcome};
pub use headers::{FORWARDED_HEADER, VERSION_HEADER};
pub use limits::{Limits, MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use metrics::gauge;
pub use request::parse_duration;
pub use routes::{FacadeRoute, ENDPOINTS};
pub use server::{handshake, serve, warn_at_limit, AcceptBackoff};
pub use transport::Transport;
pub use watch::Watch;
