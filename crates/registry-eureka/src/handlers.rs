//! The Eureka REST v2 endpoints (`/eureka/apps/...`, `/eureka/v2/apps/...`) over the write
//! pipeline and the registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_core::{validate_service_name, InstanceMeta, Need, Registry, Resource};
use serde_json::{json, Value};

use registry_api::answer::empty;
use registry_api::request::{decode, read_body, Query};
use registry_api::{App, Body, FacadeError, Op, Origin};

use crate::encoding::answer;
use crate::instance::{from_sent, hashcode, id_of, with_action, STATUS};
use crate::view::EurekaView;

type Answer = Result<Response<Body>, FacadeError>;

/// A refusal: Eureka answers a status and (for the clients here) no useful body; the
/// message says why, as text.
fn refusal(e: FacadeError) -> Response<Body> {
    e.into_response(str::to_owned)
}

/// Answers a request under `/eureka/apps/` (or `/eureka/v2/apps/`); `rest` is the path
/// after it, its segments percent-decoded.
pub(crate) async fn eureka(app: &App, view: &EurekaView, request: Request<Incoming>, rest: &str) -> Response<Body> {
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
    if app.auth_enabled() {
        // Checked before anything is looked up, writes too (the gateway checks them again):
        // a refusal says nothing of what is registered. A listing shows every service of
        // every namespace; an app, that service.
        let resource = match segments.as_slice() {
            [] | ["delta"] => Resource::ALL,
            [name, ..] => Resource::service(name),
        };
        let need = if method == Method::GET { Need::Read } else { Need::Write };
        if let Err(e) = app.authorize("eureka", &app.caller(&request), &resource, need) {
            return refusal(e.into());
        }
    }
    let answer = match (&method, segments.as_slice()) {
        (&Method::GET, []) => Ok(fetch(app, view, request.headers(), Fetch::All)),
        (&Method::GET, ["delta"]) => Ok(fetch(app, view, request.headers(), Fetch::Delta)),
        (&Method::GET, [name]) => one_app(app, view, request.headers(), name),
        (&Method::GET, [name, id]) => one_instance(app, view, request.headers(), name, id),
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
    let origin = Origin::of(&request);
    let body = read_body(request, app.limits()).await?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| FacadeError::bad(format!("the body must be JSON {{\"instance\": {{...}}}}: {e}")))?;
    let Some(Value::Object(sent)) = body.get("instance") else {
        return Err(FacadeError::bad("the body must be JSON {\"instance\": {...}}"));
    };
    let instance = from_sent(sent)?;
    let service = service_of(app.registry(), name)?;
    app.write(&origin, Op::Reg(service, Arc::new(instance))).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The stored instance `id` of app `name`, and its service, or 404.
fn found(app: &App, name: &str, id: &str) -> Result<(String, InstanceMeta), FacadeError> {
    let service = service_of(app.registry(), name)?;
    let instance = find(app.registry(), &service, id)
        .ok_or_else(|| FacadeError::not_found(format!("no instance {id} in {name}")))?;
    Ok((service, instance))
}

/// `PUT apps/{app}/{id}` → 200, or 404 when unknown (the client registers again).
async fn renew(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    let origin = Origin::of(&request);
    // The body is empty.
    read_body(request, app.limits()).await?;
    let (service, instance) = found(app, name, id)?;
    let outcome = app.write(&origin, Op::Beat(service, Arc::new(instance))).await?;
    if !outcome.known(0) {
        return Err(FacadeError::not_found(format!("no instance {id} in {name}")));
    }
    Ok(empty(StatusCode::OK))
}

/// `DELETE apps/{app}/{id}` → 200, or 404 when unknown.
async fn cancel(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    let origin = Origin::of(&request);
    read_body(request, app.limits()).await?;
    let (service, instance) = found(app, name, id)?;
    app.write(&origin, Op::Unreg(service, Arc::new(instance))).await?;
    Ok(empty(StatusCode::OK))
}

/// `PUT apps/{app}/{id}/status?value=S` sets the status; `DELETE` puts it back to `UP`.
async fn set_status(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    let origin = Origin::of(&request);
    let status = if request.method() == Method::DELETE {
        "UP".to_owned()
    } else {
        Query::of(&request).required("value")?.to_ascii_uppercase()
    };
    read_body(request, app.limits()).await?;
    let (service, mut instance) = found(app, name, id)?;
    instance.parameters.insert(STATUS.to_owned(), status);
    app.write(&origin, Op::Reg(service, Arc::new(instance))).await?;
    Ok(empty(StatusCode::OK))
}

/// What `apps/` or `apps/delta` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    All,
    Delta,
}

fn fetch(app: &App, view: &EurekaView, headers: &HeaderMap, which: Fetch) -> Response<Body> {
    let now = app.now_ms();
    let current = view.refresh(app.registry(), now);
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
            for (app_name, instance) in view.recent(now) {
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
fn one_app(app: &App, view: &EurekaView, headers: &HeaderMap, name: &str) -> Answer {
    let current = view.refresh(app.registry(), app.now_ms());
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
fn one_instance(app: &App, view: &EurekaView, headers: &HeaderMap, name: &str, id: &str) -> Answer {
    let current = view.refresh(app.registry(), app.now_ms());
    let instance = current
        .get(&name.to_ascii_uppercase())
        .and_then(|instances| instances.get(id))
        .ok_or_else(|| FacadeError::not_found(format!("no instance {id} in {name}")))?;
    Ok(answer(headers, &json!({"instance": instance})))
}
