//! `/snapshot`: the whole state, for followers; with `since=V`, what changed after `V`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_core::Registry;

use crate::answer::json;
use crate::app::App;
use crate::encoding::{accepts_gzip, gzip, gzip_streamed, gzipped, json_maybe_gzip, worth_gzip};
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
    let query = ReadQuery::of(&request).blocking(app.limits.max_wait)?;
    let gzip_asked = accepts_gzip(request.headers());
    drop(request);
    let registry = Arc::clone(app.cluster.registry());
    let since = match query {
        None => None,
        Some((since, wait)) => {
            if since > 0 {
                Box::pin(app.watch.wait(&[], since, wait, || registry.registry_version())).await;
            }
            // A delta is small work, done here.
            if registry.has_delta(since) {
                let body = registry.sync_json(since);
                let compress = worth_gzip(body.len(), || gzip_asked);
                return Ok(json_maybe_gzip(compress, StatusCode::OK, Bytes::from(body)));
            }
            Some(since)
        }
    };
    // A whole snapshot of a large registry is CPU work (and so is compressing it): off the
    // async workers.
    let (body, compressed) = tokio::task::spawn_blocking(move || whole(&registry, since, gzip_asked))
        .await
        .map_err(|e| ApiError::NoLeader(format!("the snapshot could not be built: {e}")))?
        .map_err(|e| ApiError::NoLeader(format!("the snapshot could not be written: {e}")))?;
    let response = json(StatusCode::OK, body);
    Ok(if compressed { gzipped(response) } else { response })
}

/// The whole document: the seed's form (`since` none) or the sync answer to `since`, and
/// whether it is compressed. A large one asked for with gzip is compressed as it is
/// written; a small one is built whole and compressed only when worth it.
fn whole(registry: &Registry, since: Option<u64>, gzip_asked: bool) -> std::io::Result<(Bytes, bool)> {
    if gzip_asked && registry.stats().instances >= STREAM_FROM_INSTANCES {
        let body = gzip_streamed(|out| match since {
            None => registry.write_snapshot_json_to(out),
            Some(since) => registry.write_sync_json(since, out),
        })?;
        return Ok((body, true));
    }
    let body = match since {
        None => registry.snapshot_json(),
        Some(since) => registry.sync_json(since),
    };
    Ok(if worth_gzip(body.len(), || gzip_asked) {
        (gzip(&body), true)
    } else {
        (Bytes::from(body), false)
    })
}

/// From this many instances on, a whole snapshot asked for with gzip is compressed as it is
/// written.
const STREAM_FROM_INSTANCES: u64 = 1_000;
