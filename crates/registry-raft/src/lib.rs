//! The raft cluster mode (SPEC §7): openraft 0.9 with the registry as the replicated
//! state machine.
#![deny(missing_docs)]
// openraft's storage traits fix their error type (`StorageError`, 200+ bytes); boxing it
// in our helpers would only move the allocation.
#![allow(clippy::result_large_err)]

mod error;
mod log_store;
mod network;
mod state_machine;
mod types;

pub use error::RaftError;
pub use log_store::LogStore;
pub use network::{serve_rpc, Network};
pub use state_machine::StateMachine;
pub use types::{node_id, Entry, LogId, Node, NodeId, Raft, StorageError, TypeConfig};
