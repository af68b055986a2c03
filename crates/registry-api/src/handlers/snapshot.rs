//! `/snapshot`: the whole state, for followers.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use crate::app::App;
use crate::error::ok_json;

/// `/snapshot` → the Snapshot (SPEC §5).
pub(crate) fn snapshot(app: &App) -> Response<Full<Bytes>> {
    ok_json(&app.registry().snapshot())
}
