//! Consul's KV store over the config store (docs/spec.md §10.7, docs/api.md "Consul KV"): a
//! key is the data id of a config in namespace `public`, group `DEFAULT_GROUP`, its `/`
//! written `:` (Nacos data ids take `:`, not `/`; Consul keys take `/`, not `:`), so that a
//! KV entry and a Nacos config are two views of one replicated, durable store. The
//! `ModifyIndex` of an entry is its config revision, `CreateIndex` the revision that made
//! it; the index of a listing or of a missing key is the store's revision.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use registry_api::answer::typed;
use registry_api::request::read_body;
use registry_api::{config_resource, App, ConfigPublish, Op, Ops};
use registry_core::{Cas, Config, ConfigFields, ConfigKey, ConfigOutcome, Need};
use serde_json::{json, Value};

use crate::query::Params;
use crate::reply::{boolean, indexed, ok, Answer, Refused};

/// The namespace and group every KV key lives in.
pub(crate) const NAMESPACE: &str = "public";
pub(crate) const GROUP: &str = "DEFAULT_GROUP";

/// The config a KV key is.
pub(crate) fn config_key(key: &str) -> ConfigKey {
    ConfigKey::new(NAMESPACE, GROUP, &data_id(key))
}

/// The data id of a KV key: `/` is `:`.
fn data_id(key: &str) -> String {
    key.replace('/', ":")
}

/// The KV key of a data id.
fn kv_key(data_id: &str) -> String {
    data_id.replace(':', "/")
}

/// `/v1/kv/<key>`: GET, PUT, DELETE.
pub(crate) async fn serve(app: &App, request: Request<Incoming>, params: &Params, key: &str) -> Answer {
    if key.chars().any(char::is_control) || key.len() > registry_core::MAX_DATA_ID_LEN {
        return Err(Refused::bad(format!("Invalid key {key:?}")));
    }
    if key.contains(':') {
        return Err(Refused::bad(format!(
            "Invalid key {key:?}: ':' is not taken (the config store writes a key's '/' as ':')"
        )));
    }
    for session in ["acquire", "release"] {
        if params.get(session).is_some() {
            return Err(Refused(
                StatusCode::NOT_IMPLEMENTED,
                format!("maregistry does not serve Consul sessions (?{session})"),
            ));
        }
    }
    let method = request.method().clone();
    let resource_key = config_key(key);
    let need = if method == Method::GET { Need::Read } else { Need::Write };
    if app.auth_enabled() {
        app.authorize(
            "consul",
            &params.caller(app, &request),
            &config_resource(&resource_key),
            need,
        )?;
    }
    match method {
        Method::GET => get(app, &request, params, key).await,
        Method::PUT => put(app, request, params, key).await,
        Method::DELETE => delete(app, request, params, key).await,
        other => Err(Refused(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {other} not allowed"),
        )),
    }
}

/// One entry as Consul answers it.
pub(crate) fn entry(key: &str, config: &Config) -> Value {
    let value = match config.fields.content.is_empty() {
        true => Value::Null,
        false => Value::String(base64::engine::general_purpose::STANDARD.encode(&config.fields.content)),
    };
    json!({
        "LockIndex": 0,
        "Key": key,
        "Flags": config.fields.flags,
        "Value": value,
        "CreateIndex": config.created_revision,
        "ModifyIndex": config.revision,
    })
}

/// The entries whose key starts with `prefix`, in key order.
pub(crate) fn under(app: &App, prefix: &str) -> Vec<(String, Arc<Config>)> {
    app.registry()
        .configs()
        .with_prefix(NAMESPACE, GROUP, &data_id(prefix))
        .into_iter()
        .map(|(key, config)| (kv_key(&key.data_id), config))
        .collect()
}

