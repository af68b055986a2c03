//! [`RaftCluster`]: what a raft node holds (openraft, the registry, the view of the cluster
//! its tasks keep up to date) and the small helpers the other parts share.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use openraft::error::{ClientWriteError, RaftError as OpenRaftError};
use openraft::{BasicNode, RaftMetrics};
use registry_cluster::coordinator::{CoordinatorError, SelfPreservation, Server};
use registry_core::{Applied, Clock, Command, Registry};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::types::{NodeId, Raft};

use super::settings::RaftSettings;

/// What the node knows of the cluster, refreshed from openraft's metrics.
#[derive(Debug, Clone, Default)]
pub(super) struct View {
    pub(super) term: u64,
    pub(super) leader: Option<NodeId>,
    /// This node leads and has taken office: applied the whole committed log and given
    /// every instance its grace period.
    pub(super) in_office: bool,
    pub(super) applied: Option<u64>,
    /// Members (voters and learners) by id, with their urls.
    pub(super) members: BTreeMap<NodeId, String>,
    pub(super) voters: BTreeSet<NodeId>,
}

/// The outcome of a proposal, shared by every write of its batch.
pub(super) type Proposed = Result<Applied, CoordinatorError>;

/// A write waiting to be proposed, and where its outcome goes.
pub(super) type Proposal = (Command, oneshot::Sender<Proposed>);

/// The most writes one log entry carries.
pub(super) const MAX_BATCH: usize = 512;
/// How many batches may be in the log at once, not yet applied: while they are, further
/// writes gather into the next batch. Measured with 3 nodes on 2 cores (wrk -c64,
/// register.lua): 1 in flight 8.5–9.4k/s, 2: 8.5–8.8k/s, 4: 7.3k/s, 8: 5.7k/s. Two keep
/// one slow fsync from stalling every write.
pub(super) const BATCHES_IN_FLIGHT: usize = 2;

/// What the last probe of a member saw.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen {
    pub(super) status: bool,
    pub(super) version: u64,
    pub(super) term: Option<u64>,
    pub(super) applied: Option<u64>,
    pub(super) grpc_connections: Option<u64>,
}

/// A maregistry node in a raft cluster (docs/spec.md §7), behind the
/// [`registry_cluster::coordinator::Coordinator`] seam.
pub struct RaftCluster {
    pub(super) raft: Raft,
    pub(super) registry: Arc<Registry>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) id: NodeId,
    pub(super) url: String,
    pub(super) settings: RaftSettings,
    pub(super) view: RwLock<View>,
    pub(super) seen: Mutex<BTreeMap<NodeId, Seen>>,
    /// Ticks on every change of the view, so that waiters for a leader wake up.
    pub(super) changed: watch::Sender<u64>,
    /// Writes waiting to be proposed; the batcher groups them into log entries.
    pub(super) proposals: mpsc::Sender<Proposal>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// How many times the leader this node sees has changed.
    pub(super) leader_changes: AtomicU64,
    /// The eviction guard.
    pub(super) preservation: SelfPreservation,
    /// When this node last heard a leader (or granted a vote, or campaigned): the start of
    /// its election timer.
    pub(super) contact: Mutex<tokio::time::Instant>,
    /// The last pre-vote this node granted, its own round included.
    pub(super) promised: Mutex<Option<super::election::Promise>>,
    /// Why openraft's core stopped, once it has (a storage error, a broken invariant).
    pub(super) failure: watch::Sender<Option<String>>,
    /// The log openraft writes (read for the pre-vote's last log id).
    pub(super) log: LogStore,
    /// The state machine openraft applies to (read for the commands since the snapshot).
    pub(super) state_machine: StateMachine,
}

