//! The route table: every endpoint of the shared API, its name in metrics, how a path
//! finds it, whether a request to it may block, and who may call it. The facades' routes
//! ([`FacadeRoute`]) are found after these, then the running cluster mode's own
//! ([`registry_cluster::ModeRoute`]).

use http::{Method, Request};
use registry_cluster::ModeRoute;

use crate::auth::Access;
use crate::headers::is_forwarded;
use crate::request::ReadQuery;

/// One endpoint family of a facade: the path prefixes it answers under and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FacadeRoute {
    /// The prefixes it answers. A prefix ending in `/` takes any path that starts with it;
    /// one that does not takes itself and the paths that continue it with `/`.
    pub prefixes: &'static [&'static str],
    /// Its name in metrics (the `endpoint` label) and error answers.
    pub label: &'static str,
    /// Whether its requests are long polls: reads (whatever their method) that wait on
    /// purpose, left out of the latency histogram.
    pub long_poll: bool,
    /// Whether its requests are logins: the username and password they carry are what they
    /// check, not who calls (with `--auth-enabled`, no caller is looked for).
    pub login: bool,
}

impl FacadeRoute {
    /// The part of `path` after this route's prefix (without the `/` that follows a prefix
    /// not ending in one), if the path is this route's.
    pub fn rest<'a>(&self, path: &'a str) -> Option<&'a str> {
        self.prefixes.iter().find_map(|prefix| {
            let rest = path.strip_prefix(prefix)?;
            if prefix.ends_with('/') {
                return Some(rest);
            }
            (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
        })
    }
}

/// Every endpoint of the shared API (docs/spec.md §3, the operators', the relay between
/// nodes), as requests are counted by it in metrics (`/findall` counts as `/findAll`). The
/// order is that of the router's endpoint enum, which a test ties to this table.
pub const ENDPOINTS: [&str; 20] = [
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
    "/relay",
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
    /// The writes a follower relays to the leader, as the gateway's ops.
    Relay,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// An endpoint every mode serves.
    Shared(Endpoint),
    /// A facade's route: its row in [`Routes`], which holds the facade and the route.
    Facade(usize),
    /// The running mode's route at this index of its `routes()`.
    Mode(usize),
}

impl Endpoint {
    /// Every endpoint, in [`ENDPOINTS`] order.
    #[cfg(test)]
    const ALL: [Endpoint; 20] = [
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
        Endpoint::Relay,
    ];

    /// Whether it is the seed's API (`--protocols` may leave it out), not the console's,
    /// the operators' or the cluster's.
    fn is_seed_api(self) -> bool {
        matches!(
            self,
            Endpoint::Reg
                | Endpoint::Unreg
                | Endpoint::Renew
                | Endpoint::Renews
                | Endpoint::Batch
                | Endpoint::FindAll
                | Endpoint::Version
                | Endpoint::Versions
        )
    }

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
            "/relay" => Endpoint::Relay,
            _ => return None,
        };
        Some((endpoint, endpoint.label()))
    }
}

/// Every route of this node: the shared API's, the facades' prefixes, the mode's.
pub(crate) struct Routes {
    /// Each facade route: its facade (an index into the facades' tables) and its index
    /// in its facade's table.
    facade_routes: Vec<(usize, usize, FacadeRoute)>,
    /// For each first path segment a prefix starts with (`/v1` of `/v1/agent/`), the rows
    /// of `facade_routes` that may take a path starting with it, in order: a path is tried
    /// against those of its facade, not every facade's.
    by_segment: Vec<(&'static str, Vec<usize>)>,
    mode: &'static [ModeRoute],
    /// Whether the seed's API is served.
    seed: bool,
}

impl Routes {
    /// The routes of a node serving facades with these route `tables`, in a mode with
    /// `mode` routes of its own.
    pub(crate) fn new(tables: &[&'static [FacadeRoute]], mode: &'static [ModeRoute]) -> Routes {
        let facade_routes: Vec<_> = tables
            .iter()
            .enumerate()
            .flat_map(|(f, table)| table.iter().enumerate().map(move |(r, route)| (f, r, *route)))
            .collect();
        Routes {
            by_segment: by_segment(&facade_routes),
            facade_routes,
            mode,
            seed: true,
        }
    }

    /// Serves the seed's API, or leaves it out (its paths are then no route).
    pub(crate) fn serve_seed_api(&mut self, served: bool) {
        self.seed = served;
    }

    /// The route of `path`: the shared API first, then the facades' prefixes, then the
    /// mode's routes. With it, the path as a static string for error answers (`/findall`
    /// is answered as itself, a facade's route by its label).
    pub(crate) fn of(&self, path: &str) -> Option<(Route, &'static str)> {
        if let Some((endpoint, label)) = Endpoint::of(path) {
            if !self.seed && endpoint.is_seed_api() {
                return None;
            }
            return Some((Route::Shared(endpoint), label));
        }
        let segment = first_segment(path);
        let rows = self
            .by_segment
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, rows)| rows);
        if let Some(&row) = rows
            .into_iter()
            .flatten()
            .find(|&&row| self.facade_routes[row].2.rest(path).is_some())
        {
            return Some((Route::Facade(row), self.facade_routes[row].2.label));
        }
        let index = self.mode.iter().position(|route| route.path == path)?;
        Some((Route::Mode(index), self.mode[index].path))
    }

