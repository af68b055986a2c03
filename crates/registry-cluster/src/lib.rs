//! Several maregistry nodes acting as one registry, whichever way they agree.
//!
//! Two parts, and the line between them is the point of the crate's shape:
//! - `coordinator` — the seam: the [`Coordinator`] trait the API talks to and every
//!   cluster mode implements, and what both sides speak in ([`Role`], [`Server`],
//!   [`Status`] with a variant per mode, the endpoints a mode serves itself), plus what
//!   every mode shares ([`SelfPreservation`], [`run_evictor`]). Neither mode owns it: the
//!   raft crate and the API depend on this part only (`default-features = false`).
//! - `snapshot` (feature `snapshot`, on by default) — the seed's cluster mode: election
//!   rules, the probe loop, snapshot and delta sync, takeover, [`SnapshotCoordinator`].
//! - `clock` — [`MonotonicClock`], wall-clock milliseconds that never jump and follow
//!   tokio's paused clock in tests; any mode's clock.
#![deny(missing_docs)]

mod clock;
pub mod coordinator;
#[cfg(feature = "snapshot")]
pub mod snapshot;

pub use clock::MonotonicClock;
pub use coordinator::{
    normalize_url, run_evictor, Coordinator, CoordinatorError, ModeRoute, ModeStatus, RaftStatus, Replica, Role,
    RouteCall, SelfPreservation, Server, Standing, Status, SyncLag, UrlError,
};
#[cfg(feature = "snapshot")]
pub use snapshot::{
    java_hash_code, take_office, Cluster, ClusterError, Election, ElectionKind, HashElection, QuorumElection,
    ServerHealth, SnapshotCoordinator, DEFAULT_SYNC_WAIT,
};
