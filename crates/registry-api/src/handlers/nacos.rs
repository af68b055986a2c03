//! The Nacos open API v1, naming (`/nacos/v1/ns/...`): a view of the same registry for
//! Nacos clients (`nacos-sdk-python`, the `nacos` npm package), mapped
//! as docs/spec.md §6.1 says.
//!
//! Names: Nacos service `S` of the default namespace (absent, empty or `public`) and group
//! (`DEFAULT_GROUP`) is registry service `S`; group `G` is `G::S`; namespace `N` is
//! `N/G::S`. An instance is `http://ip:port/` (identity: namespace, group, service, ip,
//! port); what a Nacos client sent besides comes back to it from parameters: its metadata
//! as they are, and `nacos.weight`, `nacos.cluster`, `nacos.enabled`, `nacos.healthy`,
//! `nacos.ephemeral`. Its lease is Nacos's delete timeout: the metadata's
//! `preserved.ip.delete.timeout` (ms), else 30 s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use registry_core::{validate_service_name, Command, InstanceMeta, LEASE_PARAMETER};
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::error::{json, typed, ApiError};
use crate::handlers::registration::{accept_body, submit};
use crate::request::decode;

/// How Nacos types its plain answers and errors.
pub(crate) const TEXT: &str = "text/plain;charset=UTF-8";
const DEFAULT_GROUP: &str = "DEFAULT_GROUP";
const DEFAULT_CLUSTER: &str = "DEFAULT";
/// Nacos deletes an ephemeral instance this long after its last beat.
const DEFAULT_LEASE_MS: u64 = 30_000;
/// How often a client should beat, and poll a list (Nacos's values without UDP push).
const BEAT_INTERVAL_MS: u64 = 5_000;
const CACHE_MILLIS: u64 = 3_000;

const WEIGHT: &str = "nacos.weight";
const CLUSTER: &str = "nacos.cluster";
const ENABLED: &str = "nacos.enabled";
const HEALTHY: &str = "nacos.healthy";
const EPHEMERAL: &str = "nacos.ephemeral";
/// Parameters that are ours, not the client's metadata.
const RESERVED: [&str; 6] = [WEIGHT, CLUSTER, ENABLED, HEALTHY, EPHEMERAL, LEASE_PARAMETER];

/// Answers a request under `/nacos/v1/ns/`; `rest` is the path after it.
pub(crate) async fn nacos(app: &App, request: Request<Incoming>, rest: &str) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let answer = match (&method, rest) {
        (&Method::POST | &Method::PUT, "instance") => write(app, request, Op::Register).await,
        (&Method::DELETE, "instance") => write(app, request, Op::Deregister).await,
        (&Method::PUT, "instance/beat") => write(app, request, Op::Beat).await,
        (&Method::GET, "instance/list") => Params::of(&request).and_then(|p| list(app, &p)),
        (&Method::GET, "instance") => Params::of(&request).and_then(|p| one(app, &p)),
        (&Method::GET, "service/list") => Params::of(&request).and_then(|p| services(app, &p)),
        (_, "instance" | "instance/beat" | "instance/list" | "service/list") => Err(NacosError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported here"),
        )),
        _ => Err(NacosError::new(
            StatusCode::NOT_FOUND,
            format!("no Nacos endpoint at /nacos/v1/ns/{rest}"),
        )),
    };
    answer.unwrap_or_else(NacosError::into_response)
}

/// A refusal as a Nacos server answers it: the status and `caused: <message>;` as text.
#[derive(Debug)]
pub(crate) struct NacosError {
    status: StatusCode,
    message: String,
}

impl NacosError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        NacosError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        NacosError::new(StatusCode::BAD_REQUEST, message)
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        typed(self.status, Bytes::from(format!("caused: {};", self.message)), TEXT)
    }
}

impl From<ApiError> for NacosError {
    fn from(e: ApiError) -> Self {
        NacosError::new(e.status(), e.to_string())
    }
}

