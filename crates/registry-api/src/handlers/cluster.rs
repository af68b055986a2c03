//! `/info`, `/cluster`, `/leader`, `/sl`: the cluster as this node sees it, in every mode.

use http::Response;

use crate::answer::ok_json;
use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;

type Answer = Result<Response<Body>, ApiError>;

/// `/info` → this node as a Server, with the connections its facades' own listeners hold.
pub(crate) fn info(app: &App) -> Response<Body> {
    let mut me = app.cluster.myself();
    me.grpc_connections = facade_connections(app);
    ok_json(&me)
}

/// The connections the facades' own listeners hold, when any serves one (the seed's
/// fields stay alone otherwise).
fn facade_connections(app: &App) -> Option<u64> {
    app.facades()
        .iter()
        .filter_map(|facade| facade.connections())
        .reduce(|a, b| a + b)
}

/// `/cluster` → every member as a Server (this node's connections as it counts them,
/// the others' as their last probe said).
pub(crate) fn servers(app: &App) -> Response<Body> {
    let mut servers = app.cluster.servers();
    let url = app.cluster.my_url();
    for server in servers.iter_mut().filter(|s| s.url == url) {
        server.grpc_connections = facade_connections(app);
    }
    ok_json(&servers)
}

/// `/leader` → the leader Server, or `null`.
pub(crate) fn leader(app: &App) -> Response<Body> {
    ok_json(&app.cluster.leader())
}

/// `/sl` → asks this node to lead (the operator's override in the snapshot mode, a
/// campaign in raft); answers this node. 503 when it cannot.
pub(crate) async fn set_leader(app: &App) -> Answer {
    let me = app.cluster.campaign().await?;
    tracing::warn!(url = %me.url, version = me.version, "leadership asked for by /sl");
    Ok(ok_json(&me))
}
