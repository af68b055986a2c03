//! `/findAll`, `/version`, `/versions`: reads, served by any node from its own copy.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_cluster::CoordinatorError;

use crate::app::App;
use crate::error::{json, ok_json, ApiError};
use crate::forward::{forward, is_forwarded};
use crate::request::Query;

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// Reads are answered from this node's copy. With `consistent=true` the read is made
/// linearizable first (raft: the leader confirms it still leads and this node has applied
/// everything committed before; a follower relays the read to the leader, whose answer
/// is answered: `Some`). The rare path is boxed so that a plain read stays small.
async fn consistent(app: &App, request: Request<Incoming>) -> Result<Option<Response<Full<Bytes>>>, ApiError> {
    if !Query::of(&request).flag("consistent")? {
        return Ok(None);
    }
    Box::pin(async move {
        match app.cluster.consistent_read().await {
            Ok(()) => Ok(None),
            Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !is_forwarded(&request) => {
                Ok(Some(forward(app, &leader, request).await?))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// `/findAll?service=S` → the instances in registration order, `[]` when unknown. The
/// encoded list is kept by the registry until the service changes.
pub(crate) async fn find_all(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    if let Some(relayed) = consistent(app, request).await? {
        return Ok(relayed);
    }
    Ok(json(StatusCode::OK, app.registry().find_all_json(&service)))
}

/// `/version?service=S` → the service's version, `0` when unknown.
pub(crate) async fn version(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    if let Some(relayed) = consistent(app, request).await? {
        return Ok(relayed);
    }
    Ok(ok_json(&app.registry().version(&service)))
}

/// `/versions?services=a,b` → `{ "a": n, "b": m }`, keys in the order asked.
pub(crate) async fn versions(app: &App, request: Request<Incoming>) -> Answer {
    let services = Query::of(&request).services()?;
    if let Some(relayed) = consistent(app, request).await? {
        return Ok(relayed);
    }
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let versions = app.registry().versions(&names);
    let mut out = Vec::with_capacity(2 + names.len() * 32);
    out.push(b'{');
    for (i, (name, version)) in names.iter().zip(versions).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // A validated service name is plain text; serde_json escapes it all the same.
        out.extend_from_slice(&serde_json::to_vec(name).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(version.to_string().as_bytes());
    }
    out.push(b'}');
    Ok(json(StatusCode::OK, Bytes::from(out)))
}