type Answer = Result<Response<Full<Bytes>>, NacosError>;

/// The parameters of a request: the query string, then a form body (the first value of a
/// name wins), decoded strictly.
struct Params(HashMap<String, String>);

impl Params {
    fn of<B>(request: &Request<B>) -> Result<Params, NacosError> {
        Params::parse(request.uri().query().unwrap_or(""), None)
    }

    fn parse(query: &str, body: Option<&[u8]>) -> Result<Params, NacosError> {
        let mut params = HashMap::new();
        let body = body.map(String::from_utf8_lossy);
        for text in std::iter::once(query).chain(body.as_deref()) {
            for pair in text.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let (Ok(key), Ok(value)) = (decode(key), decode(value)) else {
                    return Err(NacosError::bad(format!(
                        "parameter {:?} is not valid UTF-8 once percent-decoded",
                        key
                    )));
                };
                params.entry(key.into_owned()).or_insert_with(|| value.into_owned());
            }
        }
        Ok(Params(params))
    }

    /// A present, non-empty value.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, NacosError> {
        self.get(name)
            .ok_or_else(|| NacosError::bad(format!("Param '{name}' is required.")))
    }

    /// `true`/`false` in any case; absent is `default`.
    fn flag(&self, name: &str, default: bool) -> Result<bool, NacosError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(NacosError::bad(format!(
                "Param '{name}' must be true or false, got {v:?}"
            ))),
        }
    }
}

/// A Nacos service: namespace, group, name, and the registry service it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NacosService {
    group: String,
    name: String,
    /// `group@@name`, as Nacos clients key it.
    grouped: String,
    /// The registry service.
    registry: String,
}

impl NacosService {
    /// From `namespaceId`, `serviceName` (plain or `group@@name`) and `groupName`.
    fn of(params: &Params) -> Result<NacosService, NacosError> {
        let service = params.required("serviceName")?;
        let (group, name) = match service.split_once("@@") {
            Some((group, name)) => (group, name),
            None => (params.get("groupName").unwrap_or(DEFAULT_GROUP), service),
        };
        let namespace = params.get("namespaceId").filter(|n| *n != "public");
        NacosService::named(namespace, group, name)
    }

