//! `/reg`, `/unreg`, `/renew`, `/renews`: the writes. The leader applies them; a
//! follower relays them to the leader.

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_cluster::{CoordinatorError, Role};
use registry_core::{Command, InstanceMeta};

use crate::app::App;
use crate::error::{json, ok_json, ApiError};
use crate::forward::{forward, forward_parts, is_forwarded};
use crate::request::{instance, read_body, Query};

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// A write this node applies: what is needed to relay it after all, should leadership
/// move before it is applied.
struct Write {
    method: Method,
    path_and_query: Option<PathAndQuery>,
    forwarded: bool,
    body: Bytes,
}

/// Relays the request when another node leads (answering the leader's answer), or reads
/// its body as an instance (parsed and validated) to apply here.
async fn accept(
    app: &App,
    request: Request<Incoming>,
) -> Result<Result<(Write, InstanceMeta), Response<Full<Bytes>>>, ApiError> {
    let forwarded = is_forwarded(&request);
    let role = match app.cluster.role() {
        Role::NoLeader => app.cluster.settle().await,
        role => role,
    };
    match role {
        Role::Leader => {}
        Role::Follower { leader } if forwarded => {
            return Err(ApiError::NoLeader(format!(
                "this node does not lead (it follows {leader}) and a forwarded write is never forwarded again"
            )))
        }
        Role::Follower { leader } => return Ok(Err(forward(app, &leader, request).await?)),
        Role::NoLeader => {
            return Err(ApiError::NoLeader(
                "no leader is reachable: writes are refused until one is elected".to_owned(),
            ))
        }
    }
    let method = request.method().clone();
    let path_and_query = request.uri().path_and_query().cloned();
    let body = read_body(request, &app.limits).await?;
    let instance = instance(&body)?;
    Ok(Ok((
        Write {
            method,
            path_and_query,
            forwarded,
            body,
        },
        instance,
    )))
}

/// Submits `command`; when leadership moved meanwhile, relays the whole write to the new
/// leader instead and answers its answer (`Some`).
async fn submit(app: &App, write: &Write, command: Command) -> Result<Option<Response<Full<Bytes>>>, ApiError> {
    match app.cluster.submit(command).await {
        Ok(_) => Ok(None),
        Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !write.forwarded => {
            let path_and_query = write.path_and_query.as_ref().map_or("/", |p| p.as_str());
            let body = write.body.clone();
            Ok(Some(
                forward_parts(app, &leader, write.method.clone(), path_and_query, body).await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `/reg?service=S` + InstanceMeta → the instance, `status: true`.
pub(crate) async fn reg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    let (write, instance) = match accept(app, request).await? {
        Ok(accepted) => accepted,
        Err(relayed) => return Ok(relayed),
    };
    let answer = instance.to_json_with_status(true);
    let command = Command::Register {
        service,
        instance,
        now_ms: app.clock.now_ms(),
    };
    if let Some(relayed) = submit(app, &write, command).await? {
        return Ok(relayed);
    }
    Ok(json(StatusCode::OK, Bytes::from(answer)))
}

/// `/unreg?service=S` + InstanceMeta → the instance, `status: false`.
pub(crate) async fn unreg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    let (write, instance) = match accept(app, request).await? {
        Ok(accepted) => accepted,
        Err(relayed) => return Ok(relayed),
    };
    let answer = instance.to_json_with_status(false);
    let command = Command::Unregister { service, instance };
    if let Some(relayed) = submit(app, &write, command).await? {
        return Ok(relayed);
    }
    Ok(json(StatusCode::OK, Bytes::from(answer)))
}

/// `/renew?service=S` + InstanceMeta → the renewal time in ms.
pub(crate) async fn renew(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    heartbeat(app, request, &[service.as_str()]).await
}

/// `/renews?services=a,b` + InstanceMeta → one renewal time in ms.
pub(crate) async fn renews(app: &App, request: Request<Incoming>) -> Answer {
    let services = Query::of(&request).services()?;
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    heartbeat(app, request, &names).await
}

/// A heartbeat on the leader: renews where the instance is known; registers it (one
/// command per service) where it is not.
async fn heartbeat(app: &App, request: Request<Incoming>, services: &[&str]) -> Answer {
    let (write, instance) = match accept(app, request).await? {
        Ok(accepted) => accepted,
        Err(relayed) => return Ok(relayed),
    };
    let now = app.clock.now_ms();
    for service in app.cluster.renew(services, &instance, now)? {
        let command = Command::Register {
            service,
            instance: instance.clone(),
            now_ms: now,
        };
        if let Some(relayed) = submit(app, &write, command).await? {
            return Ok(relayed);
        }
    }
    Ok(ok_json(&now))
}
