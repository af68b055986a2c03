//! What maregistry's integration tests share, so that the server's tests and the client's
//! start nodes, talk to them and wait for them the same way (docs/spec.md is what they
//! check).
//!
//! - `node` — [`Node`]: a node in this process on `127.0.0.1:0`, stopped gracefully or
//!   dropped; clusters of them in either mode ([`start_cluster`], [`start_raft`]); a fake
//!   peer the test plays ([`serve_fake`]).
//! - `client` — [`Client`]: plain HTTP, as a client would send it.
//! - `wait` — [`eventually`] and the waits built on it (an agreed leader, every node
//!   holding the same data): bounded polls instead of sleeps.
//! - `process` — [`Proc`]: the real binary as a child process, for `kill -9` and SIGSTOP;
//!   free ports; [`VersionWatch`], which catches a version going back.
//! - `scenario` — [`Scenario`]: a real client as a child process, stepping through its
//!   script with the test.
//! - `pki` — [`Pki`]: a test certificate authority and the certificates it issues
//!   ([`Issued`]), for the TLS tests.
//! - `deps` — what the tests need beyond Rust, from `scripts/test-deps.sh`.
//! - `linearizable` — a linearizability checker for histories of registered-or-not
//!   instances (Wing and Gong's search).

pub mod deps;
pub mod linearizable;

mod client;
mod node;
mod pki;
mod process;
mod scenario;
mod wait;

pub use client::{batch_op, instance, Client};
pub use node::{
    cluster_config, free_listener, grpc_listener, listen, listeners, raft_mode, serve_fake, start_cluster, start_grpc,
    start_raft, start_raft_grpc, start_raft_with, Node,
};
pub use pki::{Issued, Pki};
pub use process::{binary, free_ports, server_list, Proc, VersionWatch};
pub use scenario::Scenario;
pub use wait::{agreed_leader, all_hold, eventually, info, loading_the_machine, ports_on, timing_a_browser, LIMIT};
