//! The seam between the API and the cluster modes, owned by neither: the [`Coordinator`]
//! trait both modes implement, and what both speak in. The raft crate and the API depend
//! on this module only.
//!
//! - `seam` — [`Coordinator`], [`Role`], [`CoordinatorError`].
//! - `server` — [`Server`], one node as `/info` and `/cluster` answer it, and
//!   [`normalize_url`], so that every node computes the same urls (and raft the same ids).
//! - `status` — [`Status`], a node's standing with one [`ModeStatus`] variant per mode.
//! - `routes` — [`ModeRoute`] and [`RouteCall`]: the endpoints a mode serves itself.
//! - `preservation` — [`SelfPreservation`], the guard of every eviction pass.
//! - `evictor` — [`run_evictor`], the eviction pass of every mode.

mod evictor;
mod preservation;
mod routes;
mod seam;
mod server;
mod status;

pub use evictor::run_evictor;
pub use preservation::SelfPreservation;
pub use routes::{ModeRoute, RouteCall};
pub use seam::{Coordinator, CoordinatorError, Role};
pub use server::{normalize_url, Server, UrlError};
pub use status::{ModeStatus, RaftStatus, Replica, Standing, Status, SyncLag};
