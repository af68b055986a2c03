//! maregistry's Consul facade (docs/spec.md §10): the Consul HTTP API under `/v1/` — agent,
//! catalog, health, status and KV — with blocking queries, and the checks a Consul agent
//! runs (TTL, HTTP, TCP), run here by the cluster's leader. A view of the one registry and
//! its config store; every write goes through the server's gateway.
//!
//! Modules, by job:
//! - `decode` — keys in any case, Go durations: what Consul's decoder accepts;
//! - `service` — a registration and its checks → a registry instance, and back; `target`
//!   — what a check may probe;
//! - `directory` — which instance a Consul service id names;
//! - `query` — the query parameters every read shares (`dc`, `index`, `wait`, `stale`,
//!   `consistent`, `token`), blocking;
//! - `agent` — the agent endpoints: register, deregister, maintenance, TTL updates;
//! - `catalog` — catalog, health and status reads;
//! - `kv` — the KV store, over the config store; `txn` — `/v1/txn`, its operations all or
//!   nothing;
//! - `checker` — the leader's loop that expires TTLs, probes HTTP and TCP checks and
//!   deregisters services critical for too long;
//! - `reply` — Consul's answers and refusals.
//!
//! [`Consul`] is the facade the binary composes; [`Consul::run_checks`] its checker.
#![deny(missing_docs)]

mod agent;
mod catalog;
mod checker;
mod decode;
mod directory;
mod kv;
mod query;
mod reply;
mod service;
mod target;
mod txn;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_api::request::decode as percent_decode;
use registry_api::{App, Body, Facade, FacadeRoute, Shutdown};

use directory::Directory;
use query::Params;
use reply::{Answer, Refused};

/// Where Consul clients find the registry. The blocking reads are long polls.
const ROUTES: &[FacadeRoute] = &[
    FacadeRoute {
        prefixes: &["/v1/agent"],
        label: "/v1/agent",
        long_poll: false,
        login: false,
    },
    FacadeRoute {
        prefixes: &["/v1/catalog", "/v1/health"],
        label: "/v1/catalog",
        long_poll: true,
        login: false,
    },
    FacadeRoute {
        prefixes: &["/v1/kv", "/v1/txn"],
        label: "/v1/kv",
        long_poll: false,
        login: false,
    },
    FacadeRoute {
        prefixes: &["/v1/"],
        label: "/v1",
        long_poll: false,
        login: false,
    },
];

/// What a Consul node is told at start.
#[derive(Debug, Clone)]
pub struct ConsulSettings {
    /// The one datacenter (`--consul-datacenter`): `?dc=` naming another is refused.
    pub datacenter: String,
    /// The name of the one node every service is on (the cluster).
    pub node_name: String,
    /// The shortest `DeregisterCriticalServiceAfter` honoured (Consul's
    /// `check_deregister_interval_min`, 1 minute).
    pub deregister_min: Duration,
    /// How often the leader's checker looks at the checks (TTL expiry, probes due,
    /// deregistrations).
    pub check_every: Duration,
}

impl Default for ConsulSettings {
    fn default() -> Self {
        ConsulSettings {
            datacenter: "dc1".to_owned(),
            node_name: "maregistry".to_owned(),
            deregister_min: Duration::from_secs(60),
            check_every: Duration::from_secs(1),
        }
    }
}

/// The Consul facade.
pub struct Consul {
    settings: ConsulSettings,
    /// The instances registered through Consul, by id.
    directory: Directory,
    /// The instances with checks: what the checker looks at.
    checked: Directory,
    /// The service reads' answers, by service version.
    answers: catalog::Answers,
}

impl Consul {
    /// A facade answering as `settings` say.
    pub fn new(settings: ConsulSettings) -> Consul {
        Consul {
            settings,
            directory: Directory::registered(),
            checked: Directory::checked(),
            answers: catalog::Answers::default(),
        }
    }

    /// Runs the checks on this node whenever it leads, until `shutdown` completes
    /// (docs/spec.md §10.5).
    pub async fn run_checks(self: Arc<Self>, app: Arc<App>, shutdown: Shutdown) {
        checker::run(self, app, shutdown).await;
    }
}

#[async_trait::async_trait]
impl Facade for Consul {
    fn name(&self) -> &'static str {
        "consul"
    }

    fn routes(&self) -> &'static [FacadeRoute] {
        ROUTES
    }

    async fn serve(&self, app: &App, _route: usize, request: Request<Incoming>, _rest: &str) -> Response<Body> {
        // The busiest requests, found without taking the path apart; a registration's
        // future is boxed on its own, not inside the larger one of every endpoint.
        let answer = match busiest(&request) {
            Some(Busiest::Read { name, health }) => self.read_service(app, &request, name, health).await,
            Some(Busiest::Register) => Box::pin(self.register(app, request)).await,
            None => Box::pin(self.dispatch(app, request)).await,
        };
        match answer {
            Ok(response) => response,
            Err(refused) => {
                tracing::debug!(status = %refused.0, reason = %refused.1, "Consul request refused");
                refused.into_response()
            }
        }
    }
}

/// The requests answered before `dispatch` takes the path apart.
enum Busiest<'a> {
    /// `GET /v1/health/service/:name` (`health`) or `GET /v1/catalog/service/:name` of a
    /// name that needs no decoding.
    Read { name: &'a str, health: bool },
    /// `PUT /v1/agent/service/register`, spelt plainly.
    Register,
}