    /// Whether `route` is a facade's or the mode's long poll.
    #[inline]
    pub(crate) fn long_poll(&self, route: Route) -> bool {
        match route {
            Route::Facade(row) => self.facade_routes[row].2.long_poll,
            Route::Mode(index) => self.mode[index].long_poll,
            Route::Shared(_) => false,
        }
    }

    /// The facade of facade route `row` (its index among the tables), the route's index in
    /// its table, and the path after its prefix.
    pub(crate) fn facade<'a>(&self, row: usize, path: &'a str) -> (usize, usize, &'a str) {
        let (facade, route, prefix) = &self.facade_routes[row];
        (*facade, *route, prefix.rest(path).unwrap_or(""))
    }

    /// Whether `route` is a facade's login route ([`FacadeRoute::login`]).
    pub(crate) fn is_login(&self, route: Route) -> bool {
        match route {
            Route::Facade(row) => self.facade_routes[row].2.login,
            Route::Shared(_) | Route::Mode(_) => false,
        }
    }

    /// This route's row in the metrics table: [`ENDPOINTS`], the facades' routes, then the
    /// mode's routes.
    pub(crate) fn row(&self, route: Route) -> usize {
        match route {
            Route::Shared(endpoint) => endpoint as usize,
            Route::Facade(row) => ENDPOINTS.len() + row,
            Route::Mode(index) => ENDPOINTS.len() + self.facade_routes.len() + index,
        }
    }

    /// The name of every row, in order.
    pub(crate) fn labels(&self) -> Vec<&'static str> {
        ENDPOINTS
            .iter()
            .copied()
            .chain(self.facade_routes.iter().map(|(_, _, route)| route.label))
            .chain(self.mode.iter().map(|route| route.path))
            .collect()
    }
}

/// The first segment of `path`: `/v1` of `/v1/agent/services`, `/nacos` of `/nacos`.
fn first_segment(path: &str) -> &str {
    let end = path.get(1..).and_then(|p| p.find('/')).map_or(path.len(), |at| at + 1);
    &path[..end]
}

