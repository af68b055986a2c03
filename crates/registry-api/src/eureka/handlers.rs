//! The Eureka REST v2 endpoints (`/eureka/apps/...`, `/eureka/v2/apps/...`) over the write
//! pipeline and the registry.

use std::collections::BTreeMap;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_core::{validate_service_name, Command, InstanceMeta, Registry};
use serde_json::{json, Value};

use crate::answer::empty;
use crate::app::App;
use crate::body::Body;
use crate::error::FacadeError;
use crate::request::{decode, Query};
use crate::write::{accept, renew_known, submit, Accepted};

use super::encoding::answer;
use super::instance::{from_sent, hashcode, id_of, with_action, STATUS};

type Answer = Result<Response<Body>, FacadeError>;

/// A refusal: Eureka answers a status and (for the clients here) no useful body; the
/// message says why, as text.
fn refusal(e: FacadeError) -> Response<Body> {
    e.into_response(str::to_owned)
}

/// Answers a request under `/eureka/apps/` (or `/eureka/v2/apps/`); `rest` is the path
/// after it, its segments percent-decoded.
pub(crate) async fn eureka(app: &App, request: Request<Incoming>, rest: &str) -> Response<Body> {
    let segments: Result<Vec<String>, FacadeError> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            decode(s)
                .map(|s| s.into_owned())
                .map_err(|e| FacadeError::bad(format!("a path segment {e}")))
        })
        .collect();
    let segments = match segments {
        Ok(segments) => segments,
        Err(e) => return refusal(e),
    };
    let method = request.method().clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let answer = match (&method, segments.as_slice()) {
        (&Method::GET, []) => Ok(fetch(app, request.headers(), Fetch::All)),
        (&Method::GET, ["delta"]) => Ok(fetch(app, request.headers(), Fetch::Delta)),
        (&Method::GET, [name]) => one_app(app, request.headers(), name),
        (&Method::GET, [name, id]) => one_instance(app, request.headers(), name, id),
        (&Method::POST, [name]) => register(app, request, name).await,
        (&Method::PUT, [name, id]) => renew(app, request, name, id).await,
        (&Method::DELETE, [name, id]) => cancel(app, request, name, id).await,
        (&Method::PUT | &Method::DELETE, [name, id, "status"]) => set_status(app, request, name, id).await,
        _ => Err(FacadeError::new(
            StatusCode::NOT_FOUND,
            format!("no Eureka endpoint for {method} apps/{rest}"),
        )),
    };
    answer.unwrap_or_else(refusal)
}

/// The registry service of app `name`: an existing one whose name matches whatever the
/// case, else `name` as sent.
fn service_of(registry: &Registry, name: &str) -> Result<String, FacadeError> {
    validate_service_name(name).map_err(|e| FacadeError::bad(e.to_string()))?;
    Ok(registry.service_ignoring_case(name).unwrap_or_else(|| name.to_owned()))
}

/// The instance of `service` with id `id`, as stored.
fn find(registry: &Registry, service: &str, id: &str) -> Option<InstanceMeta> {
    registry.find_all(service).into_iter().find(|i| id_of(i) == id)
}

