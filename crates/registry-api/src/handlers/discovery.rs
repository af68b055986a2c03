//! `/findAll`, `/version`, `/versions`: reads, served by any node from its own copy.
//! Each answers the version it reflects in `X-Maregistry-Version`; with `since=V` (and
//! `wait=D`) it is a blocking query that answers once that version is above `V`.

use bytes::Bytes;
use std::sync::OnceLock;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_cluster::CoordinatorError;

use crate::answer::{json, ok_json, with_version};
use crate::app::App;
use crate::body::Body;
use crate::encoding::{accepts_gzip, gzip, gzipped, worth_gzip};
use crate::error::ApiError;
use crate::forward::{forward, Outgoing, Relay};
use crate::headers::{is_forwarded, VERSION_HEADER};
use crate::request::ReadQuery;

type Answer = Result<Response<Body>, ApiError>;

/// Reads are answered from this node's copy. With `consistent=true` the read is made
/// linearizable first (raft: the leader confirms it still leads and this node has applied
/// everything committed before; a follower relays the read to the leader, whose answer
/// is answered: `Some`). The request is only borrowed, so that a plain read moves
/// nothing; the rare path is boxed so that a plain read's future stays small.
async fn consistent(
    app: &App,
    query: &ReadQuery<'_>,
    request: &Request<Incoming>,
) -> Result<Option<Response<Body>>, ApiError> {
    if !query.consistent()? {
        return Ok(None);
    }
    Box::pin(app.read_consistently(request)).await
}

impl App {
    /// Makes the read `request` linearizable (raft: the leader confirms it still leads and
    /// this node has applied everything committed before): `None`, answer it from this
    /// node's copy; or relays it to the leader, once, whose answer is `Some`. What a
    /// facade's reads with a consistency flag call.
    pub async fn read_consistently<B>(&self, request: &Request<B>) -> Result<Option<Response<Body>>, ApiError> {
        match self.cluster.consistent_read().await {
            Ok(()) => Ok(None),
            Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !is_forwarded(request) => {
                let outgoing = Outgoing {
                    method: request.method().clone(),
                    target: request.uri().path_and_query().map_or("/", |p| p.as_str()),
                    authorization: request.headers().get(AUTHORIZATION),
                    // A read has no body worth relaying.
                    body: Bytes::new(),
                };
                Ok(Some(forward(self, &leader, Relay::Read, outgoing).await?))
            }
            Err(e) => Err(read_error(e)),
        }
    }

    /// Waits until `version()` (read afresh after each change of `services`; of any
    /// service when `services` is empty) is above `since`, at most `wait`, or until the
    /// node shuts down: a facade's blocking query. Costs no task while it waits.
    pub async fn wait_for(&self, services: &[&str], since: u64, wait: std::time::Duration, version: impl Fn() -> u64) {
        Box::pin(self.watch.wait(services, since, wait, version)).await;
    }
}

/// Why a consistent read was refused, in a read's words.
fn read_error(e: CoordinatorError) -> ApiError {
    match e {
        CoordinatorError::NotLeader { leader: Some(leader) } => ApiError::ReadUnavailable(format!(
            "this node does not lead (the leader is {leader}) and a consistent read is relayed only once"
        )),
        CoordinatorError::NotLeader { leader: None } => ApiError::ReadUnavailable(
            "no leader is known: a consistent read needs one (a read without consistent=true is served here)"
                .to_owned(),
        ),
        CoordinatorError::Unavailable(message) | CoordinatorError::Indeterminate(message) => {
            ApiError::ReadUnavailable(message)
        }
        e => e.into(),
    }
}

/// Waits, when the request is a blocking query, until `version()` is above its `since`
/// (or the wait runs out, or the node shuts down).
async fn block(app: &App, blocking: Option<(u64, std::time::Duration)>, services: &[&str], version: impl Fn() -> u64) {
    if let Some((since, wait)) = blocking {
        Box::pin(app.watch.wait(services, since, wait, version)).await;
    }
}

