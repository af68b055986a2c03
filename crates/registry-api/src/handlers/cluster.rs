//! `/info`, `/cluster`, `/leader`, `/sl`: the cluster as this node sees it.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use crate::app::App;
use registry_cluster::take_office;

use crate::error::{ok_json, ApiError};

/// `/info` → this node as a Server.
pub(crate) fn info(app: &App) -> Response<Full<Bytes>> {
    ok_json(&app.cluster.myself())
}

/// `/cluster` → every configured Server.
pub(crate) fn servers(app: &App) -> Response<Full<Bytes>> {
    ok_json(&app.cluster.servers())
}

/// `/leader` → the leader Server, or `null`.
pub(crate) fn leader(app: &App) -> Response<Full<Bytes>> {
    ok_json(&app.cluster.leader())
}

/// `/sl` → makes this node leader (the operator's override), once it has adopted the
/// data of every reachable server holding a higher registry version; answers this node.
/// 503 when such data cannot be fetched.
pub(crate) async fn set_leader(app: &App) -> Result<Response<Full<Bytes>>, ApiError> {
    let taken = take_office(&app.cluster, &app.invoker, "set leader by operator", true)
        .await
        .map_err(|e| ApiError::NoLeader(format!("this node cannot take office: {e}")))?;
    let me = taken.ok_or_else(|| {
        ApiError::NoLeader("this node cannot take office: a server with more data appeared meanwhile; retry".to_owned())
    })?;
    tracing::warn!(url = %me.url, version = me.version, "leadership set by /sl");
    Ok(ok_json(&me))
}
