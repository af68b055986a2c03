//! Catalog, health and status reads with Consul's exact shapes (docs/spec.md §10.6): every
//! service is on one node (the cluster), whose `serfHealth` check is always passing. Reads
//! with an index block on the versions the registry keeps: a service's for its instances,
//! the registry's for the lists.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_api::answer::json;
use registry_api::encoding::{self, accepts_gzip, gzipped, worth_gzip};
use registry_api::{App, Body};
use registry_core::{Registry, Resource};
use serde_json::{json, Map, Value};

use crate::query::Params;
use crate::reply::{index_headers, indexed, ok, Answer, ReadState, Refused};
use crate::service::{Check, Entry, PASSING};
use crate::Consul;
use crate::ConsulSettings;

/// This node's address and port, as its url names them.
pub(crate) fn node_address(app: &App) -> (String, u16) {
    address_of(&app.cluster().my_url())
}

/// The host and port of a node's url (`http://10.0.0.5:8080` → `10.0.0.5`, 8080).
fn address_of(url: &str) -> (String, u16) {
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port.parse().unwrap_or(0),
        ),
        None => (authority.to_owned(), 0),
    }
}

/// The node's id: a UUID made from the datacenter and node name, the same on every node
/// and at every start.
pub(crate) fn node_id(settings: &ConsulSettings) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in settings.datacenter.bytes().chain([0]).chain(settings.node_name.bytes()) {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let hex = format!("{hash:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The one node, as `Node` of a health entry and `/v1/catalog/nodes` answer it.
fn node_json(consul: &Consul, app: &App, index: u64) -> Value {
    let (address, _) = node_address(app);
    let settings = &consul.settings;
    json!({
        "ID": node_id(settings),
        "Node": settings.node_name,
        "Address": address,
        "Datacenter": settings.datacenter,
        "TaggedAddresses": {"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address},
        "Meta": {"consul-network-segment": ""},
        "CreateIndex": 1,
        "ModifyIndex": index.max(1),
    })
}

fn tagged(entry: &Entry) -> Value {
    let address = json!({"Address": entry.address, "Port": entry.port});
    json!({"lan_ipv4": address, "wan_ipv4": address})
}

/// A service as the agent answers it (`/v1/agent/services`, `/v1/agent/service/:id`).
pub(crate) fn agent_service(entry: &Entry, datacenter: &str) -> Value {
    json!({
        "ID": entry.id,
        "Service": entry.service,
        "Tags": entry.tags,
        "Meta": entry.meta,
        "Port": entry.port,
        "Address": entry.address,
        "TaggedAddresses": tagged(entry),
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": false,
        "Datacenter": datacenter,
    })
}

/// A check as every endpoint answers it.
pub(crate) fn check_json(node: &str, entry: &Entry, check: &Check) -> Value {
    let duration = |ms: u64| match ms {
        0 => String::new(),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    };
    json!({
        "Node": node,
        "CheckID": check.id,
        "Name": check.name,
        "Status": check.status,
        "Notes": check.notes,
        "Output": check.output,
        "ServiceID": entry.id,
        "ServiceName": entry.service,
        "ServiceTags": entry.tags,
        "Type": check.type_name(),
        "Interval": duration(check.interval_ms),
        "Timeout": duration(check.timeout_ms),
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": 1,
        "ModifyIndex": 1,
    })
}

/// The node's own check, always passing: the cluster answers.
fn serf_health(node: &str) -> Value {
    json!({
        "Node": node, "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": PASSING,
        "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "",
        "ServiceTags": [], "Type": "", "Interval": "", "Timeout": "", "ExposedPort": 0,
        "Definition": {}, "CreateIndex": 1, "ModifyIndex": 1,
    })
}

/// The instances of `service`, as Consul sees them.
fn entries(registry: &Registry, service: &str) -> Vec<Entry> {
    registry
        .find_all(service)
        .into_iter()
        .map(|instance| Entry::of(service, instance))
        .collect()
}

/// Every service with instances.
fn all_entries(registry: &Registry) -> Vec<Entry> {
    let (_, services) = registry.services();
    services
        .iter()
        .filter(|s| s.instances > 0)
        .flat_map(|s| entries(registry, &s.name))
        .collect()
}

/// A read of the whole catalog: the caller may read everything; with `?consistent`, the
/// read is made linearizable (the leader's answer, relayed); with `?index`, it waits for a
/// change of the registry. Then `answer` of the registry version, with its headers.
async fn read_all(
    app: &App,
    request: &Request<Incoming>,
    params: &Params,
    answer: impl FnOnce(&Registry, u64) -> Response<Body>,
) -> Answer {
    params.may_read(app, request, &Resource::ALL)?;
    if let Some(relayed) = params.consistency(app, request).await? {
        return Ok(relayed);
    }
    let registry = app.registry();
    params.block(app, &[], || registry.registry_version()).await;
    let index = registry.registry_version();
    Ok(indexed(app, answer(registry, index), index, params.stale))
}

/// `GET /v1/catalog/services`: service name → its tags, each once.
pub(crate) async fn services(app: &App, request: &Request<Incoming>, params: &Params) -> Answer {
    read_all(app, request, params, |registry, _| {
        let mut all: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for entry in all_entries(registry) {
            all.entry(entry.service.clone()).or_default().extend(entry.tags);
        }
        ok(&all)
    })
    .await
}

/// `GET /v1/catalog/service/:name` (`health` false) and `GET /v1/health/service/:name`
/// (`health` true, with `?passing`): `[]` for a service with no instance.
pub(crate) async fn service(
    consul: &Consul,
    app: &App,
    request: &Request<Incoming>,
    params: &Params,
    name: &str,
    health: bool,
) -> Answer {
    registry_core::validate_service_name(name).map_err(|e| Refused::bad(format!("Invalid service name: {e}")))?;
    params.may_read(app, request, &Resource::service(name))?;
    let passing = health && params.passing()?;
    if let Some(relayed) = params.consistency(app, request).await? {
        return Ok(relayed);
    }
    let registry = app.registry();
    params.block(app, &[name], || registry.version(name)).await;
    let kind = match (health, passing) {
        (false, _) => Kind::Catalog,
        (true, false) => Kind::Health,
        (true, true) => Kind::Passing,
    };
    // Without tags the answer is the same for every reader of this version: made once, and
    // gzipped once for the clients that take gzip (Go's, Python's, the scrapers).
    let gzip = || accepts_gzip(request.headers());
    if params.tags.is_empty() {
        if let Some(made) = consul.answers.get(name, kind, registry.version(name)) {
            return Ok(made.answer(gzip(), ReadState::of(app, params.stale)));
        }
    }
    let (version, instances) = registry.instances_renewed(name);
    let index = version.max(1);
    let listed: Vec<Value> = instances
        .into_iter()
        .map(|(instance, _)| Entry::of(name, instance))
        .filter(|e| params.tags.iter().all(|tag| e.tags.contains(tag)))
        .filter(|e| !passing || e.status() == PASSING)
        .map(|e| match health {
            true => health_entry(consul, app, &e, index),
            false => catalog_entry(consul, app, &e, index),
        })
        .collect();
    let made = Arc::new(Made::new(
        index,
        Bytes::from(serde_json::to_vec(&listed).unwrap_or_default()),
    ));
    if params.tags.is_empty() && version > 0 {
        consul.answers.put(name, kind, made.clone());
    }
    Ok(made.answer(gzip(), ReadState::of(app, params.stale)))
}

/// An encoded answer, the same gzipped once asked for, and the headers of each way it is
/// answered, made once: with its index fixed, they change only with the node's role.
pub(crate) struct Made {
    /// The service version it was made at (at least 1).
    index: u64,
    plain: Bytes,
    gzipped: OnceLock<Bytes>,
    /// By gzipped or not and by [`ReadState::slot`]. Inserting the four `X-Consul-*`
    /// headers anew (each name hashed a byte at a time) took a tenth of the instructions of
    /// a cached gzipped answer; cloning the map made once takes a fraction of that.
    headers: [OnceLock<HeaderMap>; 8],
}

impl Made {
    fn new(index: u64, plain: Bytes) -> Made {
        Made {
            index,
            plain,
            gzipped: OnceLock::new(),
            headers: Default::default(),
        }
    }

    /// The answer, gzipped when the client takes gzip and it is worth it, with the headers
    /// of a read at its index.
    fn answer(&self, gzip: bool, state: ReadState) -> Response<Body> {
        let compress = gzip && worth_gzip(self.plain.len(), || true);
        let body = match compress {
            true => self.gzipped.get_or_init(|| encoding::gzip(&self.plain)).clone(),
            false => self.plain.clone(),
        };
        let headers = self.headers[usize::from(compress) << 2 | state.slot()].get_or_init(|| {
            let mut answer = json(StatusCode::OK, Bytes::new());
            if compress {
                answer = gzipped(answer);
            }
            index_headers(answer.headers_mut(), self.index, state);
            answer.headers().clone()
        });
        let mut response = Response::new(Body::new(body));
        *response.headers_mut() = headers.clone();
        response
    }
}

/// Which read of a service an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Catalog,
    Health,
    Passing,
}

/// The encoded answers of the service reads without tags, each made at a service version
/// (its index): what a read answers while the service has not changed.
#[derive(Default)]
pub(crate) struct Answers(Mutex<HashMap<String, [Option<Arc<Made>>; 3]>>);

/// More services than this, and the answers are all dropped (they are made again).
const MAX_ANSWERS: usize = 100_000;

impl Answers {
    /// The answer of `kind` for `service` at `version`.
    fn get(&self, service: &str, kind: Kind, version: u64) -> Option<Arc<Made>> {
        let answers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = answers.get(service)?[kind as usize].as_ref()?;
        (answer.index == version).then(|| answer.clone())
    }

    /// Keeps `answer`, made at its index: a service version above 0 (the index of an
    /// answer at version 0 is 1, which a later version would take for its own).
    fn put(&self, service: &str, kind: Kind, answer: Arc<Made>) {
        let mut answers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.len() >= MAX_ANSWERS && !answers.contains_key(service) {
            answers.clear();
        }
        answers.entry(service.to_owned()).or_default()[kind as usize] = Some(answer);
    }
}

fn health_entry(consul: &Consul, app: &App, entry: &Entry, index: u64) -> Value {
    let node = &consul.settings.node_name;
    let mut service = agent_service(entry, &consul.settings.datacenter);
    if let Some(service) = service.as_object_mut() {
        service.remove("Datacenter");
        service.insert("Proxy".into(), json!({"Mode": "", "MeshGateway": {}, "Expose": {}}));
        service.insert("Connect".into(), json!({}));
        service.insert("PeerName".into(), json!(""));
        service.insert("CreateIndex".into(), json!(index));
        service.insert("ModifyIndex".into(), json!(index));
    }
    let mut checks = vec![serf_health(node)];
    checks.extend(entry.checks.iter().map(|c| check_json(node, entry, c)));
    json!({"Node": node_json(consul, app, index), "Service": service, "Checks": checks})
}

fn catalog_entry(consul: &Consul, app: &App, entry: &Entry, index: u64) -> Value {
    let settings = &consul.settings;
    let (address, _) = node_address(app);
    json!({
        "ID": node_id(settings),
        "Node": settings.node_name,
        "Address": address,
        "Datacenter": settings.datacenter,
        "TaggedAddresses": {"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address},
        "NodeMeta": {"consul-network-segment": ""},
        "ServiceKind": "",
        "ServiceID": entry.id,
        "ServiceName": entry.service,
        "ServiceTags": entry.tags,
        "ServiceAddress": entry.address,
        "ServiceTaggedAddresses": tagged(entry),
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceMeta": entry.meta,
        "ServicePort": entry.port,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": false,
        "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": index,
        "ModifyIndex": index,
    })
}

/// `GET /v1/health/state/:state` (`any`, `passing`, `warning`, `critical`): every check in
/// that state, the node's own among them.
pub(crate) async fn state(
    consul: &Consul,
    app: &App,
    request: &Request<Incoming>,
    params: &Params,
    state: &str,
) -> Answer {
    if !matches!(state, "any" | "passing" | "warning" | "critical") {
        return Err(Refused::bad(format!("Invalid state: {state}")));
    }
    read_all(app, request, params, |registry, _| {
        let node = &consul.settings.node_name;
        let mut checks = Vec::new();
        if matches!(state, "any" | "passing") {
            checks.push(serf_health(node));
        }
        for entry in all_entries(registry) {
            for check in entry.checks.iter().filter(|c| state == "any" || c.status == state) {
                checks.push(check_json(node, &entry, check));
            }
        }
        ok(&checks)
    })
    .await
}

/// `GET /v1/health/checks/:service`.
pub(crate) async fn checks(
    consul: &Consul,
    app: &App,
    request: &Request<Incoming>,
    params: &Params,
    name: &str,
) -> Answer {
    registry_core::validate_service_name(name).map_err(|e| Refused::bad(format!("Invalid service name: {e}")))?;
    params.may_read(app, request, &Resource::service(name))?;
    let registry = app.registry();
    params.block(app, &[name], || registry.version(name)).await;
    let index = registry.version(name).max(1);
    let node = &consul.settings.node_name;
    let checks: Vec<Value> = entries(registry, name)
        .iter()
        .flat_map(|e| e.checks.iter().map(move |c| check_json(node, e, c)))
        .collect();
    Ok(indexed(app, ok(&checks), index, params.stale))
}

/// `GET /v1/catalog/nodes`: the one node.
pub(crate) async fn nodes(consul: &Consul, app: &App, request: &Request<Incoming>, params: &Params) -> Answer {
    read_all(app, request, params, |_, index| ok(&[node_json(consul, app, index)])).await
}

/// `GET /v1/catalog/node/:node`: the node and every service on it; `null` for another.
pub(crate) async fn node(
    consul: &Consul,
    app: &App,
    request: &Request<Incoming>,
    params: &Params,
    node: &str,
) -> Answer {
    read_all(app, request, params, |registry, index| {
        if node != consul.settings.node_name {
            return ok(&Value::Null);
        }
        let services: Map<String, Value> = all_entries(registry)
            .iter()
            .map(|e| (e.id.clone(), agent_service(e, &consul.settings.datacenter)))
            .collect();
        ok(&json!({"Node": node_json(consul, app, index), "Services": services}))
    })
    .await
}

/// `GET /v1/health/node/:node`: the node's checks (every service's), `[]` for another.
pub(crate) async fn node_checks(
    consul: &Consul,
    app: &App,
    request: &Request<Incoming>,
    params: &Params,
    node: &str,
) -> Answer {
    read_all(app, request, params, |registry, _| {
        let name = &consul.settings.node_name;
        let mut checks = Vec::new();
        if node == name {
            checks.push(serf_health(name));
            for entry in all_entries(registry) {
                checks.extend(entry.checks.iter().map(|c| check_json(name, &entry, c)));
            }
        }
        ok(&checks)
    })
    .await
}

/// `GET /v1/status/leader`: the leader's `host:port`, `""` when none is known.
pub(crate) fn leader(app: &App) -> Response<Body> {
    let leader = app.cluster().leader().map(|server| {
        let (host, port) = address_of(&server.url);
        format!("{host}:{port}")
    });
    ok(&leader.unwrap_or_default())
}

/// `GET /v1/status/peers`: every member's `host:port`.
pub(crate) fn peers(app: &App) -> Response<Body> {
    let peers: Vec<String> = app
        .cluster()
        .servers()
        .iter()
        .map(|server| {
            let (host, port) = address_of(&server.url);
            format!("{host}:{port}")
        })
        .collect();
    ok(&peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_its_host_and_port_and_the_node_id_is_a_stable_uuid() {
        assert_eq!(address_of("http://10.0.0.5:8080"), ("10.0.0.5".to_owned(), 8080));
        assert_eq!(address_of("https://[::1]:9/x"), ("::1".to_owned(), 9));
        let settings = ConsulSettings::default();
        let id = node_id(&settings);
        assert_eq!(id.len(), 36);
        assert_eq!(id, node_id(&settings));
        assert_eq!(id.matches('-').count(), 4);
    }

    /// The headers made once per way of answering are those of that way: gzipped or not,
    /// and what the node's state says, at the answer's index.
    #[test]
    fn a_made_answer_has_the_headers_of_each_way_it_is_answered() {
        let plain = Bytes::from(format!("[{}]", "\"x\",".repeat(400) + "\"x\""));
        let made = Made::new(7, plain);
        let (leader, lost) = [true, false]
            .map(|known| ReadState {
                known_leader: known,
                from_leader: known,
            })
            .into();
        // Each way answered twice: made, then cloned.
        type Way<'a> = (bool, ReadState, &'a [(&'a str, &'a str)]);
        let ways: [Way<'_>; 3] = [
            (
                false,
                leader,
                &[
                    ("x-consul-knownleader", "true"),
                    ("x-consul-effective-consistency", "leader"),
                ],
            ),
            (
                true,
                lost,
                &[
                    ("x-consul-knownleader", "false"),
                    ("x-consul-effective-consistency", "stale"),
                ],
            ),
            (
                false,
                lost,
                &[
                    ("x-consul-knownleader", "false"),
                    ("x-consul-effective-consistency", "stale"),
                ],
            ),
        ];
        for (gzip, state, expected) in ways.iter().chain(ways.iter()) {
            let answer = made.answer(*gzip, *state);
            let headers = answer.headers();
            for (name, value) in expected
                .iter()
                .chain(&[("x-consul-index", "7"), ("x-consul-lastcontact", "0")])
            {
                assert_eq!(headers[*name], *value, "{name}");
            }
            assert_eq!(headers["content-type"], "application/json");
            let encoding = headers.get("content-encoding").map(|v| v.to_str().unwrap());
            assert_eq!(encoding, gzip.then_some("gzip"));
            assert_eq!(headers.len(), if *gzip { 7 } else { 5 });
        }
    }
}
