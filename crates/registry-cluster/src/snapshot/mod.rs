//! The snapshot cluster, the seed's design (docs/spec.md §4): one leader chosen by a rule
//! every node computes, followers that copy the leader's data by snapshot and delta. No
//! disk. Behind the `snapshot` feature, so that a crate can depend on the seam alone.
//!
//! - `cluster` — [`Cluster`]: the configured servers, the last probe of each, who leads,
//!   and the takeover rules applied when this node becomes leader.
//! - `coordinator` — [`SnapshotCoordinator`], this mode behind the seam.
//! - `election` — the [`Election`] trait (a pure function from a view of the servers to a
//!   leader) with one rule per file: [`HashElection`] (the seed's smallest Java
//!   `String.hashCode()`) and [`QuorumElection`] (the same, only with a strict majority in
//!   sight), and [`ElectionKind`] to pick one, `auto` by cluster size.
//! - `health` — [`ServerHealth`]: the probe → elect loop, and beside it a follower's sync.
//! - `sync` — a follower's long poll of the leader: delta or snapshot, validate, apply
//!   (never to a lower version), checksum.
//! - `takeover` — [`take_office`]: adopt the data of every reachable server holding more
//!   before leading.
//! - `error` — [`ClusterError`].

mod cluster;
mod config_sync;
mod coordinator;
mod election;
mod error;
mod health;
mod sync;
mod takeover;

pub use cluster::Cluster;
pub use coordinator::{SnapshotCoordinator, ROUTES};
pub use election::{java_hash_code, Election, ElectionKind, HashElection, QuorumElection};
pub use error::ClusterError;
pub use health::{ServerHealth, DEFAULT_SYNC_WAIT};
pub use takeover::take_office;

/// Registers `instance` in `svc` through the one interpreter, as a leader applies a write.
#[cfg(test)]
pub(crate) fn register(registry: &registry_core::Registry, instance: &registry_core::InstanceMeta, now: u64) {
    let command = registry_core::Command::Register {
        service: "svc".to_owned(),
        instance: instance.clone(),
        now_ms: now,
    };
    assert!(!registry.apply(&command, 0).rejected);
}
