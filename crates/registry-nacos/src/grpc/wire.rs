//! The envelope every Nacos gRPC message travels in: a `Payload` whose `metadata.type` names
//! the body and whose body is the JSON of that request or response. Requests are read
//! leniently (clients send `null`, `""` or leave fields out); responses always carry
//! `resultCode` and `errorCode` as integers and never a JSON `null` (docs/spec.md §6.3).

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::proto::{Any, Metadata, Payload};
use crate::v1::WireInstance;

/// Nacos's error codes (NacosException) that this facade answers.
pub(crate) mod code {
    /// The connection has not set up (ConnectionSetupRequest on the bi-stream).
    pub(crate) const UNREGISTERED: i64 = 301;
    /// No handler for this request type.
    pub(crate) const NO_HANDLER: i64 = 302;
    /// A parameter is missing or invalid.
    pub(crate) const INVALID_PARAM: i64 = 400;
    /// The request lacks the token it needs.
    pub(crate) const NO_RIGHT: i64 = 403;
    /// The request is larger than the node accepts (HTTP's 413).
    pub(crate) const TOO_LARGE: i64 = 413;
    /// The server could not do it now (no leader, a relay that failed).
    pub(crate) const SERVER_ERROR: i64 = 500;
    /// The connection is over one of its caps (Nacos's `OVER_THRESHOLD`).
    pub(crate) const OVER_THRESHOLD: i64 = 503;
    /// The body is not JSON.
    pub(crate) const BAD_GATEWAY: i64 = 502;
}

/// A refusal: an `ErrorResponse` with this code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: i64,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Refusal {
        Refusal::new(code::INVALID_PARAM, message)
    }
}

/// The fields of a request body this facade reads (every request type's together); the
/// rest is skipped unread, which costs far less than building a whole JSON value. Each is
/// kept as sent (`null` when absent) and read leniently.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Body {
    request_id: Value,
    headers: Value,
    namespace: Value,
    group_name: Value,
    service_name: Value,
    r#type: Value,
    clusters: Value,
    cluster: Value,
    client_version: Value,
    labels: Value,
    subscribe: Value,
    healthy_only: Value,
    health_only: Value,
    page_no: Value,
    page_size: Value,
    data_id: Value,
    group: Value,
    tenant: Value,
    tag: Value,
    content: Value,
    cas_md5: Value,
    addition_map: Value,
    listen: Value,
    config_listen_contexts: Value,
    instance: Option<WireInstance>,
    instances: Option<Vec<WireInstance>>,
}

impl Body {
    fn field(&self, name: &str) -> &Value {
        match name {
            "requestId" => &self.request_id,
            "headers" => &self.headers,
            "namespace" => &self.namespace,
            "groupName" => &self.group_name,
            "serviceName" => &self.service_name,
            "type" => &self.r#type,
            "clusters" => &self.clusters,
            "cluster" => &self.cluster,
            "clientVersion" => &self.client_version,
            "labels" => &self.labels,
            "subscribe" => &self.subscribe,
            "healthyOnly" => &self.healthy_only,
            "healthOnly" => &self.health_only,
            "pageNo" => &self.page_no,
            "pageSize" => &self.page_size,
            "dataId" => &self.data_id,
            "group" => &self.group,
            "tenant" => &self.tenant,
            "tag" => &self.tag,
            "content" => &self.content,
            "casMd5" => &self.cas_md5,
            "additionMap" => &self.addition_map,
            "listen" => &self.listen,
            "configListenContexts" => &self.config_listen_contexts,
            _ => &Value::Null,
        }
    }
}

/// A request as it arrived: its type, headers (metadata first, then the body's) and body.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) kind: String,
    pub(crate) headers: HashMap<String, String>,
    body: Body,
}

