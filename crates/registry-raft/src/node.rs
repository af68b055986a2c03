use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError as OpenRaftError};
use openraft::{BasicNode, ChangeMembers, Config, ServerState, SnapshotPolicy};
use registry_cluster::{
    normalize_url, Coordinator, CoordinatorError, RaftStatus, Replica, Role, SelfPreservation, Server, Standing, Status,
};
use registry_core::{Applied, Clock, Command, InstanceMeta, Registry};
use registry_http::{get_json, HttpInvoker};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::data_dir::DataDir;
use crate::error::RaftError;
use crate::network::{serve_rpc, Network};
use crate::state_machine::StateMachine;
use crate::types::{node_id, NodeId, Raft};

/// How a raft node runs.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    /// Where the log, the snapshot and the marker live.
    pub data_dir: PathBuf,
    /// This node's url as the others reach it.
    pub my_url: String,
    /// The founding members (this node is added when missing). Used only by a fresh data
    /// dir; an initialised one keeps its stored membership.
    pub server_list: Vec<String>,
    /// This node joins an existing cluster (`POST /cluster/join` on its leader) and never
    /// initialises one of its own.
    pub join: bool,
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in `election` campaigns.
    pub election: (Duration, Duration),
    /// How long a write waits for a leader to commit it before it is answered 503.
    pub write_timeout: Duration,
    /// A snapshot is taken after this many log entries; older entries are purged.
    pub snapshot_every: u64,
    /// How long a lagging follower may take to receive and install a snapshot.
    pub install_timeout: Duration,
    /// Instances not renewed for this long are evicted (by the leader, through the log).
    pub ttl: Duration,
    /// How often the leader looks for expired instances.
    pub evict_interval: Duration,
    /// How often the members' `/info` is read for `/cluster`.
    pub probe_interval: Duration,
    /// The timeout of those probes.
    pub probe_timeout: Duration,
    /// Self-preservation: an eviction pass that would remove more than this fraction of
    /// all instances removes none (1.0: off).
    pub evict_max_fraction: f64,
}

impl RaftSettings {
    /// Defaults sized for HTTP on a busy machine: heartbeats every 250 ms, elections after
    /// 1–2 s of silence, a 5 s write timeout, a snapshot every 20,000 entries.
    pub fn new(data_dir: PathBuf, my_url: String, server_list: Vec<String>) -> RaftSettings {
        RaftSettings {
            data_dir,
            my_url,
            server_list,
            join: false,
            heartbeat: Duration::from_millis(250),
            election: (Duration::from_millis(1000), Duration::from_millis(2000)),
            write_timeout: Duration::from_secs(5),
            snapshot_every: 20_000,
            install_timeout: Duration::from_secs(60),
            ttl: Duration::from_secs(20),
            evict_interval: Duration::from_secs(10),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            evict_max_fraction: 1.0,
        }
    }
}

/// What the node knows of the cluster, refreshed from openraft's metrics.
#[derive(Debug, Clone, Default)]
struct View {
    term: u64,
    leader: Option<NodeId>,
    /// This node leads and has taken office: applied the whole committed log and given
    /// every instance its grace period.
    in_office: bool,
    applied: Option<u64>,
    /// Members (voters and learners) by id, with their urls.
    members: BTreeMap<NodeId, String>,
    voters: BTreeSet<NodeId>,
}

/// The outcome of a proposal, shared by every write of its batch.
type Proposed = Result<Applied, CoordinatorError>;

/// A write waiting to be proposed, and where its outcome goes.
type Proposal = (Command, oneshot::Sender<Proposed>);

/// The most writes one log entry carries.
const MAX_BATCH: usize = 512;
/// How many batches may be in the log at once, not yet applied: while they are, further
/// writes gather into the next batch. Measured with 3 nodes on 2 cores (wrk -c64,
/// register.lua): 1 in flight 8.5–9.4k/s, 2: 8.5–8.8k/s, 4: 7.3k/s, 8: 5.7k/s. Two keep
/// one slow fsync from stalling every write.
const BATCHES_IN_FLIGHT: usize = 2;

