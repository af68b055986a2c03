//! [`App`]: what every handler needs, shared by all connections, and what a facade may
//! use of the node.

use std::sync::Arc;

use registry_cluster::Coordinator;
use registry_core::{Clock, Registry};
use registry_http::tls::ServerTls;
use registry_http::HttpInvoker;

use crate::auth::Auth;
use crate::body::Streams;
use crate::facade::Facade;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::routes::Routes;
use crate::watch::Watch;

/// What every handler needs, shared by all connections.
pub struct App {
    pub(crate) cluster: Arc<dyn Coordinator>,
    pub(crate) invoker: Arc<dyn HttpInvoker>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
    pub(crate) auth: Auth,
    pub(crate) watch: Arc<Watch>,
    pub(crate) metrics: Metrics,
    /// Every route: the shared API's, the facades', the mode's.
    pub(crate) routes: Routes,
    /// The large documents streaming now.
    pub(crate) streams: Streams,
    /// The listener's TLS; `None`: plain HTTP.
    pub(crate) tls: Option<Arc<ServerTls>>,
}

impl App {
    /// The API of one node: `cluster` (whichever mode runs, behind the seam; it holds the
    /// registry), the client used to relay writes, the clock that stamps renewals, the
    /// limits on clients, and the protocol `facades` served besides the shared API, in
    /// the order their routes are looked up. The registry's observers are the blocking
    /// queries, then each facade's.
    pub fn new(
        cluster: Arc<dyn Coordinator>,
        invoker: Arc<dyn HttpInvoker>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        facades: Vec<Arc<dyn Facade>>,
    ) -> Self {
        let watch = Arc::new(Watch::new());
        cluster.registry().observe(watch.clone());
        for observer in facades.iter().filter_map(|facade| facade.observer()) {
            cluster.registry().observe(observer);
        }
        let routes = Routes::new(facades, cluster.routes());
        let metrics = Metrics::new(routes.labels());
        App {
            cluster,
            invoker,
            clock,
            limits,
            auth: Auth::default(),
            watch,
            metrics,
            routes,
            streams: Streams::default(),
            tls: None,
        }
    }

    /// This API served over TLS with `tls` (its reloads apply to new connections).
    pub fn with_tls(mut self, tls: Arc<ServerTls>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// This API serving the seed's API (`/reg`, `/findAll`, …) or not (then its paths
    /// answer 404; the console's, the operators' and the cluster's endpoints stay).
    pub fn with_seed_api(mut self, served: bool) -> Self {
        self.routes.serve_seed_api(served);
        self
    }

    /// This API with `auth` as its access rules.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The registry this node answers reads from.
    pub fn registry(&self) -> &Registry {
        self.cluster.registry()
    }

    /// The cluster, whichever mode runs.
    pub fn cluster(&self) -> &Arc<dyn Coordinator> {
        &self.cluster
    }

    /// The clock's now, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The limits on clients.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The access rules.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The TLS the listeners serve, if any.
    pub fn tls(&self) -> Option<&Arc<ServerTls>> {
        self.tls.as_ref()
    }

    /// The facades this node serves, in the order they were composed.
    pub fn facades(&self) -> &[Arc<dyn Facade>] {
        self.routes.facades()
    }
}
