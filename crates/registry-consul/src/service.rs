//! A Consul service registration and the registry instance it becomes, and back
//! (docs/spec.md §10.3). The mapping:
//! - `Name` is the registry service; `Address`/`Port` the instance's host and port; the
//!   scheme is `https` when `Meta.secure` is `"true"`, else `http`;
//! - `ID` is the parameter `consul.id`, `Tags` the JSON array in `consul.tags`;
//! - `Meta` are plain parameters (what Nacos and Eureka clients see as metadata);
//! - the checks, with their state, are the JSON array in `maregistry.checks`;
//! - the lease never runs out (`maregistry.lease=never`): as with a Consul agent, a service
//!   stays until it is deregistered, or removed for being critical too long.

use std::collections::BTreeMap;
use std::net::IpAddr;

use registry_core::{InstanceMeta, LEASE_NEVER, LEASE_PARAMETER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decode::{kind, Fields, Sent, Strings};
use crate::target::{http_host, same_target, tcp_host};
use body::{Body, Pairs};

mod body;

/// The parameter holding a Consul service id.
pub(crate) const ID: &str = "consul.id";
/// The parameter holding the tags, a JSON array.
pub(crate) const TAGS: &str = "consul.tags";
/// The parameter holding the checks, a JSON array of [`Check`]: the registry's own
/// (it counts the instances carrying it, so that the checker looks only at those).
pub(crate) const CHECKS: &str = registry_core::CHECKS_PARAMETER;
/// Parameters of these families are the protocols' own, never `Meta`.
const RESERVED: [&str; 4] = ["maregistry.", "nacos.", "eureka.", "consul."];
/// What other protocols read of a Consul instance's health.
const NACOS_HEALTHY: &str = "nacos.healthy";
const EUREKA_STATUS: &str = "eureka.status";
/// Consul's default check timeout.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// A check's status.
pub(crate) const PASSING: &str = "passing";
pub(crate) const WARNING: &str = "warning";
pub(crate) const CRITICAL: &str = "critical";

/// A check as stored with its instance: what it probes and its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Check {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// `ttl`, `http`, `tcp` or `maintenance`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ttl_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub http: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tcp: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout_ms: u64,
    /// `DeregisterCriticalServiceAfter`, 0: never.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dcsa_ms: u64,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// When the status last changed, ms since the epoch (the leader's clock).
    #[serde(default)]
    pub since_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Check {
    /// A check with no probe: `kind` (empty, or `maintenance`) in `status`.
    pub(crate) fn without_probe(id: String, name: String, kind: &str, status: &str, now: u64) -> Check {
        Check {
            id,
            name,
            notes: String::new(),
            kind: kind.to_owned(),
            ttl_ms: 0,
            http: String::new(),
            method: String::new(),
            header: BTreeMap::new(),
            body: String::new(),
            tcp: String::new(),
            interval_ms: 0,
            timeout_ms: 0,
            dcsa_ms: 0,
            status: status.to_owned(),
            output: String::new(),
            since_ms: now,
        }
    }

    /// Consul's `Type` of the check.
    pub(crate) fn type_name(&self) -> &str {
        match self.kind.as_str() {
            "maintenance" => "",
            kind => kind,
        }
    }
}

/// A registration as sent to `/v1/agent/service/register`, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Registration {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub port: u16,
    pub meta: BTreeMap<String, String>,
    pub checks: Vec<Check>,
}

/// Why a body was refused: Consul's text (answered 400).
pub(crate) type Refusal = String;

