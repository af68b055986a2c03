//! A follower relays a request to the leader and answers the leader's answer unchanged:
//! a write at most once, a read following leadership as it moves.

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

/// A request to relay, its body read already.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: Method,
    /// The path and query.
    pub(crate) target: &'a str,
    /// The client's credentials, passed on when the cluster has no token of its own.
    pub(crate) authorization: Option<&'a HeaderValue>,
    pub(crate) body: Bytes,
}

/// How many leaders one read is relayed to, at most, as leadership moves under it.
const MAX_HOPS: usize = 3;

/// Relays a request whose body was read already to `leader` and answers the leader's
/// answer. The client's `authorization` goes along when the cluster has no token of its
/// own (the peer invoker adds that one): the leader then checks the client token itself.
/// A blocking query may wait on the leader up to `--max-wait`.
///
/// The relay follows the cluster while it waits, but only a read moves: when this node
/// learns that `leader` leads no more, a read goes to the new leader. A write is never
/// sent twice (docs/spec.md §7, "At most once"): its first copy may be in the old
/// leader's log, where the next leader commits it, and a register and an unregister of
/// one instance are each idempotent but not against each other. So a write whose leader
/// moved, or whose answer did not come back, is answered 503 `indeterminate`; one that
/// never left (the leader refused the connection) is answered 503 `not_applied`. Either
/// way the client decides whether to send it again.
pub(crate) async fn forward(
    app: &App,
    leader: &str,
    relay: Relay,
    outgoing: Outgoing<'_>,
) -> Result<Response<Body>, ApiError> {
    let answer = relay_to(app, leader, relay, outgoing).await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    // The body arrives decoded (so no Content-Encoding); the headers that say something
    // about it, or about the error, go along.
    let mut response = json(status, answer.body);
    for name in [CONTENT_TYPE, VERSION_HEADER, WWW_AUTHENTICATE, ALLOW, RETRY_AFTER] {
        if let Some(value) = answer.headers.get(&name).cloned() {
            response.headers_mut().insert(name, value);
        }
    }
    // A facade's own read headers (Consul's index and leader state) go along too.
    for (name, value) in answer.headers.iter() {
        if name.as_str().starts_with("x-consul-") {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(response)
}

/// [`forward`]'s relay, answering the leader's answer as it arrived.
pub(crate) async fn relay_to(
    app: &App,
    leader: &str,
    relay: Relay,
    outgoing: Outgoing<'_>,
) -> Result<HttpResponse, ApiError> {
    let mut leader = leader.to_owned();
    for _ in 0..MAX_HOPS {
        let sent = send(app, &leader, &outgoing);
        let answer = tokio::select! {
            answer = sent => answer,
            () = app.cluster.leader_moved(&leader) => {
                let moved = format!("the leader {leader} was replaced while the request was relayed to it");
                if relay == Relay::Write {
                    return Err(unreachable(relay, &moved, true));
                }
                match app.cluster.settle().await {
                    Role::Follower { leader: next } if next != leader => {
                        tracing::debug!(from = %leader, to = %next, "relaying the read to the new leader");
                        leader = next;
                        continue;
                    }
                    _ => return Err(unreachable(relay, &moved, true)),
                }
            }
        };
        app.metrics
            .forwarded(answer.as_ref().map_or(true, |answer| answer.status >= 500));
        return answer.map_err(|e| {
            let sent = e.kind != ErrorKind::Connect;
            unreachable(relay, &format!("the leader {leader} could not be reached: {e}"), sent)
        });
    }
    Err(unreachable(
        relay,
        &format!("leadership moved {MAX_HOPS} times while the request was relayed"),
        true,
    ))
}

/// One relay of the request to `leader`.
async fn send(app: &App, leader: &str, outgoing: &Outgoing<'_>) -> Result<HttpResponse, HttpInvokeError> {
    let mut headers = vec![(FORWARDED_HEADER, app.cluster.my_url())];
    if app.auth.cluster.is_none() {
        if let Some(value) = outgoing.authorization.and_then(|v| v.to_str().ok()) {
            headers.push(("authorization", value.to_owned()));
        }
    }
    let blocking = outgoing.target.contains("since=");
    let outgoing = HttpRequest {
        method: outgoing.method.clone(),
        url: format!("{leader}{}", outgoing.target),
        headers,
        body: outgoing.body.clone(),
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
            "{why}; the write may or may not have been applied, and it is not sent again"
        )),
    }
}