    fn named(namespace: Option<&str>, group: &str, name: &str) -> Result<NacosService, NacosError> {
        if name.is_empty() || group.is_empty() {
            return Err(NacosError::bad("Param 'serviceName' is required."));
        }
        let registry = match (namespace, group) {
            (None, DEFAULT_GROUP) => name.to_owned(),
            (None, group) => format!("{group}::{name}"),
            (Some(namespace), group) => format!("{namespace}/{group}::{name}"),
        };
        validate_service_name(&registry).map_err(|e| NacosError::bad(e.to_string()))?;
        Ok(NacosService {
            group: group.to_owned(),
            name: name.to_owned(),
            grouped: format!("{group}@@{name}"),
            registry,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Register,
    Deregister,
    Beat,
}

/// What a Nacos client says of one instance, from the parameters or a beat's JSON.
struct Described {
    ip: String,
    port: u16,
    weight: f64,
    cluster: String,
    enabled: bool,
    healthy: bool,
    ephemeral: bool,
    metadata: BTreeMap<String, String>,
}

impl Described {
    fn from_params(params: &Params) -> Result<Described, NacosError> {
        let metadata = match params.get("metadata") {
            Some(text) => metadata(
                &serde_json::from_str(text)
                    .map_err(|e| NacosError::bad(format!("Param 'metadata' is not a JSON object: {e}")))?,
            )?,
            None => BTreeMap::new(),
        };
        Ok(Described {
            ip: params.required("ip")?.to_owned(),
            port: port(params.required("port")?)?,
            weight: weight(params.get("weight"))?,
            cluster: params
                .get("clusterName")
                .or_else(|| params.get("cluster"))
                .unwrap_or(DEFAULT_CLUSTER)
                .to_owned(),
            enabled: params.flag("enabled", true)? && params.flag("enable", true)?,
            healthy: params.flag("healthy", true)?,
            ephemeral: params.flag("ephemeral", true)?,
            metadata,
        })
    }

    /// A beat's JSON (`{"ip","port","cluster","weight","metadata",…}`), with `ip` and
    /// `port` also taken from the parameters.
    fn from_beat(beat: &Value, params: &Params) -> Result<Described, NacosError> {
        let field = |name: &str| match beat.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => params.get(name).map(str::to_owned),
        };
        let ip = field("ip")
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| NacosError::bad("ip or port is empty"))?;
        let port = port(&field("port").ok_or_else(|| NacosError::bad("ip or port is empty"))?)?;
        Ok(Described {
            ip,
            port,
            weight: weight(field("weight").as_deref())?,
            cluster: field("cluster").unwrap_or_else(|| DEFAULT_CLUSTER.to_owned()),
            enabled: true,
            healthy: true,
            ephemeral: true,
            metadata: match beat.get("metadata") {
                Some(value @ Value::Object(_)) => metadata(value)?,
                _ => BTreeMap::new(),
            },
        })
    }

    /// The registry's instance: `http://ip:port/`, the metadata and ours as parameters.
    fn instance(&self) -> Result<InstanceMeta, NacosError> {
        let mut instance =
            InstanceMeta::new("http", &self.ip, self.port, "").map_err(|e| NacosError::bad(e.to_string()))?;
        let lease = self
            .metadata
            .get("preserved.ip.delete.timeout")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .unwrap_or(DEFAULT_LEASE_MS);
        let mut parameters = self.metadata.clone();
        parameters.retain(|key, _| !RESERVED.contains(&key.as_str()));
        parameters.insert(WEIGHT.to_owned(), self.weight.to_string());
        parameters.insert(CLUSTER.to_owned(), self.cluster.clone());
        parameters.insert(ENABLED.to_owned(), self.enabled.to_string());
        parameters.insert(HEALTHY.to_owned(), self.healthy.to_string());
        parameters.insert(EPHEMERAL.to_owned(), self.ephemeral.to_string());
        parameters.insert(LEASE_PARAMETER.to_owned(), format!("{lease}ms"));
        instance.parameters = parameters;
        instance.validate().map_err(|e| NacosError::bad(e.to_string()))?;
        Ok(instance)
    }
}

fn port(text: &str) -> Result<u16, NacosError> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| NacosError::bad(format!("Param 'port' must be from 1 to 65535, got {text:?}")))
}

fn weight(text: Option<&str>) -> Result<f64, NacosError> {
    match text {
        None => Ok(1.0),
        Some(t) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| NacosError::bad(format!("Param 'weight' must be a number ≥ 0, got {t:?}"))),
    }
}

/// A metadata object, its values as text (a number stays a number's text).
fn metadata(value: &Value) -> Result<BTreeMap<String, String>, NacosError> {
    let Value::Object(map) = value else {
        return Err(NacosError::bad("Param 'metadata' must be a JSON object"));
    };
    Ok(map
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect())
}

