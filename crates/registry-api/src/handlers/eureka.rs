//! Eureka REST v2 (`/eureka/apps/...`, also `/eureka/v2/apps/...`): a view of the same
//! registry for Eureka clients (`py-eureka-client`, `eureka-js-client`), mapped
//! as docs/spec.md §6.2 says.
//!
//! Names: Eureka app `S` is registry service `S`, matched case-insensitively (an app
//! registered first as `demo` and later as `DEMO` is one service); apps are answered in
//! upper case. An instance is `http://ipAddr:port/`; the instance object the client sent
//! is kept whole in the parameter `eureka.instance` and answered back as sent (with its
//! current status), its id in `eureka.instanceId`, its status in `eureka.status`, its
//! metadata as plain parameters, and its lease (`leaseInfo.durationInSecs`, 90 s by
//! default) in `maregistry.lease`. Instances registered through another protocol are
//! answered with Eureka's defaults and the id `host:port`.
//!
//! Answers are JSON when `Accept` names json, XML otherwise (Eureka's rule).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use registry_core::{validate_service_name, Command, InstanceMeta, Registry, LEASE_PARAMETER};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::error::{typed, ApiError};
use crate::handlers::nacos::TEXT;
use crate::handlers::registration::{accept_body, submit};
use crate::request::{decode, Query};

const INSTANCE: &str = "eureka.instance";
const INSTANCE_ID: &str = "eureka.instanceId";
const STATUS: &str = "eureka.status";
/// Eureka's default lease, in seconds.
const DEFAULT_LEASE_SECS: u64 = 90;
/// How far back `apps/delta` reaches.
const DELTA_WINDOW_MS: u64 = 3 * 60 * 1000;

type Answer = Result<Response<Full<Bytes>>, EurekaError>;

/// A refusal: Eureka answers a status and (for the clients here) no useful body.
#[derive(Debug)]
pub(crate) struct EurekaError {
    status: StatusCode,
    message: String,
}

impl EurekaError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        EurekaError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        EurekaError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        EurekaError::new(StatusCode::NOT_FOUND, message)
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        typed(self.status, Bytes::from(self.message), TEXT)
    }
}

impl From<ApiError> for EurekaError {
    fn from(e: ApiError) -> Self {
        EurekaError::new(e.status(), e.to_string())
    }
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Answers a request under `/eureka/apps/` (or `/eureka/v2/apps/`); `rest` is the path
/// after it, its segments percent-decoded.
pub(crate) async fn eureka(app: &App, request: Request<Incoming>, rest: &str) -> Response<Full<Bytes>> {
    let segments: Result<Vec<String>, EurekaError> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            decode(s)
                .map(|s| s.into_owned())
                .map_err(|_| EurekaError::bad("a path segment is not UTF-8 once percent-decoded"))
        })
        .collect();
    let segments = match segments {
        Ok(segments) => segments,
        Err(e) => return e.into_response(),
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
        _ => Err(EurekaError::new(
            StatusCode::NOT_FOUND,
            format!("no Eureka endpoint for {method} apps/{rest}"),
        )),
    };
    answer.unwrap_or_else(EurekaError::into_response)
}

/// The registry service of app `name`: an existing one whose name matches whatever the
/// case, else `name` as sent.
fn service_of(registry: &Registry, name: &str) -> Result<String, EurekaError> {
    validate_service_name(name).map_err(|e| EurekaError::bad(e.to_string()))?;
    Ok(registry.service_ignoring_case(name).unwrap_or_else(|| name.to_owned()))
}

/// The id of a registry instance: the one a Eureka client gave it, else `host:port`.
fn id_of(instance: &InstanceMeta) -> String {
    instance
        .parameters
        .get(INSTANCE_ID)
        .cloned()
        .unwrap_or_else(|| format!("{}:{}", instance.host, instance.port))
}

/// The instance of `service` with id `id`, as stored.
fn find(registry: &Registry, service: &str, id: &str) -> Option<InstanceMeta> {
    registry.find_all(service).into_iter().find(|i| id_of(i) == id)
}

