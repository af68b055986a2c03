//! `/reg`, `/unreg`, `/renew`, `/renews`: the writes. The leader applies them; a
//! follower relays them to the leader.

use bytes::Bytes;
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_cluster::{CoordinatorError, Role};
use registry_core::{Command, InstanceMeta};

use crate::app::App;
use crate::error::{ok_json, ApiError};
use crate::forward::{forward, forward_parts, is_forwarded};
use crate::request::{instance, read_body, Query};

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// A write this node applies, its body read.
struct Write {
    method: Method,
    uri: Uri,
    forwarded: bool,
    body: Bytes,
    instance: InstanceMeta,
}

/// Relays the request when another node leads (answering the leader's answer), or reads
/// its body as an instance to apply here.
async fn accept(app: &App, request: Request<Incoming>) -> Result<Result<Write, Response<Full<Bytes>>>, ApiError> {
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
    let uri = request.uri().clone();
    let body = read_body(request, &app.limits).await?;
    let instance = instance(&body)?;
    Ok(Ok(Write {
        method,
        uri,
        forwarded,
        body,
        instance,
    }))
}

/// Submits `command`; when leadership moved meanwhile, relays the whole write to the new
/// leader instead and answers its answer (`Some`).
async fn submit(app: &App, write: &Write, command: Command) -> Result<Option<Response<Full<Bytes>>>, ApiError> {
    match app.cluster.submit(command).await {
        Ok(_) => Ok(None),
        Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !write.forwarded => {
            let path_and_query = write.uri.path_and_query().map_or("/", |p| p.as_str());
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
    let write = match accept(app, request).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    write.instance.validate()?;
    let command = Command::Register {
        service,
        instance: write.instance.clone(),
        now_ms: app.clock.now_ms(),
    };
    if let Some(relayed) = submit(app, &write, command).await? {
        return Ok(relayed);
    }
    Ok(ok_json(&with_status(write.instance, true)))
}

/// `/unreg?service=S` + InstanceMeta → the instance, `status: false`.
pub(crate) async fn unreg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    let write = match accept(app, request).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    write.instance.validate()?;
    let command = Command::Unregister {
        service,
        instance: write.instance.clone(),
    };
    if let Some(relayed) = submit(app, &write, command).await? {
        return Ok(relayed);
    }
    Ok(ok_json(&with_status(write.instance, false)))
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
    let write = match accept(app, request).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    let now = app.clock.now_ms();
    for service in app.cluster.renew(services, &write.instance, now)? {
        let command = Command::Register {
            service,
            instance: write.instance.clone(),
            now_ms: now,
        };
        if let Some(relayed) = submit(app, &write, command).await? {
            return Ok(relayed);
        }
    }
    Ok(ok_json(&now))
}

fn with_status(mut instance: InstanceMeta, status: bool) -> InstanceMeta {
    instance.status = status;
    instance
}
