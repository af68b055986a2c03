//! `/reg`, `/unreg`, `/renew`, `/renews`: the writes. The leader applies them; a
//! follower relays them to the leader.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_cluster::Role;
use registry_core::{InstanceMeta, Registry};
use serde::Serialize;

use crate::app::App;
use crate::error::{ok_json, ApiError};
use crate::forward::{forward, is_forwarded};
use crate::request::{instance, read_body, Query};

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// Where a write goes: applied here, or relayed.
enum Target {
    Here,
    Leader(String),
}

fn target(app: &App, request: &Request<Incoming>) -> Result<Target, ApiError> {
    match app.cluster.role() {
        Role::Leader => Ok(Target::Here),
        Role::Follower { leader } if is_forwarded(request) => Err(ApiError::NoLeader(format!(
            "this node does not lead (it follows {leader}) and a forwarded write is never forwarded again"
        ))),
        Role::Follower { leader } => Ok(Target::Leader(leader)),
        Role::NoLeader => Err(ApiError::NoLeader(
            "no leader is reachable: writes are refused until one is elected".to_owned(),
        )),
    }
}

/// The shape every write shares: relayed unchanged when another node leads; otherwise
/// the body is read as an instance and `apply` answers it, stamped with one `now`.
async fn write<T: Serialize>(
    app: &App,
    request: Request<Incoming>,
    apply: impl FnOnce(&Registry, &InstanceMeta, u64) -> Result<T, registry_core::Error>,
) -> Answer {
    if let Target::Leader(leader) = target(app, &request)? {
        return forward(app, &leader, request).await;
    }
    let instance = instance(&read_body(request, &app.limits).await?)?;
    let answer = apply(app.registry(), &instance, app.clock.now_ms())?;
    Ok(ok_json(&answer))
}

/// `/reg?service=S` + InstanceMeta → the instance, `status: true`.
pub(crate) async fn reg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    write(app, request, |registry, instance, now| {
        registry.register(&service, instance, now)
    })
    .await
}

/// `/unreg?service=S` + InstanceMeta → the instance, `status: false`.
pub(crate) async fn unreg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    write(app, request, |registry, instance, _| {
        registry.unregister(&service, instance)
    })
    .await
}

/// `/renew?service=S` + InstanceMeta → the renewal time in ms.
pub(crate) async fn renew(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    write(app, request, |registry, instance, now| {
        registry.renew(&service, instance, now).map(|_| now)
    })
    .await
}

/// `/renews?services=a,b` + InstanceMeta → one renewal time in ms.
pub(crate) async fn renews(app: &App, request: Request<Incoming>) -> Answer {
    let services = Query::of(&request).services()?;
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    write(app, request, |registry, instance, now| {
        registry.renews(&names, instance, now).map(|_| now)
    })
    .await
}
