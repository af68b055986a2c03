//! The requests a Nacos client sends as unary calls: the connection's own
//! (`ServerCheckRequest`, `HealthCheckRequest`) and the naming ones, mapped onto the
//! registry as the v1 facade maps them (docs/spec.md §6.3). Writes go through the same
//! pipeline as every other protocol's, so a follower relays them to the leader.

use std::collections::HashSet;
use std::sync::Arc;

use registry_api::access::{Caller, Credentials};
use registry_core::{validate_new_registration, InstanceMeta, Need, Resource};
use serde_json::{Map, Value};

use super::answered::AfterAnswer;
use super::connections::{ConnInfo, Connection, Subscription};
use super::proto::Payload;
use super::service_info::{push, service_info};
use super::wire::{code, error, refused_as, response, Incoming, Refusal};
use crate::v1::{naming_resource, service_page, Described, NacosService, WireInstance, DEFAULT_GROUP};
use crate::Node;
use registry_api::auth::Access;
use registry_api::Op;

/// Answers one unary request from the connection `info`; what must follow the answer on the
/// wire goes in `after`. Never fails: a refusal is an `ErrorResponse`.
pub(crate) async fn answer(app: &Node, info: &ConnInfo, payload: Payload, after: &AfterAnswer) -> Payload {
    if let Err(refusal) = within_limits(app, &payload) {
        tracing::debug!(connection = %info.label, message = %refusal.message, "gRPC request refused");
        return error("", &refusal);
    }
    let request = match Incoming::parse(payload) {
        Ok(request) => request,
        Err(refusal) => return error("", &refusal),
    };
    let id = request.request_id();
    match dispatch(app, info, &request, after).await {
        Ok(answer) => answer,
        Err(refusal) => {
            tracing::debug!(kind = %request.kind, code = refusal.code, message = %refusal.message, "gRPC request refused");
            // A refusal of access is the request's own response type, as the Java server
            // answers it (a generic ErrorResponse reaches nacos-sdk-python as a 500).
            match (refusal.code, response_type(&request.kind)) {
                (code::NO_RIGHT, Some(kind)) => refused_as(kind, &id, &refusal, |_| {}),
                _ => error(&id, &refusal),
            }
        }
    }
}

/// A request's body is held to the HTTP API's limits (docs/spec.md §3.4): `--max-body`, and
/// a `BatchInstanceRequest` the limit of a `/batch`. Checked before the body is read, on
/// the node holding the connection, so that a leader and a follower refuse alike.
fn within_limits(app: &Node, payload: &Payload) -> Result<(), Refusal> {
    let size = payload.body.as_ref().map_or(0, |body| body.value.len());
    let kind = payload.metadata.as_ref().map_or("", |m| m.r#type.as_str());
    let limit = match kind {
        "BatchInstanceRequest" => app.limits().for_batches().max_body,
        "ConfigPublishRequest" | "ConfigBatchListenRequest" => app.limits().for_configs().max_body,
        _ => app.limits().max_body,
    };
    if size > limit {
        return Err(Refusal::new(
            code::TOO_LARGE,
            format!("the request body ({size} bytes) exceeds the limit of {limit} bytes"),
        ));
    }
    Ok(())
}

async fn dispatch(app: &Node, info: &ConnInfo, request: &Incoming, after: &AfterAnswer) -> Result<Payload, Refusal> {
    let id = request.request_id();
    if request.kind == "ServerCheckRequest" {
        let mut fields = Map::new();
        fields.insert("connectionId".to_owned(), Value::from(&*info.label));
        fields.insert("supportAbilityNegotiation".to_owned(), Value::from(false));
        return Ok(response("ServerCheckResponse", &id, fields));
    }
    let Some(connection) = app.grpc().connections.get(info.id) else {
        return Err(Refusal::new(code::UNREGISTERED, "Connection is unregistered."));
    };
    connection.active(app.now_ms());
    if super::config::is_config(&request.kind) {
        return Ok(Box::pin(super::config::answer(app, &connection, request)).await);
    }
    match request.kind.as_str() {
        "HealthCheckRequest" => Ok(response("HealthCheckResponse", &id, Map::new())),
        "InstanceRequest" => {
            authorize(app, request, true)?;
            instance(app, &connection, request).await
        }
        "BatchInstanceRequest" => {
            authorize(app, request, true)?;
            batch(app, &connection, request).await
        }
        "SubscribeServiceRequest" => {
            authorize(app, request, false)?;
            subscribe(app, &connection, request, after)
        }
        "ServiceQueryRequest" => {
            authorize(app, request, false)?;
            query(app, request)
        }
        "ServiceListRequest" => {
            authorize(app, request, false)?;
            list(app, request)
        }
        "PersistentInstanceRequest" => Err(Refusal::new(
            code::NO_HANDLER,
            "persistent instances are not supported: register ephemeral instances (they live as long as the \
             connection)",
        )),
        other => Err(Refusal::new(code::NO_HANDLER, format!("no handler for {other:?}"))),
    }
}

/// The response type of a naming request.
fn response_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "InstanceRequest" => "InstanceResponse",
        "BatchInstanceRequest" => "BatchInstanceResponse",
        "SubscribeServiceRequest" => "SubscribeServiceResponse",
        "ServiceQueryRequest" => "QueryServiceResponse",
        "ServiceListRequest" => "ServiceListResponse",
        _ => return None,
    })
}

