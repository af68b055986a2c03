//! maregistry's Nacos facade (docs/spec.md §6.1, §6.3, §8): the Nacos open API v1
//! (`/nacos/v1/ns/...`, `/nacos/v1/cs/...`), the v2 config open API, and the Nacos 2/3
//! gRPC protocol with pushes (its own listener, on the HTTP port + 1000), all over the
//! server's gateway, the one registry and its config store.
//!
//! Modules:
//! - `v1` — the HTTP open API for naming: parameters, names (Nacos service → registry
//!   service), the instance mapping, the encoded host lists, the endpoints.
//! - `config` — the config service: names, listeners (long polls and gRPC listens), the
//!   v1 and v2 endpoints, history, export and import.
//! - `grpc` — the gRPC protocol: the generated messages and services, the JSON envelope,
//!   connections and what they publish and subscribe to, the unary requests, pushes, the
//!   listener ([`GrpcSettings`]).
//! - `auth` — login and the user, role and permission endpoints (v1 and v3), and the
//!   console's users page (docs/spec.md §9).
//! - `access` — with `--auth-enabled`, the check of the HTTP APIs' reads by the
//!   namespace, group and name their query names.
//!
//! [`Nacos`] is the facade the binary composes.
#![deny(missing_docs)]

mod access;
mod auth;
mod config;
pub mod grpc;
mod v1;

use std::io;
use std::ops::Deref;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use prometheus_client::metrics::counter::ConstCounter;
use registry_api::{gauge, App, Body, ConsolePage, Facade, FacadeRoute, Shutdown};
use registry_core::{ConfigObserver, Observer};
use tokio::net::TcpListener;

use config::ConfigListeners;
pub use grpc::GrpcSettings;
use grpc::Nacos2;
use v1::NacosCache;

/// Where the Nacos APIs live: naming, the config long poll, the rest of config, the v2
/// config open API (in that order: the long poll's path is inside the config prefix).
const ROUTES: &[FacadeRoute] = &[
    FacadeRoute {
        prefixes: &["/nacos/v1/ns/"],
        label: "/nacos/v1/ns",
        long_poll: false,
        login: false,
    },
    FacadeRoute {
        prefixes: &["/nacos/v1/cs/configs/listener"],
        label: "/nacos/v1/cs/configs/listener",
        long_poll: true,
        login: false,
    },
    FacadeRoute {
        prefixes: &["/nacos/v1/cs/"],
        label: "/nacos/v1/cs",
        long_poll: false,
        login: false,
    },
    FacadeRoute {
        prefixes: &["/nacos/v2/cs/"],
        label: "/nacos/v2/cs",
        long_poll: false,
        login: false,
    },
    FacadeRoute {
        prefixes: &[CONFIGS_PAGE],
        label: CONFIGS_PAGE,
        long_poll: false,
        login: false,
    },
    FacadeRoute {
        prefixes: &[
            "/nacos/v1/auth/login",
            "/nacos/v1/auth/users/login",
            "/nacos/v3/auth/user/login",
        ],
        label: "/nacos/v1/auth/login",
        long_poll: false,
        login: true,
    },
    FacadeRoute {
        prefixes: &["/nacos/v1/auth/", "/nacos/v3/auth/"],
        label: "/nacos/v1/auth",
        long_poll: false,
        login: false,
    },
    FacadeRoute {
        prefixes: &[USERS_PAGE],
        label: USERS_PAGE,
        long_poll: false,
        login: false,
    },
];

/// The console's users, roles and permissions page.
const USERS_PAGE: &str = "/ui/users";

/// The console's configs page.
const CONFIGS_PAGE: &str = "/ui/configs";

/// The Nacos facade: the v1 view's encoded lists and the gRPC clients' connections and
/// pushes.
pub struct Nacos {
    cache: NacosCache,
    grpc: Arc<Nacos2>,
    configs: Arc<ConfigListeners>,
}

impl Nacos {
    /// The facade, its gRPC clients treated as `settings` say.
    pub fn new(settings: GrpcSettings) -> Nacos {
        Nacos {
            cache: NacosCache::default(),
            grpc: Arc::new(Nacos2::new(settings)),
            configs: Arc::new(ConfigListeners::default()),
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

    async fn serve(&self, app: &App, route: usize, request: Request<Incoming>, rest: &str) -> Response<Body> {
        if app.auth_enabled() {
            if let Some(refused) = access::check_read(app, route, &request) {
                return refused;
            }
        }
        match route {
            0 => v1::nacos(app, &self.cache, request, rest).await,
            1 => Box::pin(config::long_poll(app, &self.configs, request))
                .await
                .unwrap_or_else(config::refusal),
            2 => Box::pin(config::serve_v1(app, &self.configs, request, rest)).await,
            3 => Box::pin(config::serve_v2(app, &self.configs, request, rest)).await,
            4 => config::console_page(),
            5 => Box::pin(auth::login(app, request)).await,
            6 => Box::pin(auth::serve(app, request, rest)).await,
            _ => auth::console_page(),
        }
    }

    fn observer(&self) -> Option<Arc<dyn Observer>> {
        Some(self.grpc.hub.clone())
    }

    fn console_pages(&self) -> &'static [ConsolePage] {
        &[
            ConsolePage {
                label: "configs",
                path: CONFIGS_PAGE,
            },
            ConsolePage {
                label: "users",
                path: USERS_PAGE,
            },
        ]
    }

    fn config_observer(&self) -> Option<Arc<dyn ConfigObserver>> {
        Some(self.configs.clone())
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
        config::metrics(&self.configs, r);
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

    /// Who listens to which config on this node.
    pub(crate) fn config_listeners(&self) -> &ConfigListeners {
        &self.nacos.configs
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