/// Register, deregister or beat: on the leader (a follower relays the request as it
/// came), through the same commands as the seed API.
async fn write(app: &App, request: Request<Incoming>, op: Op) -> Answer {
    let write = match accept_body(app, request, &app.limits).await? {
        Ok(write) => write,
        Err(relayed) => return Ok(relayed),
    };
    let query = write.path_and_query.as_ref().and_then(|p| p.query()).unwrap_or("");
    let params = Params::parse(query, Some(&write.body))?;
    let service = NacosService::of(&params)?;
    let now = app.clock.now_ms();
    let command = match op {
        Op::Register => Command::Register {
            service: service.registry,
            instance: Described::from_params(&params)?.instance()?,
            now_ms: now,
        },
        Op::Deregister => {
            let described = Described {
                weight: 1.0,
                ..Described::from_params(&params)?
            };
            Command::Unregister {
                service: service.registry,
                instance: described.instance()?,
            }
        }
        Op::Beat => {
            let beat: Option<Value> = match params.get("beat") {
                Some(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| NacosError::bad(format!("Param 'beat' is not JSON: {e}")))?,
                ),
                None => None,
            };
            let described = match &beat {
                Some(beat) => Described::from_beat(beat, &params)?,
                None => Described::from_params(&params)?,
            };
            let instance = described.instance()?;
            let unknown = app
                .cluster
                .renew(&[service.registry.as_str()], &instance, now)
                .map_err(ApiError::from)?;
            if unknown.is_empty() {
                return Ok(beat_answer(10_200));
            }
            if beat.is_none() {
                // Nacos: an unknown instance without a beat body is not found; the
                // client registers again.
                return Ok(beat_answer(20_404));
            }
            Command::Register {
                service: service.registry,
                instance,
                now_ms: now,
            }
        }
    };
    if let Some(relayed) = submit(app, &write, command).await? {
        return Ok(relayed);
    }
    Ok(match op {
        Op::Beat => beat_answer(10_200),
        Op::Register | Op::Deregister => typed(StatusCode::OK, Bytes::from_static(b"ok"), TEXT),
    })
}

fn beat_answer(code: u32) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "clientBeatInterval": BEAT_INTERVAL_MS,
        "code": code,
        "lightBeatEnabled": false,
    });
    json(StatusCode::OK, Bytes::from(body.to_string()))
}

/// One host of an `instance/list` answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Host {
    instance_id: String,
    ip: String,
    port: u16,
    weight: f64,
    healthy: bool,
    enabled: bool,
    ephemeral: bool,
    cluster_name: String,
    service_name: String,
    metadata: BTreeMap<String, String>,
    marked: bool,
    instance_heart_beat_interval: u64,
    instance_heart_beat_time_out: u64,
    ip_delete_timeout: u64,
}

