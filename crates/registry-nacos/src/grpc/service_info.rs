//! A service as Nacos clients read it (`ServiceInfo`), and its push
//! (`NotifySubscriberRequest`): the hosts come from the Nacos facade's cache, encoded once
//! per service version and shared by every answer and push of that version.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use registry_core::Registry;

use super::proto::Payload;
use super::wire::payload;
use crate::v1::{encode_hosts, NacosCache, NacosService};

/// How long clients may cache a service (Nacos's push cache default).
const CACHE_MILLIS: u64 = 10_000;

/// Each service's last `lastRefTime`: clients drop an answer or push whose time is not
/// above the one they hold, so every one this node sends for a service is later than the
/// one before.
#[derive(Default)]
pub(crate) struct RefTimes(Mutex<HashMap<String, u64>>);

/// How many services the table remembers; past it, it starts again (times stay above the
/// wall clock's, which is what a client compares with after a restart anyway).
const REMEMBERED: usize = 100_000;

impl RefTimes {
    /// The next time for `service` at `now` (ms): `now`, or one above the last.
    pub(crate) fn next(&self, service: &str, now: u64) -> u64 {
        let mut times = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if times.len() >= REMEMBERED && !times.contains_key(service) {
            let floor = times.values().copied().max().unwrap_or(0);
            times.clear();
            times.insert(String::new(), floor);
        }
        let floor = times.get("").copied().unwrap_or(0);
        let last = times.get(service).copied().unwrap_or(floor);
        let next = now.max(last + 1);
        times.insert(service.to_owned(), next);
        next
    }
}

/// The JSON of `service`'s `ServiceInfo`: its hosts (only the healthy ones when asked),
/// the clusters the client asked for (echoed: its cache key), and `ref_time`.
pub(crate) fn service_info(
    registry: &Registry,
    cache: &NacosCache,
    service: &NacosService,
    clusters: &str,
    healthy_only: bool,
    ref_time: u64,
) -> Vec<u8> {
    let (_, hosts) = if healthy_only {
        encode_hosts(registry, service, true)
    } else {
        cache.hosts(registry, service)
    };
    let text = |value: &str| serde_json::to_string(value).unwrap_or_default();
    let mut out = Vec::with_capacity(hosts.len() + 256);
    out.extend_from_slice(b"{\"name\":");
    out.extend_from_slice(text(&service.name).as_bytes());
    out.extend_from_slice(b",\"groupName\":");
    out.extend_from_slice(text(&service.group).as_bytes());
    out.extend_from_slice(b",\"clusters\":");
    out.extend_from_slice(text(clusters).as_bytes());
    out.extend_from_slice(format!(",\"cacheMillis\":{CACHE_MILLIS},\"hosts\":").as_bytes());
    out.extend_from_slice(&hosts);
    out.extend_from_slice(
        format!(
            ",\"lastRefTime\":{ref_time},\"checksum\":\"\",\"allIPs\":false,\"allIps\":false,\
             \"reachProtectionThreshold\":false,\"valid\":true}}"
        )
        .as_bytes(),
    );
    out
}

/// A `NotifySubscriberRequest` of `service_info` (its JSON) for `service` in `namespace`:
/// one payload, shared by every subscriber it goes to.
pub(crate) fn push(request_id: u64, namespace: &str, service: &NacosService, service_info: &[u8]) -> Payload {
    let text = |value: &str| serde_json::to_string(value).unwrap_or_default();
    let mut out = Vec::with_capacity(service_info.len() + 192);
    out.extend_from_slice(
        format!("{{\"module\":\"naming\",\"requestId\":\"{request_id}\",\"headers\":{{}}").as_bytes(),
    );
    out.extend_from_slice(b",\"namespace\":");
    out.extend_from_slice(text(namespace).as_bytes());
    out.extend_from_slice(b",\"serviceName\":");
    out.extend_from_slice(text(&service.name).as_bytes());
    out.extend_from_slice(b",\"groupName\":");
    out.extend_from_slice(text(&service.group).as_bytes());
    out.extend_from_slice(b",\"serviceInfo\":");
    out.extend_from_slice(service_info);
    out.push(b'}');
    payload("NotifySubscriberRequest", Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_times_only_grow() {
        let times = RefTimes::default();
        assert_eq!(times.next("a", 100), 100);
        assert_eq!(times.next("a", 100), 101, "the same ms again");
        assert_eq!(times.next("a", 50), 102, "a clock that went back");
        assert_eq!(times.next("b", 50), 50, "per service");
        assert_eq!(times.next("a", 500), 500);
    }

    #[test]
    fn a_service_info_has_every_field_clients_insist_on() {
        let registry = Registry::new();
        let cache = NacosCache::default();
        let service = NacosService::named(None, "G", "svc").unwrap();
        let info: serde_json::Value =
            serde_json::from_slice(&service_info(&registry, &cache, &service, "", false, 7)).unwrap();
        for field in [
            "name",
            "groupName",
            "clusters",
            "cacheMillis",
            "lastRefTime",
            "checksum",
            "reachProtectionThreshold",
        ] {
            assert!(info.get(field).is_some_and(|v| !v.is_null()), "{field}");
        }
        assert_eq!(info["hosts"], serde_json::json!([]));
        assert_eq!(
            (info["name"].as_str(), info["groupName"].as_str()),
            (Some("svc"), Some("G"))
        );
        let pushed = push(
            3,
            "public",
            &service,
            &service_info(&registry, &cache, &service, "", false, 8),
        );
        let body: serde_json::Value = serde_json::from_slice(&pushed.body.unwrap().value).unwrap();
        assert_eq!(body["requestId"], "3");
        assert_eq!(body["serviceInfo"]["lastRefTime"], 8);
    }
}
