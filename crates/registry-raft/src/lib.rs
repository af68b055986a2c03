//! The raft cluster mode (docs/spec.md §7): openraft 0.9 with the registry as the replicated
//! state machine, a durable log, and node-to-node calls over maregistry's HTTP stack.
//!
//! Modules:
//! - `types` — openraft's type configuration ([`TypeConfig`]: the log carries
//!   `registry_core::Command`s) and [`node_id`], the FNV-1a id of a normalised url.
//! - `log_store` — [`LogStore`]: log, vote and commit index in one redb file, every write
//!   fsynced before it is acknowledged.
//! - `state_machine` — [`StateMachine`]: `Registry::apply` per entry, the last snapshot
//!   in one file, loaded back at start.
//! - `network` — [`Network`]: openraft's RPCs as POSTs to `/raft/...` through an
//!   `HttpInvoker`, and [`serve_rpc`], their receiving side.
//! - `data_dir` — the marker that ties a data dir to one node, and the start-up checks
//!   that refuse a foreign, corrupt or emptied dir.
//! - `node` — [`RaftCluster`], a folder split by job: settings, bootstrap, the view of the
//!   cluster (the role as openraft reports it, taking office with the whole committed log
//!   applied and one TTL of grace), batching writes into entries, membership changes, and
//!   the `registry_cluster::coordinator::Coordinator` seam the API talks to, with raft's own endpoints.
//!   It uses only the seam of `registry-cluster` (no snapshot mode); the eviction pass is
//!   the seam's, the same as the snapshot mode's.
//! - `descriptors` — file operations that wait for a free descriptor instead of failing
//!   the state machine while a connection flood holds them all.
//! - `error` — [`RaftError`].
//!
//! Heartbeats of known instances never enter the log: the leader keeps renewal times in
//! memory, as Consul does for sessions and etcd for leases.
#![deny(missing_docs)]
// openraft's storage traits fix their error type (`StorageError`, 200+ bytes); boxing it
// in our helpers would only move the allocation.
#![allow(clippy::result_large_err)]

mod data_dir;
mod descriptors;
mod error;
mod log_store;
mod network;
mod node;
mod state_machine;
mod types;

pub use error::RaftError;
pub use log_store::{LogFaults, LogStore};
pub use network::{serve_rpc, Network};
pub use node::{RaftCluster, RaftSettings, ROUTES};
pub use state_machine::StateMachine;
pub use types::{node_id, Entry, LogId, Node, NodeId, Raft, StorageError, TypeConfig};
