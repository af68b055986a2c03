//! The config requests of the Nacos 2/3 gRPC protocol (docs/spec.md §8.3):
//! `ConfigQueryRequest`, `ConfigPublishRequest` (compare-and-set through `casMd5`),
//! `ConfigRemoveRequest`, `ConfigBatchListenRequest`, and the `ConfigChangeNotifyRequest`
//! pushed to each connection listening to a config that changed, retried as Nacos retries.
//!
//! Every answer, a refusal included, is the request's own response type with `resultCode`
//! and `errorCode`: the Rust client reads `lastModified` and `beta` of every query answer
//! and panics on a successful one without `content`, `contentType` and `md5`; the Python
//! client shows a refusal's code only when it comes in that type, and takes a `tag` for a
//! boolean, so none is sent.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use registry_api::{config_resource, ApiError, Origin};
use registry_core::{Cas, Config, ConfigFields, ConfigKey};

use super::connections::Connection;
use super::proto::Payload;
use super::tasks::end;
use super::wire::{code, field, refused_as, response, response_writing, server_request, Incoming, Refusal};
use crate::config::{self, known_type, named, Named, ToPush, Written, CAS_FAILED, NOT_FOUND, NO_BETA, NO_TAG};
use crate::Node;

/// Nacos's code for a config that does not exist.
const CONFIG_NOT_FOUND: i64 = 300;
/// How often a push that found a stream full or closed is tried again (after 2, 4, …
/// seconds) before the connection is ended.
const PUSH_RETRIES: u32 = 5;

/// The config requests this module answers, by type.
pub(crate) fn is_config(kind: &str) -> bool {
    matches!(
        kind,
        "ConfigQueryRequest" | "ConfigPublishRequest" | "ConfigRemoveRequest" | "ConfigBatchListenRequest"
    )
}

/// Answers a config request on `connection`; never fails (a refusal is the response type
/// with its codes).
pub(crate) async fn answer(app: &Node, connection: &Arc<Connection>, request: &Incoming) -> Payload {
    let (kind, write) = match request.kind.as_str() {
        "ConfigQueryRequest" => ("ConfigQueryResponse", false),
        "ConfigPublishRequest" => ("ConfigPublishResponse", true),
        "ConfigRemoveRequest" => ("ConfigRemoveResponse", true),
        _ => ("ConfigChangeBatchListenResponse", false),
    };
    let answered = match authorize(app, request, write) {
        Err(refusal) => Err(refusal),
        Ok(()) => match request.kind.as_str() {
            "ConfigQueryRequest" => query(app, request).map(Answer::Config),
            "ConfigPublishRequest" => publish(app, request).await.map(Answer::Fields),
            "ConfigRemoveRequest" => remove(app, request).await.map(Answer::Fields),
            _ => listen(app, connection, request).map(Answer::Fields),
        },
    };
    let id = request.request_id();
    match answered {
        Ok(Answer::Fields(fields)) => response(kind, &id, fields),
        Ok(Answer::Config(config)) => query_answer(&id, &config),
        Err(refusal) => {
            tracing::debug!(kind = %request.kind, code = refusal.code, message = %refusal.message, "gRPC config request refused");
            refused(kind, &id, &refusal)
        }
    }
}

/// What a request was answered with, besides the envelope.
enum Answer {
    Fields(Map<String, Value>),
    /// A query's config: written straight from the store (every read pays for it).
    Config(Arc<Config>),
}

/// With users, whether the caller may read or write each config the request names (each
/// of a batch listen's); else the token check of every request.
fn authorize(app: &Node, request: &Incoming, write: bool) -> Result<(), Refusal> {
    if !app.auth_enabled() {
        return super::naming::authorize(app, request, write);
    }
    if request.kind != "ConfigBatchListenRequest" {
        let Named { key, .. } = named_in(request)?;
        return super::naming::check(app, request, &config_resource(&key), write);
    }
    for (named, _) in listen_contexts(request)? {
        super::naming::check(app, request, &config_resource(&named.key), false)?;
    }
    Ok(())
}

/// A refusal in the response type `kind`, with the fields its clients must find there.
fn refused(kind: &str, request_id: &str, refusal: &Refusal) -> Payload {
    refused_as(kind, request_id, refusal, |body| match kind {
        "ConfigQueryResponse" => {
            body["lastModified"] = Value::from(0);
            body["beta"] = Value::Bool(false);
        }
        "ConfigChangeBatchListenResponse" => body["changedConfigs"] = Value::Array(Vec::new()),
        _ => {}
    })
}

/// The config a request names.
fn named_in(request: &Incoming) -> Result<Named, Refusal> {
    named(request.text("dataId"), request.text("group"), request.text("tenant")).map_err(Refusal::invalid)
}

