use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use registry_cluster::CoordinatorError;
use serde::Serialize;

/// Why a request was refused. [`ApiError::into_response`] is the one place that maps a
/// failure to a status code and the JSON error object of docs/spec.md §3.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A required query parameter is absent or empty.
    #[error("query parameter '{0}' is required")]
    MissingParam(&'static str),
    /// A query parameter is not UTF-8 once percent-decoded.
    #[error("query parameter '{0}' is not valid UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
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
    /// serve the request now.
    #[error("{0}")]
    NoLeader(String),
    /// A request the cluster refused as invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The request lacks the token this endpoint needs, or carries a wrong one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// `/ready`: this node cannot do its job now, and why.
    #[error("not ready: {0}")]
    NotReady(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    error: &'a str,
    message: String,
    path: &'a str,
}

impl ApiError {
    /// The status code for this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingParam(_)
            | ApiError::NotUtf8(_)
            | ApiError::BadRequest(_)
            | ApiError::Invalid(_)
            | ApiError::MissingBody
            | ApiError::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyConnections(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NoLeader(_) | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// `{ "status", "error", "message", "path" }` with the matching status code.
    pub fn into_response(self, path: &str) -> Response<Full<Bytes>> {
        let status = self.status();
        let body = ErrorBody {
            status: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
            path,
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
            CoordinatorError::Invalid(message) | CoordinatorError::Unsupported(message) => {
                ApiError::BadRequest(message)
            }
            CoordinatorError::Rejected(e) => ApiError::Invalid(e),
        }
    }
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    typed(status, body, "application/json")
}

/// An answer of `body` as `content_type`.
pub(crate) fn typed(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A 200 JSON answer of `value`.
pub(crate) fn ok_json<T: Serialize + ?Sized>(value: &T) -> Response<Full<Bytes>> {
    // The values answered here are plain data whose serialisation cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    json(StatusCode::OK, Bytes::from(bytes))
}