impl RaftCluster {
    /// This node's raft id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Completes when openraft's core has stopped on its own (not by [`RaftCluster::shutdown`]),
    /// with why: the node cannot take part in the cluster any more and should exit.
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.subscribe();
        let why = failure.wait_for(Option::is_some).await.map(|why| why.clone());
        match why {
            Ok(why) => why.unwrap_or_default(),
            // The node is being dropped: never complete.
            Err(_) => std::future::pending().await,
        }
    }

    pub(super) fn view(&self) -> View {
        self.view.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A leader whose heartbeats a quorum answered within three quarters of the shortest
    /// election timeout (a single voter always is). Past that, the others may be electing
    /// another, and this node stops calling itself leader; openraft publishes the figure
    /// at least every 1.5 heartbeats, so it does within about one election timeout.
    pub(super) fn quorum_fresh(&self, m: &RaftMetrics<NodeId, BasicNode>) -> bool {
        let voters = m.membership_config.membership().voter_ids().count();
        let limit = self.settings.election.0.as_millis() * 3 / 4;
        voters <= 1 || m.millis_since_quorum_ack.is_some_and(|ms| u128::from(ms) <= limit)
    }

    pub(super) fn leader_url(&self, view: &View) -> Option<String> {
        view.leader.and_then(|id| view.members.get(&id).cloned())
    }

    pub(super) fn describe(&self, view: &View, id: NodeId, url: &str) -> Server {
        let leader = view.leader == Some(id) && (id != self.id || view.in_office);
        if id == self.id {
            return Server {
                url: url.to_owned(),
                status: true,
                leader,
                version: self.registry.registry_version(),
                node_id: Some(id),
                term: Some(view.term),
                applied: view.applied,
                grpc_connections: None,
            };
        }
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
            .unwrap_or_default();
        Server {
            url: url.to_owned(),
            status: seen.status,
            leader,
            version: seen.version,
            node_id: Some(id),
            term: seen.term,
            applied: seen.applied,
            grpc_connections: seen.grpc_connections,
        }
    }

    /// openraft says another node leads (`leader`, when it knows): the request belongs
    /// there.
    pub(super) fn forward_to(&self, leader: Option<BasicNode>) -> CoordinatorError {
        CoordinatorError::NotLeader {
            leader: leader.map(|n| n.addr).filter(|u| *u != self.url),
        }
    }

    /// Maps openraft's answer to a write-like call.
    pub(super) fn write_error(
        &self,
        e: OpenRaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
    ) -> CoordinatorError {
        match e {
            OpenRaftError::APIError(ClientWriteError::ForwardToLeader(f)) => self.forward_to(f.leader_node),
            OpenRaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                CoordinatorError::Invalid(format!("membership change refused: {e}"))
            }
            // It may be in the log already, written before the engine stopped.
            OpenRaftError::Fatal(e) => CoordinatorError::Indeterminate(format!(
                "raft stopped: {e}; the write may or may not have been applied"
            )),
        }
    }

    /// Maps openraft's answer to a proposed client write. openraft answers
    /// `ForwardToLeader` both when this node did not lead as the write was proposed
    /// (nothing was written) and when a new leader truncated the entry from this node's
    /// log: then other nodes may still hold it, and a later leader may commit it. The two
    /// look alike, so the write's outcome is unknown and it must not be sent to another
    /// leader (docs/spec.md §7, "At most once").
    pub(super) fn proposal_error(
        &self,
        e: OpenRaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
    ) -> CoordinatorError {
        match e {
            OpenRaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                let leader = f.leader_node.map_or_else(|| "none known".to_owned(), |n| n.addr);
                CoordinatorError::Indeterminate(format!(
                    "leadership moved while the write was proposed (the leader now: {leader}): it may or may not \
                     be applied"
                ))
            }
            e => self.write_error(e),
        }
    }

    /// A write, given up after the write timeout: by then it may be in the log, so its
    /// outcome is not known.
    pub(super) async fn timed_write<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CoordinatorError>>,
    ) -> Result<T, CoordinatorError> {
        self.timed(call, || {
            CoordinatorError::Indeterminate(format!(
                "no leader committed the write within the write timeout ({:?}): it may or may not be applied",
                self.settings.write_timeout
            ))
        })
        .await
    }

    /// A consistent read, given up after the write timeout.
    pub(super) async fn timed_read<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CoordinatorError>>,
    ) -> Result<T, CoordinatorError> {
        self.timed(call, || {
            CoordinatorError::Unavailable(format!(
                "no quorum confirmed this node's data within the write timeout ({:?}): the consistent read is \
                 refused",
                self.settings.write_timeout
            ))
        })
        .await
    }

    /// `call`, or `late()` once the write timeout has passed.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CoordinatorError>>,
        late: impl FnOnce() -> CoordinatorError,
    ) -> Result<T, CoordinatorError> {
        tokio::time::timeout(self.settings.write_timeout, call)
            .await
            .unwrap_or_else(|_| Err(late()))
    }
}
