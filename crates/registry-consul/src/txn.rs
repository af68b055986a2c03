//! `PUT /v1/txn` (docs/spec.md §10.7): KV operations applied together, all or nothing, as one
//! write of the log ([`Op::Transaction`]). Each write's condition (`cas`, `delete-cas`,
//! `check-index`, `check-not-exists`) is checked against the store as the operations before
//! it leave it; when one does not hold, nothing is applied and the answer is 409 with the
//! operation at fault. Reads (`get`, `get-tree`) answer what the store holds once the
//! writes are applied.

use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use registry_api::answer::json;
use registry_api::request::read_body;
use registry_api::{config_resource, App, ConfigPublish, ConfigStep, Op};
use registry_core::{Cas, ConfigFields, ConfigOutcome, Need};
use serde_json::{json, Value};

use crate::decode::{kind, Fields};
use crate::kv::{config_key, entry, under};
use crate::query::Params;
use crate::reply::{Answer, Refused};

/// Consul's limit on the operations of one transaction.
const MAX_OPS: usize = 64;

/// One KV operation of a transaction, read.
struct KvOp {
    verb: String,
    key: String,
    value: Option<String>,
    flags: u64,
    index: u64,
}

/// `PUT /v1/txn`.
pub(crate) async fn txn(app: &App, request: Request<Incoming>, params: &Params) -> Answer {
    let origin = params.origin(app, &request);
    let caller = origin.caller().clone();
    let body = read_body(request, app.limits()).await?;
    let ops = read_ops(&body)?;
    if app.auth_enabled() {
        for op in &ops {
            let need = match op.verb.as_str() {
                "get" | "get-tree" | "check-index" | "check-not-exists" => Need::Read,
                _ => Need::Write,
            };
            app.authorize("consul", &caller, &config_resource(&config_key(&op.key)), need)?;
        }
    }
    // The steps of the write, and which operation each step came from.
    let mut steps = Vec::new();
    let mut from = Vec::new();
    for (at, op) in ops.iter().enumerate() {
        for step in steps_of(app, op)? {
            steps.push(step);
            from.push(at);
        }
    }
    let mut written = vec![None; ops.len()];
    if !steps.is_empty() {
        let outcome = app.write(&origin, Op::Transaction(steps)).await?;
        if let Some(failed) = outcome.configs.iter().position(|o| *o == ConfigOutcome::CasFailed) {
            let at = from.get(failed).copied().unwrap_or(0);
            return Ok(conflict(at, &ops[at]));
        }
        for (step, outcome) in outcome.configs.iter().enumerate() {
            if let (Some(&at), ConfigOutcome::Written { revision }) = (from.get(step), outcome) {
                written[at] = Some(*revision);
            }
        }
    }
    let mut results = Vec::new();
    for (op, revision) in ops.iter().zip(written) {
        match op.verb.as_str() {
            "get" => {
                if let Some(config) = app.registry().configs().get(&config_key(&op.key)) {
                    results.push(json!({"KV": entry(&op.key, &config)}));
                }
            }
            "get-tree" => {
                for (key, config) in under(app, &op.key) {
                    results.push(json!({"KV": entry(&key, &config)}));
                }
            }
            "set" | "cas" => {
                if let Some(config) = app.registry().configs().get(&config_key(&op.key)) {
                    let mut kv = entry(&op.key, &config);
                    kv["Value"] = Value::Null;
                    kv["ModifyIndex"] = json!(revision.unwrap_or(config.revision));
                    results.push(json!({"KV": kv}));
                }
            }
            _ => {}
        }
    }
    let answer = json!({"Results": results, "Errors": null});
    Ok(json(StatusCode::OK, Bytes::from(answer.to_string())))
}

