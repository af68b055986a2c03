use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ErrorKind, HttpInvokeError};

/// One outgoing request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The full url, query included.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body; empty for none. A non-empty body is sent as `application/json`.
    pub body: Bytes,
    /// How long the server may take to start answering, when not the client's default
    /// (a long poll waits on the server on purpose).
    pub timeout: Option<Duration>,
}

impl HttpRequest {
    /// A `GET` of `url` with `params` appended as a query string.
    pub fn get(url: &str, params: &[(&str, &str)]) -> Self {
        HttpRequest {
            method: Method::GET,
            url: with_query(url, params),
            headers: Vec::new(),
            body: Bytes::new(),
            timeout: None,
        }
    }

    /// A `POST` of `json` to `url` with `params` appended as a query string.
    pub fn post(url: &str, params: &[(&str, &str)], json: impl Into<Bytes>) -> Self {
        HttpRequest {
            method: Method::POST,
            url: with_query(url, params),
            headers: Vec::new(),
            body: json.into(),
            timeout: None,
        }
    }
}

/// What the server answered, whatever the status.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The whole body (decompressed, when the server sent it gzip-encoded).
    pub body: Bytes,
    /// How many body bytes came over the wire (less than `body.len()` when compressed).
    pub wire_len: usize,
    /// Every header of the answer, as sent (`Content-Encoding: gzip` stays, though `body`
    /// is decoded).
    pub headers: http::HeaderMap,
}

impl HttpResponse {
    /// A header's value as text, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type` header, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client for the calls nodes make to each other: the seed's `HttpInvoker`.
///
/// Only [`HttpInvoker::send`] is required. The seed's four calls answer the body as text
/// and turn a non-2xx status into an [`HttpInvokeError`] of kind [`ErrorKind::Status`].
#[async_trait]
pub trait HttpInvoker: Send + Sync {
    /// Sends `request` and answers the server's status and body, whatever the status.
    /// Fails only when there is no complete answer (connect, timeout, transport, size).
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpInvokeError>;

    /// `GET url`, the body as text.
    async fn get(&self, url: &str) -> Result<String, HttpInvokeError> {
        text(self.send(HttpRequest::get(url, &[])).await, "GET", url)
    }

    /// `GET url?params`, the body as text.
    async fn get_with(&self, url: &str, params: &[(&str, &str)]) -> Result<String, HttpInvokeError> {
        text(self.send(HttpRequest::get(url, params)).await, "GET", url)
    }

    /// `POST url` with a JSON body, the answer as text.
    async fn post(&self, url: &str, json: &str) -> Result<String, HttpInvokeError> {
        let request = HttpRequest::post(url, &[], json.to_owned());
        text(self.send(request).await, "POST", url)
    }

    /// `POST url?params` with a JSON body, the answer as text.
    async fn post_with(&self, url: &str, params: &[(&str, &str)], json: &str) -> Result<String, HttpInvokeError> {
        let request = HttpRequest::post(url, params, json.to_owned());
        text(self.send(request).await, "POST", url)
    }
}

fn success(result: Result<HttpResponse, HttpInvokeError>, method: &str, url: &str) -> Result<Bytes, HttpInvokeError> {
    let response = result?;
    if response.is_success() {
        Ok(response.body)
    } else {
        Err(HttpInvokeError::new(ErrorKind::Status, method, url).with_answer(response.status, &response.body))
    }
}

fn text(result: Result<HttpResponse, HttpInvokeError>, method: &str, url: &str) -> Result<String, HttpInvokeError> {
    success(result, method, url).map(|body| String::from_utf8_lossy(&body).into_owned())
}

/// `GET url` and decode the 2xx answer as `T`.
pub async fn get_json<T: DeserializeOwned>(invoker: &dyn HttpInvoker, url: &str) -> Result<T, HttpInvokeError> {
    let body = success(invoker.send(HttpRequest::get(url, &[])).await, "GET", url)?;
    decode(&body, "GET", url)
}

/// `POST url?params` with `value` as JSON, and decode the 2xx answer as `T`.
pub async fn post_json<B: Serialize + ?Sized + Sync, T: DeserializeOwned>(
    invoker: &dyn HttpInvoker,
    url: &str,
    params: &[(&str, &str)],
    value: &B,
) -> Result<T, HttpInvokeError> {
    let json =
        serde_json::to_vec(value).map_err(|e| HttpInvokeError::new(ErrorKind::Decode, "POST", url).with_source(e))?;
    let body = success(invoker.send(HttpRequest::post(url, params, json)).await, "POST", url)?;
    decode(&body, "POST", url)
}

fn decode<T: DeserializeOwned>(body: &[u8], method: &str, url: &str) -> Result<T, HttpInvokeError> {
    serde_json::from_slice(body).map_err(|e| {
        HttpInvokeError::new(ErrorKind::Decode, method, url)
            .with_answer(200, body)
            .with_source(e)
    })
}

fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_encoded_and_appended() {
        assert_eq!(with_query("http://h/x", &[]), "http://h/x");
        assert_eq!(
            with_query("http://h/x", &[("services", "a,b"), ("k", "v w")]),
            "http://h/x?services=a%2Cb&k=v+w"
        );
        assert_eq!(with_query("http://h/x?a=1", &[("b", "2")]), "http://h/x?a=1&b=2");
    }
}
