//! [`App`]: what every handler needs, shared by all connections.

use std::sync::Arc;

use registry_cluster::Coordinator;
use registry_core::{Clock, Registry};
use registry_http::tls::ServerTls;
use registry_http::HttpInvoker;

use crate::auth::Auth;
use crate::body::Streams;
use crate::eureka::EurekaView;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::nacos::NacosCache;
use crate::nacos2::{GrpcSettings, Nacos2};
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
    /// What the Eureka view last saw, for its deltas.
    pub(crate) eureka: EurekaView,
    /// The Nacos view's encoded lists.
    pub(crate) nacos: NacosCache,
    /// The Nacos gRPC clients' connections and pushes.
    pub(crate) nacos2: Nacos2,
    /// The large documents streaming now.
    pub(crate) streams: Streams,
    /// The listener's TLS; `None`: plain HTTP.
    pub(crate) tls: Option<Arc<ServerTls>>,
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
        let metrics = Metrics::new(cluster.routes());
        let nacos2 = Nacos2::new(GrpcSettings::default());
        watch.also(nacos2.hub.clone());
        App {
            cluster,
            invoker,
            clock,
            limits,
            auth: Auth::default(),
            watch,
            metrics,
            eureka: EurekaView::default(),
            nacos: NacosCache::default(),
            nacos2,
            streams: Streams::default(),
            tls: None,
        }
    }

    /// This API with `settings` for its Nacos gRPC clients.
    pub fn with_grpc(mut self, settings: GrpcSettings) -> Self {
        self.nacos2.settings = settings;
        self
    }

    /// This API served over TLS with `tls` (its reloads apply to new connections).
    pub fn with_tls(mut self, tls: Arc<ServerTls>) -> Self {
        self.tls = Some(tls);
        self
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
