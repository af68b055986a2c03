//! Building answers: JSON, typed text, empty bodies, the version header.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::headers::VERSION_HEADER;

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

/// An answer with no body.
pub(crate) fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// `response` carrying the version it reflects in [`VERSION_HEADER`].
pub(crate) fn with_version(mut response: Response<Full<Bytes>>, version: u64) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from(version));
    response
}
