//! A Nacos instance on the registry (docs/spec.md §6.1): `http://ip:port/`, with what the
//! client sent kept as parameters and answered back as it sent it.

use std::collections::BTreeMap;

use registry_core::{InstanceMeta, LEASE_PARAMETER};
use serde::Serialize;
use serde_json::Value;

use registry_api::FacadeError;

use super::names::NacosService;
use super::params::Params;

/// The cluster an instance is in when none is named.
pub(crate) const DEFAULT_CLUSTER: &str = "DEFAULT";
/// Nacos deletes an ephemeral instance this long after its last beat.
pub(crate) const DEFAULT_LEASE_MS: u64 = 30_000;
/// How often a client should beat (Nacos's value without UDP push).
pub(crate) const BEAT_INTERVAL_MS: u64 = 5_000;

const WEIGHT: &str = "nacos.weight";
const CLUSTER: &str = "nacos.cluster";
const ENABLED: &str = "nacos.enabled";
const HEALTHY: &str = "nacos.healthy";
const EPHEMERAL: &str = "nacos.ephemeral";
/// Parameters that are ours, not the client's metadata.
const RESERVED: [&str; 6] = [WEIGHT, CLUSTER, ENABLED, HEALTHY, EPHEMERAL, LEASE_PARAMETER];

/// What a Nacos client says of one instance, from the parameters or a beat's JSON.
pub(crate) struct Described {
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) weight: f64,
    pub(crate) cluster: String,
    pub(crate) enabled: bool,
    pub(crate) healthy: bool,
    pub(crate) ephemeral: bool,
    pub(crate) metadata: BTreeMap<String, String>,
}

impl Described {
    pub(crate) fn from_params(params: &Params) -> Result<Described, FacadeError> {
        let metadata = match params.get("metadata") {
            Some(text) => metadata(
                &serde_json::from_str(text)
                    .map_err(|e| FacadeError::bad(format!("Param 'metadata' is not a JSON object: {e}")))?,
            )?,
            None => BTreeMap::new(),
        };
        Ok(Described {
            ip: params.required("ip")?.to_owned(),
            port: port(params.required("port")?)?,
            weight: weight(params.get("weight"))?,
            cluster: params
                .get("clusterName")
                .or_else(|| params.get("cluster"))
                .unwrap_or(DEFAULT_CLUSTER)
                .to_owned(),
            enabled: params.flag("enabled", true)? && params.flag("enable", true)?,
            healthy: params.flag("healthy", true)?,
            ephemeral: params.flag("ephemeral", true)?,
            metadata,
        })
    }

    /// A beat's JSON (`{"ip","port","cluster","weight","metadata",…}`), with `ip` and
    /// `port` also taken from the parameters.
    pub(crate) fn from_beat(beat: &Value, params: &Params) -> Result<Described, FacadeError> {
        let field = |name: &str| match beat.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => params.get(name).map(str::to_owned),
        };
        let ip = field("ip")
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| FacadeError::bad("ip or port is empty"))?;
        let port = port(&field("port").ok_or_else(|| FacadeError::bad("ip or port is empty"))?)?;
        Ok(Described {
            ip,
            port,
            weight: weight(field("weight").as_deref())?,
            cluster: field("cluster").unwrap_or_else(|| DEFAULT_CLUSTER.to_owned()),
            enabled: true,
            healthy: true,
            ephemeral: true,
            metadata: match beat.get("metadata") {
                Some(value @ Value::Object(_)) => metadata(value)?,
                _ => BTreeMap::new(),
            },
        })
    }

    /// The registry's instance: `http://ip:port/`, the metadata and ours as parameters.
    pub(crate) fn instance(&self) -> Result<InstanceMeta, FacadeError> {
        let lease = self
            .metadata
            .get("preserved.ip.delete.timeout")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .unwrap_or(DEFAULT_LEASE_MS);
        self.instance_leased(lease)
    }

    /// An instance of the gRPC protocol, nulls and empty strings read as absent.
    pub(crate) fn from_wire(wire: &WireInstance) -> Result<Described, FacadeError> {
        let field = |value: &Value| match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let flag = |name: &str, value: &Value| match value {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(true),
            other => Err(FacadeError::bad(format!("'{name}' must be true or false, got {other}"))),
        };
        let ip = field(&wire.ip).ok_or_else(|| FacadeError::bad("the instance needs an 'ip'"))?;
        let port = match &wire.port {
            Value::Number(n) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| FacadeError::bad(format!("'port' must be from 1 to 65535, got {n}")))?,
            other => port(&field(other).ok_or_else(|| FacadeError::bad("the instance needs a 'port'"))?)?,
        };
        let weight = match &wire.weight {
            Value::Number(n) => n
                .as_f64()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| FacadeError::bad(format!("'weight' must be a number ≥ 0, got {n}")))?,
            other => weight(field(other).as_deref())?,
        };
        Ok(Described {
            ip,
            port,
            weight,
            cluster: field(&wire.cluster_name).unwrap_or_else(|| DEFAULT_CLUSTER.to_owned()),
            enabled: flag("enabled", &wire.enabled)?,
            healthy: flag("healthy", &wire.healthy)?,
            ephemeral: flag("ephemeral", &wire.ephemeral)?,
            metadata: match &wire.metadata {
                object @ Value::Object(_) => metadata(object)?,
                _ => BTreeMap::new(),
            },
        })
    }

    /// The registry's instance, with a lease of `lease_ms`.
    pub(crate) fn instance_leased(&self, lease_ms: u64) -> Result<InstanceMeta, FacadeError> {
        let lease = lease_ms;
        let mut instance =
            InstanceMeta::new("http", &self.ip, self.port, "").map_err(|e| FacadeError::bad(e.to_string()))?;
        let mut parameters = self.metadata.clone();
        parameters.retain(|key, _| !RESERVED.contains(&key.as_str()));
        parameters.insert(WEIGHT.to_owned(), self.weight.to_string());
        parameters.insert(CLUSTER.to_owned(), self.cluster.clone());
        parameters.insert(ENABLED.to_owned(), self.enabled.to_string());
        parameters.insert(HEALTHY.to_owned(), self.healthy.to_string());
        parameters.insert(EPHEMERAL.to_owned(), self.ephemeral.to_string());
        parameters.insert(LEASE_PARAMETER.to_owned(), format!("{lease}ms"));
        instance.parameters = parameters;
        instance.validate().map_err(|e| FacadeError::bad(e.to_string()))?;
        Ok(instance)
    }
}