/// The operations of a transaction body: `[{"KV": {"Verb", "Key", "Value", "Flags",
/// "Index"}}, ...]`, keys in any case; only KV operations are served.
fn read_ops(body: &[u8]) -> Result<Vec<KvOp>, Refused> {
    let decode = |e: String| Refused::bad(format!("Failed to parse body: {e}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| decode(e.to_string()))?;
    let Value::Array(list) = value else {
        return Err(decode(format!("the body must be an array, got {}", kind(&value))));
    };
    if list.len() > MAX_OPS {
        return Err(Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Transaction contains too many operations ({} > {MAX_OPS})", list.len()),
        ));
    }
    list.iter()
        .map(|item| {
            let empty = serde_json::Map::new();
            let outer = Fields::of(item.as_object().unwrap_or(&empty));
            let Some(Value::Object(kv)) = outer.get("KV") else {
                return Err(Refused::bad(
                    "only KV operations are served in a transaction (Node, Service, Check and Session are not)",
                ));
            };
            let fields = Fields::of(kv);
            let text = |name: &str| {
                fields
                    .text(name)
                    .map_err(decode)
                    .map(|t| t.unwrap_or_default().to_owned())
            };
            let value = match fields.text("Value").map_err(decode)? {
                None => None,
                Some(encoded) => Some(value_text(encoded)?),
            };
            let number = |name: &str| -> Result<u64, Refused> {
                match fields.get(name) {
                    None => Ok(0),
                    Some(v) => v
                        .as_u64()
                        .ok_or_else(|| decode(format!("{name} must be a whole number"))),
                }
            };
            Ok(KvOp {
                verb: text("Verb")?,
                key: text("Key")?,
                value,
                flags: number("Flags")?,
                index: number("Index")?,
            })
        })
        .collect()
}

/// A base64 value, which must be UTF-8 text once decoded (the config store holds text).
fn value_text(encoded: &str) -> Result<String, Refused> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Refused::bad(format!("Failed to parse body: Value is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| Refused::bad("a value must be UTF-8 text: maregistry's KV shares the config store"))
}

/// The steps of the write one operation makes (none for a read).
fn steps_of(app: &App, op: &KvOp) -> Result<Vec<ConfigStep>, Refused> {
    let invalid = |why: &str| Refused::bad(format!("Invalid KV operation {:?} on {:?}: {why}", op.verb, op.key));
    if op.key.contains(':') || (op.key.is_empty() && !matches!(op.verb.as_str(), "get-tree" | "delete-tree")) {
        return Err(invalid("a key is needed, without ':'"));
    }
    let publish = |cas: Option<Cas>| {
        ConfigStep::Publish(ConfigPublish {
            key: config_key(&op.key),
            fields: ConfigFields {
                flags: op.flags,
                ..ConfigFields::content(op.value.clone().unwrap_or_default())
            },
            cas,
        })
    };
    let key = config_key(&op.key);
    Ok(match op.verb.as_str() {
        "set" => vec![publish(None)],
        "cas" => vec![publish(Some(Cas::Revision(op.index)))],
        "delete" => vec![ConfigStep::Remove(key, None)],
        "delete-cas" => vec![ConfigStep::Remove(key, Some(Cas::Revision(op.index)))],
        "delete-tree" => under(app, &op.key)
            .into_iter()
            .map(|(found, _)| ConfigStep::Remove(config_key(&found), None))
            .collect(),
        "check-index" => vec![ConfigStep::Check(key, Cas::Revision(op.index))],
        "check-not-exists" => vec![ConfigStep::Check(key, Cas::Revision(0))],
        "get" | "get-tree" => Vec::new(),
        "lock" | "unlock" | "check-session" => return Err(invalid("sessions are not served by maregistry")),
        _ => return Err(invalid("unknown verb")),
    })
}

/// Consul's answer to a transaction one of whose conditions did not hold.
fn conflict(at: usize, op: &KvOp) -> http::Response<registry_api::Body> {
    let what = match op.verb.as_str() {
        "check-not-exists" => format!("failed to check key {:?}: the key exists", op.key),
        "check-index" | "cas" | "delete-cas" => {
            format!("failed to {} {:?}: the index is not {}", op.verb, op.key, op.index)
        }
        _ => format!("the {} of {:?} did not apply", op.verb, op.key),
    };
    let answer = json!({"Results": null, "Errors": [{"OpIndex": at, "What": what}]});
    json(StatusCode::CONFLICT, Bytes::from(answer.to_string()))
}
