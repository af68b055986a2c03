//! maregistry's HTTP API (docs/spec.md §3): hyper 1.x handlers over the registry and the cluster.
//!
//! Modules:
//! - `server` — [`serve`]: the accept loop, HTTP/1.1 keep-alive connections, and graceful
//!   shutdown driven by a future the caller passes in.
//! - `router` — maps a path to its handler and checks the method; it only dispatches.
//! - `handlers` — one file per family: `registration` (`/reg`, `/unreg`, `/renew`,
//!   `/renews`), `discovery` (`/findAll`, `/version`, `/versions`), `cluster` (`/info`,
//!   `/cluster`, `/leader`, `/sl`), `snapshot` (`/snapshot`), `operations` (`/metrics`,
//!   `/health`, `/ready`, the web console `/ui`).
//! - `metrics` — the Prometheus metrics: per-request counters and latency, and what is
//!   read at scrape time.
//! - `forward` — a follower relays writes to the leader, answer unchanged.
//! - `request` — query parameters and the size-limited body.
//! - `error` — [`ApiError`] and the one function that turns it into a status and the
//!   JSON error object.
//!
//! Every handler is total: bad input becomes a 4xx JSON answer, never a panic.
#![deny(missing_docs)]

mod app;
mod encoding;
mod error;
mod forward;
mod handlers;
mod metrics;
mod request;
mod router;
mod server;
mod watch;

pub use app::{App, Auth, Limits};
pub use error::ApiError;
pub use forward::FORWARDED_HEADER;
pub use metrics::ENDPOINTS;
pub use request::parse_duration;
pub use router::{MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use server::serve;
pub use watch::Watch;
