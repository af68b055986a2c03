//! `/info`, `/cluster`, `/leader`, `/sl`, `/cluster/join`, `/cluster/leave` and the
//! node-to-node `/raft/...` calls: the cluster as this node sees it.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_cluster::CoordinatorError;

use crate::app::App;
use crate::error::{json, ok_json, ApiError};
use crate::forward::{forward, is_forwarded};
use crate::request::{read_body, Query};

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// `/info` → this node as a Server.
pub(crate) fn info(app: &App) -> Response<Full<Bytes>> {
    ok_json(&app.cluster.myself())
}

/// `/cluster` → every member as a Server.
pub(crate) fn servers(app: &App) -> Response<Full<Bytes>> {
    ok_json(&app.cluster.servers())
}

/// `/leader` → the leader Server, or `null`.
pub(crate) fn leader(app: &App) -> Response<Full<Bytes>> {
    ok_json(&app.cluster.leader())
}

/// `/sl` → asks this node to lead (the operator's override in the snapshot mode, a
/// campaign in raft); answers this node. 503 when it cannot.
pub(crate) async fn set_leader(app: &App) -> Answer {
    let me = app.cluster.campaign().await?;
    tracing::warn!(url = %me.url, version = me.version, "leadership asked for by /sl");
    Ok(ok_json(&me))
}

/// Which membership change.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    Join,
    Leave,
}

/// `POST /cluster/join?url=U` and `POST /cluster/leave?url=U` → the members after the
/// change. Answered by the leader; a follower forwards.
pub(crate) async fn membership(app: &App, request: Request<Incoming>, change: Change) -> Answer {
    let url = Query::of(&request).required("url")?;
    let result = match change {
        Change::Join => app.cluster.join(&url).await,
        Change::Leave => app.cluster.leave(&url).await,
    };
    match result {
        Ok(members) => Ok(ok_json(&members)),
        Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !is_forwarded(&request) => {
            forward(app, &leader, request).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /raft/<name>` → a node-to-node call, answered by the cluster mode.
pub(crate) async fn peer(app: &App, request: Request<Incoming>, name: &'static str) -> Answer {
    let body = read_body(request, &app.limits.for_peers()).await?;
    let answer = app.cluster.peer_call(name, body).await?;
    Ok(json(StatusCode::OK, answer))
}