/// A number that may come as a number, a string, or `{"$": n}`.
fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => number(o.get("$")),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `POST apps/{app}` + `{"instance": {...}}` → 204.
async fn register(app: &App, request: Request<Incoming>, name: &str) -> Answer {
    let write = match accept_body(app, request, &app.limits).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    let body: Value = serde_json::from_slice(&write.body)
        .map_err(|e| EurekaError::bad(format!("the body must be JSON {{\"instance\": {{...}}}}: {e}")))?;
    let Some(Value::Object(sent)) = body.get("instance") else {
        return Err(EurekaError::bad("the body must be JSON {\"instance\": {...}}"));
    };
    let id = text(sent.get("instanceId"))
        .or_else(|| text(sent.get("hostName")))
        .ok_or_else(|| EurekaError::bad("the instance needs an instanceId or a hostName"))?;
    let host = text(sent.get("ipAddr"))
        .or_else(|| text(sent.get("hostName")))
        .ok_or_else(|| EurekaError::bad("the instance needs an ipAddr or a hostName"))?;
    let port = number(sent.get("port")).unwrap_or(80);
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| EurekaError::bad(format!("port must be from 1 to 65535, got {port}")))?;
    let status = text(sent.get("status")).unwrap_or_else(|| "UP".to_owned());
    let lease = number(sent.get("leaseInfo").and_then(|l| l.get("durationInSecs")))
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LEASE_SECS);
    let mut instance = InstanceMeta::new("http", &host, port, "").map_err(|e| EurekaError::bad(e.to_string()))?;
    if let Some(Value::Object(metadata)) = sent.get("metadata") {
        for (key, value) in metadata {
            if let Some(value) = text(Some(value)) {
                instance.parameters.insert(key.clone(), value);
            }
        }
    }
    instance
        .parameters
        .insert(INSTANCE.to_owned(), Value::Object(sent.clone()).to_string());
    instance.parameters.insert(INSTANCE_ID.to_owned(), id);
    instance.parameters.insert(STATUS.to_owned(), status);
    instance
        .parameters
        .insert(LEASE_PARAMETER.to_owned(), format!("{lease}s"));
    instance.validate().map_err(|e| EurekaError::bad(e.to_string()))?;
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
    if let Err(relayed) = accept_body(app, request, &app.limits).await? {
        return Ok(relayed);
    }
    let service = service_of(app.registry(), name)?;
    let instance = find(app.registry(), &service, id)
        .ok_or_else(|| EurekaError::not_found(format!("no instance {id} in {name}")))?;
    let unknown = app
        .cluster
        .renew(&[service.as_str()], &instance, app.clock.now_ms())
        .map_err(ApiError::from)?;
    if !unknown.is_empty() {
        return Err(EurekaError::not_found(format!("no instance {id} in {name}")));
    }
    Ok(empty(StatusCode::OK))
}

/// `DELETE apps/{app}/{id}` → 200, or 404 when unknown.
async fn cancel(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    let write = match accept_body(app, request, &app.limits).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    let service = service_of(app.registry(), name)?;
    let instance = find(app.registry(), &service, id)
        .ok_or_else(|| EurekaError::not_found(format!("no instance {id} in {name}")))?;
    if let Some(relayed) = submit(app, &write, Command::Unregister { service, instance }).await? {
        return Ok(relayed);
    }
    Ok(empty(StatusCode::OK))
}

