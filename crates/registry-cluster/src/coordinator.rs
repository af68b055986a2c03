use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use registry_core::{Applied, Command, InstanceMeta, Registry};
use registry_http::HttpInvoker;

use crate::cluster::{Cluster, Role};
use crate::server::Server;
use crate::status::Status;
use crate::takeover::take_office;

/// What the API needs of the cluster, whichever mode runs: who leads, the members,
/// applying a write on the leader, a consistent read, a campaign, membership changes and
/// node-to-node calls. The snapshot cluster ([`SnapshotCoordinator`]) and the raft
/// cluster implement it; the binary picks one and the API never knows which.
///
/// The hot paths (role, renew, reads through [`Coordinator::registry`]) are plain calls;
/// only writes that change the registry are async.
#[async_trait]
pub trait Coordinator: Send + Sync {
    /// The registry this node answers reads from.
    fn registry(&self) -> &Arc<Registry>;
    /// This node's normalised url.
    fn my_url(&self) -> String;
    /// This node's part in the cluster: a write is applied here only as [`Role::Leader`].
    fn role(&self) -> Role;
    /// This node, as `/info` answers it.
    fn myself(&self) -> Server;
    /// The role once a leader is known, waiting for one up to the write timeout when none
    /// is (an election may be under way). The snapshot mode answers at once.
    async fn settle(&self) -> Role {
        self.role()
    }
    /// Every member, as `/cluster` answers them.
    fn servers(&self) -> Vec<Server>;
    /// The leader, if one is known.
    fn leader(&self) -> Option<Server>;
    /// Applies `command` on this node, which leads; answers once it is applied (in raft
    /// mode: committed on a majority and applied here).
    async fn submit(&self, command: Command) -> Result<Applied, CoordinatorError>;
    /// A heartbeat of `instance` in `services` on the leader: renews the instance where
    /// it is known (not a change) and answers the services where it is not, which the
    /// caller registers through [`Coordinator::submit`]. (The snapshot mode registers
    /// those itself and answers none.)
    fn renew(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<Vec<String>, registry_core::Error>;
    /// Returns once this node's registry holds every write acknowledged before the call
    /// (a linearizable read). The snapshot mode has nothing stronger than its copy.
    async fn consistent_read(&self) -> Result<(), CoordinatorError>;
    /// `/sl`: asks this node to lead; answers this node.
    async fn campaign(&self) -> Result<Server, CoordinatorError>;
    /// `/cluster/join?url=`: adds a member (on the leader).
    async fn join(&self, url: &str) -> Result<Vec<Server>, CoordinatorError>;
    /// `/cluster/leave?url=`: removes a member (on the leader).
    async fn leave(&self, url: &str) -> Result<Vec<Server>, CoordinatorError>;
    /// Answers a node-to-node call to `/raft/<name>` with `body`.
    async fn peer_call(&self, name: &str, body: Bytes) -> Result<Bytes, CoordinatorError>;
    /// This node's standing, for `/metrics` and `/ready`.
    async fn status(&self) -> Status;
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
    /// The cluster cannot serve this now (no leader within the write timeout, no
    /// quorum); retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The request is invalid (a bad url, a member that is not one).
    #[error("{0}")]
    Invalid(String),
    /// This cluster mode has no such operation.
    #[error("{0}")]
    Unsupported(String),
    /// The input broke a rule of the data model.
    #[error(transparent)]
    Rejected(#[from] registry_core::Error),
}

/// The snapshot cluster (docs/spec.md §4) behind the [`Coordinator`] seam: writes apply to the
/// registry at once, the leader's data reaches followers by snapshot.
pub struct SnapshotCoordinator {
    cluster: Arc<Cluster>,
    invoker: Arc<dyn HttpInvoker>,
}

impl SnapshotCoordinator {
    /// The seam over `cluster`; `invoker` fetches peers' snapshots for `/sl`.
    pub fn new(cluster: Arc<Cluster>, invoker: Arc<dyn HttpInvoker>) -> Self {
        SnapshotCoordinator { cluster, invoker }
    }
}

#[async_trait]
impl Coordinator for SnapshotCoordinator {
    fn registry(&self) -> &Arc<Registry> {
        self.cluster.registry()
    }

    fn my_url(&self) -> String {
        self.cluster.my_url()
    }

    fn role(&self) -> Role {
        self.cluster.role()
    }

    fn myself(&self) -> Server {
        self.cluster.myself()
    }

    fn servers(&self) -> Vec<Server> {
        self.cluster.servers()
    }

    fn leader(&self) -> Option<Server> {
        self.cluster.leader()
    }

    async fn submit(&self, command: Command) -> Result<Applied, CoordinatorError> {
        let registry = self.cluster.registry();
        let changes = apply_here(registry, &command)?;
        Ok(Applied {
            version: registry.registry_version(),
            changes,
            rejected: false,
        })
    }

    fn renew(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<Vec<String>, registry_core::Error> {
        self.cluster.registry().renews(services, instance, now)?;
        Ok(Vec::new())
    }

    async fn consistent_read(&self) -> Result<(), CoordinatorError> {
        Ok(())
    }

    async fn campaign(&self) -> Result<Server, CoordinatorError> {
        let taken = take_office(&self.cluster, &self.invoker, "set leader by operator", true)
            .await
            .map_err(|e| CoordinatorError::Unavailable(format!("this node cannot take office: {e}")))?;
        taken.ok_or_else(|| {
            CoordinatorError::Unavailable(
                "this node cannot take office: a server with more data appeared meanwhile; retry".to_owned(),
            )
        })
    }

    async fn join(&self, _url: &str) -> Result<Vec<Server>, CoordinatorError> {
        Err(snapshot_membership())
    }

    async fn leave(&self, _url: &str) -> Result<Vec<Server>, CoordinatorError> {
        Err(snapshot_membership())
    }

    async fn peer_call(&self, name: &str, _body: Bytes) -> Result<Bytes, CoordinatorError> {
        Err(CoordinatorError::Unsupported(format!(
            "/raft/{name}: this node runs the snapshot cluster mode, not raft"
        )))
    }

    async fn status(&self) -> Status {
        self.cluster.status()
    }
}

/// Applies a command straight to the leader's registry (the snapshot mode has no log);
/// answers how many changes it made.
fn apply_here(registry: &Registry, command: &Command) -> Result<u64, CoordinatorError> {
    Ok(match command {
        Command::Register {
            service,
            instance,
            now_ms,
        } => u64::from(registry.upsert_instance(service, instance, *now_ms)?),
        Command::Unregister { service, instance } => u64::from(registry.remove_instance(service, instance)?),
        Command::Batch { commands } => {
            let mut changes = 0;
            for command in commands {
                changes += apply_here(registry, command)?;
            }
            changes
        }
        Command::Evict { .. } => {
            return Err(CoordinatorError::Unsupported(
                "the snapshot mode evicts on the leader, not by command".to_owned(),
            ))
        }
    })
}

fn snapshot_membership() -> CoordinatorError {
    CoordinatorError::Unsupported(
        "the snapshot cluster mode takes its members from --server-list; join and leave need --cluster-mode raft"
            .to_owned(),
    )
}
