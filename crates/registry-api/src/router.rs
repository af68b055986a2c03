use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use http::header::AUTHORIZATION;

use crate::app::{App, Auth};
use crate::error::ApiError;
use crate::forward::is_forwarded;
use crate::handlers::{cluster, discovery, eureka, nacos, operations, registration, snapshot};
use crate::metrics::OTHER;
use crate::request::ReadQuery;

/// Every endpoint of docs/spec.md §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
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
    Join,
    Leave,
    Peer(&'static str),
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

/// Where Eureka clients find the registry (the second is Netflix's default path).
const EUREKA: [&str; 2] = ["/eureka/apps", "/eureka/v2/apps"];

/// The part of a Eureka path after `apps`, if it is one.
fn eureka_rest(path: &str) -> Option<&str> {
    EUREKA.iter().find_map(|prefix| {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
    })
}

/// Where the Nacos naming API lives.
const NACOS: &str = "/nacos/v1/ns/";

impl Route {
    /// The route of `path`, with the path as a static string for error answers.
    fn of(path: &str) -> Option<(Route, &'static str)> {
        Some(match path {
            "/reg" => (Route::Reg, "/reg"),
            "/unreg" => (Route::Unreg, "/unreg"),
            "/renew" => (Route::Renew, "/renew"),
            "/renews" => (Route::Renews, "/renews"),
            "/batch" => (Route::Batch, "/batch"),
            "/findAll" => (Route::FindAll, "/findAll"),
            "/findall" => (Route::FindAll, "/findall"),
            "/version" => (Route::Version, "/version"),
            "/versions" => (Route::Versions, "/versions"),
            "/snapshot" => (Route::Snapshot, "/snapshot"),
            "/info" => (Route::Info, "/info"),
            "/cluster" => (Route::Cluster, "/cluster"),
            "/leader" => (Route::Leader, "/leader"),
            "/sl" => (Route::SetLeader, "/sl"),
            "/cluster/join" => (Route::Join, "/cluster/join"),
            "/cluster/leave" => (Route::Leave, "/cluster/leave"),
            "/raft/append" => (Route::Peer("append"), "/raft/append"),
            "/raft/vote" => (Route::Peer("vote"), "/raft/vote"),
            "/raft/snapshot" => (Route::Peer("snapshot"), "/raft/snapshot"),
            "/metrics" => (Route::Metrics, "/metrics"),
            "/health" => (Route::Health, "/health"),
            "/ready" => (Route::Ready, "/ready"),
            "/ui" | "/ui/" => (Route::Ui, "/ui"),
            "/services" => (Route::Services, "/services"),
            "/instances" => (Route::Instances, "/instances"),
            nacos if nacos.starts_with(NACOS) => (Route::Nacos, "/nacos/v1/ns"),
            eureka if eureka_rest(eureka).is_some() => (Route::Eureka, "/eureka/apps"),
            _ => return None,
        })
    }

    /// This route's row in [`ENDPOINTS`].
    fn endpoint(self) -> usize {
        match self {
            Route::Reg => 0,
            Route::Unreg => 1,
            Route::Renew => 2,
            Route::Renews => 3,
            Route::Batch => 4,
            Route::FindAll => 5,
            Route::Version => 6,
            Route::Versions => 7,
            Route::Snapshot => 8,
            Route::Info => 9,
            Route::Cluster => 10,
            Route::Leader => 11,
            Route::SetLeader => 12,
            Route::Join => 13,
            Route::Leave => 14,
            Route::Peer("append") => 15,
            Route::Peer("vote") => 16,
            Route::Peer(_) => 17,
            Route::Metrics => 18,
            Route::Health => 19,
            Route::Ready => 20,
            Route::Ui => 21,
            Route::Services => 22,
            Route::Instances => 23,
            Route::Nacos => 24,
            Route::Eureka => 25,
        }
    }

    /// Whether a request to this route may wait on purpose (a blocking query: `since=`),
    /// so that its time says nothing about the node's speed. A byte scan: this runs on
    /// every read.
    fn may_block<B>(self, request: &Request<B>) -> bool {
        let reads = matches!(
            self,
            Route::FindAll | Route::Version | Route::Versions | Route::Snapshot | Route::Services | Route::Instances
        );
        reads
            && request.uri().query().is_some_and(|q| {
                let q = q.as_bytes();
                (0..q.len()).any(|i| q[i] == b's' && q[i..].starts_with(b"since=") && (i == 0 || q[i - 1] == b'&'))
            })
    }

    /// Which token this route needs, when tokens are configured.
    fn access<B>(self, request: &Request<B>) -> Access {
        match self {
            Route::Nacos | Route::Eureka if request.method() == Method::GET => Access::ClientRead,
            Route::Reg | Route::Unreg | Route::Renew | Route::Renews | Route::Batch | Route::Nacos | Route::Eureka => {
                if is_forwarded(request) {
                    Access::ForwardedWrite
                } else {
                    Access::ClientWrite
                }
            }
            Route::SetLeader | Route::Join | Route::Leave | Route::Peer(_) => Access::Node,
            Route::Snapshot if ReadQuery::of(request).has_since() => Access::Node,
            _ if is_forwarded(request) => Access::Node,
            _ => Access::ClientRead,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// A node-to-node call: the cluster token.
    Node,
    /// A write a follower relayed: the cluster token, or (without one) the client token
    /// the follower passed on.
    ForwardedWrite,
    /// A client's write: the client token (or the cluster token).
    ClientWrite,
    /// A read: open, unless `--client-token-reads`.
    ClientRead,
}

/// Refuses a request without the token its route needs (401).
fn check_access<B>(auth: &Auth, access: Access, request: &Request<B>) -> Result<(), ApiError> {
    let presented = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let cluster_ok = || auth.cluster.as_ref().is_some_and(|t| t.accepts(presented));
    let client_ok = || auth.client.as_ref().is_some_and(|t| t.accepts(presented)) || cluster_ok();
    let (needed, ok) = match access {
        Access::Node | Access::ForwardedWrite if auth.cluster.is_some() => ("the cluster token", cluster_ok()),
        Access::Node => return Ok(()),
        Access::ForwardedWrite | Access::ClientWrite if auth.client.is_some() => ("the client token", client_ok()),
        Access::ClientRead if auth.client.is_some() && auth.client_reads => ("the client token", client_ok()),
        Access::ForwardedWrite | Access::ClientWrite | Access::ClientRead => return Ok(()),
    };
    if ok {
        return Ok(());
    }
    Err(ApiError::Unauthorized(match (presented.is_some(), needed) {
        (false, "the cluster token") => "this endpoint needs the cluster token: Authorization: Bearer <token>",
        (true, "the cluster token") => "the Authorization header does not carry the cluster token",
        (false, _) => "this endpoint needs the client token: Authorization: Bearer <token>",
        (true, _) => "the Authorization header does not carry the client token",
    }))
}

/// The longest request target (path and query) accepted, in bytes; longer is a 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header section accepted (names, values and their separators), in bytes;
/// larger is a 431. Both limits sit well below hyper's own (a 64 KiB target, a 408 KiB
/// head, 100 header lines), so that an oversized request gets the JSON error of docs/spec.md §3
/// from us rather than hyper's empty one.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The hyper service: dispatches on the path, answers errors as JSON, counts the answer.
/// Never fails.
pub(crate) async fn handle(app: Arc<App>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let found = Route::of(request.uri().path());
    let timed = found.is_some_and(|(route, _)| !route.may_block(&request));
    let endpoint = found.map_or(OTHER, |(route, _)| route.endpoint());
    // One frame for the whole answer (a separate async fn costs a move of the response).
    let response = 'answer: {
        if let Err(e) = check_head(&request) {
            break 'answer e.into_response(short(request.uri().path()));
        }
        let Some((route, path)) = found else {
            break 'answer ApiError::NotFound.into_response(short(request.uri().path()));
        };
        // The Nacos and Eureka APIs have their own methods (PUT, DELETE) and answer them.
        if !matches!(*request.method(), Method::GET | Method::POST) && !matches!(route, Route::Nacos | Route::Eureka) {
            let method = request.method().to_string();
            break 'answer ApiError::MethodNotAllowed(method).into_response(path);
        }
        if app.auth.any() {
            if let Err(e) = check_access(&app.auth, route.access(&request), &request) {
                tracing::debug!(path, "request refused: no valid token");
                break 'answer e.into_response(path);
            }
        }
        let app: &App = &app;
        let answer = match route {
            Route::Reg => registration::reg(app, request).await,
            Route::Unreg => registration::unreg(app, request).await,
            Route::Renew => registration::renew(app, request).await,
            Route::Renews => registration::renews(app, request).await,
            Route::Batch => Box::pin(registration::batch(app, request)).await,
            Route::FindAll => discovery::find_all(app, request).await,
            Route::Version => discovery::version(app, request).await,
            Route::Versions => discovery::versions(app, request).await,
            Route::Snapshot => Box::pin(snapshot::snapshot(app, request)).await,
            Route::Info => Ok(cluster::info(app)),
            Route::Cluster => Ok(cluster::servers(app)),
            Route::Leader => Ok(cluster::leader(app)),
            // Rare calls with large futures: boxed, so that the future of every request
            // (built for each one) stays small.
            Route::SetLeader => Box::pin(cluster::set_leader(app)).await,
            Route::Join => Box::pin(cluster::membership(app, request, cluster::Change::Join)).await,
            Route::Leave => Box::pin(cluster::membership(app, request, cluster::Change::Leave)).await,
            Route::Peer(name) => Box::pin(cluster::peer(app, request, name)).await,
            Route::Metrics => Box::pin(operations::metrics(app)).await,
            Route::Health => Ok(operations::health()),
            Route::Ready => Box::pin(operations::ready(app)).await,
            Route::Ui => Ok(operations::console()),
            Route::Services => Box::pin(operations::services(app, request)).await,
            Route::Instances => Box::pin(operations::instances(app, request)).await,
            Route::Nacos => {
                let rest = request.uri().path()[NACOS.len()..].to_owned();
                Ok(Box::pin(nacos::nacos(app, request, &rest)).await)
            }
            Route::Eureka => {
                let rest = eureka_rest(request.uri().path()).unwrap_or("").to_owned();
                Ok(Box::pin(eureka::eureka(app, request, &rest)).await)
            }
        };
        answer.unwrap_or_else(|e| {
            tracing::debug!(path, error = %e, "request refused");
            e.into_response(path)
        })
    };
    app.metrics
        .record(endpoint, response.status().as_u16(), timed.then(|| started.elapsed()));
    Ok(response)
}

/// Refuses a request target or header section over our limits.
fn check_head<B>(request: &Request<B>) -> Result<(), ApiError> {
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong(MAX_URI_BYTES));
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge(MAX_HEADER_BYTES));
    }
    Ok(())
}

/// A path as echoed in an error answer: cut after 256 bytes, so that a refused
/// oversized path is not sent back whole.
pub(crate) fn short(path: &str) -> &str {
    const MAX: usize = 256;
    if path.len() <= MAX {
        return path;
    }
    let mut end = MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}
