//! `/reg`, `/unreg`, `/renew`, `/renews`, `/batch`: the writes. The leader applies them;
//! a follower relays them to the leader.

use std::collections::HashSet;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_cluster::{CoordinatorError, Role};
use registry_core::{Command, InstanceMeta};

use crate::app::{App, Limits};
use crate::error::{json, ok_json, ApiError};
use crate::forward::{forward, forward_parts, is_forwarded};
use crate::request::{instance, read_body, Query};

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// A write this node applies: what is needed to relay it after all, should leadership
/// move before it is applied.
pub(crate) struct Write {
    method: Method,
    pub(crate) path_and_query: Option<PathAndQuery>,
    authorization: Option<HeaderValue>,
    forwarded: bool,
    pub(crate) body: Bytes,
}

/// Relays the request when another node leads (answering the leader's answer), or reads
/// its body as an instance (parsed and validated) to apply here.
async fn accept(
    app: &App,
    request: Request<Incoming>,
) -> Result<Result<(Write, InstanceMeta), Response<Full<Bytes>>>, ApiError> {
    let write = match accept_body(app, request, &app.limits).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(Err(relayed)),
    };
    let instance = instance(&write.body)?;
    Ok(Ok((write, instance)))
}

/// Relays the request when another node leads (answering the leader's answer), or reads
/// its body (within `limits`) to apply here.
pub(crate) async fn accept_body(
    app: &App,
    request: Request<Incoming>,
    limits: &Limits,
) -> Result<Result<Write, Response<Full<Bytes>>>, ApiError> {
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
    let authorization = request.headers().get(AUTHORIZATION).cloned();
    let body = read_body(request, limits).await?;
    Ok(Ok(Write {
        method,
        path_and_query,
        authorization,
        forwarded,
        body,
    }))
}

/// Submits `command`; when leadership moved meanwhile, relays the whole write to the new
/// leader instead and answers its answer (`Some`).
pub(crate) async fn submit(
    app: &App,
    write: &Write,
    command: Command,
) -> Result<Option<Response<Full<Bytes>>>, ApiError> {
    match app.cluster.submit(command).await {
        Ok(_) => Ok(None),
        Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !write.forwarded => {
            let path_and_query = write.path_and_query.as_ref().map_or("/", |p| p.as_str());
            let body = write.body.clone();
            Ok(Some(
                forward_parts(
                    app,
                    &leader,
                    write.method.clone(),
                    path_and_query,
                    write.authorization.as_ref(),
                    body,
                )
                .await?,
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

/// What one operation of a `/batch` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Reg,
    Unreg,
    Renew,
}

/// One operation of a `/batch`, as sent.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    op: Op,
    service: String,
    instance: serde_json::Value,
}

/// The body of a `/batch`, parsed and every operation validated: all or nothing.
fn operations(body: &[u8], max: usize) -> Result<Vec<(Op, String, InstanceMeta)>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is required: a JSON array of operations".to_owned(),
        ));
    }
    let raw: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("a batch is a JSON array of operations: {e}")))?;
    if raw.is_empty() {
        return Err(ApiError::BadRequest("a batch needs at least one operation".to_owned()));
    }
    if raw.len() > max {
        return Err(ApiError::BadRequest(format!(
            "a batch holds at most {max} operations; this one has {}",
            raw.len()
        )));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, value)| {
            let bad = |e: &dyn std::fmt::Display| ApiError::BadRequest(format!("operation {i}: {e}"));
            let RawOperation { op, service, instance } = serde_json::from_value(value).map_err(|e| bad(&e))?;
            registry_core::validate_service_name(&service).map_err(|e| bad(&e))?;
            let instance = serde_json::to_vec(&instance).map_err(|e| bad(&e))?;
            let instance = InstanceMeta::from_json(&instance).map_err(|e| bad(&e))?;
            Ok((op, service, instance))
        })
        .collect()
}

/// `POST /batch` + `[{"op": "reg"|"unreg"|"renew", "service": S, "instance": {…}}, …]`
/// → one answer per operation, in order: what `/reg`, `/unreg` or `/renew` would answer.
/// Every operation is checked before any is applied: one invalid operation refuses the
/// whole batch (400, naming it) and changes nothing. The changes are submitted as one
/// command (in raft mode, one log entry).
pub(crate) async fn batch(app: &App, request: Request<Incoming>) -> Answer {
    let limits = Limits {
        max_body: app.limits.max_body.saturating_mul(16),
        ..app.limits
    };
    let write = match accept_body(app, request, &limits).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    let operations = operations(&write.body, app.limits.max_batch)?;
    let now = app.clock.now_ms();
    let mut commands = Vec::with_capacity(operations.len());
    let mut answers: Vec<String> = Vec::with_capacity(operations.len());
    // Identities a register or unregister of this batch touched: a later renew of one
    // of them is a register (it must follow that change, not the state before it).
    let mut touched: HashSet<(String, String)> = HashSet::new();
    for (op, service, instance) in operations {
        match op {
            Op::Reg | Op::Unreg => {
                touched.insert((service.clone(), instance.url()));
                answers.push(instance.to_json_with_status(op == Op::Reg));
                commands.push(match op {
                    Op::Reg => Command::Register {
                        service,
                        instance,
                        now_ms: now,
                    },
                    _ => Command::Unregister { service, instance },
                });
            }
            Op::Renew => {
                answers.push(now.to_string());
                // Known instances are renewed here and now (not a change); an unknown one
                // becomes a registration in the batch, at its place in the order (in
                // both modes: the snapshot mode's `Coordinator::renew` would register it
                // at once, ahead of the batch's earlier operations).
                let unknown = if touched.contains(&(service.clone(), instance.url())) {
                    vec![service]
                } else {
                    app.registry().renew_known_only(&[service.as_str()], &instance, now)?
                };
                for service in unknown {
                    commands.push(Command::Register {
                        service,
                        instance: instance.clone(),
                        now_ms: now,
                    });
                }
            }
        }
    }
    if !commands.is_empty() {
        if let Some(relayed) = submit(app, &write, Command::Batch { commands }).await? {
            return Ok(relayed);
        }
    }
    Ok(json(StatusCode::OK, Bytes::from(format!("[{}]", answers.join(",")))))
}
