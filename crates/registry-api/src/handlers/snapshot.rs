//! `/snapshot`: the whole state, for followers.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::app::App;
use crate::error::json;

/// `/snapshot` → the Snapshot (SPEC §5), written straight from the stored instances.
pub(crate) fn snapshot(app: &App) -> Response<Full<Bytes>> {
    json(StatusCode::OK, Bytes::from(app.registry().snapshot_json()))
}
