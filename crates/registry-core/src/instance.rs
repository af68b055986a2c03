use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error};
use crate::lease::{parse_duration_or_seconds, LEASE_NEVER, LEASE_PARAMETER, NEVER_MS};

/// One registered endpoint of a service.
///
/// Its identity is (`scheme`, `host`, `port`, `context`); `parameters` (metadata such as
/// env, tag or weight) and `status` are not part of it. JSON field names are the seed's.
/// Deserialising validates every field, so a parsed `InstanceMeta` is always valid; one
/// built by hand is checked by [`InstanceMeta::validate`] when it enters the registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawInstance")]
pub struct InstanceMeta {
    /// Protocol, `[A-Za-z][A-Za-z0-9+.-]*`, e.g. `http`.
    pub scheme: String,
    /// Host name or address; no whitespace, `/`, `@` or `?`.
    pub host: String,
    /// Port, 1..=65535.
    pub port: u16,
    /// Path prefix, may be empty; no whitespace.
    pub context: String,
    /// `true` while registered; the server sets it in every answer.
    pub status: bool,
    /// Free-form metadata.
    pub parameters: BTreeMap<String, String>,
}

/// The wire form before validation: every field optional and loosely typed, so that a bad
/// value is reported by field name instead of as a generic parse error.
#[derive(Deserialize)]
struct RawInstance {
    scheme: Option<String>,
    host: Option<String>,
    port: Option<RawPort>,
    context: Option<String>,
    status: Option<bool>,
    parameters: Option<BTreeMap<String, String>>,
}

/// A `port` as sent: a non-negative integer (the common case, read without building a
/// generic JSON value), or anything else, kept as text for the error message.
enum RawPort {
    Integer(u64),
    Other(String),
}

