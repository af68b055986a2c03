//! Consul's answers: JSON with `Content-Type: application/json`, the blocking-query headers
//! on every read that has an index, refusals as plain text with Consul's reason, writes
//! answered 200 with an empty body.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use registry_api::answer::{json, typed};
use registry_api::{ApiError, App, Body, FacadeError};
use registry_cluster::Role;
use serde::Serialize;

/// The index of what a read answered.
pub(crate) const INDEX: &str = "x-consul-index";
const KNOWN_LEADER: &str = "x-consul-knownleader";
const LAST_CONTACT: &str = "x-consul-lastcontact";
const CONSISTENCY: &str = "x-consul-effective-consistency";

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
    let role = app.cluster().role();
    let headers = response.headers_mut();
    headers.insert(INDEX, HeaderValue::from(index.max(1)));
    let known = if matches!(role, Role::NoLeader) {
        "false"
    } else {
        "true"
    };
    headers.insert(KNOWN_LEADER, HeaderValue::from_static(known));
    headers.insert(LAST_CONTACT, HeaderValue::from_static("0"));
    let consistency = match (stale, role) {
        (true, _) => "stale",
        (false, Role::Leader) => "leader",
        (false, _) => "stale",
    };
    headers.insert(CONSISTENCY, HeaderValue::from_static(consistency));
    response
}
