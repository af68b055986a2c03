//! A follower relays a request to the leader and answers the leader's answer unchanged,
//! following leadership as it moves.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Response, StatusCode};
use registry_cluster::Role;
use registry_http::{ErrorKind, HttpInvokeError, HttpRequest, HttpResponse};

use crate::answer::json;
use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::headers::{FORWARDED_HEADER, VERSION_HEADER};

/// What a relay carries, for the words of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relay {
    /// A write: its 503 says whether it may have been applied.
    Write,
    /// A read that needs the leader.
    Read,
}

/// How many leaders one request is relayed to, at most, as leadership moves under it.
const MAX_HOPS: usize = 3;

/// [`forward`] of a request whose body was read already. The client's `authorization`
/// goes along when the cluster has no token of its own (the peer invoker adds that one):
/// the leader then checks the client token itself. A blocking query may wait on the
/// leader up to `--max-wait`.
///
/// The relay follows the cluster: when this node learns, while it waits, that `leader`
/// leads no more (another was elected, or it lost its majority), the request goes to the
/// new leader (it is idempotent), or is answered 503 when none is known. A leader that
/// cannot be reached at all answers 503 at once: the write certainly did not happen.
pub(crate) async fn forward_parts(
    app: &App,
    leader: &str,
    relay: Relay,
    method: Method,
    path_and_query: &str,
    authorization: Option<&HeaderValue>,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    match relay_following(app, leader, relay, method, path_and_query, authorization, body).await? {
        Relayed::Answer(response) => Ok(response),
        Relayed::LeadsNow => Err(unreachable(
            relay,
            &format!("the leader {leader} was replaced by this node while the request was relayed to it"),
            true,
        )),
    }
}

/// What a relay that follows leadership came to.
pub(crate) enum Relayed {
    /// A leader's answer.
    Answer(Response<Body>),
    /// This node was elected meanwhile: the request is its own to serve.
    LeadsNow,
}

/// [`forward_parts`], answering [`Relayed::LeadsNow`] when this node was elected while it
/// relayed, so that the caller can serve the request itself.
pub(crate) async fn relay_following(
    app: &App,
    leader: &str,
    relay: Relay,
    method: Method,
    path_and_query: &str,
    authorization: Option<&HeaderValue>,
    body: Bytes,
) -> Result<Relayed, ApiError> {
    let mut leader = leader.to_owned();
    for _ in 0..MAX_HOPS {
        let sent = send(
            app,
            &leader,
            method.clone(),
            path_and_query,
            authorization,
            body.clone(),
        );
        let answer = tokio::select! {
            answer = sent => answer,
            () = app.cluster.leader_moved(&leader) => {
                let moved = format!("the leader {leader} was replaced while the request was relayed to it");
                match app.cluster.settle().await {
                    Role::Follower { leader: next } if next != leader => {
                        tracing::debug!(from = %leader, to = %next, "relaying to the new leader");
                        leader = next;
                        continue;
                    }
                    Role::Leader => return Ok(Relayed::LeadsNow),
                    _ => return Err(unreachable(relay, &moved, true)),
                }
            }
        };
        app.metrics
            .forwarded(answer.as_ref().map_or(true, |answer| answer.status >= 500));
        let answer = answer.map_err(|e| {
            let sent = e.kind != ErrorKind::Connect;
            unreachable(relay, &format!("the leader {leader} could not be reached: {e}"), sent)
        })?;
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        // The body arrives decoded (so no Content-Encoding); the headers that say something
        // about it, or about the error, go along.
        let mut response = json(status, answer.body);
        for name in [CONTENT_TYPE, VERSION_HEADER, WWW_AUTHENTICATE, ALLOW, RETRY_AFTER] {
            if let Some(value) = answer.headers.get(&name).cloned() {
                response.headers_mut().insert(name, value);
            }
        }
        return Ok(Relayed::Answer(response));
    }
    Err(unreachable(
        relay,
        &format!("leadership moved {MAX_HOPS} times while the request was relayed"),
        true,
    ))
}

/// One relay of the request to `leader`.
async fn send(
    app: &App,
    leader: &str,
    method: Method,
    path_and_query: &str,
    authorization: Option<&HeaderValue>,
    body: Bytes,
) -> Result<HttpResponse, HttpInvokeError> {
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
    app.invoker.send(outgoing).await
}

/// A relay that got no answer: for a write, `sent` says whether the leader may have had
/// it (then its outcome is unknown) or certainly not.
fn unreachable(relay: Relay, why: &str, sent: bool) -> ApiError {
    match (relay, sent) {
        (Relay::Read, _) => ApiError::ReadUnavailable(format!("{why}; the read was not served")),
        (Relay::Write, false) => ApiError::NoLeader(format!("{why}; the write was not applied")),
        (Relay::Write, true) => ApiError::Indeterminate(format!(
            "{why}; the write may or may not have been applied (a retry is safe)"
        )),
    }
}
