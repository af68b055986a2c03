//! The Nacos open API v1 naming endpoints (`/nacos/v1/ns/...`) over the write pipeline
//! and the registry.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;

use registry_api::answer::{json, typed};
use registry_api::headers::TEXT;
use registry_api::request::read_body;
use registry_api::{App, Body, FacadeError, Op, Origin};

use super::cache::{encode_hosts, NacosCache};
use super::instance::{port, Described, Host, BEAT_INTERVAL_MS};
use super::names::{service_page, NacosService, DEFAULT_GROUP};
use super::params::{number, Params};

/// How long a client may cache a list (Nacos's value without UDP push).
const CACHE_MILLIS: u64 = 3_000;

/// What a write endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Register,
    Deregister,
    Beat,
}

type Answer = Result<Response<Body>, FacadeError>;

/// Answers a request under `/nacos/v1/ns/`; `rest` is the path after it.
pub(crate) async fn nacos(app: &App, cache: &NacosCache, request: Request<Incoming>, rest: &str) -> Response<Body> {
    let method = request.method().clone();
    let answer = match (&method, rest) {
        (&Method::POST | &Method::PUT, "instance") => write(app, request, Verb::Register).await,
        (&Method::DELETE, "instance") => write(app, request, Verb::Deregister).await,
        (&Method::PUT, "instance/beat") => write(app, request, Verb::Beat).await,
        (&Method::GET, "instance/list") => Params::of(&request).and_then(|p| list(app, cache, &p)),
        (&Method::GET, "instance") => Params::of(&request).and_then(|p| one(app, &p)),
        (&Method::GET, "service/list") => Params::of(&request).and_then(|p| services(app, &p)),
        (_, "instance" | "instance/beat" | "instance/list" | "service/list") => Err(FacadeError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported here"),
        )),
        _ => Err(FacadeError::new(
            StatusCode::NOT_FOUND,
            format!("no Nacos endpoint at /nacos/v1/ns/{rest}"),
        )),
    };
    answer.unwrap_or_else(refusal)
}

/// A refusal as a Nacos server answers it: the status and `caused: <message>;` as text.
fn refusal(e: FacadeError) -> Response<Body> {
    e.into_response(|message| format!("caused: {message};"))
}

/// Register, deregister or beat, through the gateway as every protocol's writes.
async fn write(app: &App, request: Request<Incoming>, verb: Verb) -> Answer {
    let origin = Origin::of(&request);
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = read_body(request, app.limits()).await?;
    let params = Params::parse(&query, Some(&body))?;
    let origin = params.origin(app, origin);
    let service = NacosService::of(&params)?.registry;
    let op = match verb {
        Verb::Register => Op::Reg(service, Arc::new(Described::from_params(&params)?.instance()?)),
        Verb::Deregister => {
            let described = Described {
                weight: 1.0,
                ..Described::from_params(&params)?
            };
            Op::Unreg(service, Arc::new(described.instance()?))
        }
        Verb::Beat => {
            let beat: Option<Value> = match params.get("beat") {
                Some(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| FacadeError::bad(format!("Param 'beat' is not JSON: {e}")))?,
                ),
                None => None,
            };
            let described = match &beat {
                Some(beat) => Described::from_beat(beat, &params)?,
                None => Described::from_params(&params)?,
            };
            let instance = Arc::new(described.instance()?);
            // Nacos: an unknown instance with a beat body is registered; without one it is
            // not found, and the client registers again.
            match beat {
                Some(_) => Op::Renew(service, instance),
                None => Op::Beat(service, instance),
            }
        }
    };
    let outcome = app.write(&origin, op).await?;
    Ok(match verb {
        Verb::Beat if outcome.known(0) => beat_answer(10_200),
        Verb::Beat => beat_answer(20_404),
        Verb::Register | Verb::Deregister => typed(StatusCode::OK, Bytes::from_static(b"ok"), TEXT),
    })
}

fn beat_answer(code: u32) -> Response<Body> {
    let body = serde_json::json!({
        "clientBeatInterval": BEAT_INTERVAL_MS,
        "code": code,
        "lightBeatEnabled": false,
    });
    json(StatusCode::OK, Bytes::from(body.to_string()))
}

/// `GET instance/list` → the service's hosts. `name` is `group@@service` and `clusters`
/// is echoed as sent: the npm client files the answer under both.
fn list(app: &App, cache: &NacosCache, params: &Params) -> Answer {
    let service = NacosService::of(params)?;
    let (version, hosts) = if params.flag("healthyOnly", false)? {
        encode_hosts(app.registry(), &service, true)
    } else {
        cache.hosts(app.registry(), &service)
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
            app.now_ms()
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
        .ok_or_else(|| FacadeError::new(StatusCode::NOT_FOUND, format!("no ips found for {ip}:{port}")))?;
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
    let (count, page) = service_page(app.registry(), namespace, group, page_no, page_size);
    let answer = serde_json::json!({ "count": count, "doms": page });
    Ok(json(StatusCode::OK, Bytes::from(answer.to_string())))
}
