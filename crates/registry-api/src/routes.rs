//! The route table: every endpoint of the shared API, its name in metrics, how a path
//! finds it, whether a request to it may block, and who may call it. The running cluster
//! mode adds its own routes ([`registry_cluster::ModeRoute`]), found after these.

use http::{Method, Request};
use registry_cluster::ModeRoute;

use crate::auth::Access;
use crate::headers::is_forwarded;
use crate::request::ReadQuery;

/// Every endpoint of the shared API (docs/spec.md §3, the facades of §6, the operators'),
/// as requests are counted by it in metrics (`/findall` counts as `/findAll`). The order
/// is that of the router's endpoint enum, which a test ties to this table.
pub const ENDPOINTS: [&str; 21] = [
    "/reg",
    "/unreg",
    "/renew",
    "/renews",
    "/batch",
    "/findAll",
    "/version",
    "/versions",
    "/snapshot",
    "/info",
    "/cluster",
    "/leader",
    "/sl",
    "/metrics",
    "/health",
    "/ready",
    "/ui",
    "/services",
    "/instances",
    "/nacos/v1/ns",
    "/eureka/apps",
];

/// An endpoint of the shared API; its value is its row in [`ENDPOINTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Endpoint {
    Reg,
    Unreg,
    Renew,
    Renews,
    Batch,
    FindAll,
    Version,
    Versions,
    Snapshot,
    Info,
    Cluster,
    Leader,
    SetLeader,
    Metrics,
    Health,
    Ready,
    Ui,
    Services,
    Instances,
    /// The Nacos open API: `/nacos/v1/ns/<rest>`.
    Nacos,
    /// Eureka REST v2: `/eureka/apps/<rest>` (or `/eureka/v2/apps/<rest>`).
    Eureka,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// An endpoint every mode serves.
    Shared(Endpoint),
    /// The running mode's route at this index of its `routes()`.
    Mode(usize),
}

/// Where Eureka clients find the registry (the second is Netflix's default path).
const EUREKA: [&str; 2] = ["/eureka/apps", "/eureka/v2/apps"];

/// Where the Nacos naming API lives.
pub(crate) const NACOS: &str = "/nacos/v1/ns/";

/// The part of a Eureka path after `apps`, if it is one.
pub(crate) fn eureka_rest(path: &str) -> Option<&str> {
    EUREKA.iter().find_map(|prefix| {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
    })
}

impl Endpoint {
    /// Every endpoint, in [`ENDPOINTS`] order.
    #[cfg(test)]
    const ALL: [Endpoint; 21] = [
        Endpoint::Reg,
        Endpoint::Unreg,
        Endpoint::Renew,
        Endpoint::Renews,
        Endpoint::Batch,
        Endpoint::FindAll,
        Endpoint::Version,
        Endpoint::Versions,
        Endpoint::Snapshot,
        Endpoint::Info,
        Endpoint::Cluster,
        Endpoint::Leader,
        Endpoint::SetLeader,
        Endpoint::Metrics,
        Endpoint::Health,
        Endpoint::Ready,
        Endpoint::Ui,
        Endpoint::Services,
        Endpoint::Instances,
        Endpoint::Nacos,
        Endpoint::Eureka,
    ];

    /// Its name in metrics and error answers.
    pub(crate) fn label(self) -> &'static str {
        ENDPOINTS[self as usize]
    }

    /// The endpoint of `path`, if it is one of the shared API, and the path as a static
    /// string for error answers (`/findall` is answered as itself, a family by its prefix).
    fn of(path: &str) -> Option<(Endpoint, &'static str)> {
        let endpoint = match path {
            "/findall" => return Some((Endpoint::FindAll, "/findall")),
            "/reg" => Endpoint::Reg,
            "/unreg" => Endpoint::Unreg,
            "/renew" => Endpoint::Renew,
            "/renews" => Endpoint::Renews,
            "/batch" => Endpoint::Batch,
            "/findAll" => Endpoint::FindAll,
            "/version" => Endpoint::Version,
            "/versions" => Endpoint::Versions,
            "/snapshot" => Endpoint::Snapshot,
            "/info" => Endpoint::Info,
            "/cluster" => Endpoint::Cluster,
            "/leader" => Endpoint::Leader,
            "/sl" => Endpoint::SetLeader,
            "/metrics" => Endpoint::Metrics,
            "/health" => Endpoint::Health,
            "/ready" => Endpoint::Ready,
            "/ui" | "/ui/" => Endpoint::Ui,
            "/services" => Endpoint::Services,
            "/instances" => Endpoint::Instances,
            nacos if nacos.starts_with(NACOS) => Endpoint::Nacos,
            eureka if eureka_rest(eureka).is_some() => Endpoint::Eureka,
            _ => return None,
        };
        Some((endpoint, endpoint.label()))
    }
}

