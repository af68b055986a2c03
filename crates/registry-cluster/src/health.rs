use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use registry_http::{get_json, HttpInvoker};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::cluster::{Cluster, Role};
use crate::server::Server;
use crate::sync::{SyncOutcome, SyncState};
use crate::takeover::take_office;

/// The cluster loop (SPEC §4.2), every `interval`: probe every other server's `/info`
/// concurrently, elect if this node does not see exactly one leader, and as a follower
/// copy the leader's snapshot when it changed.
pub struct ServerHealth {
    cluster: Arc<Cluster>,
    invoker: Arc<dyn HttpInvoker>,
    interval: Duration,
    probe_timeout: Duration,
    sync: SyncState,
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
            sync: SyncState::default(),
        }
    }

    /// Runs rounds until `shutdown` completes; a round in progress is abandoned at its
    /// next await point. The first round starts at once, so a starting node probes
    /// before it elects.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.round() => {}
            }
        }
        tracing::debug!("cluster health loop stopped");
    }

    /// One round: probe, elect, sync. Answers the role it ended in.
    pub async fn round(&mut self) -> Role {
        let probes = self.probe_all().await;
        let mut role = self.cluster.update(&probes);
        if self.cluster.is_candidate() {
            if let Err(e) = take_office(&self.cluster, &self.invoker, "elected", false).await {
                tracing::error!(error = %e, "elected, but the data of a server with a higher registry version could not be adopted: not taking office (writes are refused) until it can");
            }
            role = self.cluster.role();
        }
        match &role {
            Role::Follower { leader } => {
                let Some(leader_server) = self.cluster.leader().filter(|l| l.url == *leader) else {
                    return role;
                };
                match self
                    .sync
                    .sync(&self.cluster, self.invoker.as_ref(), &leader_server)
                    .await
                {
                    Ok(SyncOutcome::Restored { version }) => {
                        tracing::info!(leader = %leader, version, "synced the leader's snapshot")
                    }
                    Ok(SyncOutcome::UpToDate) => {}
                    Ok(SyncOutcome::LeaderBehind { leader: theirs, local }) => tracing::info!(
                        leader = %leader,
                        leader_version = theirs,
                        local_version = local,
                        "the leader holds a lower registry version than this node: not copying it until it has adopted this node's data"
                    ),
                    Ok(SyncOutcome::Abandoned) => tracing::debug!("role changed during sync; snapshot dropped"),
                    Err(e) => tracing::error!(leader = %leader, error = %e, "sync failed; keeping local data"),
                }
            }
            Role::Leader | Role::NoLeader => self.sync.reset(),
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
