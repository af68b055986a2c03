//! The agent endpoints (docs/spec.md §10.3, §10.4): register, deregister, maintenance, the
//! TTL updates, and the agent's own reads. The agent here is the cluster: every node
//! answers for every service registered through Consul on any node.

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use registry_api::request::read_body;
use registry_api::{App, Op, Peer};
use registry_core::Resource;
use serde_json::{json, Map, Value};

use crate::catalog::{agent_service, check_json, node_address, node_id};
use crate::decode::Fields;
use crate::query::Params;
use crate::reply::{done, ok, Answer, Refused};
use crate::service::{keep_states, set_checks, Check, Entry, Registration, CRITICAL, PASSING, WARNING};
use crate::Consul;

/// `PUT /v1/agent/service/register[?replace-existing-checks]`.
pub(crate) async fn register(consul: &Consul, app: &App, request: Request<Incoming>, params: &Params) -> Answer {
    let origin = params.origin(app, &request);
    let peer = request.extensions().get::<Peer>().map(|p| p.0.ip());
    let body = read_body(request, app.limits()).await?;
    let registration = Registration::parse(&body, peer, app.now_ms()).map_err(Refused::bad)?;
    let service = registration.name.clone();
    let id = registration.id.clone();
    let new_ids: Vec<String> = registration.checks.iter().map(|c| c.id.clone()).collect();
    let mut instance = registration.instance().map_err(Refused::bad)?;
    let old = earlier(consul, app, &service, &instance.url(), &id);
    let mut checks = old.as_ref().map(|o| o.checks.clone()).unwrap_or_default();
    if !checks.is_empty() {
        let mut kept = Entry::of(&service, instance.clone()).checks;
        keep_states(&mut kept, &checks);
        set_checks(&mut instance, &kept);
    }
    // Without ?replace-existing-checks, the checks the new body does not name stay.
    if !params.has("replace-existing-checks") {
        checks.retain(|c| !new_ids.contains(&c.id));
        if !checks.is_empty() {
            let mut all = Entry::of(&service, instance.clone()).checks;
            all.extend(checks);
            set_checks(&mut instance, &all);
        }
    }
    let mut ops = Vec::with_capacity(2);
    // The same id registered at another address or under another name moves there.
    if let Some(old) = old {
        if old.service != service || old.instance.url() != instance.url() {
            ops.push(Op::Unreg(old.service, Arc::new(old.instance)));
        }
    }
    ops.push(Op::Reg(service, Arc::new(instance)));
    app.write(&origin, ops).await?;
    Ok(done())
}

/// The registration of `id` this one replaces: the instance at the same address of the same
/// service when it has that id (one lookup), else where the id was last seen, if it is
/// still there (a registration that moves an id to another address or name).
fn earlier(consul: &Consul, app: &App, service: &str, url: &str, id: &str) -> Option<Entry> {
    let registry = app.registry();
    let same_id = |entry: &Entry| entry.native && entry.id == id;
    if let Some(here) = registry.instance(service, url).map(|i| Entry::of(service, i)) {
        if same_id(&here) {
            return Some(here);
        }
    }
    let seen = consul.directory.peek(id)?;
    let there = registry.instance(&seen.service, &seen.instance.url())?;
    Some(Entry::of(&seen.service, there)).filter(same_id)
}

/// `PUT /v1/agent/service/deregister/:id`: 200, also for an id nobody registered.
pub(crate) async fn deregister(
    consul: &Consul,
    app: &App,
    request: Request<Incoming>,
    params: &Params,
    id: &str,
) -> Answer {
    let origin = params.origin(app, &request);
    read_body(request, app.limits()).await?;
    if let Some(entry) = consul.directory.find(app.registry(), id) {
        app.write(&origin, Op::Unreg(entry.service, Arc::new(entry.instance)))
            .await?;
    }
    Ok(done())
}