/// `PUT apps/{app}/{id}/status?value=S` sets the status; `DELETE` puts it back to `UP`.
async fn set_status(app: &App, request: Request<Incoming>, name: &str, id: &str) -> Answer {
    let delete = request.method() == Method::DELETE;
    let write = match accept_body(app, request, &app.limits).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    let status = if delete {
        "UP".to_owned()
    } else {
        let query = write.path_and_query.as_ref().and_then(|p| p.query()).unwrap_or("");
        Query::parse(query).required("value")?.to_ascii_uppercase()
    };
    let service = service_of(app.registry(), name)?;
    let mut instance = find(app.registry(), &service, id)
        .ok_or_else(|| EurekaError::not_found(format!("no instance {id} in {name}")))?;
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

/// A registry instance as a Eureka instance object of app `app` (upper case).
fn eureka_instance(instance: &InstanceMeta, app: &str, updated_ms: u64) -> Value {
    let mut object = match instance.parameters.get(INSTANCE).map(|t| serde_json::from_str(t)) {
        Some(Ok(Value::Object(sent))) => sent,
        _ => Map::new(),
    };
    let status = instance
        .parameters
        .get(STATUS)
        .cloned()
        .unwrap_or_else(|| "UP".to_owned());
    let metadata: Map<String, Value> = instance
        .parameters
        .iter()
        .filter(|(k, _)| !k.starts_with("eureka.") && *k != LEASE_PARAMETER)
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let lease_secs = instance
        .parameters
        .get(LEASE_PARAMETER)
        .and_then(|l| registry_core::parse_duration_or_seconds(l))
        .map_or(DEFAULT_LEASE_SECS, |d| d.as_secs());
    let mut defaults = |key: &str, value: Value| {
        object.entry(key.to_owned()).or_insert(value);
    };
    defaults("instanceId", Value::String(id_of(instance)));
    defaults("hostName", Value::String(instance.host.clone()));
    defaults("ipAddr", Value::String(instance.host.clone()));
    defaults("port", json!({"$": instance.port, "@enabled": "true"}));
    defaults("securePort", json!({"$": 443, "@enabled": "false"}));
    defaults("countryId", json!(1));
    defaults(
        "dataCenterInfo",
        json!({"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}),
    );
    defaults(
        "leaseInfo",
        json!({"renewalIntervalInSecs": 30, "durationInSecs": lease_secs, "registrationTimestamp": updated_ms,
               "lastRenewalTimestamp": updated_ms, "evictionTimestamp": 0, "serviceUpTimestamp": updated_ms}),
    );
    defaults("metadata", Value::Object(metadata));
    defaults("vipAddress", Value::String(app.to_ascii_lowercase()));
    defaults("secureVipAddress", Value::String(app.to_ascii_lowercase()));
    defaults("homePageUrl", Value::String(instance.url()));
    defaults("statusPageUrl", Value::String(instance.url()));
    defaults("healthCheckUrl", Value::String(instance.url()));
    defaults("isCoordinatingDiscoveryServer", Value::String("false".to_owned()));
    defaults("lastUpdatedTimestamp", Value::String(updated_ms.to_string()));
    defaults("lastDirtyTimestamp", Value::String(updated_ms.to_string()));
    object.insert("app".to_owned(), Value::String(app.to_owned()));
    object.insert("status".to_owned(), Value::String(status));
    object.insert("overriddenstatus".to_owned(), Value::String("UNKNOWN".to_owned()));
    Value::Object(object)
}

/// What `apps/` or `apps/delta` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    All,
    Delta,
}

/// Eureka's `apps__hashcode`: per status, sorted, `STATUS_count_`.
fn hashcode(instances: &[&Value]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for instance in instances {
        let status = instance.get("status").and_then(Value::as_str).unwrap_or("UNKNOWN");
        *counts.entry(status.to_owned()).or_default() += 1;
    }
    counts.iter().map(|(status, n)| format!("{status}_{n}_")).collect()
}

fn fetch(app: &App, headers: &HeaderMap, which: Fetch) -> Response<Full<Bytes>> {
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

fn with_action(instance: &Value, action: &str) -> Value {
    let mut instance = instance.clone();
    if let Value::Object(o) = &mut instance {
        o.insert("actionType".to_owned(), Value::String(action.to_owned()));
    }
    instance
}

/// `GET apps/{app}` → that application, 404 when it has no instance.
fn one_app(app: &App, headers: &HeaderMap, name: &str) -> Answer {
    let current = app.eureka.refresh(app.registry(), app.clock.now_ms());
    let upper = name.to_ascii_uppercase();
    let instances = current
        .get(&upper)
        .ok_or_else(|| EurekaError::not_found(format!("no application {name}")))?;
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
        .ok_or_else(|| EurekaError::not_found(format!("no instance {id} in {name}")))?;
    Ok(answer(headers, &json!({"instance": instance})))
}

/// JSON when `Accept` names json, else XML.
fn answer(headers: &HeaderMap, document: &Value) -> Response<Full<Bytes>> {
    let wants_json = headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("json")));
    if wants_json {
        return typed(StatusCode::OK, Bytes::from(document.to_string()), "application/json");
    }
    typed(StatusCode::OK, Bytes::from(to_xml(document)), "application/xml")
}

/// Eureka's XML form of a JSON document: a key is an element, `@name` an attribute, `$`
/// the text, an array repeats its element. Keys that cannot be XML names are left out.
fn to_xml(document: &Value) -> Vec<u8> {
    let mut writer = Writer::new(Vec::with_capacity(4096));
    if let Value::Object(root) = document {
        for (name, value) in root {
            element(&mut writer, name, value);
        }
    }
    writer.into_inner()
}

fn xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn element(writer: &mut Writer<Vec<u8>>, name: &str, value: &Value) {
    if !xml_name(name) {
        return;
    }
    // Writing into a Vec cannot fail.
    match value {
        Value::Array(items) => items.iter().for_each(|item| element(writer, name, item)),
        Value::Object(object) => {
            let mut start = BytesStart::new(name);
            for (key, attribute) in object.iter().filter(|(k, _)| k.starts_with('@')) {
                let value = scalar(attribute);
                start.push_attribute((&key[1..], value.as_str()));
            }
            let _ = writer.write_event(Event::Start(start));
            if let Some(text) = object.get("$") {
                let _ = writer.write_event(Event::Text(BytesText::new(&scalar(text))));
            }
            for (key, child) in object.iter().filter(|(k, _)| !k.starts_with('@') && *k != "$") {
                element(writer, key, child);
            }
            let _ = writer.write_event(Event::End(BytesEnd::new(name)));
        }
        Value::Null => {
            let _ = writer.write_event(Event::Empty(BytesStart::new(name)));
        }
        scalar_value => {
            let _ = writer.write_event(Event::Start(BytesStart::new(name)));
            let _ = writer.write_event(Event::Text(BytesText::new(&scalar(scalar_value))));
            let _ = writer.write_event(Event::End(BytesEnd::new(name)));
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What the Eureka view saw of the registry at its last look, and the changes since
/// (for `apps/delta`): app (upper case) → instance id → instance object.
/// App (upper case) → instance id → instance object.
type Apps = BTreeMap<String, BTreeMap<String, Value>>;

#[derive(Default)]
pub(crate) struct EurekaView {
    state: Mutex<ViewState>,
}

#[derive(Default)]
struct ViewState {
    /// The registry version at the last look.
    version: Option<u64>,
    /// What the last look answered; shared with the requests that read it.
    apps: Arc<Apps>,
    /// When each instance last changed, for `lastUpdatedTimestamp`.
    updated: HashMap<(String, String), u64>,
    /// Changes of the last few minutes: when, app, the instance with its `actionType`.
    recent: VecDeque<(u64, String, Value)>,
}

impl EurekaView {
    /// The registry as Eureka applications, brought up to date: instances added, changed
    /// or removed since the last look are remembered for the delta.
    fn refresh(&self, registry: &Registry, now: u64) -> Arc<Apps> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = registry.registry_version();
        if state.version != Some(version) {
            let (_, services) = registry.services();
            let mut apps: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
            for summary in services.iter().filter(|s| s.instances > 0) {
                let name = summary.name.to_ascii_uppercase();
                for instance in registry.find_all(&summary.name) {
                    let id = id_of(&instance);
                    let key = (name.clone(), id.clone());
                    let updated = state.updated.get(&key).copied().unwrap_or(now);
                    let object = eureka_instance(&instance, &name, updated);
                    apps.entry(name.clone()).or_default().insert(id, object);
                }
            }
            let mut changes = Vec::new();
            for (name, instances) in &apps {
                for (id, object) in instances {
                    let before = state.apps.get(name).and_then(|i| i.get(id));
                    match before {
                        None => changes.push((name.clone(), id.clone(), with_action(object, "ADDED"))),
                        Some(old) if !same_but_times(old, object) => {
                            changes.push((name.clone(), id.clone(), with_action(object, "MODIFIED")))
                        }
                        Some(_) => {}
                    }
                }
            }
            for (name, instances) in state.apps.iter() {
                for (id, object) in instances {
                    if !apps.get(name).is_some_and(|i| i.contains_key(id)) {
                        changes.push((name.clone(), id.clone(), with_action(object, "DELETED")));
                    }
                }
            }
            for (name, id, object) in changes {
                state.updated.insert((name.clone(), id.clone()), now);
                // Answer the change's own time as lastUpdatedTimestamp.
                let object = stamped(object, now);
                if let Some(current) = apps.get_mut(&name).and_then(|i| i.get_mut(&id)) {
                    *current = stamped(current.clone(), now);
                }
                state.recent.push_back((now, name, object));
            }
            let live: std::collections::HashSet<(String, String)> = apps
                .iter()
                .flat_map(|(n, i)| i.keys().map(move |id| (n.clone(), id.clone())))
                .collect();
            state.updated.retain(|key, _| live.contains(key));
            state.apps = Arc::new(apps);
            state.version = Some(version);
        }
        while state
            .recent
            .front()
            .is_some_and(|(at, _, _)| now.saturating_sub(*at) > DELTA_WINDOW_MS)
        {
            state.recent.pop_front();
        }
        Arc::clone(&state.apps)
    }

    /// The changes of the last three minutes, the latest per instance: (app, instance).
    fn recent(&self, now: u64) -> Vec<(String, Value)> {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut latest: BTreeMap<(String, String), Value> = BTreeMap::new();
        for (at, app, instance) in &state.recent {
            if now.saturating_sub(*at) > DELTA_WINDOW_MS {
                continue;
            }
            let id = instance
                .get("instanceId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            latest.insert((app.clone(), id), instance.clone());
        }
        latest.into_iter().map(|((app, _), instance)| (app, instance)).collect()
    }
}

/// Whether two answers of one instance differ only in their timestamps.
fn same_but_times(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(o) = &mut v {
            o.remove("lastUpdatedTimestamp");
            o.remove("lastDirtyTimestamp");
            o.remove("leaseInfo");
            o.remove("actionType");
        }
        v
    };
    strip(a) == strip(b)
}

fn stamped(mut instance: Value, at: u64) -> Value {
    if let Value::Object(o) = &mut instance {
        o.insert("lastUpdatedTimestamp".to_owned(), Value::String(at.to_string()));
    }
    instance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_follows_eurekas_conventions() {
        let document = json!({"applications": {"versions__delta": "3", "apps__hashcode": "UP_1_",
            "application": [{"name": "DEMO", "instance": [{"instanceId": "a<b", "port": {"$": 8080, "@enabled": "true"},
            "metadata": {"zone": "eu", "9bad": "x"}}]}]}});
        let xml = String::from_utf8(to_xml(&document)).unwrap();
        // Elements in key order (clients read them by name), text escaped, `9bad` left out.
        assert_eq!(
            xml,
            "<applications><application><instance><instanceId>a&lt;b</instanceId>\
             <metadata><zone>eu</zone></metadata><port enabled=\"true\">8080</port></instance>\
             <name>DEMO</name></application><apps__hashcode>UP_1_</apps__hashcode>\
             <versions__delta>3</versions__delta></applications>"
        );
    }

    #[test]
    fn the_hashcode_counts_statuses_in_order() {
        let up = json!({"status": "UP"});
        let down = json!({"status": "DOWN"});
        assert_eq!(hashcode(&[&up, &down, &up]), "DOWN_1_UP_2_");
        assert_eq!(hashcode(&[]), "");
    }
}