fn server_error(e: ApiError) -> Refusal {
    Refusal::new(code::SERVER_ERROR, e.to_string())
}

/// `ConfigQueryRequest`: the config named, or error code 300.
fn query(app: &Node, request: &Incoming) -> Result<Arc<Config>, Refusal> {
    if request.text("tag").is_some() {
        return Err(Refusal::invalid(NO_TAG));
    }
    let Named { key, .. } = named_in(request)?;
    app.registry()
        .configs()
        .get(&key)
        .ok_or_else(|| Refusal::new(CONFIG_NOT_FOUND, NOT_FOUND))
}

/// A `ConfigQueryResponse` with `config`'s content and what describes it.
fn query_answer(request_id: &str, config: &Config) -> Payload {
    let fields = &config.fields;
    // The content escaped is rarely much longer than the content.
    let hint = 128 + fields.content.len() + fields.content.len() / 8 + fields.encrypted_data_key.len();
    response_writing("ConfigQueryResponse", request_id, hint, |out| {
        field(out, "content", fields.content.as_str());
        field(out, "contentType", config.kind());
        field(out, "md5", config.md5());
        if !fields.encrypted_data_key.is_empty() {
            field(out, "encryptedDataKey", fields.encrypted_data_key.as_str());
        }
        field(out, "lastModified", &config.modified_ms);
        field(out, "beta", &false);
    })
}