/// What the last probe of a member saw.
#[derive(Debug, Clone, Default)]
struct Seen {
    status: bool,
    version: u64,
    term: Option<u64>,
    applied: Option<u64>,
}

/// A maregistry node in a raft cluster (docs/spec.md §7), behind the [`Coordinator`] seam.
pub struct RaftCluster {
    raft: Raft,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    id: NodeId,
    url: String,
    settings: RaftSettings,
    view: RwLock<View>,
    seen: Mutex<BTreeMap<NodeId, Seen>>,
    /// Ticks on every change of the view, so that waiters for a leader wake up.
    changed: watch::Sender<u64>,
    /// Writes waiting to be proposed; the batcher groups them into log entries.
    proposals: mpsc::Sender<Proposal>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// How many times the leader this node sees has changed.
    leader_changes: AtomicU64,
    /// The eviction guard.
    preservation: SelfPreservation,
}

impl RaftCluster {
    /// Opens the data dir, loads the last snapshot into `registry`, starts openraft (which
    /// replays the committed log after the snapshot), and, for a fresh founding node,
    /// initialises the cluster from the server list. Answers only once the data is
    /// loaded: the caller may serve requests as soon as this returns.
    pub async fn start(
        settings: RaftSettings,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        peers: Arc<dyn HttpInvoker>,
        probes: Arc<dyn HttpInvoker>,
    ) -> Result<Arc<RaftCluster>, RaftError> {
        let url = normalize_url(&settings.my_url)?;
        let id = node_id(&url);
        let mut dir = DataDir::open(&settings.data_dir, id, &url)?;
        let state_machine = StateMachine::open(dir.snapshot_path(), registry.clone(), clock.clone())?;
        let config = Config {
            cluster_name: "maregistry".to_owned(),
            heartbeat_interval: millis(settings.heartbeat),
            election_timeout_min: millis(settings.election.0),
            election_timeout_max: millis(settings.election.1),
            install_snapshot_timeout: millis(settings.install_timeout),
            snapshot_max_chunk_size: 256 * 1024 * 1024,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every),
            // Entries kept after a snapshot, for followers slightly behind; one further
            // behind gets the snapshot.
            max_in_snapshot_log_to_keep: settings.snapshot_every.min(1_000),
            ..Config::default()
        }
        .validate()
        .map_err(|e| RaftError::Engine(format!("invalid raft settings: {e}")))?;
        let fresh = dir.fresh;
        let raft = Raft::new(
            id,
            Arc::new(config),
            Network::new(peers),
            dir.log.clone(),
            state_machine,
        )
        .await
        .map_err(|e| RaftError::Engine(e.to_string()))?;

        if !fresh {
            // The core publishes the membership it loaded in its first metrics.
            let _ = raft
                .wait(Some(Duration::from_secs(10)))
                .metrics(
                    |m| m.membership_config.membership().nodes().next().is_some(),
                    "stored membership",
                )
                .await;
            if let Err(e) = check_same_cluster(&raft, &url, &settings.server_list, &settings.data_dir) {
                let _ = raft.shutdown().await;
                return Err(e);
            }
        }
        if fresh && !settings.join {
            let mut members = BTreeMap::new();
            for member in settings.server_list.iter().chain(std::iter::once(&url)) {
                let member = normalize_url(member)?;
                members.insert(node_id(&member), BasicNode { addr: member });
            }
            match raft.initialize(members.clone()).await {
                Ok(()) => {
                    tracing::info!(members = ?members.values().map(|n| &n.addr).collect::<Vec<_>>(), "initialised a new raft cluster")
                }
                Err(e) if e.api_error().is_some() => {
                    tracing::info!(error = %e, "the raft state was initialised already")
                }
                Err(e) => return Err(RaftError::Engine(format!("initialising the cluster: {e}"))),
            }
            dir.mark_initialised()?;
        } else if fresh {
            tracing::info!("waiting to be added to a cluster (POST /cluster/join?url={url} on its leader)");
        } else {
            dir.mark_initialised()?;
            tracing::info!("rejoining with the stored raft state; --server-list is not used");
        }

