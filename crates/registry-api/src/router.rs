//! The hyper service: finds the route, checks the head, the method and the token, hands
//! the request to its handler, answers errors as JSON and counts the answer. It only
//! dispatches.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::access::{Credentials, Protocol};
use crate::app::{App, Peer};
use crate::auth::{check_access, Access};
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway;
use crate::handlers::{cluster, discovery, mode, operations, registration, snapshot};
use crate::headers::is_forwarded;
use crate::headers::{cross_site, is_browser_header};
use crate::limits::{LONG_URI_PREFIX, MAX_CONFIG_URI_BYTES, MAX_HEADER_BYTES, MAX_URI_BYTES};
use crate::routes::{Endpoint, Route};
use registry_core::{Need, Resource};

/// Answers one request. Never fails.
pub(crate) async fn handle(
    app: Arc<App>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let found = app.routes.of(request.uri().path());
    let timed = found.is_some_and(|(route, _)| !route.may_block(&request) && !app.routes.long_poll(route));
    let row = found.map_or(app.metrics.other(), |(route, _)| app.routes.row(route));
    // One frame for the whole answer (a separate async fn costs a move of the response).
    let response = 'answer: {
        if let Err(e) = check_head(&request) {
            break 'answer e.into_response(short(request.uri().path()));
        }
        let Some((route, path)) = found else {
            break 'answer ApiError::NotFound.into_response(short(request.uri().path()));
        };
        // The facades have their own methods (PUT, DELETE) and answer them.
        if !matches!(*request.method(), Method::GET | Method::POST) && !route.any_method() {
            let method = request.method().to_string();
            break 'answer ApiError::MethodNotAllowed(method).into_response(path);
        }
        if app.auth.any() {
            let access = match app.routes.long_poll(route) {
                true => Access::ClientRead,
                false => route.access(&request),
            };
            if let Err(e) = check_access(&app.auth, access, &request) {
                tracing::debug!(path, "request refused: no valid token");
                break 'answer e.into_response(path);
            }
        }
        let app: &App = &app;
        let mut request = request;
        if app.auth.guard.is_some() && !app.routes.is_login(route) {
            if let Err(e) = identify(app, route, &mut request) {
                break 'answer e.into_response(path);
            }
        }
        let answer = match route {
            Route::Shared(endpoint) => match endpoint {
                Endpoint::Reg => registration::reg(app, request).await,
                Endpoint::Unreg => registration::unreg(app, request).await,
                Endpoint::Renew => registration::renew(app, request).await,
                Endpoint::Renews => registration::renews(app, request).await,
                Endpoint::Batch => Box::pin(registration::batch(app, request)).await,
                Endpoint::FindAll => discovery::find_all(app, request).await,
                Endpoint::Version => discovery::version(app, request).await,
                Endpoint::Versions => discovery::versions(app, request).await,
                Endpoint::Snapshot => Box::pin(snapshot::snapshot(app, request)).await,
                Endpoint::Info => Ok(cluster::info(app)),
                Endpoint::Cluster => Ok(cluster::servers(app)),
                Endpoint::Leader => Ok(cluster::leader(app)),
                // Rare calls with large futures: boxed, so that the future of every request
                // (built for each one) stays small.
                Endpoint::SetLeader => Box::pin(cluster::set_leader(app)).await,
                Endpoint::Metrics => Box::pin(operations::metrics(app)).await,
                Endpoint::Health => Ok(operations::health(app)),
                Endpoint::Ready => Box::pin(operations::ready(app)).await,
                Endpoint::Ui => Ok(operations::console(app)),
                Endpoint::Services => Box::pin(operations::services(app, request)).await,
                Endpoint::Instances => Box::pin(operations::instances(app, request)).await,
                Endpoint::Relay => Box::pin(gateway::relayed(app, request)).await,
            },
            Route::Facade(row) => Ok(facade(app, row, request, peer).await),
            Route::Mode(index) => Box::pin(mode::serve(app, request, index)).await,
        };
        answer.unwrap_or_else(|e| {
            tracing::debug!(path, error = %e, "request refused");
            e.into_response(path)
        })
    };
    app.metrics
        .record(row, response.status().as_u16(), timed.then(|| started.elapsed()));
    Ok(response)
}

/// Hands a request of a facade's route `row` to that facade, with the address it came
/// from.
async fn facade(app: &App, row: usize, mut request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    request.extensions_mut().insert(Peer(peer));
    let path = request.uri().path().to_owned();
    let (facade, route, rest) = app.routes.facade(row, &path);
    app.facades[facade].serve(app, route, request, rest).await
}

/// With users: who calls (kept with the request for the handlers and the gateway), and
/// the check of the shared API's reads, which name their service in the query or read
/// every namespace. Writes are checked in the gateway; a facade checks its own reads.
#[cold]
fn identify(app: &App, route: Route, request: &mut Request<Incoming>) -> Result<(), ApiError> {
    let mut scratch = Vec::new();
    let caller = app.identify(&Credentials::of(request, &mut scratch));
    drop(scratch);
    if let Route::Shared(endpoint) = route {
        if !is_forwarded(request) {
            let query = crate::request::ReadQuery::of(request);
            let service = match endpoint {
                Endpoint::FindAll | Endpoint::Version => query.service().ok(),
                _ => None,
            };
            let resource = match (endpoint, &service) {
                (_, Some(service)) => Some(Resource::service(service)),
                (
                    Endpoint::FindAll
                    | Endpoint::Version
                    | Endpoint::Versions
                    | Endpoint::Snapshot
                    | Endpoint::Services
                    | Endpoint::Instances,
                    None,
                ) => Some(Resource::ALL),
                _ => None,
            };
            if let Some(resource) = resource {
                app.authorize("seed", &caller, &resource, Need::Read)?;
            }
        }
    }
    let protocol = match route {
        Route::Facade(row) => app.facades[app.routes.facade(row, "").0].name(),
        Route::Shared(_) | Route::Mode(_) => "seed",
    };
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(Protocol(protocol));
    Ok(())
}

/// Refuses a write another site's page made a browser send, and a request target or
/// header section over our limits.
fn check_head<B>(request: &Request<B>) -> Result<(), ApiError> {
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        // Checked only past the usual limit: the common request pays nothing for it.
        let limit = match request.uri().path().starts_with(LONG_URI_PREFIX) {
            true => MAX_CONFIG_URI_BYTES,
            false => MAX_URI_BYTES,
        };
        if target > limit {
            return Err(ApiError::UriTooLong(limit));
        }
    }
    // One pass over the headers: their size, and whether a browser sent them.
    let (mut bytes, mut from_browser) = (0, false);
    for (name, value) in request.headers() {
        bytes += name.as_str().len() + value.len() + 4;
        from_browser |= is_browser_header(name);
    }
    if bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge(MAX_HEADER_BYTES));
    }
    if from_browser && !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Some(why) = cross_site(request) {
            return Err(ApiError::CrossSite(why));
        }
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
