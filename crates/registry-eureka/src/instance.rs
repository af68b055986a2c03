//! A Eureka instance on the registry (docs/spec.md §6.2): what a client sends, kept whole,
//! and the registry's instances answered as Eureka instance objects.

use std::collections::BTreeMap;

use registry_core::{InstanceMeta, LEASE_PARAMETER};
use serde_json::{json, Map, Value};

use crate::encoding::representable;
use registry_api::FacadeError;

/// The parameter holding the instance object the client sent.
pub(crate) const INSTANCE: &str = "eureka.instance";
/// The parameter holding the instance's id.
pub(crate) const INSTANCE_ID: &str = "eureka.instanceId";
/// The parameter holding the instance's status.
pub(crate) const STATUS: &str = "eureka.status";
/// Eureka's default lease, in seconds.
const DEFAULT_LEASE_SECS: u64 = 90;

/// The registry instance of what a Eureka client sent (`{"instance": {…}}`'s object):
/// `http://ipAddr:port/`, the object kept whole, its id, status, lease and metadata as
/// parameters. Refused when its XML form could not be read back the same
/// ([`representable`]).
pub(crate) fn from_sent(sent: &Map<String, Value>) -> Result<InstanceMeta, FacadeError> {
    // Refused unless Eureka's XML clients can read it back as it was sent.
    representable(&Value::Object(sent.clone()), "instance").map_err(FacadeError::bad)?;
    let id = text(sent.get("instanceId"))
        .or_else(|| text(sent.get("hostName")))
        .ok_or_else(|| FacadeError::bad("the instance needs an instanceId or a hostName"))?;
    let host = text(sent.get("ipAddr"))
        .or_else(|| text(sent.get("hostName")))
        .ok_or_else(|| FacadeError::bad("the instance needs an ipAddr or a hostName"))?;
    let port = number(sent.get("port")).unwrap_or(80);
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| FacadeError::bad(format!("port must be from 1 to 65535, got {port}")))?;
    let status = text(sent.get("status")).unwrap_or_else(|| "UP".to_owned());
    let lease = number(sent.get("leaseInfo").and_then(|l| l.get("durationInSecs")))
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LEASE_SECS);
    let mut instance = InstanceMeta::new("http", &host, port, "").map_err(|e| FacadeError::bad(e.to_string()))?;
    if let Some(Value::Object(metadata)) = sent.get("metadata") {
        for (key, value) in metadata {
            if let Some(value) = text(Some(value)) {
                instance.parameters.insert(key.clone(), value);
            }
        }
    }
    instance
        .parameters
        .insert(INSTANCE.to_owned(), Value::Object(sent.clone()).to_string());
    instance.parameters.insert(INSTANCE_ID.to_owned(), id);
    instance.parameters.insert(STATUS.to_owned(), status);
    instance
        .parameters
        .insert(LEASE_PARAMETER.to_owned(), format!("{lease}s"));
    instance.validate().map_err(|e| FacadeError::bad(e.to_string()))?;
    Ok(instance)
}

/// The id of a registry instance: the one a Eureka client gave it, else `host:port`.
pub(crate) fn id_of(instance: &InstanceMeta) -> String {
    instance
        .parameters
        .get(INSTANCE_ID)
        .cloned()
        .unwrap_or_else(|| format!("{}:{}", instance.host, instance.port))
}

/// A number that may come as a number, a string, or `{"$": n}`.
pub(crate) fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => number(o.get("$")),
        _ => None,
    }
}

pub(crate) fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A registry instance as a Eureka instance object of app `app` (upper case).
pub(crate) fn eureka_instance(instance: &InstanceMeta, app: &str, updated_ms: u64) -> Value {
    let mut object = match instance.parameters.get(INSTANCE).map(|t| serde_json::from_str(t)) {
        Some(Ok(Value::Object(sent))) => sent,
        _ => Map::new(),
    };
    let status = instance
        .parameters
        .get(STATUS)
        .cloned()
        .unwrap_or_else(|| "UP".to_owned());
    let metadata: Map<String, Value> = instance
        .parameters
        .iter()
        .filter(|(k, _)| !k.starts_with("eureka.") && *k != LEASE_PARAMETER)
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let lease_secs = instance
        .parameters
        .get(LEASE_PARAMETER)
        .and_then(|l| registry_core::parse_duration_or_seconds(l))
        .map_or(DEFAULT_LEASE_SECS, |d| d.as_secs());
    let mut defaults = |key: &str, value: Value| {
        object.entry(key.to_owned()).or_insert(value);
    };
    defaults("instanceId", Value::String(id_of(instance)));
    defaults("hostName", Value::String(instance.host.clone()));
    defaults("ipAddr", Value::String(instance.host.clone()));
    defaults("port", json!({"$": instance.port, "@enabled": "true"}));
    defaults("securePort", json!({"$": 443, "@enabled": "false"}));
    defaults("countryId", json!(1));
    defaults(
        "dataCenterInfo",
        json!({"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}),
    );
    defaults(
        "leaseInfo",
        json!({"renewalIntervalInSecs": 30, "durationInSecs": lease_secs, "registrationTimestamp": updated_ms,
               "lastRenewalTimestamp": updated_ms, "evictionTimestamp": 0, "serviceUpTimestamp": updated_ms}),
    );
    defaults("metadata", Value::Object(metadata));
    defaults("vipAddress", Value::String(app.to_ascii_lowercase()));
    defaults("secureVipAddress", Value::String(app.to_ascii_lowercase()));
    defaults("homePageUrl", Value::String(instance.url()));
    defaults("statusPageUrl", Value::String(instance.url()));
    defaults("healthCheckUrl", Value::String(instance.url()));
    defaults("isCoordinatingDiscoveryServer", Value::String("false".to_owned()));
    defaults("lastUpdatedTimestamp", Value::String(updated_ms.to_string()));
    defaults("lastDirtyTimestamp", Value::String(updated_ms.to_string()));
    object.insert("app".to_owned(), Value::String(app.to_owned()));
    object.insert("status".to_owned(), Value::String(status));
    object.insert("overriddenstatus".to_owned(), Value::String("UNKNOWN".to_owned()));
    Value::Object(object)
}

/// Eureka's `apps__hashcode`: per status, sorted, `STATUS_count_`.
pub(crate) fn hashcode(instances: &[&Value]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for instance in instances {
        let status = instance.get("status").and_then(Value::as_str).unwrap_or("UNKNOWN");
        *counts.entry(status.to_owned()).or_default() += 1;
    }
    counts.iter().map(|(status, n)| format!("{status}_{n}_")).collect()
}

pub(crate) fn with_action(instance: &Value, action: &str) -> Value {
    let mut instance = instance.clone();
    if let Value::Object(o) = &mut instance {
        o.insert("actionType".to_owned(), Value::String(action.to_owned()));
    }
    instance
}
