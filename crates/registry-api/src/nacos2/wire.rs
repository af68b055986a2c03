//! The envelope every Nacos gRPC message travels in: a `Payload` whose `metadata.type` names
//! the body and whose body is the JSON of that request or response. Requests are read
//! leniently (clients send `null`, `""` or leave fields out); responses always carry
//! `resultCode` and `errorCode` as integers and never a JSON `null` (docs/spec.md §6.3).

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::proto::{Any, Metadata, Payload};

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
    /// The server could not do it now (no leader, a relay that failed).
    pub(crate) const SERVER_ERROR: i64 = 500;
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

/// A request as it arrived: its type, headers (metadata first, then the body's) and body.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) kind: String,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Value,
}

impl Incoming {
    /// Reads `payload`: its type from the metadata, its body as JSON (an empty body is
    /// `{}`). A body that is not JSON is refused.
    pub(crate) fn parse(payload: Payload) -> Result<Incoming, Refusal> {
        let metadata = payload.metadata.unwrap_or_default();
        let value = payload.body.map(|body| body.value).unwrap_or_default();
        let body: Value = if value.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&value)
                .map_err(|e| Refusal::new(code::BAD_GATEWAY, format!("the body is not JSON: {e}")))?
        };
        let mut headers = metadata.headers;
        if let Some(Value::Object(inner)) = body.get("headers") {
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

    /// The request's id, to echo (`""` when absent or not text).
    pub(crate) fn request_id(&self) -> String {
        match self.body.get("requestId") {
            Some(Value::String(id)) => id.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }

    /// A text field; `None` when absent, `null` or empty.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        text(&self.body, name)
    }

    /// A flag; `default` when absent or `null`.
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, Refusal> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(other) => Err(Refusal::invalid(format!("'{name}' must be true or false, got {other}"))),
        }
    }

    /// A whole number; `default` when absent or `null`.
    pub(crate) fn number(&self, name: &str, default: u64) -> Result<u64, Refusal> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| Refusal::invalid(format!("'{name}' must be a whole number, got {n}"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| Refusal::invalid(format!("'{name}' must be a whole number, got {s:?}"))),
            Some(other) => Err(Refusal::invalid(format!(
                "'{name}' must be a whole number, got {other}"
            ))),
        }
    }
}

/// A text field of `value`; `None` when absent, `null` or empty.
pub(crate) fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    match value.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
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
/// the envelope's.
pub(crate) fn response(kind: &str, request_id: &str, fields: Map<String, Value>) -> Payload {
    let mut body = Map::with_capacity(fields.len() + 5);
    body.insert("resultCode".to_owned(), Value::from(200));
    body.insert("errorCode".to_owned(), Value::from(0));
    body.insert("message".to_owned(), Value::from(""));
    body.insert("requestId".to_owned(), Value::from(request_id));
    body.insert("success".to_owned(), Value::from(true));
    body.extend(fields);
    payload(kind, Bytes::from(Value::Object(body).to_string()))
}

/// An `ErrorResponse` for `refusal`, to the request `request_id`.
pub(crate) fn error(request_id: &str, refusal: &Refusal) -> Payload {
    let body = serde_json::json!({
        "resultCode": 500,
        "errorCode": refusal.code,
        "message": refusal.message,
        "requestId": request_id,
        "success": false,
    });
    payload("ErrorResponse", Bytes::from(body.to_string()))
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
            r#"{"requestId":null,"serviceName":"","groupName":"G","headers":{"app":"a"},"flag":"TRUE","n":"7"}"#,
        );
        assert_eq!(request.kind, "InstanceRequest");
        assert_eq!(request.request_id(), "");
        assert_eq!(request.text("serviceName"), None, "empty is absent");
        assert_eq!(request.text("groupName"), Some("G"));
        assert_eq!(request.headers.get("app").map(String::as_str), Some("a"));
        assert_eq!(request.flag("flag", false), Ok(true));
        assert_eq!(request.flag("missing", true), Ok(true));
        assert_eq!(request.number("n", 0), Ok(7));
        assert!(request.number("groupName", 0).is_err());
        assert_eq!(incoming("X", "").body, serde_json::json!({}));
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
