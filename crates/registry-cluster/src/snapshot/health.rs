use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use registry_http::{get_json, HttpInvoker};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::coordinator::Role;

use super::cluster::Cluster;
use super::config_sync::follow_configs;
use super::sync::{SyncOutcome, SyncState};
use super::takeover::take_office;
use crate::coordinator::Server;

/// The cluster loops (docs/spec.md §4.2). Every `interval`: probe every other server's `/info`
/// concurrently and elect if this node does not see exactly one leader. Beside it, as a
/// follower, a sync loop long-polls the leader (`/snapshot?since=V&wait=…`), so that a
/// change reaches the follower as soon as the leader has it, as a delta; another does the
/// same for the configs (`/cluster/configs?since=R&wait=…`).
pub struct ServerHealth {
    cluster: Arc<Cluster>,
    invoker: Arc<dyn HttpInvoker>,
    interval: Duration,
    probe_timeout: Duration,
    sync_wait: Duration,
}

/// How long a follower's long poll waits on the leader by default; the poll is dropped
/// earlier when the leader changes.
pub const DEFAULT_SYNC_WAIT: Duration = Duration::from_secs(30);

/// How often a follower waiting on a long poll checks that it still follows that leader.
const ROLE_CHECK: Duration = Duration::from_millis(100);

/// The least time between the starts of two polls. Under a stream of changes, what
/// happens meanwhile comes as one delta instead of one answer per change (each answer
/// carries every changed service whole); a lone change is not delayed at all.
const MIN_POLL_GAP: Duration = Duration::from_millis(10);

/// Pacing of large answers: after an answer of `n` bytes (decoded) the next poll starts
/// `n / SYNC_BYTES_PER_SECOND` seconds after the last one began (at most
/// [`MAX_POLL_GAP`]), so that a stream of changes to large services costs a follower (and
/// the leader) about this much JSON per second, however many changes come. Small deltas,
/// the usual case, are not slowed.
const SYNC_BYTES_PER_SECOND: f64 = 2.0 * 1024.0 * 1024.0;
const MAX_POLL_GAP: Duration = Duration::from_millis(200);

/// The gap before the next poll, after an answer of `bytes`.
fn poll_gap(bytes: usize) -> Duration {
    Duration::from_secs_f64(bytes as f64 / SYNC_BYTES_PER_SECOND).clamp(MIN_POLL_GAP, MAX_POLL_GAP)
}

impl ServerHealth {
    /// A loop over `cluster` that talks to peers through `invoker`; each probe is cut off
    /// after `probe_timeout`.
    pub fn new(
        cluster: Arc<Cluster>,
        invoker: Arc<dyn HttpInvoker>,
        interval: Duration,
        probe_timeout: Duration,
    ) -> Self {
        ServerHealth {
            cluster,
            invoker,
            interval,
            probe_timeout,
            sync_wait: DEFAULT_SYNC_WAIT,
        }
    }

    /// This loop with followers' long polls waiting at most `wait` on the leader.
    pub fn with_sync_wait(mut self, wait: Duration) -> Self {
        self.sync_wait = wait;
        self
    }