impl<'de> Deserialize<'de> for RawPort {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawPort;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number")
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawPort, E> {
                Ok(RawPort::Integer(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawPort, E> {
                Ok(RawPort::Other(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawPort, E> {
                Ok(RawPort::Other(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawPort, E> {
                Ok(RawPort::Other(format!("{v:?}")))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawPort, E> {
                Ok(RawPort::Other(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawPort, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(RawPort::Other("an array".into()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawPort, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(RawPort::Other("an object".into()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl TryFrom<RawInstance> for InstanceMeta {
    type Error = Error;

    fn try_from(raw: RawInstance) -> Result<Self, Error> {
        let port = match raw.port {
            None => return Err(invalid("port", "is required")),
            Some(RawPort::Integer(n)) => u16::try_from(n)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid("port", format!("must be an integer from 1 to 65535, got {n}")))?,
            Some(RawPort::Other(text)) => {
                return Err(invalid(
                    "port",
                    format!("must be an integer from 1 to 65535, got {}", excerpt(&text)),
                ))
            }
        };
        let meta = InstanceMeta {
            scheme: raw.scheme.ok_or_else(|| invalid("scheme", "is required"))?,
            host: raw.host.ok_or_else(|| invalid("host", "is required"))?,
            port,
            context: raw.context.unwrap_or_default(),
            status: raw.status.unwrap_or(false),
            parameters: raw.parameters.unwrap_or_default(),
        };
        meta.validate()?;
        Ok(meta)
    }
}

/// The one definition of the wire form: field names and order as the seed's. Both
/// `Serialize for InstanceMeta` and the registry's canonical text go through it; `status`
/// is given separately so that the registry can encode `status: true` without a copy.
#[derive(Serialize)]
struct Encoded<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
    context: &'a str,
    status: bool,
    parameters: &'a BTreeMap<String, String>,
}

impl<'a> Encoded<'a> {
    fn of(meta: &'a InstanceMeta, status: bool) -> Self {
        Encoded {
            scheme: &meta.scheme,
            host: &meta.host,
            port: meta.port,
            context: &meta.context,
            status,
            parameters: &meta.parameters,
        }
    }
}

impl Serialize for InstanceMeta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Encoded::of(self, self.status).serialize(serializer)
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidInstance {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl InstanceMeta {
    /// A valid instance with no parameters and `status: false`.
    pub fn new(
        scheme: impl Into<String>,
        host: impl Into<String>,
        port: u16,
        context: impl Into<String>,
    ) -> Result<Self, Error> {
        let meta = InstanceMeta {
            scheme: scheme.into(),
            host: host.into(),
            port,
            context: context.into(),
            status: false,
            parameters: BTreeMap::new(),
        };
        meta.validate()?;
        Ok(meta)
    }

    /// Parses and validates one instance from JSON. The error names the field at fault,
    /// or `body` when the text is not JSON at all.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        // serde would also read a struct from an array (`["http","h",80]`); the wire
        // format is an object and nothing else.
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
                Ok(_) => invalid("body", "must be a JSON object"),
                Err(e) => invalid("body", format!("is not valid JSON: {e}")),
            });
        }
        // The plain parse is the fast path; only a failure is parsed again with path
        // tracking, to name the field at fault.
        let raw: RawInstance = match serde_json::from_slice(json) {
            Ok(raw) => raw,
            Err(_) => return Err(Self::describe_parse_error(json)),
        };
        InstanceMeta::try_from(raw)
    }

    /// Parses `json` again with path tracking and turns the failure into an error that
    /// names the field at fault.
    fn describe_parse_error(json: &[u8]) -> Error {
        let de = &mut serde_json::Deserializer::from_slice(json);
        let Err(e) = serde_path_to_error::deserialize::<_, RawInstance>(de) else {
            return invalid("body", "could not be parsed");
        };
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => Error::InvalidInstance {
                field: path,
                reason: format!("has the wrong type: {}", strip_position(&inner)),
            },
            serde_json::error::Category::Data => Error::InvalidInstance {
                field: "body".into(),
                reason: format!("must be a JSON object: {}", strip_position(&inner)),
            },
            _ => Error::InvalidInstance {
                field: "body".into(),
                reason: format!("is not valid JSON: {inner}"),
            },
        }
    }

    /// Checks every field rule of the contract.
    pub fn validate(&self) -> Result<(), Error> {
        let scheme = self.scheme.as_bytes();
        match scheme.first() {
            None => return Err(invalid("scheme", "must not be empty")),
            Some(c) if !c.is_ascii_alphabetic() => {
                return Err(invalid(
                    "scheme",
                    format!("must start with a letter, got {:?}", excerpt(&self.scheme)),
                ))
            }
            _ => {}
        }
        if !scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
        {
            return Err(invalid(
                "scheme",
                format!(
                    "may hold only letters, digits, '+', '.' and '-', got {:?}",
                    excerpt(&self.scheme)
                ),
            ));
        }
        if self.host.is_empty() {
            return Err(invalid("host", "must not be empty"));
        }
        if self
            .host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?'))
        {
            return Err(invalid(
                "host",
                format!(
                    "must not contain whitespace, '/', '@' or '?', got {:?}",
                    excerpt(&self.host)
                ),
            ));
        }
        if self.port == 0 {
            return Err(invalid("port", "must be an integer from 1 to 65535, got 0"));
        }
        if self.context.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "context",
                format!("must not contain whitespace, got {:?}", excerpt(&self.context)),
            ));
        }
        self.lease_ms()?;
        Ok(())
    }

    /// The lease this instance declares in [`LEASE_PARAMETER`], in ms; 0 when it declares
    /// none. A value that is not a duration or a number of seconds, or is zero, is refused.
    pub fn lease_ms(&self) -> Result<u64, Error> {
        let Some(text) = self.parameters.get(LEASE_PARAMETER) else {
            return Ok(0);
        };
        if text == LEASE_NEVER {
            return Ok(NEVER_MS);
        }
        parse_duration_or_seconds(text)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                invalid(
                    &format!("parameters.{LEASE_PARAMETER}"),
                    format!(
                        "must be a lease such as 90s, 1500ms or 90 (seconds), above zero, or never, got {:?}",
                        excerpt(text)
                    ),
                )
            })
    }

    /// `scheme://host:port/context`, which is also the instance's identity: the field
    /// rules make it unambiguous.
    pub fn url(&self) -> String {
        let mut url = String::with_capacity(self.scheme.len() + self.host.len() + self.context.len() + 10);
        self.write_url(&mut url);
        url
    }

    /// Appends [`InstanceMeta::url`] to `out` (lets hot paths reuse one buffer).
    pub fn write_url(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str(&self.scheme);
        out.push_str("://");
        out.push_str(&self.host);
        // Writing into a String cannot fail.
        let _ = write!(out, ":{}/", self.port);
        out.push_str(&self.context);
    }

    /// The canonical JSON of this instance with `status` set as given: fields in the
    /// declared order, parameters sorted by key. Two instances of one identity encode to
    /// the same text exactly when their parameters are equal.
    pub fn to_json_with_status(&self, status: bool) -> String {
        let mut out = Vec::with_capacity(128);
        self.write_json_with_status(status, &mut out);
        // serde_json writes UTF-8 only.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends [`InstanceMeta::to_json_with_status`] to `out`.
    pub fn write_json_with_status(&self, status: bool, out: &mut Vec<u8>) {
        // Strings, an integer, a bool and a string map always serialise into a Vec.
        let _ = serde_json::to_writer(out, &Encoded::of(self, status));
    }

    /// Whether two instances denote the same endpoint (parameters and status aside).
    pub fn same_identity(&self, other: &InstanceMeta) -> bool {
        self.scheme == other.scheme
            && self.host == other.host
            && self.port == other.port
            && self.context == other.context
    }
}

/// serde_json appends " at line 1 column 42" to data errors; the caller's message reads
/// better without it.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<InstanceMeta, Error> {
        InstanceMeta::from_json(json.as_bytes())
    }

    #[test]
    fn parses_the_seed_example_with_defaults() {
        let m = parse(r#"{"scheme":"http","host":"192.168.1.100","port":8080,"context":"hello"}"#).unwrap();
        assert_eq!(m.url(), "http://192.168.1.100:8080/hello");
        assert!(m.parameters.is_empty());
        let m = parse(r#"{"scheme":"http","host":"h","port":1,"extra":[1,2]}"#).unwrap();
        assert_eq!(m.context, "");
        assert_eq!(m.url(), "http://h:1/");
    }

    #[test]
    fn serialises_all_six_fields() {
        let mut m = InstanceMeta::new("http", "h", 80, "c").unwrap();
        m.parameters.insert("env".into(), "dev".into());
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"scheme":"http","host":"h","port":80,"context":"c","status":false,"parameters":{"env":"dev"}})
        );
    }

    #[test]
    fn canonical_json_matches_serde_and_orders_parameters() {
        let mut m = InstanceMeta::new("http", "h", 80, "c").unwrap();
        m.parameters.insert("b".into(), "2".into());
        m.parameters.insert("a".into(), "1".into());
        let mut with_status = m.clone();
        with_status.status = true;
        assert_eq!(
            m.to_json_with_status(true),
            serde_json::to_string(&with_status).unwrap()
        );
        assert!(m
            .to_json_with_status(true)
            .ends_with(r#""status":true,"parameters":{"a":"1","b":"2"}}"#));
        assert_eq!(parse(&m.to_json_with_status(true)).unwrap(), with_status);
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (r#"{"host":"h","port":1}"#, "scheme"),
            (r#"{"scheme":"","host":"h","port":1}"#, "scheme"),
            (r#"{"scheme":"1http","host":"h","port":1}"#, "scheme"),
            (r#"{"scheme":"ht tp","host":"h","port":1}"#, "scheme"),
            (r#"{"scheme":"http","port":1}"#, "host"),
            (r#"{"scheme":"http","host":"a/b","port":1}"#, "host"),
            (r#"{"scheme":"http","host":"a b","port":1}"#, "host"),
            (r#"{"scheme":"http","host":"u@h","port":1}"#, "host"),
            (r#"{"scheme":"http","host":"h"}"#, "port"),
            (r#"{"scheme":"http","host":"h","port":0}"#, "port"),
            (r#"{"scheme":"http","host":"h","port":65536}"#, "port"),
            (r#"{"scheme":"http","host":"h","port":-1}"#, "port"),
            (r#"{"scheme":"http","host":"h","port":80.5}"#, "port"),
            (r#"{"scheme":"http","host":"h","port":"80"}"#, "port"),
            (r#"{"scheme":"http","host":"h","port":1,"context":"a b"}"#, "context"),
        ];
        for (json, field) in cases {
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains(&format!("'{field}'")), "{json}: {err}");
        }
    }

    #[test]
    fn rejects_malformed_json_and_wrong_types() {
        for json in [
            "",
            "{",
            "[]",
            r#"["http","h",80]"#,
            "null",
            "42",
            r#"{"scheme":1,"host":"h","port":1}"#,
            r#"{"scheme":"h","host":"h","port":1,"parameters":{"a":1}}"#,
        ] {
            assert!(parse(json).is_err(), "{json:?}");
        }
    }

    #[test]
    fn only_an_object_is_an_instance() {
        for json in [r#"["http","h",80]"#, "[]", "null", "\"s\"", "7"] {
            assert_eq!(
                parse(json).unwrap_err().to_string(),
                "invalid instance: 'body' must be a JSON object",
                "{json}"
            );
        }
        assert!(parse("[1").unwrap_err().to_string().contains("not valid JSON"));
    }

    #[test]
    fn identity_ignores_parameters_and_status() {
        let a = InstanceMeta::new("http", "h", 1, "c").unwrap();
        let mut b = a.clone();
        b.status = true;
        b.parameters.insert("k".into(), "v".into());
        assert!(a.same_identity(&b));
        assert!(!a.same_identity(&InstanceMeta::new("http", "h", 2, "c").unwrap()));
    }
}
