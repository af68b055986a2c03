//! The [`Coordinator`] trait: what the API needs of the cluster, whichever mode runs.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use registry_core::{Applied, Command, Registry};

use super::preservation::SelfPreservation;
use super::routes::{ModeRoute, RouteCall};
use super::server::Server;
use super::status::Status;

/// This node's part in the cluster right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This node takes the writes.
    Leader,
    /// Another node leads; writes go to its url.
    Follower {
        /// The leader's url.
        leader: String,
    },
    /// No leader is known (before the first probe, without a quorum, during an
    /// election): writes are refused.
    NoLeader,
}

/// What the API needs of the cluster, whichever mode runs: who leads, the members,
/// applying a write on the leader, a consistent read, a campaign, and the endpoints only
/// that mode has. The snapshot cluster and the raft cluster implement it; the binary
/// picks one and the API never knows which.
///
/// The hot paths (role, reads and heartbeats through [`Coordinator::registry`]) are plain
/// calls; only writes that change the registry are async.
#[async_trait]
pub trait Coordinator: Send + Sync {
    /// The registry this node answers reads from (and, as leader, renews in).
    fn registry(&self) -> &Arc<Registry>;
    /// This node's normalised url.
    fn my_url(&self) -> String;
    /// This node's part in the cluster: a write is applied here only as [`Role::Leader`].
    fn role(&self) -> Role;
    /// This node, as `/info` answers it.
    fn myself(&self) -> Server;
    /// The role once a leader is known, waiting for one up to the write timeout when none
    /// is (an election may be under way). A mode with nothing to wait for answers at once.
    async fn settle(&self) -> Role {
        self.role()
    }
    /// Completes once this node no longer takes `leader` for the leader (another was
    /// elected, or none is known any more): a relay to it is then abandoned. A mode that
    /// does not follow leadership that closely never completes.
    async fn leader_moved(&self, leader: &str) {
        let _ = leader;
        std::future::pending::<()>().await;
    }
    /// Every member, as `/cluster` answers them.
    fn servers(&self) -> Vec<Server>;
    /// The leader, if one is known.
    fn leader(&self) -> Option<Server>;
    /// Applies `command` (checked with [`Command::validate`] first) on this node, which
    /// leads; answers once it is applied (in raft mode: committed on a majority and
    /// applied here). Both modes apply with [`Registry::apply`].
    async fn submit(&self, command: Command) -> Result<Applied, CoordinatorError>;
    /// Returns once this node's registry holds every write acknowledged before the call
    /// (a linearizable read). A mode with nothing stronger than its copy answers at once.
    async fn consistent_read(&self) -> Result<(), CoordinatorError>;
    /// `/sl`: asks this node to lead; answers this node.
    async fn campaign(&self) -> Result<Server, CoordinatorError>;
    /// The endpoints this mode serves beyond the shared API (membership changes,
    /// node-to-node calls).
    fn routes(&self) -> &'static [ModeRoute];
    /// Answers a call to `routes()[route]` with the JSON to send back.
    async fn serve_route(&self, route: usize, call: RouteCall) -> Result<Bytes, CoordinatorError>;
    /// The guard every eviction pass of this node asks first.
    fn preservation(&self) -> &SelfPreservation;
    /// This node's standing, for `/metrics` and `/ready`.
    async fn status(&self) -> Status;
    /// Why this node can no longer do its job at all (its consensus engine stopped, its
    /// storage failed), once it cannot: `/health`, `/ready` and `/metrics` say so, and the
    /// binary exits. A mode that cannot fail that way answers `None`.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// Why the cluster could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoordinatorError {
    /// Another node leads (or none is known): the request belongs to the leader.
    #[error("this node does not lead")]
    NotLeader {
        /// The leader's url, when known.
        leader: Option<String>,
    },
    /// The cluster cannot serve this now (no leader, no quorum); a write was certainly
    /// not applied. Retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A write was proposed (or handed to a leader) but no outcome came back in time: it
    /// may or may not be applied, and must not be sent to a leader again by the node
    /// (docs/spec.md §7, "At most once"); the client may retry.
    #[error("{0}")]
    Indeterminate(String),
    /// The request is invalid (a bad url, a member that is not one, a change this mode
    /// does not make).
    #[error("{0}")]
    Invalid(String),
    /// The input broke a rule of the data model.
    #[error(transparent)]
    Rejected(#[from] registry_core::Error),
}
