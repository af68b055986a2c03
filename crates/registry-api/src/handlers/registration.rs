//! `/reg`, `/unreg`, `/renew`, `/renews`, `/batch`: the writes. The leader applies them;
//! a follower relays them to the leader.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_core::InstanceMeta;
use serde_json::value::RawValue;

use crate::answer::{json, ok_json};
use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::{Op, Ops, Origin};
use crate::request::{instance, read_body, Query};

type Answer = Result<Response<Body>, ApiError>;

/// The body of a write to the seed API, read within `limits`, as one instance.
async fn instance_of(request: Request<Incoming>, limits: &crate::limits::Limits) -> Result<InstanceMeta, ApiError> {
    instance(&read_body(request, limits).await?)
}

/// `/reg?service=S` + InstanceMeta → the instance, `status: true`.
pub(crate) async fn reg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    let origin = Origin::of(&request);
    let instance = instance_of(request, &app.limits).await?;
    let answer = instance.to_json_with_status(true);
    app.write(&origin, Op::Reg(service, Arc::new(instance))).await?;
    Ok(json(StatusCode::OK, Bytes::from(answer)))
}

/// `/unreg?service=S` + InstanceMeta → the instance, `status: false`.
pub(crate) async fn unreg(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    let origin = Origin::of(&request);
    let instance = instance_of(request, &app.limits).await?;
    let answer = instance.to_json_with_status(false);
    app.write(&origin, Op::Unreg(service, Arc::new(instance))).await?;
    Ok(json(StatusCode::OK, Bytes::from(answer)))
}

/// `/renew?service=S` + InstanceMeta → the renewal time in ms.
pub(crate) async fn renew(app: &App, request: Request<Incoming>) -> Answer {
    let service = Query::of(&request).service()?;
    heartbeat(app, request, |instance| Op::Renew(service, instance).into()).await
}

/// `/renews?services=a,b` + InstanceMeta → one renewal time in ms.
pub(crate) async fn renews(app: &App, request: Request<Incoming>) -> Answer {
    let services = Query::of(&request).services()?;
    heartbeat(app, request, |instance| {
        let ops = services.into_iter().map(|service| Op::Renew(service, instance.clone()));
        Ops::Many(ops.collect())
    })
    .await
}

/// A heartbeat that heals: renews where the instance is known; registers it where it is
/// not.
async fn heartbeat(app: &App, request: Request<Incoming>, ops: impl FnOnce(Arc<InstanceMeta>) -> Ops) -> Answer {
    let origin = Origin::of(&request);
    let instance = Arc::new(instance_of(request, &app.limits).await?);
    let outcome = app.write(&origin, ops(instance)).await?;
    Ok(ok_json(&outcome.now_ms))
}

/// What one operation of a `/batch` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verb {
    Reg,
    Unreg,
    Renew,
}

/// One operation of a `/batch`, as sent: a key given twice is refused (as `/reg` refuses
/// one), and the instance is read from its own text, as `/reg` reads it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation<'a> {
    op: Verb,
    service: String,
    #[serde(borrow)]
    instance: &'a RawValue,
}

/// The body of a `/batch`, parsed and every operation validated: all or nothing.
fn operations(body: &[u8], max: usize) -> Result<Vec<Op>, ApiError> {
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
            let instance = Arc::new(instance);
            Ok(match op {
                Verb::Reg => Op::Reg(service, instance),
                Verb::Unreg => Op::Unreg(service, instance),
                Verb::Renew => Op::Renew(service, instance),
            })
        })
        .collect()
}

/// `POST /batch` + `[{"op": "reg"|"unreg"|"renew", "service": S, "instance": {…}}, …]`
/// → one answer per operation, in order: what `/reg`, `/unreg` or `/renew` would answer.
/// Every operation is checked before any is applied: one invalid operation refuses the
/// whole batch (400, naming it) and changes nothing. The changes are submitted as one
/// command (in raft mode, one log entry).
pub(crate) async fn batch(app: &App, request: Request<Incoming>) -> Answer {
    let origin = Origin::of(&request);
    let body = read_body(request, &app.limits.for_batches()).await?;
    let ops = operations(&body, app.limits.max_batch)?;
    // What `/reg` and `/unreg` answer, built before the ops go.
    let answers: Vec<Option<String>> = ops
        .iter()
        .map(|op| match op {
            Op::Reg(_, instance) => Some(instance.to_json_with_status(true)),
            Op::Unreg(_, instance) => Some(instance.to_json_with_status(false)),
            _ => None,
        })
        .collect();
    let outcome = app.write(&origin, ops).await?;
    let now = outcome.now_ms.to_string();
    let answers: Vec<&str> = answers.iter().map(|a| a.as_deref().unwrap_or(&now)).collect();
    Ok(json(StatusCode::OK, Bytes::from(format!("[{}]", answers.join(",")))))
}