/// `ConfigPublishRequest`: `content`, `casMd5`, and the rest in `additionMap` (blank values
/// are absent: the Python client sends every key).
async fn publish(app: &Node, request: &Incoming) -> Result<Map<String, Value>, Refusal> {
    let Named { key, .. } = named_in(request)?;
    let addition = |name: &str| {
        request
            .get("additionMap")
            .and_then(|map| map.get(name))
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    if !addition("betaIps").is_empty() {
        return Err(Refusal::invalid(NO_BETA));
    }
    if !addition("tag").is_empty() || request.text("tag").is_some() {
        return Err(Refusal::invalid(NO_TAG));
    }
    let content = match request.get("content") {
        Some(Value::String(content)) if !content.trim().is_empty() => content.clone(),
        _ => return Err(Refusal::invalid("'content' is required and must not be blank")),
    };
    let fields = ConfigFields {
        content,
        kind: known_type(&addition("type")),
        desc: addition("desc"),
        app_name: addition("appName"),
        tags: addition("config_tags"),
        encrypted_data_key: addition("encryptedDataKey"),
        src_user: addition("src_user"),
        flags: 0,
    };
    let cas = request.text("casMd5").map(|md5| Cas::Md5(md5.trim().to_owned()));
    let written = config::publish(app, app.config_listeners(), &Origin::node(app), key, fields, cas)
        .await
        .map_err(refusal_of)?;
    match written {
        Written::Done => Ok(Map::new()),
        Written::CasFailed => Err(Refusal::new(code::SERVER_ERROR, CAS_FAILED)),
    }
}

/// A write's refusal: a client's mistake keeps its 4xx as the code, the rest is 500.
fn refusal_of(e: ApiError) -> Refusal {
    let status = e.status().as_u16();
    if (400..500).contains(&status) {
        return Refusal::new(i64::from(status), e.to_string());
    }
    server_error(e)
}

/// `ConfigRemoveRequest`.
async fn remove(app: &Node, request: &Incoming) -> Result<Map<String, Value>, Refusal> {
    if request.text("tag").is_some() {
        return Err(Refusal::invalid(NO_TAG));
    }
    let Named { key, .. } = named_in(request)?;
    match config::remove(app, &Origin::node(app), key, None)
        .await
        .map_err(refusal_of)?
    {
        Written::Done => Ok(Map::new()),
        Written::CasFailed => Err(Refusal::new(code::SERVER_ERROR, CAS_FAILED)),
    }
}

/// The configs a batch listen names, each with the md5 the client holds (`""`: none).
fn listen_contexts(request: &Incoming) -> Result<Vec<(Named, String)>, Refusal> {
    let contexts = match request.get("configListenContexts") {
        None => return Ok(Vec::new()),
        Some(Value::Array(contexts)) => contexts,
        Some(other) => {
            return Err(Refusal::invalid(format!(
                "'configListenContexts' must be a list, got {other}"
            )))
        }
    };
    let text = |context: &Value, name: &str| context.get(name).and_then(Value::as_str).map(str::to_owned);
    contexts
        .iter()
        .map(|context| {
            let named = named(
                text(context, "dataId").as_deref(),
                text(context, "group").as_deref(),
                text(context, "tenant").as_deref(),
            )
            .map_err(Refusal::invalid)?;
            Ok((named, text(context, "md5").unwrap_or_default()))
        })
        .collect()
}

/// `ConfigBatchListenRequest`: with `listen: true`, the connection listens to each config
/// and hears of those whose md5 differs from the one it sent (a missing config's md5 is
/// `""`), in the answer and as a push; with `listen: false`, it stops listening to them.
fn listen(app: &Node, connection: &Arc<Connection>, request: &Incoming) -> Result<Map<String, Value>, Refusal> {
    let listening = request.flag("listen", true)?;
    let read = listen_contexts(request)?;
    let listeners = app.config_listeners();
    let id = connection.info.id;
    let max = app.grpc().settings.max_subscriptions;
    let mut changed = Vec::new();
    for (Named { key, tenant }, md5) in read {
        if !listening {
            listeners.unlisten(id, &key);
            continue;
        }
        if !listeners.listen(id, &key, &tenant, max) {
            return Err(Refusal::new(
                code::OVER_THRESHOLD,
                format!("a connection listens to at most {max} configs (--grpc-max-subscriptions)"),
            ));
        }
        let now = app.registry().configs().get(&key);
        if now.as_deref().map_or("", |config| config.md5()) != md5 {
            changed.push(serde_json::json!({"dataId": key.data_id, "group": key.group, "tenant": tenant}));
            // Also pushed: the Rust client sends its first batch listen without waiting
            // for the answer and reads only pushes, so a change made between its read and
            // its listen would reach it only with its next full listen, a minute later.
            let push = Arc::new(notify(app, &key, &tenant));
            if !send(app, id, &push) {
                tracing::debug!(connection = id, "a batch listen's change found the stream full");
            }
        }
    }
    let mut fields = Map::new();
    fields.insert("changedConfigs".to_owned(), Value::Array(changed));
    Ok(fields)
}

/// Pushes every change of a config some connection listens to: a
/// `ConfigChangeNotifyRequest` (`dataId`, `group`, and `tenant` when the connection named
/// one) on each listening connection's stream. A stream that is full or closed is tried
/// again after 2, 4, … seconds, [`PUSH_RETRIES`] times, then its connection is ended.
/// Runs until the runtime drops it.
pub(crate) async fn push_configs(app: Arc<Node>) {
    let listeners = app.config_listeners();
    loop {
        let keys = match listeners.to_push().await {
            ToPush::Keys(keys) => keys,
            ToPush::All => listeners.listened_keys(),
        };
        for key in keys {
            // One payload per way the key was named (with or without a tenant), shared by
            // every connection that named it so.
            let mut encoded: Vec<(String, Arc<Payload>)> = Vec::new();
            for (connection, tenant) in listeners.listeners_of(&key) {
                let push = match encoded.iter().find(|(named, _)| *named == tenant) {
                    Some((_, push)) => push.clone(),
                    None => {
                        let push = Arc::new(notify(&app, &key, &tenant));
                        encoded.push((tenant, push.clone()));
                        push
                    }
                };
                if !send(&app, connection, &push) {
                    tokio::spawn(retry(app.clone(), connection, push));
                }
            }
        }
    }
}

fn notify(app: &Node, key: &ConfigKey, tenant: &str) -> Payload {
    let mut fields = Map::new();
    fields.insert("dataId".to_owned(), Value::from(key.data_id.as_str()));
    fields.insert("group".to_owned(), Value::from(key.group.as_str()));
    if !tenant.is_empty() {
        fields.insert("tenant".to_owned(), Value::from(tenant));
    }
    let id = app.grpc().next_request_id().to_string();
    server_request("ConfigChangeNotifyRequest", "config", &id, fields)
}

/// Puts `push` on the connection's stream; answers whether it went (or the connection is
/// gone, so that there is nothing to retry).
fn send(app: &Node, connection: u64, push: &Arc<Payload>) -> bool {
    let counts = app.config_listeners().counts();
    let Some(held) = app.grpc().connections.get(connection) else {
        return true;
    };
    let sent = held
        .outbound()
        .is_some_and(|outbound| outbound.try_send(push.clone()).is_ok());
    let counter = if sent { &counts.pushes } else { &counts.push_failures };
    counter.fetch_add(1, Ordering::Relaxed);
    sent
}

async fn retry(app: Arc<Node>, connection: u64, push: Arc<Payload>) {
    for attempt in 1..=PUSH_RETRIES {
        tokio::time::sleep(Duration::from_secs(2 * u64::from(attempt))).await;
        if send(&app, connection, &push) {
            return;
        }
    }
    end(&app, connection, "config change pushes found its stream full or closed").await;
}
