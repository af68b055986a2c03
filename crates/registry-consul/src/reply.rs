//! Consul's answers: JSON with `Content-Type: application/json`, the blocking-query headers
//! on every read that has an index, refusals as plain text with Consul's reason, writes
//! answered 200 with an empty body.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use registry_api::answer::{json, typed};
use registry_api::{ApiError, App, Body, FacadeError};
use registry_cluster::Role;
use serde::Serialize;

/// The index of what a read answered.
const INDEX: HeaderName = HeaderName::from_static("x-consul-index");
const KNOWN_LEADER: HeaderName = HeaderName::from_static("x-consul-knownleader");
const LAST_CONTACT: HeaderName = HeaderName::from_static("x-consul-lastcontact");
const CONSISTENCY: HeaderName = HeaderName::from_static("x-consul-effective-consistency");

/// An answer, or a refusal.
pub(crate) type Answer = Result<Response<Body>, Refused>;

/// A refusal: a status and Consul's text.
#[derive(Debug)]
pub(crate) struct Refused(pub StatusCode, pub String);

impl Refused {
    pub(crate) fn bad(text: impl Into<String>) -> Refused {
        Refused(StatusCode::BAD_REQUEST, text.into())
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        typed(self.0, Bytes::from(self.1), "text/plain; charset=utf-8")
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        let status = e.status();
        // Consul's texts for what clients key on.
        let text = match (&e, status) {
            (_, StatusCode::FORBIDDEN) => format!("Permission denied: {e}"),
            (ApiError::NoLeader(_), _) => "No cluster leader".to_owned(),
            _ => e.to_string(),
        };
        Refused(status, text)
    }
}

impl From<FacadeError> for Refused {
    fn from(e: FacadeError) -> Refused {
        Refused(e.status(), e.message().to_owned())
    }
}

/// A 200 JSON answer of `value`.
pub(crate) fn ok<T: Serialize + ?Sized>(value: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    json(StatusCode::OK, Bytes::from(bytes))
}

/// A write that succeeded: 200, no body (py-consul takes exactly 200 for success).
pub(crate) fn done() -> Response<Body> {
    registry_api::answer::empty(StatusCode::OK)
}

/// A JSON `true` or `false` (what KV writes and `/v1/txn` answer).
pub(crate) fn boolean(value: bool) -> Response<Body> {
    json(
        StatusCode::OK,
        Bytes::from_static(if value { b"true" } else { b"false" }),
    )
}

/// `response` with the headers of a read that has an index: `index` (never 0), whether a
/// leader is known, and how long since this node heard from it (0: it leads, or a copy is
/// kept up to date by the cluster).
pub(crate) fn indexed(app: &App, mut response: Response<Body>, index: u64, stale: bool) -> Response<Body> {
    index_headers(response.headers_mut(), index, ReadState::of(app, stale));
    response
}

/// What the headers of a read say of the node: whether a leader is known, and how
/// consistent the answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadState {
    pub known_leader: bool,
    pub from_leader: bool,
}

impl ReadState {
    /// This node's, for a read with `?stale` or without.
    pub(crate) fn of(app: &App, stale: bool) -> ReadState {
        let role = app.cluster().role();
        ReadState {
            known_leader: !matches!(role, Role::NoLeader),
            from_leader: !stale && matches!(role, Role::Leader),
        }
    }

    /// A number below 4, one for each state.
    pub(crate) fn slot(self) -> usize {
        usize::from(self.known_leader) << 1 | usize::from(self.from_leader)
    }
}

/// Puts the headers of a read that has an index into `headers`.
pub(crate) fn index_headers(headers: &mut HeaderMap, index: u64, state: ReadState) {
    headers.insert(INDEX, HeaderValue::from(index.max(1)));
    let known = if state.known_leader { "true" } else { "false" };
    headers.insert(KNOWN_LEADER, HeaderValue::from_static(known));
    headers.insert(LAST_CONTACT, HeaderValue::from_static("0"));
    let consistency = if state.from_leader { "leader" } else { "stale" };
    headers.insert(CONSISTENCY, HeaderValue::from_static(consistency));
}