/// An instance as the gRPC protocol carries it: the fields this facade reads, each as sent
/// (`null` when absent); the rest (`instanceId`, `serviceName`, …) is skipped unread.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WireInstance {
    ip: Value,
    port: Value,
    weight: Value,
    cluster_name: Value,
    enabled: Value,
    healthy: Value,
    ephemeral: Value,
    metadata: Value,
}

/// A port, 1 to 65535.
pub(crate) fn port(text: &str) -> Result<u16, FacadeError> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| FacadeError::bad(format!("Param 'port' must be from 1 to 65535, got {text:?}")))
}

fn weight(text: Option<&str>) -> Result<f64, FacadeError> {
    match text {
        None => Ok(1.0),
        Some(t) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| FacadeError::bad(format!("Param 'weight' must be a number ≥ 0, got {t:?}"))),
    }
}

/// A metadata object, its values as text (a number stays a number's text).
fn metadata(value: &Value) -> Result<BTreeMap<String, String>, FacadeError> {
    let Value::Object(map) = value else {
        return Err(FacadeError::bad("Param 'metadata' must be a JSON object"));
    };
    Ok(map
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect())
}

/// One host of an `instance/list` answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Host {
    pub(crate) instance_id: String,
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) weight: f64,
    pub(crate) healthy: bool,
    pub(crate) enabled: bool,
    pub(crate) ephemeral: bool,
    pub(crate) cluster_name: String,
    pub(crate) service_name: String,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) marked: bool,
    pub(crate) instance_heart_beat_interval: u64,
    pub(crate) instance_heart_beat_time_out: u64,
    pub(crate) ip_delete_timeout: u64,
}

impl Host {
    /// A registry instance as a Nacos host of `service`. Instances registered through
    /// another protocol get Nacos's defaults.
    pub(crate) fn of(instance: InstanceMeta, service: &NacosService) -> Host {
        let mut parameters = instance.parameters;
        let mut take = |key: &str| parameters.remove(key);
        let weight = take(WEIGHT).and_then(|w| w.parse().ok()).unwrap_or(1.0);
        let cluster = take(CLUSTER).unwrap_or_else(|| DEFAULT_CLUSTER.to_owned());
        let enabled = take(ENABLED).is_none_or(|v| v != "false");
        let healthy = take(HEALTHY).is_none_or(|v| v != "false");
        let ephemeral = take(EPHEMERAL).is_none_or(|v| v != "false");
        let lease = take(LEASE_PARAMETER)
            .and_then(|l| registry_core::parse_duration_or_seconds(&l))
            .map_or(DEFAULT_LEASE_MS, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Host {
            instance_id: format!("{}#{}#{}#{}", instance.host, instance.port, cluster, service.grouped),
            ip: instance.host,
            port: instance.port,
            weight,
            healthy,
            enabled,
            ephemeral,
            cluster_name: cluster,
            service_name: service.grouped.clone(),
            metadata: parameters,
            marked: false,
            instance_heart_beat_interval: BEAT_INTERVAL_MS,
            instance_heart_beat_time_out: lease / 2,
            ip_delete_timeout: lease,
        }
    }
}