fn busiest(request: &Request<Incoming>) -> Option<Busiest<'_>> {
    let path = request.uri().path();
    if request.method() == Method::PUT {
        return (path == "/v1/agent/service/register").then_some(Busiest::Register);
    }
    if request.method() != Method::GET {
        return None;
    }
    let (name, health) = match path.strip_prefix("/v1/health/service/") {
        Some(name) => (name, true),
        None => (path.strip_prefix("/v1/catalog/service/")?, false),
    };
    let plain = !name.is_empty() && !name.contains(['/', '%']);
    plain.then_some(Busiest::Read { name, health })
}

impl Consul {
    /// A registration, as `dispatch` answers it.
    async fn register(&self, app: &App, request: Request<Incoming>) -> Answer {
        let params = Params::of(&request, &self.settings)?;
        agent::register(self, app, request, &params).await
    }

    /// A read of one service, as `dispatch` answers it.
    async fn read_service(&self, app: &App, request: &Request<Incoming>, name: &str, health: bool) -> Answer {
        let params = Params::of(request, &self.settings)?;
        catalog::service(self, app, request, &params, name, health).await
    }

    /// Finds the endpoint of `request` and answers it.
    async fn dispatch(&self, app: &App, request: Request<Incoming>) -> Answer {
        let path = request.uri().path().to_owned();
        let rest = path.strip_prefix("/v1/").unwrap_or_default();
        let params = Params::of(&request, &self.settings)?;
        let method = request.method().clone();
        // KV keys keep their slashes (npm sends them as %2F): the rest of the path, decoded.
        if let Some(key) = rest.strip_prefix("kv/").or(if rest == "kv" { Some("") } else { None }) {
            let key = percent_decode(key)
                .map_err(|e| Refused::bad(format!("Invalid key: {e}")))?
                .into_owned();
            return kv::serve(app, request, &params, &key).await;
        }
        let segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s).map(|s| s.into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| Refused::bad(format!("Invalid path: {e}")))?;
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let get = method == Method::GET;
        let put = method == Method::PUT;
        match segments.as_slice() {
            ["agent", "service", "register"] if put => agent::register(self, app, request, &params).await,
            ["agent", "service", "deregister", id] if put => agent::deregister(self, app, request, &params, id).await,
            ["agent", "service", "maintenance", id] if put => agent::maintenance(self, app, request, &params, id).await,
            ["agent", "check", action @ ("pass" | "warn" | "fail" | "update"), id] if put => {
                agent::update_ttl(self, app, request, &params, action, id).await
            }
            ["agent", "service", id] if get => agent::service(self, app, &request, &params, id),
            ["agent", "services"] if get => agent::services(self, app, &request, &params),
            ["agent", "checks"] if get => agent::checks(self, app, &request, &params),
            ["agent", "self"] if get => Ok(agent::myself(self, app)),
            ["agent", "members"] if get => Ok(agent::members(self, app)),
            ["catalog", "services"] if get => catalog::services(app, &request, &params).await,
            ["catalog", "service", name] if get => catalog::service(self, app, &request, &params, name, false).await,
            ["health", "service", name] if get => catalog::service(self, app, &request, &params, name, true).await,
            ["health", "state", state] if get => catalog::state(self, app, &request, &params, state).await,
            ["health", "checks", name] if get => catalog::checks(self, app, &request, &params, name).await,
            ["catalog", "nodes"] if get => catalog::nodes(self, app, &request, &params).await,
            ["catalog", "node", node] if get => catalog::node(self, app, &request, &params, node).await,
            ["health", "node", node] if get => catalog::node_checks(self, app, &request, &params, node).await,
            ["catalog", "datacenters"] if get => Ok(reply::ok(&[&self.settings.datacenter])),
            ["status", "leader"] if get => Ok(catalog::leader(app)),
            ["status", "peers"] if get => Ok(catalog::peers(app)),
            ["txn"] if put => txn::txn(app, request, &params).await,
            [family, ..] if unsupported(family, &segments) => Err(Refused(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "maregistry does not serve Consul's {} API (docs/api.md lists what it serves)",
                    family
                ),
            )),
            _ if known(&segments) => Err(Refused(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed"),
            )),
            _ => Err(Refused(StatusCode::NOT_FOUND, format!("no Consul endpoint /v1/{rest}"))),
        }
    }
}

/// The families of Consul's API this facade does not serve, answered 501.
fn unsupported(family: &str, segments: &[&str]) -> bool {
    const FAMILIES: &[&str] = &[
        "session",
        "acl",
        "connect",
        "query",
        "event",
        "coordinate",
        "operator",
        "snapshot",
        "config",
        "peering",
        "namespace",
        "namespaces",
        "partition",
        "partitions",
        "internal",
        "discovery-chain",
        "exported-services",
        "imported-services",
    ];
    FAMILIES.contains(&family)
        || matches!(
            segments,
            ["agent", "connect", ..] | ["health", "connect" | "ingress", ..]
        )
        || matches!(segments, ["agent", "check", "register" | "deregister", ..])
        || matches!(
            segments,
            [
                "catalog",
                "register" | "deregister" | "connect" | "gateway-services",
                ..
            ]
        )
        || matches!(
            segments,
            [
                "agent",
                "join" | "leave" | "force-leave" | "reload" | "token" | "maintenance",
                ..
            ]
        )
}

/// A path some method of this facade answers (another method is answered 405).
fn known(segments: &[&str]) -> bool {
    matches!(
        segments,
        [
            "agent",
            "service" | "check" | "services" | "checks" | "self" | "members",
            ..
        ] | ["catalog" | "health" | "status", ..]
            | ["txn"]
    )
}
