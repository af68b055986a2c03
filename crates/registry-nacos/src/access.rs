//! The Nacos HTTP APIs' reads under `--auth-enabled` (docs/spec.md §9): each is checked
//! against the namespace, group and name its query names before it is answered. Writes
//! are checked by the gateway; a long poll checks each config it listens to.

use http::{Method, Request, Response};
use registry_api::{App, Body};
use registry_core::{Kind, Need, Resource, DEFAULT_NAMESPACE};

use crate::v1::{naming_resource, Params, DEFAULT_GROUP};

/// The refusal of a read of route `route` (the facade's naming, config and v2 config
/// routes) that the caller may not make; `None`: go on.
pub(crate) fn check_read<B>(app: &App, route: usize, request: &Request<B>) -> Option<Response<Body>> {
    if request.method() != Method::GET || !matches!(route, 0 | 2 | 3) {
        return None;
    }
    // A query that does not parse is refused by its handler.
    let params = Params::of(request).ok()?;
    let resource = match route {
        0 => naming_resource(
            params.get("namespaceId"),
            params.get("serviceName"),
            params.get("groupName"),
        ),
        _ => config(&params),
    };
    let caller = app.caller(request);
    let path = request.uri().path();
    app.authorize("nacos", &caller, &resource, Need::Read)
        .err()
        .map(|e| e.into_response(path))
}

/// A config read's resource: `tenant` (or `namespaceId`), `group` and `dataId`; a search
/// or an export without them reads every group or config of the namespace.
fn config(params: &Params) -> Resource<'_> {
    let name = params.get("dataId");
    let default_group = if name.is_some() { DEFAULT_GROUP } else { "*" };
    Resource {
        namespace: params
            .get("tenant")
            .or(params.get("namespaceId"))
            .unwrap_or(DEFAULT_NAMESPACE),
        group: params.get("group").unwrap_or(default_group),
        kind: Kind::Config,
        name: name.unwrap_or("*"),
    }
}