impl Host {
    /// A registry instance as a Nacos host of `service`. Instances registered through
    /// another protocol get Nacos's defaults.
    fn of(instance: InstanceMeta, service: &NacosService) -> Host {
        let mut parameters = instance.parameters;
        let mut take = |key: &str| parameters.remove(key);
        let weight = take(WEIGHT).and_then(|w| w.parse().ok()).unwrap_or(1.0);
        let cluster = take(CLUSTER).unwrap_or_else(|| DEFAULT_CLUSTER.to_owned());
        let enabled = take(ENABLED).is_none_or(|v| v != "false");
        let healthy = take(HEALTHY).is_none_or(|v| v != "false");
        let ephemeral = take(EPHEMERAL).is_none_or(|v| v != "false");
        let lease = take(LEASE_PARAMETER)
            .and_then(|l| registry_core::parse_duration_or_seconds(&l))
            .map_or(DEFAULT_LEASE_MS, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Host {
            instance_id: format!("{}#{}#{}#{}", instance.host, instance.port, cluster, service.grouped),
            ip: instance.host,
            port: instance.port,
            weight,
            healthy,
            enabled,
            ephemeral,
            cluster_name: cluster,
            service_name: service.grouped.clone(),
            metadata: parameters,
            marked: false,
            instance_heart_beat_interval: BEAT_INTERVAL_MS,
            instance_heart_beat_time_out: lease / 2,
            ip_delete_timeout: lease,
        }
    }
}

/// The encoded hosts of each listed service at its version: a list is answered from here
/// until the service changes (the seed's `/findAll` keeps its answer the same way).
#[derive(Default)]
pub(crate) struct NacosCache {
    hosts: Mutex<HashMap<(String, String), (u64, Bytes)>>,
}

/// Services whose hosts the cache keeps at most; past it, it starts again empty.
const CACHED_SERVICES: usize = 4096;

impl NacosCache {
    /// The hosts of `service` as JSON and the version they are at.
    fn hosts(&self, app: &App, service: &NacosService) -> (u64, Bytes) {
        let key = (service.registry.clone(), service.grouped.clone());
        let version = app.registry().version(&service.registry);
        if let Some((cached, hosts)) = lock(&self.hosts).get(&key) {
            if *cached == version {
                return (*cached, hosts.clone());
            }
        }
        let (version, hosts) = encode_hosts(app, service, false);
        let mut cache = lock(&self.hosts);
        if cache.len() >= CACHED_SERVICES {
            cache.clear();
        }
        cache.insert(key, (version, hosts.clone()));
        (version, hosts)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The hosts of `service` (only the healthy ones, when asked) as a JSON array, read with
/// the version they are at.
fn encode_hosts(app: &App, service: &NacosService, healthy_only: bool) -> (u64, Bytes) {
    let (version, list) = app.registry().find_all_versioned(&service.registry);
    let instances: Vec<InstanceMeta> = serde_json::from_slice(&list).unwrap_or_default();
    let hosts: Vec<Host> = instances
        .into_iter()
        .map(|instance| Host::of(instance, service))
        .filter(|host| !healthy_only || host.healthy)
        .collect();
    (version, Bytes::from(serde_json::to_vec(&hosts).unwrap_or_default()))
}

/// `GET instance/list` → the service's hosts. `name` is `group@@service` and `clusters`
/// is echoed as sent: the npm client files the answer under both.
fn list(app: &App, params: &Params) -> Answer {
    let service = NacosService::of(params)?;
    let (version, hosts) = if params.flag("healthyOnly", false)? {
        encode_hosts(app, &service, true)
    } else {
        app.nacos.hosts(app, &service)
    };
    let text = |value: &str| serde_json::to_string(value).unwrap_or_default();
    let mut out = Vec::with_capacity(hosts.len() + 320);
    out.extend_from_slice(b"{\"name\":");
    out.extend_from_slice(text(&service.grouped).as_bytes());
    out.extend_from_slice(b",\"groupName\":");
    out.extend_from_slice(text(&service.group).as_bytes());
    out.extend_from_slice(b",\"clusters\":");
    out.extend_from_slice(text(params.get("clusters").unwrap_or("")).as_bytes());
    out.extend_from_slice(format!(",\"cacheMillis\":{CACHE_MILLIS},\"hosts\":").as_bytes());
    out.extend_from_slice(&hosts);
    out.extend_from_slice(
        format!(
            ",\"lastRefTime\":{},\"checksum\":\"{version}\",\"allIPs\":false,\"reachProtectionThreshold\":false,\"valid\":true,\"dom\":",
            app.clock.now_ms()
        )
        .as_bytes(),
    );
    out.extend_from_slice(text(&service.name).as_bytes());
    out.extend_from_slice(b",\"env\":\"\",\"useSpecifiedURL\":false}");
    Ok(json(StatusCode::OK, Bytes::from(out)))
}

/// `GET instance?serviceName&ip&port` → that host, or 404.
fn one(app: &App, params: &Params) -> Answer {
    let service = NacosService::of(params)?;
    let ip = params.required("ip")?;
    let port = port(params.required("port")?)?;
    let found = app
        .registry()
        .find_all(&service.registry)
        .into_iter()
        .find(|i| i.host == ip && i.port == port)
        .ok_or_else(|| NacosError::new(StatusCode::NOT_FOUND, format!("no ips found for {ip}:{port}")))?;
    let host = Host::of(found, &service);
    let answer = serde_json::json!({
        "service": service.grouped,
        "ip": host.ip,
        "port": host.port,
        "clusterName": host.cluster_name,
        "weight": host.weight,
        "healthy": host.healthy,
        "enabled": host.enabled,
        "ephemeral": host.ephemeral,
        "instanceId": host.instance_id,
        "metadata": host.metadata,
    });
    Ok(json(StatusCode::OK, Bytes::from(answer.to_string())))
}

/// `GET service/list?pageNo&pageSize[&groupName&namespaceId]` → `{"count","doms"}`: the
/// services of that namespace and group that have instances.
fn services(app: &App, params: &Params) -> Answer {
    let page_no: usize = number(params, "pageNo", 1)?.max(1);
    let page_size: usize = number(params, "pageSize", 20)?.clamp(1, 10_000);
    let group = params.get("groupName").unwrap_or(DEFAULT_GROUP);
    let namespace = params.get("namespaceId").filter(|n| *n != "public");
    let (_, all) = app.registry().services();
    let doms: Vec<String> = all
        .into_iter()
        .filter(|s| s.instances > 0)
        .filter_map(|s| {
            let name = match (namespace, group) {
                (None, DEFAULT_GROUP) => (!s.name.contains("::")).then_some(s.name),
                (None, g) => s.name.strip_prefix(&format!("{g}::")).map(str::to_owned),
                (Some(n), g) => s.name.strip_prefix(&format!("{n}/{g}::")).map(str::to_owned),
            };
            name
        })
        .collect();
    let count = doms.len();
    let page: Vec<String> = doms
        .into_iter()
        .skip((page_no - 1).saturating_mul(page_size))
        .take(page_size)
        .collect();
    let answer = serde_json::json!({ "count": count, "doms": page });
    Ok(json(StatusCode::OK, Bytes::from(answer.to_string())))
}

fn number(params: &Params, name: &str, default: usize) -> Result<usize, NacosError> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| NacosError::bad(format!("Param '{name}' must be a whole number, got {v:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        let request = Request::builder().uri(format!("/x?{query}")).body(()).unwrap();
        Params::of(&request).unwrap()
    }

    #[test]
    fn names_map_to_registry_services() {
        let of = |q| NacosService::of(&params(q)).map(|s| (s.registry, s.grouped));
        assert_eq!(
            of("serviceName=demo").unwrap(),
            ("demo".into(), "DEFAULT_GROUP@@demo".into())
        );
        assert_eq!(
            of("serviceName=DEFAULT_GROUP%40%40demo&namespaceId=public").unwrap().0,
            "demo"
        );
        assert_eq!(of("serviceName=demo&namespaceId=").unwrap().0, "demo");
        assert_eq!(
            of("serviceName=demo&groupName=G").unwrap(),
            ("G::demo".into(), "G@@demo".into())
        );
        assert_eq!(of("serviceName=G%40%40demo&namespaceId=dev").unwrap().0, "dev/G::demo");
        assert!(of("groupName=G").is_err());
        assert!(of("serviceName=a%20b").is_err());
    }

    #[test]
    fn an_instance_keeps_what_the_client_sent() {
        let p = params("ip=10.0.0.1&port=8080&weight=2.5&clusterName=None&enable=False&healthy=True&metadata=%7B%22a%22%3A+%22b%22%2C+%22n%22%3A+1%7D");
        let instance = Described::from_params(&p).unwrap().instance().unwrap();
        assert_eq!(instance.url(), "http://10.0.0.1:8080/");
        let service = NacosService::of(&params("serviceName=demo")).unwrap();
        let host = Host::of(instance, &service);
        assert_eq!(
            (host.weight, host.cluster_name.as_str(), host.enabled, host.healthy),
            (2.5, "None", false, true)
        );
        assert_eq!(host.metadata.get("a").map(String::as_str), Some("b"));
        assert_eq!(host.metadata.get("n").map(String::as_str), Some("1"));
        assert_eq!(host.metadata.len(), 2, "our parameters are not the client's metadata");
        assert_eq!(host.ip_delete_timeout, 30_000);
        for bad in [
            "ip=h&port=0",
            "ip=h&port=x",
            "ip=h&port=1&weight=-1",
            "ip=h&port=1&healthy=maybe",
            "ip=h&port=1&metadata=[1]",
            "port=1",
        ] {
            assert!(
                Described::from_params(&params(bad)).and_then(|d| d.instance()).is_err(),
                "{bad}"
            );
        }
    }
}