impl Incoming {
    /// Reads `payload`: its type from the metadata, its body's fields (an empty body has
    /// none). A body that is not a JSON object is refused.
    pub(crate) fn parse(payload: Payload) -> Result<Incoming, Refusal> {
        let metadata = payload.metadata.unwrap_or_default();
        let value = payload.body.map(|body| body.value).unwrap_or_default();
        let body: Body = if value.iter().all(u8::is_ascii_whitespace) {
            Body::default()
        } else {
            serde_json::from_slice(&value)
                .map_err(|e| Refusal::new(code::BAD_GATEWAY, format!("the body is not a JSON object: {e}")))?
        };
        let mut headers = metadata.headers;
        if let Value::Object(inner) = &body.headers {
            for (name, value) in inner {
                if let Value::String(value) = value {
                    headers.entry(name.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        Ok(Incoming {
            kind: metadata.r#type,
            headers,
            body,
        })
    }

    /// A field of the body, when it is there and not `null`.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        Some(self.body.field(name)).filter(|v| !v.is_null())
    }

    /// The `instance` of an instance request.
    pub(crate) fn instance(&self) -> Option<&WireInstance> {
        self.body.instance.as_ref()
    }

    /// The `instances` of a batch request.
    pub(crate) fn instances(&self) -> Option<&[WireInstance]> {
        self.body.instances.as_deref()
    }

    /// The request's id, to echo (`""` when absent or not text).
    pub(crate) fn request_id(&self) -> String {
        match self.body.field("requestId") {
            Value::String(id) => id.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        }
    }

    /// A text field; `None` when absent, `null` or empty.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        match self.body.field(name) {
            Value::String(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// A flag; `default` when absent or `null`.
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, Refusal> {
        match self.body.field(name) {
            Value::Null => Ok(default),
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(Refusal::invalid(format!("'{name}' must be true or false, got {other}"))),
        }
    }

    /// A whole number; `default` when absent or `null`.
    pub(crate) fn number(&self, name: &str, default: u64) -> Result<u64, Refusal> {
        match self.body.field(name) {
            Value::Null => Ok(default),
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| Refusal::invalid(format!("'{name}' must be a whole number, got {n}"))),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| Refusal::invalid(format!("'{name}' must be a whole number, got {s:?}"))),
            other => Err(Refusal::invalid(format!(
                "'{name}' must be a whole number, got {other}"
            ))),
        }
    }
}

/// A payload of type `kind` whose body is `json`.
pub(crate) fn payload(kind: &str, json: Bytes) -> Payload {
    Payload {
        metadata: Some(Metadata {
            r#type: kind.to_owned(),
            client_ip: String::new(),
            headers: HashMap::new(),
        }),
        body: Some(Any {
            type_url: String::new(),
            value: json,
        }),
    }
}

/// A successful response of type `kind` to the request `request_id`, with `fields` besides
/// the envelope's. Written by hand: every request pays for it.
pub(crate) fn response(kind: &str, request_id: &str, fields: Map<String, Value>) -> Payload {
    response_writing(kind, request_id, 0, |out| {
        for (name, value) in &fields {
            field(out, name, value);
        }
    })
}

/// A successful response of type `kind` to the request `request_id`, with the fields
/// `write_fields` adds after the envelope's (each as [`field`] writes it), in a buffer with
/// room for `hint` bytes of them.
pub(crate) fn response_writing(
    kind: &str,
    request_id: &str,
    hint: usize,
    write_fields: impl FnOnce(&mut Vec<u8>),
) -> Payload {
    let mut out = Vec::with_capacity(96 + request_id.len() + hint);
    out.extend_from_slice(b"{\"resultCode\":200,\"errorCode\":0,\"message\":\"\",\"requestId\":");
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, request_id);
    out.extend_from_slice(b",\"success\":true");
    write_fields(&mut out);
    out.push(b'}');
    payload(kind, Bytes::from(out))
}

/// `,"name":value` at the end of `out`.
pub(crate) fn field<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, name: &str, value: &T) {
    out.push(b',');
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, name);
    out.push(b':');
    let _ = serde_json::to_writer(&mut *out, value);
}

/// An `ErrorResponse` for `refusal`, to the request `request_id`.
pub(crate) fn error(request_id: &str, refusal: &Refusal) -> Payload {
    refused_as("ErrorResponse", request_id, refusal, |_| {})
}

/// `refusal` in the response type `kind`, to the request `request_id`; `extra` adds the
/// fields that type's clients must find even in a refusal.
pub(crate) fn refused_as(kind: &str, request_id: &str, refusal: &Refusal, extra: impl FnOnce(&mut Value)) -> Payload {
    let mut body = serde_json::json!({
        "resultCode": 500,
        "errorCode": refusal.code,
        "message": refusal.message,
        "requestId": request_id,
        "success": false,
    });
    extra(&mut body);
    payload(kind, Bytes::from(body.to_string()))
}

/// A request the server sends on a connection's stream (`module` and `headers` as Nacos
/// sends them), with `fields` besides.
pub(crate) fn server_request(kind: &str, module: &str, request_id: &str, fields: Map<String, Value>) -> Payload {
    let mut body = Map::with_capacity(fields.len() + 3);
    body.insert("module".to_owned(), Value::from(module));
    body.insert("requestId".to_owned(), Value::from(request_id));
    body.insert("headers".to_owned(), Value::Object(Map::new()));
    body.extend(fields);
    payload(kind, Bytes::from(Value::Object(body).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(kind: &str, body: &str) -> Incoming {
        Incoming::parse(payload(kind, Bytes::from(body.to_owned()))).unwrap()
    }

    #[test]
    fn requests_are_read_leniently() {
        let request = incoming(
            "InstanceRequest",
            r#"{"requestId":null,"serviceName":"","groupName":"G","headers":{"app":"a"},"subscribe":"TRUE","pageNo":"7","unknown":{"deep":[1]}}"#,
        );
        assert_eq!(request.kind, "InstanceRequest");
        assert_eq!(request.request_id(), "");
        assert_eq!(request.text("serviceName"), None, "empty is absent");
        assert_eq!(request.text("groupName"), Some("G"));
        assert_eq!(request.headers.get("app").map(String::as_str), Some("a"));
        assert_eq!(request.flag("subscribe", false), Ok(true));
        assert_eq!(request.flag("healthyOnly", true), Ok(true), "absent: the default");
        assert_eq!(request.number("pageNo", 0), Ok(7));
        assert!(request.number("groupName", 0).is_err());
        assert_eq!(
            incoming("X", "").get("serviceName"),
            None,
            "an empty body has no fields"
        );
        assert!(incoming("X", r#"{"instance":{"ip":"h","instanceId":null}}"#)
            .instance()
            .is_some());
        let bad = Incoming::parse(payload("X", Bytes::from_static(b"{nope")));
        assert_eq!(bad.unwrap_err().code, code::BAD_GATEWAY);
    }

    #[test]
    fn responses_carry_the_whole_envelope_and_no_nulls() {
        let mut fields = Map::new();
        fields.insert("type".to_owned(), Value::from("registerInstance"));
        let answer = response("InstanceResponse", "42", fields);
        assert_eq!(answer.metadata.as_ref().unwrap().r#type, "InstanceResponse");
        let body: Value = serde_json::from_slice(&answer.body.unwrap().value).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"resultCode":200,"errorCode":0,"message":"","requestId":"42",
                "success":true,"type":"registerInstance"})
        );
        let refused = error("", &Refusal::new(code::UNREGISTERED, "Connection is unregistered."));
        let body: Value = serde_json::from_slice(&refused.body.unwrap().value).unwrap();
        assert_eq!(body["errorCode"], 301);
        assert_eq!(body["resultCode"], 500);
        assert_eq!(body["requestId"], "");
    }
}
