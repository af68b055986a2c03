//! [`SnapshotCoordinator`]: the seed's cluster (docs/spec.md §4) behind the
//! [`Coordinator`] seam.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use registry_core::{Applied, Command, ConfigObserver, ConfigsChanged, Registry};
use registry_http::HttpInvoker;
use tokio::sync::watch;

use crate::coordinator::{Coordinator, CoordinatorError, ModeRoute, Role, RouteCall, SelfPreservation, Server, Status};

use super::cluster::Cluster;
use super::takeover::take_office;

/// The snapshot cluster (docs/spec.md §4) behind the [`Coordinator`] seam: the leader
/// applies writes to its registry at once, and its data reaches followers by snapshot.
pub struct SnapshotCoordinator {
    cluster: Arc<Cluster>,
    invoker: Arc<dyn HttpInvoker>,
    preservation: SelfPreservation,
    /// The position of the last write applied here, standing in for a log index: what
    /// an eviction's guard compares (an instance registered again after the decision
    /// stays).
    applied: AtomicU64,
    /// The config store's revision, moved by every change: what a follower's config poll
    /// waits on.
    configs: watch::Receiver<u64>,
    /// The longest a config poll waits.
    max_config_wait: Duration,
}

/// Tells the config polls that the config store moved.
struct ConfigRevision(watch::Sender<u64>);

impl ConfigObserver for ConfigRevision {
    fn configs_changed(&self, revision: u64, _changed: ConfigsChanged<'_>) {
        self.0.send_replace(revision);
    }
}

/// The snapshot mode's own endpoints: it takes its members from the configuration, and
/// says so to a membership change; its followers long-poll the leader's configs.
pub const ROUTES: &[ModeRoute] = &[
    ModeRoute {
        path: "/cluster/join",
        params: &["url"],
        peer_body: false,
        long_poll: false,
    },
    ModeRoute {
        path: "/cluster/leave",
        params: &["url"],
        peer_body: false,
        long_poll: false,
    },
    ModeRoute {
        path: CONFIGS_PATH,
        params: &["since", "wait"],
        peer_body: false,
        long_poll: true,
    },
];

/// Where a leader answers its followers' config polls.
pub(crate) const CONFIGS_PATH: &str = "/cluster/configs";

/// The longest a config poll waits on the leader.
const MAX_CONFIG_WAIT: Duration = Duration::from_secs(60);

impl SnapshotCoordinator {
    /// The seam over `cluster`; `invoker` fetches peers' snapshots for `/sl`;
    /// `preservation` guards the evictions.
    pub fn new(cluster: Arc<Cluster>, invoker: Arc<dyn HttpInvoker>, preservation: SelfPreservation) -> Self {
        let (revision, configs) = watch::channel(cluster.registry().configs().revision());
        cluster.registry().configs().observe(Arc::new(ConfigRevision(revision)));
        SnapshotCoordinator {
            cluster,
            invoker,
            preservation,
            applied: AtomicU64::new(0),
            configs,
            max_config_wait: MAX_CONFIG_WAIT,
        }
    }

    /// This coordinator holding a follower's config poll at most `max` (the node's
    /// `--max-wait`; never more than a minute).
    pub fn with_config_wait(mut self, max: Duration) -> Self {
        self.max_config_wait = max.min(MAX_CONFIG_WAIT);
        self
    }