/// `PUT /v1/agent/service/maintenance/:id?enable=true|false[&reason=]`: a critical check
/// `_service_maintenance:<id>` while enabled.
pub(crate) async fn maintenance(
    consul: &Consul,
    app: &App,
    request: Request<Incoming>,
    params: &Params,
    id: &str,
) -> Answer {
    let origin = params.origin(app, &request);
    read_body(request, app.limits()).await?;
    let enable = match params.get("enable") {
        None | Some("") => return Err(Refused::bad("Missing value for enable")),
        Some("true") => true,
        Some("false") => false,
        Some(_) => return Err(Refused::bad("Invalid value for enable")),
    };
    let entry = consul
        .directory
        .find(app.registry(), id)
        .ok_or_else(|| Refused(StatusCode::NOT_FOUND, format!("Unknown service ID {id:?}")))?;
    let check_id = format!("_service_maintenance:{id}");
    let mut checks = entry.checks.clone();
    let present = checks.iter().any(|c| c.id == check_id);
    if enable == present {
        return Ok(done());
    }
    if enable {
        let reason = params.get("reason").filter(|r| !r.is_empty()).unwrap_or(
            "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.",
        );
        let name = "Service Maintenance Mode".to_owned();
        checks.push(Check {
            notes: reason.to_owned(),
            ..Check::without_probe(check_id, name, "maintenance", CRITICAL, app.now_ms())
        });
    } else {
        checks.retain(|c| c.id != check_id);
    }
    let mut instance = entry.instance;
    set_checks(&mut instance, &checks);
    app.write(&origin, Op::Reg(entry.service, Arc::new(instance))).await?;
    Ok(done())
}

/// What Consul answers for a TTL update of a check it does not have, or of one that is not
/// a TTL check: 500 and this text, which clients match.
fn no_ttl(id: &str) -> Refused {
    Refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("CheckID {id:?} does not have associated TTL"),
    )
}

/// `PUT /v1/agent/check/{pass|warn|fail}/:id[?note=]` and `PUT /v1/agent/check/update/:id`
/// (`{"Status","Output"}`): sets the status and restarts the TTL clock. A status and
/// output that do not change are a renewal only, not a change (blocking queries sleep on).
pub(crate) async fn update_ttl(
    consul: &Consul,
    app: &App,
    request: Request<Incoming>,
    params: &Params,
    action: &str,
    id: &str,
) -> Answer {
    let origin = params.origin(app, &request);
    let body = read_body(request, app.limits()).await?;
    let (status, output) = match action {
        "pass" => (PASSING.to_owned(), params.get("note").unwrap_or_default().to_owned()),
        "warn" => (WARNING.to_owned(), params.get("note").unwrap_or_default().to_owned()),
        "fail" => (CRITICAL.to_owned(), params.get("note").unwrap_or_default().to_owned()),
        _ => update_body(&body)?,
    };
    let entry = find_check(consul, app, id).ok_or_else(|| no_ttl(id))?;
    let Some(check) = entry.checks.iter().find(|c| c.id == id) else {
        return Err(no_ttl(id));
    };
    let (service, mut instance) = (entry.service.clone(), entry.instance.clone());
    if check.status == status && check.output == output {
        let outcome = app.write(&origin, Op::Beat(service, Arc::new(instance))).await?;
        if !outcome.known(0) {
            return Err(no_ttl(id));
        }
        return Ok(done());
    }
    let now = app.now_ms();
    let checks: Vec<Check> = entry
        .checks
        .iter()
        .map(|c| match c.id == id {
            true => Check {
                since_ms: if c.status == status { c.since_ms } else { now },
                status: status.clone(),
                output: output.clone(),
                ..c.clone()
            },
            false => c.clone(),
        })
        .collect();
    set_checks(&mut instance, &checks);
    app.write(&origin, Op::Reg(service, Arc::new(instance))).await?;
    Ok(done())
}