impl Registration {
    /// Reads a registration body. `peer` is the registering client's address: the service's
    /// when it names none (Consul's "the agent's address"; the agent here is the cluster).
    /// `now` stamps the checks' initial status.
    pub(crate) fn parse(body: &[u8], peer: Option<IpAddr>, now: u64) -> Result<Registration, Refusal> {
        let decode = |e: String| format!("Request decode failed: {e}");
        let body: Body = serde_json::from_slice::<Sent<Body>>(body)
            .map_err(|e| e.to_string())
            .and_then(|body| body.wanted("the body", "an object"))
            .map_err(decode)?
            .ok_or_else(|| decode("the body must be an object, got null".to_owned()))?;
        let text = |sent: Sent<String>, name: &str| sent.wanted(name, "a string").map_err(decode);
        let name = text(body.name, "Name")?.unwrap_or_default();
        if name.is_empty() {
            return Err("Missing service name".to_owned());
        }
        registry_core::validate_service_name(&name).map_err(|e| format!("Invalid service name: {e}"))?;
        for (unsupported, value) in [("Connect", &body.connect), ("Proxy", &body.proxy)] {
            if value
                .as_ref()
                .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
            {
                return Err(format!(
                    "Invalid service: {unsupported} (Consul Connect) is not served by maregistry"
                ));
            }
        }
        if text(body.kind, "Kind")?.is_some_and(|k| !k.is_empty()) {
            return Err(
                "Invalid service: Kind (Consul Connect proxies and gateways) is not served by maregistry".into(),
            );
        }
        let id = match text(body.id, "ID")? {
            Some(id) if !id.is_empty() => id,
            _ => name.clone(),
        };
        if id.len() > 512 || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(format!("Invalid service ID: {id:?}"));
        }
        let address = match text(body.address, "Address")? {
            Some(address) if matches!(address.as_str(), "0.0.0.0" | "::" | "[::]") => {
                return Err("Invalid service address".to_owned())
            }
            Some(address) if !address.is_empty() => address,
            _ => peer
                .map(|ip| ip.to_string())
                .ok_or("Invalid service address: none given")?,
        };
        let port = port(body.port.as_ref())?;
        let tags = match body.tags {
            Sent::Null => Vec::new(),
            Sent::Is(Strings(Ok(tags))) => tags,
            Sent::Is(Strings(Err(other))) => return Err(decode(format!("Tags must hold strings, got {other}"))),
            Sent::Not(other) => return Err(decode(format!("Tags must be an array, got {other}"))),
        };
        let meta = meta(body.meta)?;
        let checks = checks(body.check.as_ref(), body.checks.as_ref(), &id, &name, &address, now)?;
        Ok(Registration {
            id,
            name,
            tags,
            address,
            port,
            meta,
            checks,
        })
    }

    /// The registry instance.
    pub(crate) fn instance(self) -> Result<InstanceMeta, String> {
        let scheme = match self.meta.get("secure").map(String::as_str) {
            Some("true") => "https",
            _ => "http",
        };
        let mut instance = InstanceMeta::new(scheme, self.address.as_str(), self.port, "")
            .map_err(|e| format!("Invalid service: {e}"))?;
        instance.parameters = self.meta;
        instance.parameters.insert(ID.to_owned(), self.id);
        if !self.tags.is_empty() {
            instance.parameters.insert(TAGS.to_owned(), encode(&self.tags));
        }
        // Kept until deregistered, as a Consul agent keeps it: health is the checks' business.
        instance
            .parameters
            .insert(LEASE_PARAMETER.to_owned(), LEASE_NEVER.to_owned());
        // Meta keys hold no dot: no parameter of another protocol's health to clear.
        if !self.checks.is_empty() {
            set_checks(&mut instance, &self.checks);
        }
        Ok(instance)
    }
}

/// The checks of a registration: `Check` and `Checks` together, with Consul's default ids
/// (`service:<ID>`, numbered from 1 when there are several).
fn checks(
    one: Option<&Value>,
    many: Option<&Value>,
    id: &str,
    name: &str,
    address: &str,
    now: u64,
) -> Result<Vec<Check>, Refusal> {
    let decode = |e: String| format!("Request decode failed: {e}");
    let mut sent: Vec<&Map<String, Value>> = Vec::new();
    if let Some(check) = one {
        sent.push(
            check
                .as_object()
                .ok_or_else(|| decode("Check must be an object".into()))?,
        );
    }
    if let Some(checks) = many {
        let list = checks
            .as_array()
            .ok_or_else(|| decode("Checks must be an array".into()))?;
        for check in list {
            sent.push(
                check
                    .as_object()
                    .ok_or_else(|| decode("Checks must hold objects".into()))?,
            );
        }
    }
    let many = sent.len() > 1;
    let mut checks = Vec::with_capacity(sent.len());
    for (n, object) in sent.into_iter().enumerate() {
        let default_id = match many {
            true => format!("service:{id}:{}", n + 1),
            false => format!("service:{id}"),
        };
        let check = check(&Fields::of(object), default_id, name, address, now)?;
        if checks.iter().any(|c: &Check| c.id == check.id) {
            return Err(format!("Invalid check: duplicate CheckID {:?}", check.id));
        }
        checks.push(check);
    }
    Ok(checks)
}

/// Carries the status, output and time of change of the checks in `old` over to the
/// checks of the same id and kind in `checks` (Consul keeps them across registrations).
pub(crate) fn keep_states(checks: &mut [Check], old: &[Check]) {
    for check in checks {
        if let Some(old) = old.iter().find(|o| o.id == check.id && o.kind == check.kind) {
            check.status.clone_from(&old.status);
            check.output.clone_from(&old.output);
            check.since_ms = old.since_ms;
        }
    }
}