/// Who sends `request`: its `accessToken` (or `Authorization`) header, or its `username`
/// and `password` headers.
pub(crate) fn caller(app: &Node, request: &Incoming) -> Caller {
    let header = |name: &str| request.headers.get(name).map(String::as_str).filter(|v| !v.is_empty());
    app.identify(&Credentials {
        authorization: header("Authorization").map(str::as_bytes),
        access_token: header("accessToken"),
        username: header("username"),
        password: header("password"),
    })
}

/// Whether the caller of `request` may read or write `resource` (docs/spec.md §9).
pub(crate) fn check(app: &Node, request: &Incoming, resource: &Resource<'_>, write: bool) -> Result<(), Refusal> {
    let need = if write { Need::Write } else { Need::Read };
    app.authorize("nacos-grpc", &caller(app, request), resource, need)
        .map_err(|e| Refusal::new(code::NO_RIGHT, e.to_string()))
}

/// With users (`--auth-enabled`), whether the caller may read or write what the naming
/// request names. Else, with a client token configured, writes (and with
/// `--client-token-reads`, reads) carry it in the `accessToken` header (or `Authorization:
/// Bearer`); the cluster token does too. Decided by the server's one check, as an HTTP
/// request's is.
pub(crate) fn authorize(app: &Node, request: &Incoming, write: bool) -> Result<(), Refusal> {
    if app.auth_enabled() {
        let resource = naming_resource(
            request.text("namespace"),
            request.text("serviceName"),
            request.text("groupName"),
        );
        return check(app, request, &resource, write);
    }
    if !app.auth().any() {
        return Ok(());
    }
    let presented = match (request.headers.get("accessToken"), request.headers.get("Authorization")) {
        (Some(token), _) => Some(format!("Bearer {token}")),
        (None, Some(authorization)) => Some(authorization.clone()),
        (None, None) => None,
    };
    let access = if write { Access::ClientWrite } else { Access::ClientRead };
    app.auth()
        .check(access, presented.as_deref().map(str::as_bytes))
        .map_err(|_| {
            Refusal::new(
                code::NO_RIGHT,
                "this node needs the client token: send it as the accessToken header",
            )
        })
}

/// The service a naming request names (`namespace`, `groupName`, `serviceName`), and the
/// namespace as to echo it.
fn service_of(request: &Incoming) -> Result<(NacosService, String), Refusal> {
    let name = request
        .text("serviceName")
        .ok_or_else(|| Refusal::invalid("'serviceName' is required"))?;
    let (group, name) = match name.split_once("@@") {
        Some((group, name)) => (group, name),
        None => (request.text("groupName").unwrap_or(DEFAULT_GROUP), name),
    };
    let namespace = request.text("namespace").filter(|n| *n != "public");
    let service = NacosService::named(namespace, group, name).map_err(|e| Refusal::invalid(e.message()))?;
    Ok((service, namespace.unwrap_or("public").to_owned()))
}