/// The headers of a 200 `/findAll` answer, built once: `Content-Type` and the version.
/// Each answer clones them and sets the version in place, which spares hashing the
/// custom header name into a fresh map on the hot path.
fn find_all_headers() -> &'static HeaderMap {
    static HEADERS: OnceLock<HeaderMap> = OnceLock::new();
    HEADERS.get_or_init(|| {
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(VERSION_HEADER, HeaderValue::from_static("0"));
        headers
    })
}

/// A 200 `/findAll` answer of `list` at `version`, gzip-compressed when `compress`.
fn find_all_answer(list: Bytes, version: u64, compress: bool) -> Response<Body> {
    if compress {
        return gzipped(find_all_plain(gzip(&list), version));
    }
    find_all_plain(list, version)
}

/// A 200 `/findAll` answer of `body` at `version`, as it is.
fn find_all_plain(body: Bytes, version: u64) -> Response<Body> {
    let mut response = Response::new(Body::new(body));
    let headers = response.headers_mut();
    *headers = find_all_headers().clone();
    if let Some((_, value)) = headers.iter_mut().find(|(name, _)| *name == VERSION_HEADER) {
        *value = HeaderValue::from(version);
    }
    response
}

/// `/findAll?service=S` → the instances in registration order, `[]` when unknown. The
/// encoded list is kept by the registry until the service changes.
pub(crate) async fn find_all(app: &App, request: Request<Incoming>) -> Answer {
    let query = ReadQuery::of(&request);
    let service = query.service()?;
    let blocking = query.blocking(app.limits.max_wait)?;
    if let Some(relayed) = consistent(app, &query, &request).await? {
        return Ok(relayed);
    }
    let registry = app.registry();
    let Some(blocking) = blocking else {
        let (version, list) = registry.find_all_versioned(&service);
        let compress = worth_gzip(list.len(), || accepts_gzip(request.headers()));
        return Ok(find_all_answer(list, version, compress));
    };
    // A waiting request keeps nothing of the request: its head pins hyper's read buffer.
    let accepts = accepts_gzip(request.headers());
    drop(request);
    block(app, Some(blocking), &[&service], || registry.version(&service)).await;
    let (version, list) = registry.find_all_versioned(&service);
    let compress = worth_gzip(list.len(), || accepts);
    Ok(find_all_answer(list, version, compress))
}

/// `/version?service=S` → the service's version, `0` when unknown.
pub(crate) async fn version(app: &App, request: Request<Incoming>) -> Answer {
    let query = ReadQuery::of(&request);
    let service = query.service()?;
    let blocking = query.blocking(app.limits.max_wait)?;
    if let Some(relayed) = consistent(app, &query, &request).await? {
        return Ok(relayed);
    }
    drop(request);
    let registry = app.registry();
    block(app, blocking, &[&service], || registry.version(&service)).await;
    let version = registry.version(&service);
    Ok(with_version(ok_json(&version), version))
}

/// `/versions?services=a,b` → `{ "a": n, "b": m }`, keys in the order asked; the header
/// carries the highest of them.
pub(crate) async fn versions(app: &App, request: Request<Incoming>) -> Answer {
    let query = ReadQuery::of(&request);
    let services = query.services()?;
    let blocking = query.blocking(app.limits.max_wait)?;
    if let Some(relayed) = consistent(app, &query, &request).await? {
        return Ok(relayed);
    }
    drop(request);
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let registry = app.registry();
    let highest = |versions: &[u64]| versions.iter().copied().max().unwrap_or(0);
    block(app, blocking, &names, || highest(&registry.versions(&names))).await;
    let versions = registry.versions(&names);
    let mut out = Vec::with_capacity(2 + names.len() * 32);
    out.push(b'{');
    for (i, (name, version)) in names.iter().zip(&versions).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // A validated service name is plain text; serde_json escapes it all the same.
        out.extend_from_slice(&serde_json::to_vec(name).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(version.to_string().as_bytes());
    }
    out.push(b'}');
    Ok(with_version(json(StatusCode::OK, Bytes::from(out)), highest(&versions)))
}