/// The TTL check `id`'s service: among the instances with checks, which the registry
/// counts, so that a heartbeat reads only the services that have some.
fn find_check(consul: &Consul, app: &App, id: &str) -> Option<Entry> {
    consul
        .checked
        .all(app.registry())
        .into_iter()
        .find(|e| e.checks.iter().any(|c| c.id == id && c.kind == "ttl"))
}

/// `{"Status": "...", "Output": "..."}` of `/v1/agent/check/update/:id`.
fn update_body(body: &[u8]) -> Result<(String, String), Refused> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Refused::bad(format!("Request decode failed: {e}")))?;
    let empty = Map::new();
    let fields = Fields::of(value.as_object().unwrap_or(&empty));
    let status = fields.text("Status").map_err(Refused::bad)?.unwrap_or_default();
    if !matches!(status, PASSING | WARNING | CRITICAL) {
        return Err(Refused::bad(format!("Invalid check status: '{status}'")));
    }
    let output = fields.text("Output").map_err(Refused::bad)?.unwrap_or_default();
    Ok((status.to_owned(), output.to_owned()))
}

/// `GET /v1/agent/services`: every service registered through Consul, by id.
pub(crate) fn services(consul: &Consul, app: &App, request: &Request<Incoming>, params: &Params) -> Answer {
    params.may_read(app, request, &Resource::ALL)?;
    let datacenter = &consul.settings.datacenter;
    let all: Map<String, Value> = consul
        .directory
        .all(app.registry())
        .iter()
        .map(|entry| (entry.id.clone(), agent_service(entry, datacenter)))
        .collect();
    Ok(ok(&all))
}

/// `GET /v1/agent/service/:id`.
pub(crate) fn service(consul: &Consul, app: &App, request: &Request<Incoming>, params: &Params, id: &str) -> Answer {
    let entry = consul
        .directory
        .find(app.registry(), id)
        .ok_or_else(|| Refused(StatusCode::NOT_FOUND, format!("unknown service ID: {id}")))?;
    params.may_read(app, request, &Resource::service(&entry.service))?;
    Ok(ok(&agent_service(&entry, &consul.settings.datacenter)))
}

/// `GET /v1/agent/checks`: every check of the services registered through Consul, by id.
pub(crate) fn checks(consul: &Consul, app: &App, request: &Request<Incoming>, params: &Params) -> Answer {
    params.may_read(app, request, &Resource::ALL)?;
    let node = &consul.settings.node_name;
    let all: Map<String, Value> = consul
        .directory
        .all(app.registry())
        .iter()
        .flat_map(|entry| {
            entry
                .checks
                .iter()
                .map(move |c| (c.id.clone(), check_json(node, entry, c)))
        })
        .collect();
    Ok(ok(&all))
}

/// `GET /v1/agent/self`: what Go clients read of it (`Config.Datacenter`, `NodeName`).
pub(crate) fn myself(consul: &Consul, app: &App) -> http::Response<registry_api::Body> {
    let settings = &consul.settings;
    let (address, port) = node_address(app);
    ok(&json!({
        "Config": {
            "Datacenter": settings.datacenter,
            "PrimaryDatacenter": settings.datacenter,
            "NodeName": settings.node_name,
            "NodeID": node_id(settings),
            "Server": true,
            "Revision": "maregistry",
            "Version": env!("CARGO_PKG_VERSION"),
        },
        "Member": member(consul, &address, port),
        "Meta": {"consul-network-segment": ""},
        "xDS": null,
    }))
}

/// `GET /v1/agent/members`: this node as a member.
pub(crate) fn members(consul: &Consul, app: &App) -> http::Response<registry_api::Body> {
    let (address, port) = node_address(app);
    ok(&[member(consul, &address, port)])
}

fn member(consul: &Consul, address: &str, port: u16) -> Value {
    json!({
        "Name": consul.settings.node_name,
        "Addr": address,
        "Port": port,
        "Tags": {"dc": consul.settings.datacenter, "role": "consul"},
        "Status": 1,
    })
}