        let (changed, _) = watch::channel(0);
        let (proposals, queued) = mpsc::channel(16 * MAX_BATCH);
        let preservation = SelfPreservation::new(settings.evict_max_fraction, settings.ttl);
        let node = Arc::new(RaftCluster {
            raft,
            registry,
            clock,
            id,
            url,
            settings,
            view: RwLock::new(View::default()),
            seen: Mutex::new(BTreeMap::new()),
            changed,
            proposals,
            tasks: Mutex::new(Vec::new()),
            leader_changes: AtomicU64::new(0),
            preservation,
        });
        let tasks = vec![
            tokio::spawn(watch_metrics(node.clone(), dir)),
            tokio::spawn(evict(node.clone())),
            tokio::spawn(probe(node.clone(), probes)),
            tokio::spawn(propose(node.clone(), queued)),
        ];
        node.tasks.lock().unwrap_or_else(PoisonError::into_inner).extend(tasks);
        Ok(node)
    }

    /// This node's raft id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Stops the background tasks and openraft.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
    }

    fn view(&self) -> View {
        self.view.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn leader_url(&self, view: &View) -> Option<String> {
        view.leader.and_then(|id| view.members.get(&id).cloned())
    }

    fn describe(&self, view: &View, id: NodeId, url: &str) -> Server {
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
        }
    }

    /// openraft says another node leads (`leader`, when it knows): the request belongs
    /// there.
    fn forward_to(&self, leader: Option<BasicNode>) -> CoordinatorError {
        CoordinatorError::NotLeader {
            leader: leader.map(|n| n.addr).filter(|u| *u != self.url),
        }
    }

    /// The member `url` names, for a membership change on this node, which must lead.
    fn member(&self, url: &str) -> Result<(String, NodeId), CoordinatorError> {
        let url = normalize_url(url).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        if self.role() != Role::Leader {
            let view = self.view();
            return Err(CoordinatorError::NotLeader {
                leader: self.leader_url(&view).filter(|u| *u != self.url),
            });
        }
        let id = node_id(&url);
        Ok((url, id))
    }

    /// Maps openraft's answer to a write-like call.
    fn write_error(&self, e: OpenRaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> CoordinatorError {
        match e {
            OpenRaftError::APIError(ClientWriteError::ForwardToLeader(f)) => self.forward_to(f.leader_node),
            OpenRaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                CoordinatorError::Invalid(format!("membership change refused: {e}"))
            }
            OpenRaftError::Fatal(e) => CoordinatorError::Unavailable(format!("raft stopped: {e}")),
        }
    }

    async fn timed<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, CoordinatorError>>,
    ) -> Result<T, CoordinatorError> {
        let limit = self.settings.write_timeout;
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(CoordinatorError::Unavailable(format!(
                "{what}: no leader committed it within the write timeout ({limit:?}); it may still be applied later"
            )))
        })
    }
}

/// Refuses a data dir that holds another cluster's state: its stored members and the
/// `--server-list` this node was started with have no node in common but this one. (An
/// empty list, or a cluster of one, says nothing either way; a list that names at least
/// one stored member is this cluster, grown or shrunk since.)
fn check_same_cluster(
    raft: &Raft,
    me: &str,
    server_list: &[String],
    data_dir: &std::path::Path,
) -> Result<(), RaftError> {
    let stored: BTreeSet<String> = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .nodes()
        .map(|(_, node)| node.addr.clone())
        .filter(|addr| addr != me)
        .collect();
    let listed: BTreeSet<String> = server_list
        .iter()
        .filter_map(|url| normalize_url(url).ok())
        .filter(|url| url != me)
        .collect();
    if stored.is_empty() || listed.is_empty() || !stored.is_disjoint(&listed) {
        return Ok(());
    }
    Err(RaftError::data_dir(
        crate::data_dir::log_path(data_dir),
        format!(
            "holds the state of another cluster: its members are {stored:?}, but --server-list names {listed:?}. \
             Start this node with its own cluster's list, or give it an empty data dir (and --join) to add it to this \
             one"
        ),
    ))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Groups the writes that arrive together into one log entry each (`Command::Batch`):
/// openraft appends, and fsyncs, one client write at a time, so under load the log would
/// otherwise be bound by the disk's sync latency. A batch is proposed as soon as a slot of
/// [`BATCHES_IN_FLIGHT`] is free, with whatever has queued meanwhile.
async fn propose(node: Arc<RaftCluster>, mut queued: mpsc::Receiver<Proposal>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = queued.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let (mut commands, waiters): (Vec<Command>, Vec<oneshot::Sender<Proposed>>) = batch.into_iter().unzip();
        let command = match commands.len() {
            1 => commands.pop().unwrap_or(Command::Batch { commands: Vec::new() }),
            _ => Command::Batch { commands },
        };
        let node = node.clone();
        tokio::spawn(async move {
            let outcome = match node.raft.client_write(command).await {
                Ok(response) => Ok(response.data),
                Err(e) => Err(node.write_error(e)),
            };
            for waiter in waiters {
                let _ = waiter.send(outcome.clone());
            }
            drop(slot);
        });
    }
}