/// The registry instance of a gRPC instance object, leased for the connection. Refused
/// when it is larger than `--max-body`, as a `/reg` of it would be.
fn instance_of(app: &Node, wire: &WireInstance) -> Result<InstanceMeta, Refusal> {
    let lease = u64::try_from(app.grpc().settings.lease.as_millis()).unwrap_or(u64::MAX);
    let instance = Described::from_wire(wire)
        .and_then(|described| described.instance_leased(lease))
        .map_err(|e| Refusal::invalid(e.message()))?;
    let size = stored_size(&instance);
    let limit = app.limits().max_body;
    if size > limit {
        return Err(Refusal::new(
            code::TOO_LARGE,
            format!(
                "the instance {}:{} ({size} bytes of fields and metadata) exceeds the limit of {limit} bytes",
                instance.host, instance.port
            ),
        ));
    }
    Ok(instance)
}

/// About how many bytes `instance` takes as JSON (its text and each field's quotes and
/// separators, escapes aside): what the limit is held against.
fn stored_size(instance: &InstanceMeta) -> usize {
    let fields = instance.scheme.len() + instance.host.len() + instance.context.len() + 64;
    let parameters: usize = instance.parameters.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    fields + parameters
}

/// `InstanceRequest`: `registerInstance` makes this instance the connection's one instance
/// in the service; `deregisterInstance` withdraws what the connection publishes there (as
/// Nacos: the instance in the request is not compared).
async fn instance(app: &Node, connection: &Arc<Connection>, request: &Incoming) -> Result<Payload, Refusal> {
    let (service, _) = service_of(request)?;
    let kind = request.text("type").unwrap_or("");
    let set = match kind {
        "registerInstance" => {
            let wire = request
                .instance()
                .ok_or_else(|| Refusal::invalid("'instance' is required"))?;
            vec![Arc::new(instance_of(app, wire)?)]
        }
        "deregisterInstance" => Vec::new(),
        other => return Err(Refusal::invalid(format!("unknown InstanceRequest type {other:?}"))),
    };
    publish(app, connection, &service.registry, set).await?;
    let mut fields = Map::new();
    fields.insert("type".to_owned(), Value::from(kind));
    Ok(response("InstanceResponse", &request.request_id(), fields))
}

