use std::sync::Arc;
use std::time::Duration;

use registry_cluster::Coordinator;
use registry_core::{Clock, Registry};
use registry_http::{HttpInvoker, Token};

use crate::metrics::Metrics;
use crate::watch::Watch;

/// What a client may take of a node: bounds that keep one slow or greedy client from
/// exhausting memory, file descriptors or connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body accepted, in bytes (413 above).
    pub max_body: usize,
    /// How long a request body may take to arrive, from the handler's first read to its
    /// last byte (408 after).
    pub body_timeout: Duration,
    /// How many connections are served at once. A connection over the limit is still
    /// accepted, answered 503 and closed, so the listener never stalls.
    pub max_connections: usize,
    /// The longest a blocking query (`since=V&wait=D`) waits; longer waits are cut to it.
    pub max_wait: Duration,
    /// The most operations one `/batch` may hold.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_wait: Duration::from_secs(300),
            max_batch: 1000,
        }
    }
}

/// Who may call what. Without tokens (the default) every endpoint is open, as the
/// seed's clients expect.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `--cluster-token`: required on the node-to-node endpoints (`/snapshot?since=`,
    /// `/sl`, `/raft/...`, `/cluster/join`, `/cluster/leave`) and on forwarded requests;
    /// accepted wherever the client token is.
    pub cluster: Option<Token>,
    /// `--client-token`: required on writes from clients.
    pub client: Option<Token>,
    /// `--client-token-reads`: the client token is required on reads too.
    pub client_reads: bool,
}

impl Auth {
    /// Whether any token is configured (without one, no request is checked).
    pub fn any(&self) -> bool {
        self.cluster.is_some() || self.client.is_some()
    }
}

/// What every handler needs, shared by all connections.
pub struct App {
    pub(crate) cluster: Arc<dyn Coordinator>,
    pub(crate) invoker: Arc<dyn HttpInvoker>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
    pub(crate) auth: Auth,
    pub(crate) watch: Arc<Watch>,
    pub(crate) metrics: Metrics,
    /// What the Eureka view last saw, for its deltas.
    pub(crate) eureka: crate::handlers::eureka::EurekaView,
    /// The Nacos view's encoded lists.
    pub(crate) nacos: crate::handlers::nacos::NacosCache,
}

impl App {
    /// The API of one node: `cluster` (whichever mode runs, behind the seam; it holds the
    /// registry), the client used to forward writes, the clock that stamps renewals, and
    /// the limits on clients.
    pub fn new(
        cluster: Arc<dyn Coordinator>,
        invoker: Arc<dyn HttpInvoker>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        let watch = Arc::new(Watch::new());
        if !cluster.registry().observe(watch.clone()) {
            tracing::warn!("the registry already has an observer: blocking queries will not wake on changes");
        }
        App {
            cluster,
            invoker,
            clock,
            limits,
            auth: Auth::default(),
            watch,
            metrics: Metrics::new(),
            eureka: Default::default(),
            nacos: Default::default(),
        }
    }

    /// This API with `auth` as its access rules.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.cluster.registry()
    }
}

/// The largest node-to-node call accepted (`/raft/...`): a raft snapshot of a large
/// registry travels in one call (100k instances are about 30 MB).
pub(crate) const PEER_MAX_BODY: usize = 512 * 1024 * 1024;

impl Limits {
    /// These limits for a node-to-node call: a larger body, more time for it.
    pub(crate) fn for_peers(&self) -> Limits {
        Limits {
            max_body: PEER_MAX_BODY,
            body_timeout: self.body_timeout.max(std::time::Duration::from_secs(60)),
            ..*self
        }
    }
}