/// `POST apps/{app}` + `{"instance": {...}}` → 204.
async fn register(app: &App, request: Request<Incoming>, name: &str) -> Answer {
    let write = match accept(app, request, &app.limits).await? {
        Accepted::Here(write) => write,
        Accepted::Relayed(relayed) => return Ok(relayed),
    };
    let body: Value = serde_json::from_slice(&write.body)
        .map_err(|e| FacadeError::bad(format!("the body must be JSON {{\"instance\": {{...}}}}: {e}")))?;
    let Some(Value::Object(sent)) = body.get("instance") else {
        return Err(FacadeError::bad("the body must be JSON {\"instance\": {...}}"));
    };
    let instance = from_sent(sent)?;
    let command = Command::Register {
        service: service_of(app.registry(), name)?,
        instance,
        now_ms: app.clock.now_ms(),
    };
    if let Some(relayed) = submit(app, &write, command).await? {
        return Ok(relayed);
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `PUT apps/{app}/{id}` → 200, or 404 when unknown (the client registers again).
async fn renew(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    // On the leader (a follower relays the heartbeat there); the body is empty.
    if let Accepted::Relayed(relayed) = accept(app, request, &app.limits).await? {
        return Ok(relayed);
    }
    let service = service_of(app.registry(), name)?;
    let instance = find(app.registry(), &service, id)
        .ok_or_else(|| FacadeError::not_found(format!("no instance {id} in {name}")))?;
    let unknown = renew_known(app, &[service.as_str()], &instance, app.clock.now_ms())?;
    if !unknown.is_empty() {
        return Err(FacadeError::not_found(format!("no instance {id} in {name}")));
    }
    Ok(empty(StatusCode::OK))
}

/// `DELETE apps/{app}/{id}` → 200, or 404 when unknown.
async fn cancel(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    let write = match accept(app, request, &app.limits).await? {
        Accepted::Here(write) => write,
        Accepted::Relayed(relayed) => return Ok(relayed),
    };
    let service = service_of(app.registry(), name)?;
    let instance = find(app.registry(), &service, id)
        .ok_or_else(|| FacadeError::not_found(format!("no instance {id} in {name}")))?;
    if let Some(relayed) = submit(app, &write, Command::Unregister { service, instance }).await? {
        return Ok(relayed);
    }
    Ok(empty(StatusCode::OK))
}

/// `PUT apps/{app}/{id}/status?value=S` sets the status; `DELETE` puts it back to `UP`.
async fn set_status(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    let delete = request.method() == Method::DELETE;
    let write = match accept(app, request, &app.limits).await? {
        Accepted::Here(write) => write,
        Accepted::Relayed(relayed) => return Ok(relayed),
    };
    let status = if delete {
        "UP".to_owned()
    } else {
        Query::parse(write.query()).required("value")?.to_ascii_uppercase()
    };
    let service = service_of(app.registry(), name)?;
    let mut instance = find(app.registry(), &service, id)
        .ok_or_else(|| FacadeError::not_found(format!("no instance {id} in {name}")))?;
    instance.parameters.insert(STATUS.to_owned(), status);
    let command = Command::Register {
        service,
        instance,
        now_ms: app.clock.now_ms(),
    };
    if let Some(relayed) = submit(app, &write, command).await? {
        return Ok(relayed);
    }
    Ok(empty(StatusCode::OK))
}

/// What `apps/` or `apps/delta` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    All,
    Delta,
}

fn fetch(app: &App, headers: &HeaderMap, which: Fetch) -> Response<Body> {
    let now = app.clock.now_ms();
    let current = app.eureka.refresh(app.registry(), now);
    let all: Vec<&Value> = current.values().flat_map(|apps| apps.values()).collect();
    let hash = hashcode(&all);
    let applications: Vec<Value> = match which {
        Fetch::All => current
            .iter()
            .map(|(name, instances)| {
                let list: Vec<Value> = instances.values().map(|i| with_action(i, "ADDED")).collect();
                json!({"name": name, "instance": list})
            })
            .collect(),
        Fetch::Delta => {
            let mut by_app: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for (app_name, instance) in app.eureka.recent(now) {
                by_app.entry(app_name).or_default().push(instance);
            }
            by_app
                .into_iter()
                .map(|(name, list)| json!({"name": name, "instance": list}))
                .collect()
        }
    };
    let version = app.registry().registry_version();
    let document = json!({"applications": {
        "versions__delta": version.to_string(),
        "apps__hashcode": hash,
        "application": applications,
    }});
    answer(headers, &document)
}

/// `GET apps/{app}` → that application, 404 when it has no instance.
fn one_app(app: &App, headers: &HeaderMap, name: &str) -> Answer {
    let current = app.eureka.refresh(app.registry(), app.clock.now_ms());
    let upper = name.to_ascii_uppercase();
    let instances = current
        .get(&upper)
        .ok_or_else(|| FacadeError::not_found(format!("no application {name}")))?;
    let list: Vec<Value> = instances.values().map(|i| with_action(i, "ADDED")).collect();
    Ok(answer(
        headers,
        &json!({"application": {"name": upper, "instance": list}}),
    ))
}

/// `GET apps/{app}/{id}` → that instance, 404 when unknown.
fn one_instance(app: &App, headers: &HeaderMap, name: &str, id: &str) -> Answer {
    let current = app.eureka.refresh(app.registry(), app.clock.now_ms());
    let instance = current
        .get(&name.to_ascii_uppercase())
        .and_then(|instances| instances.get(id))
        .ok_or_else(|| FacadeError::not_found(format!("no instance {id} in {name}")))?;
    Ok(answer(headers, &json!({"instance": instance})))
}
