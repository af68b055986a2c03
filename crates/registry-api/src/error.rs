use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use registry_cluster::CoordinatorError;
use serde::Serialize;

use crate::answer::{json, typed};
use crate::body::Body;
use crate::headers::TEXT;

/// Why a request was refused. [`ApiError::into_response`] is the one place that maps a
/// failure to a status code and the JSON error object of docs/spec.md §3.4.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A required query parameter is absent or empty.
    #[error("query parameter '{0}' is required")]
    MissingParam(&'static str),
    /// A query parameter cannot be decoded: a bad escape, or not UTF-8 once decoded.
    #[error("query parameter '{0}' {1}")]
    Undecodable(&'static str, Undecodable),
    /// The input broke a rule of the data model.
    #[error("{0}")]
    Invalid(#[from] registry_core::Error),
    /// A write needs a body and there was none.
    #[error("request body is required: an InstanceMeta JSON object")]
    MissingBody,
    /// The body could not be read.
    #[error("could not read the request body: {0}")]
    UnreadableBody(String),
    /// The body is larger than the limit.
    #[error("request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// A config's content is larger than `--config-max-size`.
    #[error("the config content is {0} bytes, over the limit of {1} bytes (--config-max-size)")]
    ContentTooLarge(usize, usize),
    /// The request target is longer than the limit, in bytes.
    #[error("the request target (path and query) exceeds the limit of {0} bytes")]
    UriTooLong(usize),
    /// The header section is larger than the limit, in bytes.
    #[error("the request headers exceed the limit of {0} bytes")]
    HeadersTooLarge(usize),
    /// The body did not arrive in time.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// Every connection slot is taken.
    #[error("this node serves at most {0} connections at once and all are in use; retry later")]
    TooManyConnections(usize),
    /// No such endpoint.
    #[error("no endpoint at this path")]
    NotFound,
    /// A method other than GET and POST.
    #[error("method {0} is not allowed; use GET or POST")]
    MethodNotAllowed(String),
    /// A write reached a node that cannot apply or forward it, or the cluster cannot
    /// serve the request now: the write was certainly not applied.
    #[error("{0}")]
    NoLeader(String),
    /// A write went to a leader (or into the log) but no outcome came back: it may or may
    /// not be applied.
    #[error("{0}")]
    Indeterminate(String),
    /// A read that needs the leader (a consistent read) could not be served now.
    #[error("{0}")]
    ReadUnavailable(String),
    /// A request the cluster refused as invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The request lacks the token this endpoint needs, or carries a wrong one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The caller is not allowed this (docs/spec.md §9): Nacos's 403, for a missing or
    /// failed identity and a missing permission alike.
    #[error("{0}")]
    Forbidden(String),
    /// A write another site's page made a browser send.
    #[error("a write from another site's page is refused: {0}")]
    CrossSite(String),
    /// `/ready`: this node cannot do its job now, and why.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The leader refused a relayed write: its status and why.
    #[error("{1}")]
    Leader(StatusCode, String),
}

/// Why a form-encoded component cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undecodable {
    /// A `%` not followed by two hex digits (`%ZZ`, a trailing `%`).
    #[error("holds a '%' that is not followed by two hex digits")]
    BadEscape,
    /// The decoded bytes are not UTF-8.
    #[error("is not valid UTF-8 once percent-decoded")]
    NotUtf8,
}

impl From<std::str::Utf8Error> for Undecodable {
    fn from(_: std::str::Utf8Error) -> Self {
        Undecodable::NotUtf8
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    error: &'a str,
    message: String,
    path: &'a str,
    /// A write's 503: `not_applied` (it certainly did not happen) or `indeterminate` (it
    /// may have).
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
}

impl ApiError {
    /// The status code for this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingParam(_)
            | ApiError::Undecodable(..)
            | ApiError::BadRequest(_)
            | ApiError::Invalid(_)
            | ApiError::MissingBody
            | ApiError::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) | ApiError::ContentTooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyConnections(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NoLeader(_)
            | ApiError::Indeterminate(_)
            | ApiError::ReadUnavailable(_)
            | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::CrossSite(_) | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Leader(status, _) => *status,
        }
    }

    /// The leader's refusal of a relayed write, from its answer (`status`, the JSON error
    /// object): a 503 keeps what it says of the write, a 400 stays a 400.
    pub(crate) fn from_leader(status: StatusCode, body: &[u8]) -> ApiError {
        #[derive(serde::Deserialize)]
        struct Refusal {
            #[serde(default)]
            message: String,
            #[serde(default)]
            outcome: Option<String>,
        }
        let refusal = serde_json::from_slice::<Refusal>(body).unwrap_or_else(|_| Refusal {
            message: String::from_utf8_lossy(body).into_owned(),
            outcome: None,
        });
        match (status, refusal.outcome.as_deref()) {
            (StatusCode::SERVICE_UNAVAILABLE, Some("indeterminate")) => ApiError::Indeterminate(refusal.message),
            (StatusCode::SERVICE_UNAVAILABLE, _) => ApiError::NoLeader(refusal.message),
            (StatusCode::BAD_REQUEST, _) => ApiError::BadRequest(refusal.message),
            (status, _) => ApiError::Leader(status, refusal.message),
        }
    }

    /// What a write's 503 says of the write.
    fn outcome(&self) -> Option<&'static str> {
        match self {
            ApiError::NoLeader(_) => Some("not_applied"),
            ApiError::Indeterminate(_) => Some("indeterminate"),
            _ => None,
        }
    }

    /// `{ "status", "error", "message", "path" }` (and a write's `outcome`) with the
    /// matching status code; a 503 says when to retry.
    pub fn into_response(self, path: &str) -> Response<Body> {
        let status = self.status();
        let body = ErrorBody {
            status: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
            path,
            outcome: self.outcome(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = json(status, Bytes::from(bytes));
        let headers = response.headers_mut();
        match self {
            ApiError::MethodNotAllowed(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            }
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"maregistry\""),
                );
            }
            // The rest of the body, or the connection, is not worth waiting for.
            ApiError::BodyTimeout(_) | ApiError::TooManyConnections(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<CoordinatorError> for ApiError {
    fn from(e: CoordinatorError) -> Self {
        match e {
            CoordinatorError::NotLeader { leader: Some(leader) } => ApiError::NoLeader(format!(
                "this node does not lead (the leader is {leader}) and the request was already forwarded once"
            )),
            CoordinatorError::NotLeader { leader: None } => {
                ApiError::NoLeader("no leader is reachable: writes are refused until one is elected".to_owned())
            }
            CoordinatorError::Unavailable(message) => ApiError::NoLeader(message),
            CoordinatorError::Indeterminate(message) => ApiError::Indeterminate(message),
            CoordinatorError::Invalid(message) => ApiError::BadRequest(message),
            CoordinatorError::Rejected(e) => ApiError::Invalid(e),
        }
    }
}

/// A refusal by a protocol facade: a status and a message, answered as
/// plain text the way that protocol answers its errors. One type for every facade; each
/// says how it wraps the message ([`FacadeError::into_response`]).
#[derive(Debug)]
pub struct FacadeError {
    status: StatusCode,
    message: String,
}

impl FacadeError {
    /// A refusal with `status`, saying `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        FacadeError {
            status,
            message: message.into(),
        }
    }

    /// A 400.
    pub fn bad(message: impl Into<String>) -> Self {
        FacadeError::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        FacadeError::new(StatusCode::NOT_FOUND, message)
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Why it was refused.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The answer: the status, and `wrap(message)` as text.
    pub fn into_response(self, wrap: impl FnOnce(&str) -> String) -> Response<Body> {
        typed(self.status, Bytes::from(wrap(&self.message)), TEXT)
    }
}

impl From<ApiError> for FacadeError {
    fn from(e: ApiError) -> Self {
        FacadeError::new(e.status(), e.to_string())
    }
}

impl From<CoordinatorError> for FacadeError {
    fn from(e: CoordinatorError) -> Self {
        ApiError::from(e).into()
    }
}