/// Stores `checks` in `instance`, with what other protocols read of its health: critical
/// is Nacos's unhealthy and Eureka's `DOWN`.
pub(crate) fn set_checks(instance: &mut InstanceMeta, checks: &[Check]) {
    let parameters = &mut instance.parameters;
    if checks.is_empty() {
        parameters.remove(CHECKS);
    } else {
        parameters.insert(CHECKS.to_owned(), encode(checks));
    }
    if checks.iter().any(|c| c.status == CRITICAL) {
        parameters.insert(NACOS_HEALTHY.to_owned(), "false".to_owned());
        parameters.insert(EUREKA_STATUS.to_owned(), "DOWN".to_owned());
    } else {
        parameters.remove(NACOS_HEALTHY);
        if parameters.get(EUREKA_STATUS).is_some_and(|s| s == "DOWN") {
            parameters.remove(EUREKA_STATUS);
        }
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn port(value: Option<&Value>) -> Result<u16, Refusal> {
    let Some(value) = value else {
        return Err("Invalid service port: a port from 1 to 65535 is required".to_owned());
    };
    value
        .as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("Invalid service port: {value} (from 1 to 65535)"))
}

fn strings(value: Option<&Value>, name: &str) -> Result<Vec<String>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{name} must hold strings, got {}", kind(other))),
            })
            .collect(),
        Some(other) => Err(format!("{name} must be an array, got {}", kind(other))),
    }
}

/// `Meta`, under Consul's rules (`structs.ValidateServiceMetadata`).
fn meta(sent: Sent<Pairs>) -> Result<BTreeMap<String, String>, Refusal> {
    let invalid = |why: String| format!("Invalid Service Meta: {why}");
    let meta = match sent {
        Sent::Null => return Ok(BTreeMap::new()),
        Sent::Not(other) => return Err(invalid(format!("must be an object, got {other}"))),
        Sent::Is(Pairs(Err(key))) => return Err(invalid(format!("the value of {key:?} must be a string"))),
        Sent::Is(Pairs(Ok(meta))) => meta,
    };
    if meta.len() > 64 {
        return Err(invalid(
            "Node metadata cannot contain more than 64 key/value pairs".into(),
        ));
    }
    for (key, value) in &meta {
        if key.is_empty()
            || key.len() > 128
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(format!(
                "Key contains invalid characters or is too long: {key:?}"
            )));
        }
        if key.starts_with("consul-") {
            return Err(invalid(format!(
                "Key prefix 'consul-' is reserved for internal use: {key:?}"
            )));
        }
        if value.len() > 512 {
            return Err(invalid(format!("Value is too long (limit: 512 characters): {key:?}")));
        }
    }
    Ok(meta)
}

/// One check of a registration (`/v1/agent/service/register`'s `Check`/`Checks`).
fn check(fields: &Fields<'_>, default_id: String, service: &str, address: &str, now: u64) -> Result<Check, Refusal> {
    let invalid = |why: String| format!("Invalid check: {why}");
    let text = |name: &str| {
        fields
            .text(name)
            .map(|t| t.unwrap_or_default().to_owned())
            .map_err(invalid)
    };
    let id = match fields.any(&["CheckID", "ID"]) {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => default_id,
    };
    let name = match text("Name")? {
        name if name.is_empty() => format!("Service '{service}' check"),
        name => name,
    };
    let status = match text("Status")?.as_str() {
        "" => CRITICAL.to_owned(),
        s @ (PASSING | WARNING | CRITICAL) => s.to_owned(),
        _ => return Err("Status for checks must 'passing', 'warning', 'critical'".to_owned()),
    };
    let ttl_ms = fields.duration("TTL").map_err(invalid)?.unwrap_or(0);
    let interval_ms = fields.duration("Interval").map_err(invalid)?.unwrap_or(0);
    let timeout_ms = fields.duration("Timeout").map_err(invalid)?.unwrap_or(0);
    let dcsa_ms = fields
        .duration("DeregisterCriticalServiceAfter")
        .map_err(invalid)?
        .unwrap_or(0);
    let http = text("HTTP")?;
    let tcp = text("TCP")?;
    let kind = probe_kind(fields, ttl_ms, interval_ms, &http, &tcp, address)?;
    let header = match fields.get("Header") {
        None => BTreeMap::new(),
        Some(value) => headers(value).map_err(invalid)?,
    };
    Ok(Check {
        id,
        name,
        notes: text("Notes")?,
        kind: kind.to_owned(),
        ttl_ms,
        http,
        method: text("Method")?.to_ascii_uppercase(),
        header,
        body: text("Body")?,
        tcp,
        interval_ms,
        timeout_ms: if kind == "ttl" {
            0
        } else if timeout_ms == 0 {
            DEFAULT_TIMEOUT_MS
        } else {
            timeout_ms
        },
        dcsa_ms,
        status,
        output: String::new(),
        since_ms: now,
    })
}