impl Route {
    /// The route of `path`: the shared API first, then the running mode's `routes`. With
    /// it, the path as a static string for error answers (`/findall` is answered as
    /// itself).
    pub(crate) fn of(path: &str, routes: &[ModeRoute]) -> Option<(Route, &'static str)> {
        if let Some((endpoint, label)) = Endpoint::of(path) {
            return Some((Route::Shared(endpoint), label));
        }
        let index = routes.iter().position(|route| route.path == path)?;
        Some((Route::Mode(index), routes[index].path))
    }

    /// This route's row in the metrics table: [`ENDPOINTS`], then the mode's routes.
    pub(crate) fn row(self) -> usize {
        match self {
            Route::Shared(endpoint) => endpoint as usize,
            Route::Mode(index) => ENDPOINTS.len() + index,
        }
    }

    /// Whether a request to this route may wait on purpose (a blocking query: `since=`),
    /// so that its time says nothing about the node's speed. A byte scan: this runs on
    /// every read.
    pub(crate) fn may_block<B>(self, request: &Request<B>) -> bool {
        let reads = matches!(
            self,
            Route::Shared(
                Endpoint::FindAll
                    | Endpoint::Version
                    | Endpoint::Versions
                    | Endpoint::Snapshot
                    | Endpoint::Services
                    | Endpoint::Instances
            )
        );
        reads
            && request.uri().query().is_some_and(|q| {
                let q = q.as_bytes();
                (0..q.len()).any(|i| q[i] == b's' && q[i..].starts_with(b"since=") && (i == 0 || q[i - 1] == b'&'))
            })
    }

    /// Which token this route needs, when tokens are configured.
    pub(crate) fn access<B>(self, request: &Request<B>) -> Access {
        let Route::Shared(endpoint) = self else {
            // A mode's own routes are node-to-node or operator calls.
            return Access::Node;
        };
        match endpoint {
            Endpoint::Nacos | Endpoint::Eureka if request.method() == Method::GET => Access::ClientRead,
            Endpoint::Reg
            | Endpoint::Unreg
            | Endpoint::Renew
            | Endpoint::Renews
            | Endpoint::Batch
            | Endpoint::Nacos
            | Endpoint::Eureka => {
                if is_forwarded(request) {
                    Access::ForwardedWrite
                } else {
                    Access::ClientWrite
                }
            }
            Endpoint::SetLeader => Access::Node,
            Endpoint::Snapshot if ReadQuery::of(request).has_since() => Access::Node,
            _ if is_forwarded(request) => Access::Node,
            _ => Access::ClientRead,
        }
    }

    /// Whether the route answers methods other than GET and POST (the facades' PUT and
    /// DELETE).
    pub(crate) fn any_method(self) -> bool {
        matches!(self, Route::Shared(Endpoint::Nacos | Endpoint::Eureka))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_its_row_in_the_metrics_table_and_its_path_routes_to_it() {
        assert_eq!(Endpoint::ALL.len(), ENDPOINTS.len());
        for (row, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint as usize, row, "{endpoint:?} is not at its row");
            let label = endpoint.label();
            // A family of paths is routed by its prefix.
            let path = match endpoint {
                Endpoint::Nacos | Endpoint::Eureka => format!("{label}/x"),
                _ => label.to_owned(),
            };
            assert_eq!(
                Route::of(&path, &[]),
                Some((Route::Shared(endpoint), label)),
                "{path} routes to {endpoint:?}"
            );
            assert_eq!(Route::Shared(endpoint).row(), row);
        }
    }

    #[test]
    fn a_modes_routes_follow_the_shared_ones() {
        const ROUTES: &[ModeRoute] = &[
            ModeRoute {
                path: "/raft/vote",
                params: &[],
                peer_body: true,
            },
            ModeRoute {
                path: "/cluster/join",
                params: &["url"],
                peer_body: false,
            },
        ];
        assert_eq!(
            Route::of("/cluster/join", ROUTES),
            Some((Route::Mode(1), "/cluster/join"))
        );
        assert_eq!(Route::Mode(1).row(), ENDPOINTS.len() + 1);
        assert_eq!(Route::of("/raft/append", ROUTES), None);
        assert_eq!(Route::of("/cluster/join", &[]), None, "no mode, no such route");
        assert_eq!(
            Route::of("/findall", ROUTES),
            Some((Route::Shared(Endpoint::FindAll), "/findall"))
        );
    }
}
