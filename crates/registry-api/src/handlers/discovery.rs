//! `/findAll`, `/version`, `/versions`: reads, served by any node from its own copy.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use crate::app::App;
use crate::error::{json, ok_json, ApiError};
use crate::request::Query;

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// `/findAll?service=S` → the instances in registration order, `[]` when unknown. The
/// encoded list is kept by the registry until the service changes.
pub(crate) fn find_all<B>(app: &App, request: &Request<B>) -> Answer {
    let service = Query::of(request).service()?;
    Ok(json(StatusCode::OK, app.registry().find_all_json(&service)))
}

/// `/version?service=S` → the service's version, `0` when unknown.
pub(crate) fn version<B>(app: &App, request: &Request<B>) -> Answer {
    let service = Query::of(request).service()?;
    Ok(ok_json(&app.registry().version(&service)))
}

/// `/versions?services=a,b` → `{ "a": n, "b": m }`, keys in the order asked.
pub(crate) fn versions<B>(app: &App, request: &Request<B>) -> Answer {
    let services = Query::of(request).services()?;
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
