//! Starting a raft node: the data dir, openraft's configuration, a new cluster initialised
//! from the server list, or the stored state rejoined (refused when it is another
//! cluster's); and stopping it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use openraft::{BasicNode, Config, SnapshotPolicy};
use registry_cluster::coordinator::{normalize_url, SelfPreservation};
use registry_core::{Clock, Registry};
use registry_http::HttpInvoker;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::data_dir::DataDir;
use crate::error::RaftError;
use crate::network::Network;
use crate::state_machine::StateMachine;
use crate::types::{node_id, Raft};

use super::batching::propose;
use super::cluster::{RaftCluster, View, MAX_BATCH};
use super::compaction::snapshot_when_heavy;
use super::election::campaign_when_silent;
use super::settings::{millis, RaftSettings};
use super::view::{probe, watch_metrics};

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
        let mut dir = DataDir::open(&settings.data_dir, id, &url, settings.log_faults.clone())?;
        let state_machine = StateMachine::open(dir.snapshot_path(), registry.clone(), clock.clone())?;
        let config = openraft_config(&settings)?;
        let fresh = dir.fresh;
        let raft = Raft::new(
            id,
            Arc::new(config),
            Network::new(peers.clone()),
            dir.log.clone(),
            state_machine.clone(),
        )
        .await
        .map_err(|e| RaftError::Engine(e.to_string()))?;
        if fresh {
            found_or_wait(&raft, &settings, &url).await?;
        } else {
            rejoin(&raft, &settings, &url).await?;
        }
        if !fresh || !settings.join {
            dir.mark_initialised()?;
        }
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
            changed: watch::channel(0).0,
            proposals,
            tasks: Mutex::new(Vec::new()),
            leader_changes: AtomicU64::new(0),
            preservation,
            contact: Mutex::new(tokio::time::Instant::now()),
            promised: Mutex::new(None),
            failure: watch::channel(None).0,
            log: dir.log.clone(),
            state_machine,
        });
        let tasks = vec![
            tokio::spawn(watch_metrics(node.clone(), dir)),
            tokio::spawn(probe(node.clone(), probes)),
            tokio::spawn(propose(node.clone(), queued)),
            tokio::spawn(campaign_when_silent(node.clone(), peers)),
            tokio::spawn(snapshot_when_heavy(node.clone())),
        ];
        node.tasks.lock().unwrap_or_else(PoisonError::into_inner).extend(tasks);
        Ok(node)
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

/// openraft's configuration from ours.
fn openraft_config(settings: &RaftSettings) -> Result<Config, RaftError> {
    Config {
        cluster_name: "maregistry".to_owned(),
        heartbeat_interval: millis(settings.heartbeat),
        // openraft's own election timer is off (`election` runs ours, with a pre-vote);
        // these two set only its leader lease (the longer one): the time a follower
        // refuses votes after a heartbeat, half our shortest election timeout.
        enable_elect: false,
        election_timeout_min: millis(settings.election.0 / 2),
        election_timeout_max: millis(settings.election.0 / 2) + 1,
        install_snapshot_timeout: millis(settings.install_timeout),
        // A snapshot travels as its file, 8 MiB per request: neither side holds more of
        // it in memory than one chunk.
        snapshot_max_chunk_size: 8 * 1024 * 1024,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every),
        // Entries kept after a snapshot, for followers slightly behind; one further
        // behind gets the snapshot.
        max_in_snapshot_log_to_keep: settings.snapshot_every.min(1_000),
        ..Config::default()
    }
    .validate()
    .map_err(|e| RaftError::Engine(format!("invalid raft settings: {e}")))
}

/// A fresh node: founds the cluster from the server list, or (`--join`) waits to be added.
async fn found_or_wait(raft: &Raft, settings: &RaftSettings, url: &str) -> Result<(), RaftError> {
    if settings.join {
        tracing::info!("waiting to be added to a cluster (POST /cluster/join?url={url} on its leader)");
        return Ok(());
    }
    let mut members = BTreeMap::new();
    for member in settings
        .server_list
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(url))
    {
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
    Ok(())
}

/// A node with stored state: rejoins with it, refused when it is another cluster's.
async fn rejoin(raft: &Raft, settings: &RaftSettings, url: &str) -> Result<(), RaftError> {
    // The core publishes the membership it loaded in its first metrics.
    let _ = raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.membership_config.membership().nodes().next().is_some(),
            "stored membership",
        )
        .await;
    if let Err(e) = check_same_cluster(raft, url, &settings.server_list, &settings.data_dir) {
        let _ = raft.shutdown().await;
        return Err(e);
    }
    tracing::info!("rejoining with the stored raft state; --server-list is not used");
    Ok(())
}