    /// Runs probe rounds and the sync loop until `shutdown` completes; work in progress
    /// is abandoned at its next await point. The first round starts at once, so a
    /// starting node probes before it elects.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let probing = async {
            let mut ticker = tokio::time::interval(self.interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                self.probe_round().await;
            }
        };
        let following = follow(
            self.cluster.clone(),
            self.invoker.clone(),
            self.interval,
            self.sync_wait,
            SyncState::default(),
        );
        let configs = follow_configs(
            self.cluster.clone(),
            self.invoker.clone(),
            self.interval,
            self.sync_wait,
        );
        tokio::select! {
            _ = &mut shutdown => {}
            _ = probing => {}
            _ = following => {}
            _ = configs => {}
        }
        tracing::debug!("cluster health loop stopped");
    }

    /// One round: probe and elect (taking office when elected). Answers the role it
    /// ended in. Syncing is the follower loop's work ([`ServerHealth::run`]).
    pub async fn probe_round(&self) -> Role {
        let probes = self.probe_all().await;
        let mut role = self.cluster.update(&probes);
        if self.cluster.is_candidate() {
            if let Err(e) = take_office(&self.cluster, &self.invoker, "elected", false).await {
                tracing::error!(error = %e, "elected, but the data of a server with a higher registry version could not be adopted: not taking office (writes are refused) until it can");
            }
            role = self.cluster.role();
        }
        role
    }

    async fn probe_all(&self) -> Vec<(String, Option<Server>)> {
        let peers = self.cluster.peer_urls();
        let mut probes = JoinSet::new();
        for (index, url) in peers.iter().enumerate() {
            let invoker = self.invoker.clone();
            let info = format!("{url}/info");
            let timeout = self.probe_timeout;
            probes.spawn(async move {
                let seen = match tokio::time::timeout(timeout, get_json::<Server>(invoker.as_ref(), &info)).await {
                    Ok(Ok(server)) => Some(server),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "probe failed");
                        None
                    }
                    Err(_) => {
                        tracing::debug!(url = %info, "probe timed out");
                        None
                    }
                };
                (index, seen)
            });
        }
        let mut results: Vec<(String, Option<Server>)> = peers.into_iter().map(|url| (url, None)).collect();
        while let Some(joined) = probes.join_next().await {
            if let Ok((index, seen)) = joined {
                results[index].1 = seen;
            }
        }
        results
    }
}

/// The sync loop of a follower: long-polls the leader it follows, one poll after the
/// other; a poll is dropped when this node stops following that leader. When it does
/// not follow, or a poll fails, it waits `interval` before looking again.
async fn follow(
    cluster: Arc<Cluster>,
    invoker: Arc<dyn HttpInvoker>,
    interval: Duration,
    wait: Duration,
    mut sync: SyncState,
) {
    let mut last_poll = tokio::time::Instant::now() - MIN_POLL_GAP;
    loop {
        tokio::time::sleep_until(last_poll + poll_gap(sync.last_answer_bytes)).await;
        last_poll = tokio::time::Instant::now();
        let Role::Follower { leader } = cluster.role() else {
            sync.reset();
            tokio::time::sleep(interval.min(ROLE_CHECK * 5)).await;
            continue;
        };
        let still_following = async {
            loop {
                tokio::time::sleep(ROLE_CHECK).await;
                if !matches!(cluster.role(), Role::Follower { leader: ref l } if *l == leader) {
                    break;
                }
            }
        };
        let polled = tokio::select! {
            polled = sync_once(&cluster, invoker.as_ref(), &mut sync, &leader, wait) => polled,
            _ = still_following => continue,
        };
        if !polled {
            tokio::time::sleep(interval).await;
        }
    }
}

/// One sync from `leader`, logged. Answers whether the next poll may start at once
/// (`false`: it failed, or the leader is behind this node).
async fn sync_once(
    cluster: &Arc<Cluster>,
    invoker: &dyn HttpInvoker,
    sync: &mut SyncState,
    leader: &str,
    wait: Duration,
) -> bool {
    match sync.sync(cluster, invoker, leader, wait).await {
        Ok(SyncOutcome::Restored { version }) => {
            cluster.synced(version);
            tracing::info!(leader = %leader, version, "synced the leader's whole snapshot");
            true
        }
        Ok(SyncOutcome::Delta { version, services }) => {
            cluster.synced(version);
            tracing::debug!(leader = %leader, version, services, "applied the leader's delta");
            true
        }
        Ok(SyncOutcome::UpToDate) => {
            cluster.synced(cluster.registry().registry_version());
            true
        }
        Ok(SyncOutcome::Unchanged) => {
            cluster.synced(cluster.registry().registry_version());
            false
        }
        Ok(SyncOutcome::LeaderBehind { leader: theirs, local }) => {
            tracing::info!(
                leader = %leader,
                leader_version = theirs,
                local_version = local,
                "the leader holds a lower registry version than this node: not copying it until it has adopted this node's data"
            );
            false
        }
        Ok(SyncOutcome::Abandoned) => {
            tracing::debug!("role changed during sync; answer dropped");
            true
        }
        Err(e) => {
            tracing::error!(leader = %leader, error = %e, "sync failed; keeping local data");
            false
        }
    }
}