/// `BatchInstanceRequest`: the connection publishes exactly these instances in the service
/// (clients deregister some by sending the rest).
async fn batch(app: &Node, connection: &Arc<Connection>, request: &Incoming) -> Result<Payload, Refusal> {
    let (service, _) = service_of(request)?;
    let instances = request.instances().unwrap_or_default();
    let max = app.limits().max_batch;
    if instances.len() > max {
        return Err(Refusal::invalid(format!(
            "a BatchInstanceRequest holds at most {max} instances, got {}",
            instances.len()
        )));
    }
    let set = instances
        .iter()
        .map(|item| instance_of(app, item).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    publish(app, connection, &service.registry, set).await?;
    let mut fields = Map::new();
    fields.insert("type".to_owned(), Value::from("batchRegisterInstance"));
    Ok(response("BatchInstanceResponse", &request.request_id(), fields))
}

/// Makes `set` what `connection` publishes in `service`: instances it published before and
/// not now are unregistered (unless another connection of this node publishes them too),
/// the set is registered, all in one write. Linear in the instances of both sets.
pub(crate) async fn publish(
    app: &Node,
    connection: &Arc<Connection>,
    service: &str,
    set: Vec<Arc<InstanceMeta>>,
) -> Result<(), Refusal> {
    for instance in &set {
        validate_new_registration(service, instance).map_err(|e| Refusal::invalid(e.to_string()))?;
    }
    let _serial = connection.writes.lock().await;
    let max = app.grpc().settings.max_instances;
    let published = connection.published_with(service, set.len());
    if published > max {
        return Err(Refusal::new(
            code::OVER_THRESHOLD,
            format!(
                "a connection publishes at most {max} instances (--grpc-max-instances); this would make {published}"
            ),
        ));
    }
    let kept: HashSet<String> = set.iter().map(|i| i.url()).collect();
    let connections = &app.grpc().connections;
    let mut ops: Vec<Op> = connection
        .published(service)
        .into_iter()
        .filter(|old| {
            let url = old.url();
            // This connection is one of its publishers.
            !kept.contains(&url) && connections.publishers_of(service, &url) <= 1
        })
        .map(|old| Op::Unreg(service.to_owned(), old))
        .collect();
    ops.extend(set.iter().map(|i| Op::Reg(service.to_owned(), i.clone())));
    app.write_all(ops)
        .await
        .map_err(|e| Refusal::new(code::SERVER_ERROR, e.to_string()))?;
    connections.set_published(connection, service, set);
    Ok(())
}

/// `SubscribeServiceRequest`: subscribes (or, with `subscribe: false`, unsubscribes) the
/// connection; answers the service now, and a subscription gets its first push right
/// after that answer, as Nacos sends it.
fn subscribe(
    app: &Node,
    connection: &Arc<Connection>,
    request: &Incoming,
    after: &AfterAnswer,
) -> Result<Payload, Refusal> {
    let (service, namespace) = service_of(request)?;
    let clusters = request.text("clusters").unwrap_or("").to_owned();
    let registry_service = service.registry.clone();
    let subscription = Subscription {
        service: service.clone(),
        namespace: namespace.clone(),
        clusters: clusters.clone(),
    };
    let nacos2 = app.grpc();
    if request.flag("subscribe", true)? {
        let max = nacos2.settings.max_subscriptions;
        let (subscribed, already) = connection.subscribed(&registry_service);
        if !already && subscribed >= max {
            return Err(Refusal::new(
                code::OVER_THRESHOLD,
                format!("a connection subscribes to at most {max} services (--grpc-max-subscriptions)"),
            ));
        }
        nacos2
            .connections
            .subscribe(connection, &registry_service, subscription);
    } else {
        nacos2.connections.unsubscribe(connection, &registry_service);
    }
    let now = app.now_ms();
    let answered = nacos2.ref_times.next(&registry_service, now);
    let info = service_info(app.registry(), app.cache(), &service, &clusters, false, answered);
    let body = serde_json::from_slice(&info).unwrap_or(Value::Null);
    if request.flag("subscribe", true)? {
        // The first push, after the answer's time.
        let pushed = nacos2.ref_times.next(&registry_service, now);
        let info = service_info(app.registry(), app.cache(), &service, &clusters, false, pushed);
        let payload = push(nacos2.next_request_id(), &namespace, &service, &info);
        let (outbound, hub) = (connection.outbound(), nacos2.hub.clone());
        after.then(move || {
            let sent = outbound.is_some_and(|outbound| outbound.try_send(Arc::new(payload)).is_ok());
            hub.count(u64::from(sent), u64::from(!sent));
        });
    }
    let mut fields = Map::new();
    fields.insert("serviceInfo".to_owned(), body);
    Ok(response("SubscribeServiceResponse", &request.request_id(), fields))
}

/// `ServiceQueryRequest`: the service now (only healthy hosts with `healthyOnly`; Python
/// clients spell it `healthOnly`).
fn query(app: &Node, request: &Incoming) -> Result<Payload, Refusal> {
    let (service, _) = service_of(request)?;
    let healthy_only = request.flag("healthyOnly", false)? || request.flag("healthOnly", false)?;
    let clusters = request.text("cluster").unwrap_or("");
    let time = app.grpc().ref_times.next(&service.registry, app.now_ms());
    let info = service_info(app.registry(), app.cache(), &service, clusters, healthy_only, time);
    let mut fields = Map::new();
    fields.insert(
        "serviceInfo".to_owned(),
        serde_json::from_slice(&info).unwrap_or(Value::Null),
    );
    Ok(response("QueryServiceResponse", &request.request_id(), fields))
}

/// `ServiceListRequest`: the services of the namespace and group, a page of their names
/// and how many there are.
fn list(app: &Node, request: &Incoming) -> Result<Payload, Refusal> {
    let page_no = usize::try_from(request.number("pageNo", 1)?).unwrap_or(usize::MAX);
    let page_size = usize::try_from(request.number("pageSize", 10)?)
        .unwrap_or(usize::MAX)
        .clamp(1, 10_000);
    let group = request.text("groupName").unwrap_or(DEFAULT_GROUP);
    let namespace = request.text("namespace").filter(|n| *n != "public");
    let (count, names) = service_page(app.registry(), namespace, group, page_no, page_size);
    let mut fields = Map::new();
    fields.insert("count".to_owned(), Value::from(count));
    fields.insert("serviceNames".to_owned(), Value::from(names));
    Ok(response("ServiceListResponse", &request.request_id(), fields))
}
