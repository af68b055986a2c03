//! maregistry's Nacos facade (docs/spec.md §6.1, §6.3): the Nacos open API v1
//! (`/nacos/v1/ns/...`) and the Nacos 2/3 gRPC protocol with pushes (its own listener, on
//! the HTTP port + 1000), both over the server's gateway and the one registry. Naming now;
//! the config service comes next.
//!
//! Modules:
//! - `v1` — the HTTP open API: parameters, names (Nacos service → registry service), the
//!   instance mapping, the encoded host lists, the endpoints.
//! - `grpc` — the gRPC protocol: the generated messages and services, the JSON envelope,
//!   connections and what they publish and subscribe to, the unary requests, pushes, the
//!   listener ([`GrpcSettings`]).
//!
//! [`Nacos`] is the facade the binary composes.
#![deny(missing_docs)]

pub mod grpc;
mod v1;

use std::io;
use std::ops::Deref;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use prometheus_client::metrics::counter::ConstCounter;
use registry_api::{gauge, App, Body, Facade, FacadeRoute, Shutdown};
use registry_core::Observer;
use tokio::net::TcpListener;

pub use grpc::GrpcSettings;
use grpc::Nacos2;
use v1::NacosCache;

/// Where the Nacos naming API lives.
const ROUTES: &[FacadeRoute] = &[FacadeRoute {
    prefixes: &["/nacos/v1/ns/"],
    label: "/nacos/v1/ns",
}];

/// The Nacos facade: the v1 view's encoded lists and the gRPC clients' connections and
/// pushes.
pub struct Nacos {
    cache: NacosCache,
    grpc: Arc<Nacos2>,
}

impl Nacos {
    /// The facade, its gRPC clients treated as `settings` say.
    pub fn new(settings: GrpcSettings) -> Nacos {
        Nacos {
            cache: NacosCache::default(),
            grpc: Arc::new(Nacos2::new(settings)),
        }
    }
}

#[async_trait::async_trait]
impl Facade for Nacos {
    fn name(&self) -> &'static str {
        "nacos"
    }

    fn routes(&self) -> &'static [FacadeRoute] {
        ROUTES
    }

    async fn serve(&self, app: &App, _route: usize, request: Request<Incoming>, rest: &str) -> Response<Body> {
        v1::nacos(app, &self.cache, request, rest).await
    }

    fn observer(&self) -> Option<Arc<dyn Observer>> {
        Some(self.grpc.hub.clone())
    }

    fn metrics(&self, r: &mut prometheus_client::registry::Registry) {
        let counts = self.grpc.counts();
        r.register(
            "maregistry_grpc_connections",
            "Nacos gRPC connections set up on this node",
            gauge(counts.connections),
        );
        r.register(
            "maregistry_grpc_subscriptions",
            "Services subscribed to by this node's gRPC connections, one per connection and service",
            gauge(counts.subscriptions),
        );
        r.register(
            "maregistry_grpc_pushes",
            "Pushes (NotifySubscriberRequest) put on subscribers' streams",
            ConstCounter::new(counts.pushes),
        );
        r.register(
            "maregistry_grpc_push_failures",
            "Pushes that found a subscriber's stream full or closed",
            ConstCounter::new(counts.push_failures),
        );
    }

    fn connections(&self) -> Option<u64> {
        self.grpc.shown_connections()
    }

    async fn serve_listener(
        self: Arc<Self>,
        app: Arc<App>,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> io::Result<()> {
        let node = Arc::new(Node {
            server: app,
            nacos: self,
        });
        grpc::serve_grpc(listener, node, shutdown).await
    }
}

/// The node as the gRPC protocol sees it: the server (what it derefs to) and this facade.
pub(crate) struct Node {
    server: Arc<App>,
    nacos: Arc<Nacos>,
}

impl Node {
    /// The gRPC clients' connections and pushes.
    pub(crate) fn grpc(&self) -> &Nacos2 {
        &self.nacos.grpc
    }

    /// The v1 view's encoded lists, which gRPC answers share.
    pub(crate) fn cache(&self) -> &NacosCache {
        &self.nacos.cache
    }
}

impl Deref for Node {
    type Target = App;

    fn deref(&self) -> &App {
        &self.server
    }
}