/// Follows openraft's metrics into the view. When this node becomes leader it takes
/// office: it waits until it has applied the whole committed log (a read index round),
/// then gives every instance one TTL of grace, and only then answers as leader.
async fn watch_metrics(node: Arc<RaftCluster>, mut dir: DataDir) {
    let mut metrics = node.raft.metrics();
    let mut office: Option<JoinHandle<()>> = None;
    // openraft updates its metrics several times per write: copy the few fields the view
    // needs, and rebuild the member maps only when the membership itself changed.
    let mut membership_at = None;
    loop {
        let (term, leader, leads, applied, has_log, membership) = {
            let m = metrics.borrow_and_update();
            let leads = m.state == ServerState::Leader && m.current_leader == Some(node.id);
            let membership =
                (membership_at != Some(*m.membership_config.log_id())).then(|| m.membership_config.clone());
            (
                m.current_term,
                m.current_leader,
                leads,
                m.last_applied.map(|l| l.index),
                m.last_log_index.is_some(),
                membership,
            )
        };
        let (changed, in_office) = {
            let mut view = node.view.write().unwrap_or_else(PoisonError::into_inner);
            let mut changed = view.term != term || view.leader != leader;
            if view.leader != leader && leader.is_some() {
                node.leader_changes.fetch_add(1, Ordering::Relaxed);
            }
            if changed || !leads {
                changed |= view.in_office;
                view.in_office = false;
            }
            view.term = term;
            view.leader = leader;
            view.applied = applied;
            if let Some(membership) = membership {
                membership_at = Some(*membership.log_id());
                view.members = membership
                    .membership()
                    .nodes()
                    .map(|(id, n)| (*id, n.addr.clone()))
                    .collect();
                view.voters = membership.membership().voter_ids().collect();
                changed = true;
            }
            (changed, view.in_office)
        };
        if changed {
            node.changed.send_modify(|n| *n += 1);
            tracing::debug!(term, leader = ?leader, "raft view changed");
        }
        if has_log && !dir.is_initialised() {
            if let Err(e) = dir.mark_initialised() {
                tracing::error!(error = %e, "cannot record that this node holds raft state");
            }
        }
        if leads && !in_office && office.as_ref().is_none_or(|t| t.is_finished()) {
            office = Some(tokio::spawn(take_office(node.clone(), term)));
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

async fn take_office(node: Arc<RaftCluster>, term: u64) {
    loop {
        match node.raft.ensure_linearizable().await {
            Ok(_) => break,
            Err(OpenRaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => return,
            Err(OpenRaftError::Fatal(_)) => return,
            Err(e) => {
                tracing::debug!(error = %e, "taking office: the committed log is not confirmed yet");
                tokio::time::sleep(node.settings.heartbeat).await;
            }
        }
    }
    let now = node.clock.now_ms();
    node.registry.renew_all(now);
    let mut view = node.view.write().unwrap_or_else(PoisonError::into_inner);
    if view.term == term && view.leader == Some(node.id) {
        view.in_office = true;
        drop(view);
        node.changed.send_modify(|n| *n += 1);
        tracing::info!(
            term,
            version = node.registry.registry_version(),
            "this node leads: committed log applied, every instance renewed now"
        );
    }
}

/// The leader's evictor: every interval, the instances not renewed for a TTL go out in
/// one evict command; applying it removes only those not registered again since.
async fn evict(node: Arc<RaftCluster>) {
    let ttl = millis(node.settings.ttl);
    let mut ticker = tokio::time::interval(node.settings.evict_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if node.role() != Role::Leader {
            continue;
        }
        let now = node.clock.now_ms();
        let victims = node.registry.expired(now, ttl);
        if victims.is_empty()
            || !node
                .preservation
                .allows(victims.len(), || node.registry.stats().instances)
        {
            continue;
        }
        let count = victims.len();
        match node.submit(Command::Evict { now_ms: now, victims }).await {
            Ok(applied) => tracing::info!(
                expired = count,
                version = applied.version,
                "evicted instances that stopped renewing (unless registered again meanwhile)"
            ),
            Err(e) => tracing::warn!(error = %e, "eviction not committed; trying again next round"),
        }
    }
}

/// Reads every other member's `/info` for `/cluster` (status, version, term, applied).
async fn probe(node: Arc<RaftCluster>, invoker: Arc<dyn HttpInvoker>) {
    let mut ticker = tokio::time::interval(node.settings.probe_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let members = node.view().members;
        for (id, url) in members.into_iter().filter(|(id, _)| *id != node.id) {
            let info = format!("{url}/info");
            let answer =
                tokio::time::timeout(node.settings.probe_timeout, get_json::<Server>(invoker.as_ref(), &info)).await;
            let seen = match answer {
                Ok(Ok(server)) => Seen {
                    status: true,
                    version: server.version,
                    term: server.term,
                    applied: server.applied,
                },
                _ => Seen::default(),
            };
            node.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, seen);
        }
    }
}

#[async_trait]
impl Coordinator for RaftCluster {
    fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn my_url(&self) -> String {
        self.url.clone()
    }

    fn role(&self) -> Role {
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        match view.leader {
            Some(id) if id == self.id && view.in_office => Role::Leader,
            Some(id) if id != self.id => match view.members.get(&id) {
                Some(url) => Role::Follower { leader: url.clone() },
                None => Role::NoLeader,
            },
            _ => Role::NoLeader,
        }
    }

    fn myself(&self) -> Server {
        self.describe(&self.view(), self.id, &self.url)
    }

    async fn status(&self) -> Status {
        let (standing, leader) = match self.role() {
            Role::Leader => (Standing::Leader, Some(self.url.clone())),
            Role::Follower { leader } => (Standing::Follower, Some(leader)),
            Role::NoLeader => (Standing::NoLeader, None),
        };
        // The commit index is not in openraft's metrics: ask the core.
        let committed = self
            .raft
            .with_raft_state(|state| state.committed.map(|log| log.index))
            .await
            .ok()
            .flatten();
        let (term, last_log_index, applied, replication) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let replication: Vec<(NodeId, Option<u64>)> = m
                .replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != self.id)
                .map(|(id, matched)| (*id, matched.map(|log| log.index)))
                .collect();
            (
                m.current_term,
                m.last_log_index,
                m.last_applied.map(|l| l.index),
                replication,
            )
        };
        let view = self.view();
        let replication = replication
            .into_iter()
            .map(|(node_id, matched)| Replica {
                node_id,
                url: view.members.get(&node_id).cloned().unwrap_or_default(),
                matched,
                lag: last_log_index.unwrap_or(0).saturating_sub(matched.unwrap_or(0)),
            })
            .collect();
        Status {
            mode: "raft",
            standing,
            leader,
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
            evictions_skipped: self.preservation.skipped(),
            sync: None,
            raft: Some(RaftStatus {
                node_id: self.id,
                term,
                last_log_index,
                committed,
                applied,
                replication,
            }),
        }
    }

    fn servers(&self) -> Vec<Server> {
        let view = self.view();
        let mut members = view.members.clone();
        members.entry(self.id).or_insert_with(|| self.url.clone());
        members.iter().map(|(id, url)| self.describe(&view, *id, url)).collect()
    }

    fn leader(&self) -> Option<Server> {
        let view = self.view();
        let id = view.leader?;
        let url = view.members.get(&id)?;
        let server = self.describe(&view, id, url);
        server.leader.then_some(server)
    }

    async fn settle(&self) -> Role {
        let mut changed = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + self.settings.write_timeout;
        loop {
            let role = self.role();
            if role != Role::NoLeader {
                return role;
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                return Role::NoLeader;
            }
        }
    }

    async fn submit(&self, command: Command) -> Result<Applied, CoordinatorError> {
        self.timed("the write", async {
            let (answer, outcome) = oneshot::channel();
            self.proposals
                .send((command, answer))
                .await
                .map_err(|_| CoordinatorError::Unavailable("this node is shutting down".to_owned()))?;
            outcome.await.unwrap_or_else(|_| {
                Err(CoordinatorError::Unavailable(
                    "the write was dropped at shutdown".to_owned(),
                ))
            })
        })
        .await
    }

    fn renew(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<Vec<String>, registry_core::Error> {
        self.registry.renew_known_only(services, instance, now)
    }

    async fn consistent_read(&self) -> Result<(), CoordinatorError> {
        self.timed("the consistent read", async {
            match self.raft.ensure_linearizable().await {
                Ok(_) => Ok(()),
                Err(OpenRaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    Err(self.forward_to(f.leader_node))
                }
                Err(e) => Err(CoordinatorError::Unavailable(format!(
                    "no quorum confirmed the read: {e}"
                ))),
            }
        })
        .await
    }

    async fn campaign(&self) -> Result<Server, CoordinatorError> {
        self.raft
            .trigger()
            .elect()
            .await
            .map_err(|e| CoordinatorError::Unavailable(format!("raft stopped: {e}")))?;
        Ok(self.myself())
    }

    async fn join(&self, url: &str) -> Result<Vec<Server>, CoordinatorError> {
        let (url, id) = self.member(url)?;
        tracing::info!(%url, id, "adding a member: as a learner until it has caught up, then as a voter");
        // openraft's own "blocking" add waits half a second and then answers success
        // whether or not the learner caught up; wait here for its replication to reach
        // the membership entry that added it, up to the install timeout.
        let added = self
            .raft
            .add_learner(id, BasicNode { addr: url.clone() }, false)
            .await
            .map_err(|e| self.write_error(e))?;
        let target = added.log_id.index;
        let mut metrics = self.raft.metrics();
        let caught_up = async {
            loop {
                let matched = metrics
                    .borrow()
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(&id).cloned().flatten())
                    .map(|log_id| log_id.index);
                if matched.is_some_and(|index| index >= target) {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        };
        let limit = self.settings.install_timeout;
        if !matches!(tokio::time::timeout(limit, caught_up).await, Ok(true)) {
            return Err(CoordinatorError::Unavailable(format!(
                "{url} did not catch up within {limit:?} (is it running and reachable, with this cluster's \
                 token?); it stays a learner, which receives the log but does not vote: retry the join, or \
                 remove it with /cluster/leave"
            )));
        }
        let voters = self.view().voters.len() + 1;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.write_error(e))?;
        tracing::info!(%url, voters, "member added");
        Ok(self.servers())
    }

    async fn leave(&self, url: &str) -> Result<Vec<Server>, CoordinatorError> {
        let (url, id) = self.member(url)?;
        let view = self.view();
        if !view.members.contains_key(&id) {
            return Err(CoordinatorError::Invalid(format!(
                "{url} is not a member of this cluster"
            )));
        }
        if view.voters.contains(&id) && view.voters.len() == 1 {
            return Err(CoordinatorError::Invalid(format!(
                "{url} is the last voter; a cluster cannot remove it"
            )));
        }
        // A voter is removed as a voter (retain = false drops it from the nodes too); a
        // learner is removed as a node.
        let change = if view.voters.contains(&id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.write_error(e))?;
        tracing::info!(%url, "member removed");
        Ok(self.servers())
    }

    async fn peer_call(&self, name: &str, body: Bytes) -> Result<Bytes, CoordinatorError> {
        serve_rpc(&self.raft, name, body)
            .await
            .map_err(CoordinatorError::Invalid)
    }
}
