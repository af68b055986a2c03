//! `/snapshot`: the whole state, for followers; with `since=V`, what changed after `V`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::answer::json;
use crate::app::App;
use crate::encoding::{accepts_gzip, gzip, gzipped, json_maybe_gzip, worth_gzip};
use crate::error::ApiError;
use crate::request::ReadQuery;

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// `/snapshot` → the Snapshot (docs/spec.md §5), written straight from the stored instances.
///
/// `/snapshot?since=V&wait=D` → a follower's long poll: answered once the registry
/// version is above `V` (at once when it is already, or `V` is 0), or when `D` runs out,
/// with [`registry_core::Registry::sync_json`]: a delta after `V` when the change log
/// reaches back to it, else the whole snapshot, either with the registry's checksum.
pub(crate) async fn snapshot(app: &App, request: Request<Incoming>) -> Answer {
    let Some((since, wait)) = ReadQuery::of(&request).blocking(app.limits.max_wait)? else {
        let body = Bytes::from(app.registry().snapshot_json());
        let compress = worth_gzip(body.len(), || accepts_gzip(request.headers()));
        return Ok(json_maybe_gzip(compress, StatusCode::OK, body));
    };
    let gzip_asked = accepts_gzip(request.headers());
    drop(request);
    let registry = app.registry();
    if since > 0 {
        Box::pin(app.watch.wait(&[], since, wait, || registry.registry_version())).await;
    }
    let registry = Arc::clone(app.cluster.registry());
    let build = move || {
        let body = registry.sync_json(since);
        if worth_gzip(body.len(), || gzip_asked) {
            (gzip(&body), true)
        } else {
            (Bytes::from(body), false)
        }
    };
    // A delta is small work, done here; a whole snapshot of a large registry is CPU work
    // (and so is compressing it): off the async workers.
    let (body, compressed) = if app.registry().has_delta(since) {
        build()
    } else {
        tokio::task::spawn_blocking(build)
            .await
            .map_err(|e| ApiError::NoLeader(format!("the snapshot could not be built: {e}")))?
    };
    let response = json(StatusCode::OK, body);
    Ok(if compressed { gzipped(response) } else { response })
}