/// What a check probes (`ttl`, `http` or `tcp`), checked: one kind only, an interval for a
/// probe, and a target on the service's own address.
fn probe_kind(
    fields: &Fields<'_>,
    ttl_ms: u64,
    interval_ms: u64,
    http: &str,
    tcp: &str,
    address: &str,
) -> Result<&'static str, Refusal> {
    let invalid = |why: String| format!("Invalid check: {why}");
    for unsupported in [
        "GRPC",
        "Args",
        "ScriptArgs",
        "DockerContainerID",
        "H2PING",
        "UDP",
        "OSService",
    ] {
        if fields
            .get(unsupported)
            .is_some_and(|v| v.as_str() != Some("") && v.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(invalid(format!(
                "{unsupported} checks are not run by maregistry (TTL, HTTP and TCP are)"
            )));
        }
    }
    let kind = match (ttl_ms > 0, !http.is_empty(), !tcp.is_empty()) {
        (true, false, false) => "ttl",
        (false, true, false) => "http",
        (false, false, true) => "tcp",
        (false, false, false) => return Err(invalid("a check needs one of TTL, HTTP or TCP".into())),
        _ => return Err(invalid("a check takes only one of TTL, HTTP or TCP".into())),
    };
    if kind != "ttl" && interval_ms == 0 {
        return Err(invalid(
            "Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks".into(),
        ));
    }
    if kind == "http" {
        same_target(&http_host(http).map_err(invalid)?, address).map_err(invalid)?;
    }
    if kind == "tcp" {
        same_target(tcp_host(tcp).map_err(invalid)?, address).map_err(invalid)?;
    }
    Ok(kind)
}

fn headers(value: &Value) -> Result<BTreeMap<String, Vec<String>>, String> {
    let Value::Object(pairs) = value else {
        return Err(format!("Header must be an object, got {}", kind(value)));
    };
    pairs
        .iter()
        .map(|(name, values)| Ok((name.clone(), strings(Some(values), "Header")?)))
        .collect()
}

/// A registry instance as Consul answers it: a service registered through Consul as it was,
/// any other (Nacos, Eureka, the seed API) with its `host:port` for an id, no tags, and
/// one passing check (its presence in the registry is its health).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub address: String,
    pub port: u16,
    pub checks: Vec<Check>,
    /// Registered through Consul (with `consul.id`).
    pub native: bool,
    pub instance: InstanceMeta,
}

/// The status of an instance another protocol registered: critical when that protocol
/// says it is not healthy (Nacos's `healthy=false`, a Eureka status other than `UP`),
/// else passing.
fn foreign_status(parameters: &BTreeMap<String, String>) -> &'static str {
    let unhealthy = parameters.get(NACOS_HEALTHY).is_some_and(|h| h == "false")
        || parameters.get(EUREKA_STATUS).is_some_and(|s| s != "UP");
    if unhealthy {
        CRITICAL
    } else {
        PASSING
    }
}

impl Entry {
    /// `instance` of `service` as Consul sees it.
    pub(crate) fn of(service: &str, instance: InstanceMeta) -> Entry {
        let parameters = &instance.parameters;
        let native = parameters.contains_key(ID);
        let id = parameters
            .get(ID)
            .cloned()
            .unwrap_or_else(|| format!("{}:{}", instance.host, instance.port));
        let tags = parameters
            .get(TAGS)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        let checks = match parameters.get(CHECKS) {
            Some(text) => serde_json::from_str(text).unwrap_or_default(),
            None if native => Vec::new(),
            None => vec![Check {
                output: "registered with maregistry".to_owned(),
                ..Check::without_probe(
                    format!("service:{id}"),
                    format!("Service '{service}' check"),
                    "",
                    foreign_status(parameters),
                    0,
                )
            }],
        };
        let meta = parameters
            .iter()
            .filter(|(k, _)| !RESERVED.iter().any(|prefix| k.starts_with(prefix)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Entry {
            id,
            service: service.to_owned(),
            tags,
            meta,
            address: instance.host.clone(),
            port: instance.port,
            checks,
            native,
            instance,
        }
    }

    /// The worst status of its checks (passing with none).
    pub(crate) fn status(&self) -> &str {
        let worst = |s: &str| match s {
            CRITICAL => 2,
            WARNING => 1,
            _ => 0,
        };
        self.checks
            .iter()
            .map(|c| c.status.as_str())
            .max_by_key(|s| worst(s))
            .unwrap_or(PASSING)
    }
}

#[cfg(test)]
mod tests;
