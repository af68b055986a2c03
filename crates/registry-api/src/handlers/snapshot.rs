//! `/snapshot`: the whole state, for followers; with `since=V`, what changed after `V`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::answer::json_body;
use crate::app::App;
use crate::body::Body;
use crate::encoding::{accepts_gzip, gzipped, json_maybe_gzip, worth_gzip};
use crate::error::ApiError;
use crate::request::ReadQuery;

type Answer = Result<Response<Body>, ApiError>;

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
            Some(since)
        }
    };
    // A large whole document is written as the client reads it, off the async workers:
    // never whole in memory (at 1M instances it is 184 MB, 16 MB gzipped). A delta, or a
    // small registry's document, is built here.
    let delta = since.is_some_and(|since| registry.has_delta(since));
    if !delta && registry.stats().instances >= STREAM_FROM_INSTANCES {
        let body = app
            .streams
            .streamed(gzip_asked, move |mut out| match since {
                None => registry.write_snapshot_json_to(&mut out),
                Some(since) => registry.write_sync_json(since, &mut out),
            })
            .await;
        let response = json_body(StatusCode::OK, body);
        return Ok(if gzip_asked { gzipped(response) } else { response });
    }
    let body = match since {
        None => registry.snapshot_json(),
        Some(since) => registry.sync_json(since),
    };
    let compress = worth_gzip(body.len(), || gzip_asked);
    Ok(json_maybe_gzip(compress, StatusCode::OK, Bytes::from(body)))
}

/// From this many instances on, a whole snapshot is streamed as it is written; a smaller
/// one is built here.
const STREAM_FROM_INSTANCES: u64 = 1_000;
