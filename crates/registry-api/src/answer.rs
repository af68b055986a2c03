//! Building answers: JSON, typed text, empty bodies, the version header.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;

use crate::body::Body;
use crate::headers::VERSION_HEADER;

/// A JSON answer.
pub fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    typed(status, body, "application/json")
}

/// An answer of `body` as `content_type`.
pub fn typed(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Body> {
    typed_body(status, Body::new(body), content_type)
}

/// A JSON answer of a body that may be streamed.
pub(crate) fn json_body(status: StatusCode, body: Body) -> Response<Body> {
    typed_body(status, body, "application/json")
}

fn typed_body(status: StatusCode, body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A 200 JSON answer of `value`.
pub fn ok_json<T: Serialize + ?Sized>(value: &T) -> Response<Body> {
    // The values answered here are plain data whose serialisation cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    json(StatusCode::OK, Bytes::from(bytes))
}

/// An answer with no body.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// `response` carrying the version it reflects in [`VERSION_HEADER`].
pub(crate) fn with_version(mut response: Response<Body>, version: u64) -> Response<Body> {
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from(version));
    response
}