    /// `GET /cluster/configs?since=R&wait=D`: a follower's config poll. The leader answers
    /// the [`registry_core::ConfigDelta`] from `R` once its store is at another revision,
    /// or when `D` (at most `--max-wait`, at most a minute) runs out; a node that does not
    /// lead refuses.
    async fn configs_since(&self, call: RouteCall) -> Result<Bytes, CoordinatorError> {
        let since: u64 = call.params[0]
            .trim()
            .parse()
            .map_err(|_| CoordinatorError::Invalid(format!("since must be a revision, got {:?}", call.params[0])))?;
        let wait = registry_core::parse_duration_or_seconds(&call.params[1])
            .ok_or_else(|| CoordinatorError::Invalid(format!("wait must be a duration, got {:?}", call.params[1])))?
            .min(self.max_config_wait);
        if !self.cluster.is_leader() {
            return Err(CoordinatorError::Unavailable(
                "this node does not lead: poll the leader's configs".to_owned(),
            ));
        }
        let configs = self.cluster.registry().configs();
        let mut moved = self.configs.clone();
        let _ = tokio::time::timeout(wait, moved.wait_for(|_| configs.revision() != since)).await;
        let delta = configs.delta_since(since);
        serde_json::to_vec(&delta)
            .map(Bytes::from)
            .map_err(|e| CoordinatorError::Unavailable(format!("encoding the configs: {e}")))
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
        let index = self.applied.fetch_add(1, Ordering::Relaxed) + 1;
        let applied = self.cluster.registry().apply(&command, index);
        if applied.rejected {
            // Applied as nothing: say why (the check runs again only on this rare path).
            command.validate()?;
        }
        Ok(applied)
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

    fn routes(&self) -> &'static [ModeRoute] {
        ROUTES
    }

    async fn serve_route(&self, route: usize, call: RouteCall) -> Result<Bytes, CoordinatorError> {
        if ROUTES.get(route).is_some_and(|spec| spec.path == CONFIGS_PATH) {
            return self.configs_since(call).await;
        }
        Err(CoordinatorError::Invalid(
            "the snapshot cluster mode takes its members from --server-list; join and leave need --cluster-mode raft"
                .to_owned(),
        ))
    }

    fn preservation(&self) -> &SelfPreservation {
        &self.preservation
    }

    async fn status(&self) -> Status {
        self.cluster.status(self.preservation.skipped())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use registry_core::{Clock, InstanceMeta};

    use super::*;
    use crate::coordinator::run_evictor;
    use crate::snapshot::election::HashElection;
    use crate::snapshot::register;
    use crate::MonotonicClock;

    struct NoPeers;

    #[async_trait]
    impl HttpInvoker for NoPeers {
        async fn send(
            &self,
            request: registry_http::HttpRequest,
        ) -> Result<registry_http::HttpResponse, registry_http::HttpInvokeError> {
            Err(registry_http::HttpInvokeError::new(
                registry_http::ErrorKind::Connect,
                "GET",
                &request.url,
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn evicts_after_the_ttl_and_not_before() {
        let registry = Arc::new(Registry::new());
        let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
        let cluster = Arc::new(
            Cluster::new(
                "http://127.0.0.1:1",
                &[],
                registry.clone(),
                clock.clone(),
                Arc::new(HashElection),
            )
            .unwrap(),
        );
        let coordinator: Arc<dyn Coordinator> = Arc::new(SnapshotCoordinator::new(
            cluster,
            Arc::new(NoPeers),
            SelfPreservation::off(),
        ));
        let live = InstanceMeta::new("http", "h", 1, "").unwrap();
        let dead = InstanceMeta::new("http", "h", 2, "").unwrap();
        register(&registry, &live, clock.now_ms());
        register(&registry, &dead, clock.now_ms());

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_evictor(
            coordinator,
            clock.clone(),
            Duration::from_secs(20),
            Duration::from_secs(10),
            async {
                let _ = stopped.await;
            },
        ));
        // Heartbeats for `live` every 5 s; `dead` never renews.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            registry.renew_known_only(&["svc"], &live, clock.now_ms()).unwrap();
        }
        // t = 20 s: the sweep at 20 s sees `dead` exactly one TTL old, not older.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(registry.find_all("svc").len(), 2);
        // The sweep at 30 s evicts it; `live` stays.
        tokio::time::sleep(Duration::from_secs(5)).await;
        registry.renew_known_only(&["svc"], &live, clock.now_ms()).unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let ports: Vec<u16> = registry.find_all("svc").iter().map(|i| i.port).collect();
        assert_eq!(ports, vec![1]);
        assert_eq!(registry.registry_version(), 3, "the eviction was a change");

        stop.send(()).unwrap();
        task.await.unwrap();
    }
}
