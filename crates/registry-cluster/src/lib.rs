//! Several maregistry nodes acting as one registry.
//!
//! One leader takes the writes; followers forward writes to it and copy its data by
//! snapshot. Every node runs the same loop (`ServerHealth`): probe the other servers,
//! elect if there is not exactly one leader in sight, and (as a follower) sync.
//!
//! Modules:
//! - `server` — [`Server`], one node as the cluster sees it, and url normalisation
//!   ([`normalize_url`]), so that `http://localhost:8081/` and `http://127.0.0.1:8081`
//!   are one server.
//! - `election` — the [`Election`] trait (a pure function from a view of the servers to
//!   a leader) with one rule per file: [`HashElection`] (the seed's smallest Java
//!   `String.hashCode()`) and [`QuorumElection`] (the same, only with a strict majority
//!   in sight), and [`ElectionKind`] to pick one, `auto` by cluster size.
//! - `cluster` — [`Cluster`]: the configured servers, the last probe of each, who leads,
//!   and the takeover rules applied when this node becomes leader.
//! - `coordinator` — [`Coordinator`], the one seam between the API and whichever cluster
//!   mode runs, and [`SnapshotCoordinator`], this crate's snapshot cluster behind it.
//! - `health` — [`ServerHealth`]: the probe → elect → sync loop.
//! - `sync` — a follower's snapshot fetch, validate, restore (never to a lower version).
//! - `takeover` — [`take_office`]: adopt the data of every reachable server holding more
//!   before leading.
//! - `eviction` — [`run_evictor`]: the leader's TTL sweep, and [`SelfPreservation`],
//!   which skips a sweep that would remove too much at once.
//! - `status` — [`Status`]: this node's standing, for `/metrics` and `/ready`.
//! - `clock` — [`MonotonicClock`], wall-clock milliseconds that never jump and follow
//!   tokio's paused clock in tests.
//! - `error` — [`ClusterError`].
#![deny(missing_docs)]

mod clock;
mod cluster;
mod coordinator;
mod election;
mod error;
mod eviction;
mod health;
mod server;
mod status;
mod sync;
mod takeover;

pub use clock::MonotonicClock;
pub use cluster::{Cluster, Role};
pub use coordinator::{Coordinator, CoordinatorError, SnapshotCoordinator};
pub use election::{java_hash_code, Election, ElectionKind, HashElection, QuorumElection};
pub use error::ClusterError;
pub use eviction::{run_evictor, SelfPreservation};
pub use health::{ServerHealth, DEFAULT_SYNC_WAIT};
pub use server::{normalize_url, Server};
pub use status::{RaftStatus, Replica, Standing, Status, SyncLag};
pub use takeover::take_office;