/// The rows of `routes` each first path segment may reach, in order.
fn by_segment(routes: &[(usize, usize, FacadeRoute)]) -> Vec<(&'static str, Vec<usize>)> {
    let mut segments: Vec<(&'static str, Vec<usize>)> = Vec::new();
    for (row, (_, _, route)) in routes.iter().enumerate() {
        for prefix in route.prefixes {
            let segment = first_segment(prefix);
            match segments.iter_mut().find(|(s, _)| *s == segment) {
                Some((_, rows)) if rows.last() != Some(&row) => rows.push(row),
                Some(_) => {}
                None => segments.push((segment, vec![row])),
            }
        }
    }
    segments
}

impl Route {
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
        let write = || {
            if is_forwarded(request) {
                Access::ForwardedWrite
            } else {
                Access::ClientWrite
            }
        };
        let endpoint = match self {
            Route::Shared(endpoint) => endpoint,
            Route::Facade(_) if request.method() == Method::GET => return Access::ClientRead,
            Route::Facade(_) => return write(),
            // A mode's own routes are node-to-node or operator calls.
            Route::Mode(_) => return Access::Node,
        };
        match endpoint {
            Endpoint::Reg | Endpoint::Unreg | Endpoint::Renew | Endpoint::Renews | Endpoint::Batch => write(),
            // Only a follower relays; without a cluster token, the client token it passed on.
            Endpoint::Relay => Access::ForwardedWrite,
            Endpoint::SetLeader => Access::Node,
            Endpoint::Snapshot if ReadQuery::of(request).has_since() => Access::Node,
            _ if is_forwarded(request) => Access::Node,
            _ => Access::ClientRead,
        }
    }

    /// Whether the route answers methods other than GET and POST (the facades' PUT and
    /// DELETE).
    pub(crate) fn any_method(self) -> bool {
        matches!(self, Route::Facade(_))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The route table of a facade with two routes.
    pub(crate) const TWO: &[FacadeRoute] = &[
        FacadeRoute {
            prefixes: &["/two/v1/"],
            label: "/two/v1",
            long_poll: false,
            login: false,
        },
        FacadeRoute {
            prefixes: &["/two/apps", "/two/v2/apps"],
            label: "/two/apps",
            long_poll: false,
            login: false,
        },
    ];

    pub(crate) const MODE: &[ModeRoute] = &[
        ModeRoute {
            path: "/raft/vote",
            params: &[],
            peer_body: true,
            long_poll: false,
        },
        ModeRoute {
            path: "/cluster/join",
            params: &["url"],
            peer_body: false,
            long_poll: false,
        },
    ];

    #[test]
    fn a_prefix_with_a_slash_takes_whatever_follows_one_without_takes_a_segment_boundary() {
        let open = FacadeRoute {
            prefixes: &["/p/v1/"],
            label: "/p/v1",
            long_poll: false,
            login: false,
        };
        assert_eq!(open.rest("/p/v1/x/y"), Some("x/y"));
        assert_eq!(open.rest("/p/v1//x"), Some("/x"));
        assert_eq!(open.rest("/p/v1"), None);
        let bounded = FacadeRoute {
            prefixes: &["/a", "/b/v2/a"],
            label: "/a",
            long_poll: false,
            login: false,
        };
        assert_eq!(bounded.rest("/a"), Some(""));
        assert_eq!(bounded.rest("/a//x"), Some("x"));
        assert_eq!(bounded.rest("/b/v2/a/x"), Some("x"));
        assert_eq!(bounded.rest("/ab"), None);
    }

    /// A path is tried against the routes of its first segment only, in their order: the
    /// first facade's route wins over the second's, a wider prefix behind a narrower one
    /// takes the rest, and a path no prefix starts with is no route.
    #[test]
    fn a_path_finds_the_first_route_among_those_of_its_first_segment() {
        const THREE: &[FacadeRoute] = &[FacadeRoute {
            prefixes: &["/two/v1/x", "/three"],
            label: "/three",
            long_poll: false,
            login: false,
        }];
        let routes = Routes::new(&[TWO, THREE], &[]);
        assert_eq!(first_segment("/v1/agent/services"), "/v1");
        assert_eq!(first_segment("/v1"), "/v1");
        assert_eq!(first_segment("/"), "/");
        assert_eq!(first_segment(""), "");
        assert_eq!(routes.of("/two/v1/x"), Some((Route::Facade(0), "/two/v1")));
        assert_eq!(routes.of("/three/y"), Some((Route::Facade(2), "/three")));
        assert_eq!(routes.of("/two/apps"), Some((Route::Facade(1), "/two/apps")));
        assert_eq!(routes.of("/twox/v1/x"), None);
        assert_eq!(routes.of("/"), None);
        assert_eq!(routes.of(""), None);
    }

    #[test]
    fn every_endpoint_is_its_row_in_the_metrics_table_and_its_path_routes_to_it() {
        let routes = Routes::new(&[], &[]);
        assert_eq!(Endpoint::ALL.len(), ENDPOINTS.len());
        for (row, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint as usize, row, "{endpoint:?} is not at its row");
            let label = endpoint.label();
            assert_eq!(
                routes.of(label),
                Some((Route::Shared(endpoint), label)),
                "{label} routes to {endpoint:?}"
            );
            assert_eq!(routes.row(Route::Shared(endpoint)), row);
        }
    }

    #[test]
    fn the_facades_routes_follow_the_shared_ones_and_the_modes_follow_theirs() {
        let routes = Routes::new(&[TWO], MODE);
        assert_eq!(routes.of("/two/v1/x"), Some((Route::Facade(0), "/two/v1")));
        assert_eq!(routes.of("/two/v2/apps/A"), Some((Route::Facade(1), "/two/apps")));
        assert_eq!(routes.facade(1, "/two/v2/apps/A"), (0, 1, "A"));
        assert_eq!(routes.of("/two/v1"), None, "a prefix ending in / needs what follows it");
        assert_eq!(routes.row(Route::Facade(1)), ENDPOINTS.len() + 1);
        assert_eq!(routes.of("/cluster/join"), Some((Route::Mode(1), "/cluster/join")));
        assert_eq!(routes.row(Route::Mode(1)), ENDPOINTS.len() + 2 + 1);
        assert_eq!(routes.of("/raft/append"), None);
        assert_eq!(
            Routes::new(&[], &[]).of("/cluster/join"),
            None,
            "no mode, no such route"
        );
        assert_eq!(
            routes.of("/findall"),
            Some((Route::Shared(Endpoint::FindAll), "/findall"))
        );
        let labels = routes.labels();
        assert_eq!(labels.len(), ENDPOINTS.len() + 4);
        assert_eq!(
            labels[ENDPOINTS.len()..],
            ["/two/v1", "/two/apps", "/raft/vote", "/cluster/join"]
        );
    }
}
