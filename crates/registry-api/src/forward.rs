//! A follower relays a request to the leader and answers the leader's answer unchanged.

use bytes::Bytes;
use http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_http::HttpRequest;

use crate::answer::json;
use crate::app::App;
use crate::error::ApiError;
use crate::headers::{FORWARDED_HEADER, VERSION_HEADER};
use crate::request::read_body;

/// Relays `request` (same method, path, query and body) to `leader` and answers the
/// leader's status and body unchanged. A leader that cannot be reached is a 503.
pub(crate) async fn forward(
    app: &App,
    leader: &str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let method = request.method().clone();
    let authorization = request.headers().get(AUTHORIZATION).cloned();
    let body = read_body(request, &app.limits).await?;
    forward_parts(app, leader, method, &path_and_query, authorization.as_ref(), body).await
}

/// [`forward`] of a request whose body was read already. The client's `authorization`
/// goes along when the cluster has no token of its own (the peer invoker adds that one):
/// the leader then checks the client token itself. A blocking query may wait on the
/// leader up to `--max-wait`.
pub(crate) async fn forward_parts(
    app: &App,
    leader: &str,
    method: Method,
    path_and_query: &str,
    authorization: Option<&HeaderValue>,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut headers = vec![(FORWARDED_HEADER, app.cluster.my_url())];
    if app.auth.cluster.is_none() {
        if let Some(value) = authorization.and_then(|v| v.to_str().ok()) {
            headers.push(("authorization", value.to_owned()));
        }
    }
    let blocking = path_and_query.contains("since=");
    let outgoing = HttpRequest {
        method,
        url: format!("{leader}{path_and_query}"),
        headers,
        body,
        timeout: blocking.then(|| app.limits.max_wait + std::time::Duration::from_secs(5)),
    };
    let answer = app.invoker.send(outgoing).await;
    app.metrics
        .forwarded(answer.as_ref().map_or(true, |answer| answer.status >= 500));
    let answer = answer.map_err(|e| {
        ApiError::NoLeader(format!(
            "the leader {leader} could not be reached to apply this write: {e}"
        ))
    })?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    // The body arrives decoded (so no Content-Encoding); the headers that say something
    // about it, or about the error, go along.
    let mut response = json(status, answer.body);
    for name in [CONTENT_TYPE, VERSION_HEADER, WWW_AUTHENTICATE, ALLOW] {
        if let Some(value) = answer.headers.get(&name).cloned() {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}
