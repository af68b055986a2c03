//! `/info`, `/cluster`, `/leader`, `/sl`: the cluster as this node sees it.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use crate::app::App;
use crate::error::ok_json;

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

/// `/sl` → makes this node leader (the operator's override); answers this node.
pub(crate) fn set_leader(app: &App) -> Response<Full<Bytes>> {
    let me = app.cluster.make_leader();
    tracing::warn!(url = %me.url, version = me.version, "leadership set by /sl");
    ok_json(&me)
}