async fn get(app: &App, request: &Request<Incoming>, params: &Params, key: &str) -> Answer {
    if let Some(relayed) = params.consistency(app, request).await? {
        return Ok(relayed);
    }
    let configs = app.registry().configs();
    let listing = params.has("recurse") || params.has("keys");
    let this = config_key(key);
    let index = || match listing {
        true => configs.revision(),
        false => configs.get(&this).map_or_else(|| configs.revision(), |c| c.revision),
    };
    if let Some(since) = params.index {
        app.wait_for(&[], since, params.wait(app), index).await;
    }
    let at = index();
    let missing = || {
        Ok(indexed(
            app,
            registry_api::answer::empty(StatusCode::NOT_FOUND),
            at,
            params.stale,
        ))
    };
    if params.has("keys") {
        let separator = params.get("separator").unwrap_or_default();
        let mut keys: Vec<String> = Vec::new();
        for (found, _) in under(app, key) {
            let listed = match separator.is_empty() {
                true => found,
                false => match found[key.len()..].find(separator) {
                    Some(at) => found[..key.len() + at + separator.len()].to_owned(),
                    None => found,
                },
            };
            if keys.last() != Some(&listed) {
                keys.push(listed);
            }
        }
        if keys.is_empty() {
            return missing();
        }
        return Ok(indexed(app, ok(&keys), at, params.stale));
    }
    if params.has("recurse") {
        let entries: Vec<Value> = under(app, key).iter().map(|(k, c)| entry(k, c)).collect();
        if entries.is_empty() {
            return missing();
        }
        return Ok(indexed(app, ok(&entries), at, params.stale));
    }
    let Some(config) = configs.get(&this) else {
        return missing();
    };
    if params.has("raw") {
        let raw = typed(
            StatusCode::OK,
            Bytes::from(config.fields.content.clone()),
            "text/plain; charset=utf-8",
        );
        return Ok(indexed(app, raw, at, params.stale));
    }
    Ok(indexed(app, ok(&[entry(key, &config)]), at, params.stale))
}

/// `?cas=N`: the write applies only while the entry's ModifyIndex is N (0: absent).
fn cas(params: &Params) -> Result<Option<Cas>, Refused> {
    params
        .get("cas")
        .map(|v| {
            v.parse()
                .map(Cas::Revision)
                .map_err(|_| Refused::bad("Invalid cas index"))
        })
        .transpose()
}

async fn put(app: &App, request: Request<Incoming>, params: &Params, key: &str) -> Answer {
    if key.is_empty() {
        return Err(Refused::bad("Missing key name"));
    }
    // Consul: a put without ?flags sets them to 0.
    let flags = match params.get("flags") {
        None => 0,
        Some(flags) => flags.parse().map_err(|_| Refused::bad("Invalid flags"))?,
    };
    let cas = cas(params)?;
    let origin = params.origin(app, &request);
    let body = read_body(request, app.limits()).await?;
    let content = String::from_utf8(body.to_vec()).map_err(|_| {
        Refused::bad("the value must be UTF-8 text: maregistry's KV shares the config store, which holds text")
    })?;
    let op = Op::Publish(Box::new(ConfigPublish {
        key: config_key(key),
        fields: ConfigFields {
            flags,
            ..ConfigFields::content(content)
        },
        cas,
    }));
    let outcome = app.write(&origin, op).await?;
    let written = !matches!(outcome.configs.first(), Some(ConfigOutcome::CasFailed));
    Ok(boolean(written))
}

async fn delete(app: &App, request: Request<Incoming>, params: &Params, key: &str) -> Answer {
    let cas = cas(params)?;
    let origin = params.origin(app, &request);
    read_body(request, app.limits()).await?;
    let ops: Vec<Op> = match params.has("recurse") {
        true => under(app, key)
            .into_iter()
            .map(|(k, _)| Op::Remove(Box::new((config_key(&k), None))))
            .collect(),
        false if key.is_empty() => return Err(Refused::bad("Missing key name")),
        false => vec![Op::Remove(Box::new((config_key(key), cas)))],
    };
    if ops.is_empty() {
        return Ok(boolean(true));
    }
    let outcome = app.write(&origin, Ops::Many(ops)).await?;
    let refused = outcome.configs.iter().any(|c| matches!(c, ConfigOutcome::CasFailed));
    Ok(boolean(!refused))
}
