//! `/reg`, `/unreg`, `/renew`, `/renews`, `/batch`: the writes. The leader applies them;
//! a follower relays them to the leader.

use std::collections::HashSet;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_core::{Command, InstanceMeta};
use serde_json::value::RawValue;

use crate::answer::{json, ok_json};
use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::request::{instance, Query};
use crate::write::{accept, heartbeat as renew_or_register, renew_known, submit, Accepted, Write};

type Answer = Result<Response<Body>, ApiError>;

/// The write pipeline's accept, then the body parsed and validated as an instance.
async fn accept_instance(
    app: &App,
    request: Request<Incoming>,
) -> Result<Result<(Write, InstanceMeta), Answered>, ApiError> {
    match accept(app, request, &app.limits).await? {
        Accepted::Relayed(relayed) => Ok(Err(relayed)),
        Accepted::Here(write) => {
            let instance = instance(&write.body)?;
            Ok(Ok((write, instance)))
        }
    }
}

type Answered = Response<Body>;

/// `/reg?service=S` + InstanceMeta → the instance, `status: true`.
pub(crate) async fn reg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    let (write, instance) = match accept_instance(app, request).await? {
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
    let (write, instance) = match accept_instance(app, request).await? {
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
    let (write, instance) = match accept_instance(app, request).await? {
        Ok(accepted) => accepted,
        Err(relayed) => return Ok(relayed),
    };
    let now = app.clock.now_ms();
    if let Some(relayed) = renew_or_register(app, &write, services, &instance, now).await? {
        return Ok(relayed);
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

/// One operation of a `/batch`, as sent: a key given twice is refused (as `/reg` refuses
/// one), and the instance is read from its own text, as `/reg` reads it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation<'a> {
    op: Op,
    service: String,
    #[serde(borrow)]
    instance: &'a RawValue,
}

/// The body of a `/batch`, parsed and every operation validated: all or nothing.
fn operations(body: &[u8], max: usize) -> Result<Vec<(Op, String, InstanceMeta)>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is required: a JSON array of operations".to_owned(),
        ));
    }
    let raw: Vec<&RawValue> = serde_json::from_slice(body)
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
            let RawOperation { op, service, instance } = serde_json::from_str(value.get()).map_err(|e| bad(&e))?;
            registry_core::validate_service_name(&service).map_err(|e| bad(&e))?;
            let instance = InstanceMeta::from_json(instance.get().as_bytes()).map_err(|e| bad(&e))?;
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
    let write = match accept(app, request, &app.limits.for_batches()).await? {
        Accepted::Here(write) => write,
        Accepted::Relayed(relayed) => return Ok(relayed),
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
                // becomes a registration in the batch, at its place in the order.
                let unknown = if touched.contains(&(service.clone(), instance.url())) {
                    vec![service]
                } else {
                    renew_known(app, &[service.as_str()], &instance, now)?
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
