//! [`App`]: what every handler needs, shared by all connections, and what a facade may
//! use of the node; and [`Facade`], how a protocol family plugs into it (docs/
//! architecture.md, "Adding a protocol"). A facade is a crate over the gateway: it declares
//! its routes (path prefixes, one entry per endpoint family), answers them, and may observe
//! the registry, add series to `/metrics` and serve a listener of its own. The server names
//! no protocol: it routes, checks access, counts and serves what the binary composed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use registry_core::{ConfigObserver, Observer};
use tokio::net::TcpListener;

use registry_cluster::Coordinator;
use registry_core::{Clock, Registry};
use registry_http::tls::ServerTls;
use registry_http::HttpInvoker;

use crate::auth::Auth;
use crate::body::{Body, Streams};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::routes::{FacadeRoute, Routes};
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
    /// The protocol facades, in the order their routes are looked up.
    pub(crate) facades: Vec<Arc<dyn Facade>>,
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
        cluster.registry().configs().observe(watch.clone());
        for observer in facades.iter().filter_map(|facade| facade.observer()) {
            cluster.registry().observe(observer);
        }
        for observer in facades.iter().filter_map(|facade| facade.config_observer()) {
            cluster.registry().configs().observe(observer);
        }
        let tables: Vec<&'static [FacadeRoute]> = facades.iter().map(|facade| facade.routes()).collect();
        let routes = Routes::new(&tables, cluster.routes());
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
            facades,
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
        &self.facades
    }
}

/// The address a facade's request came from (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

/// A page of the web console a facade serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsolePage {
    /// Its link's text.
    pub label: &'static str,
    /// Its path.
    pub path: &'static str,
}

/// A future that completes when the node shuts down.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A protocol family served over the gateway: its routes, their answers, and optionally
/// its change observer, its metrics, its connections and its own listener.
#[async_trait::async_trait]
pub trait Facade: Send + Sync + 'static {
    /// Its name, as `--protocols` lists it.
    fn name(&self) -> &'static str;

    /// Its endpoint families, found after the server's own endpoints. Any method reaches
    /// them; GET is a read, every other method a write.
    fn routes(&self) -> &'static [FacadeRoute];

    /// Answers a request to `routes()[route]`; `rest` is the path after its prefix. Never
    /// fails: a refusal is answered the way the protocol answers one.
    async fn serve(&self, app: &App, route: usize, request: Request<Incoming>, rest: &str) -> Response<Body>;

    /// Told of every change of the registry (pushes, caches), after the observers added
    /// before it.
    fn observer(&self) -> Option<Arc<dyn Observer>> {
        None
    }

    /// Its pages of the web console, linked from `/ui`'s header (each served by one of its
    /// routes).
    fn console_pages(&self) -> &'static [ConsolePage] {
        &[]
    }

    /// Told of every change of the configs (long polls, pushes).
    fn config_observer(&self) -> Option<Arc<dyn ConfigObserver>> {
        None
    }

    /// Adds its own series to a `/metrics` scrape.
    fn metrics(&self, _scrape: &mut prometheus_client::registry::Registry) {}

    /// The clients connected to its own listener, when it serves one (`/info` and
    /// `/cluster` show them as `grpcConnections`).
    fn connections(&self) -> Option<u64> {
        None
    }

    /// Serves its own listener (bound by the binary) until `shutdown` completes. A facade
    /// without one is never given one.
    async fn serve_listener(
        self: Arc<Self>,
        app: Arc<App>,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> io::Result<()> {
        let _ = (app, listener, shutdown);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the {} protocol serves no listener of its own", self.name()),
        ))
    }
}
