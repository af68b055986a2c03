//! The hosts of each listed service, encoded once per version.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use registry_core::{InstanceMeta, Registry};

use super::instance::Host;
use super::names::NacosService;

/// The encoded hosts of each listed service at its version: a list is answered from here
/// until the service changes (the seed's `/findAll` keeps its answer the same way).
#[derive(Default)]
pub(crate) struct NacosCache {
    hosts: Mutex<HashMap<(String, String), (u64, Bytes)>>,
}

/// Services whose hosts the cache keeps at most; past it, it starts again empty.
const CACHED_SERVICES: usize = 4096;

impl NacosCache {
    /// The hosts of `service` as JSON and the version they are at.
    pub(crate) fn hosts(&self, registry: &Registry, service: &NacosService) -> (u64, Bytes) {
        let key = (service.registry.clone(), service.grouped.clone());
        let version = registry.version(&service.registry);
        if let Some((cached, hosts)) = lock(&self.hosts).get(&key) {
            if *cached == version {
                return (*cached, hosts.clone());
            }
        }
        let (version, hosts) = encode_hosts(registry, service, false);
        let mut cache = lock(&self.hosts);
        if cache.len() >= CACHED_SERVICES {
            cache.clear();
        }
        cache.insert(key, (version, hosts.clone()));
        (version, hosts)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The hosts of `service` (only the healthy ones, when asked) as a JSON array, read with
/// the version they are at.
pub(crate) fn encode_hosts(registry: &Registry, service: &NacosService, healthy_only: bool) -> (u64, Bytes) {
    let (version, list) = registry.find_all_versioned(&service.registry);
    let instances: Vec<InstanceMeta> = serde_json::from_slice(&list).unwrap_or_default();
    let hosts: Vec<Host> = instances
        .into_iter()
        .map(|instance| Host::of(instance, service))
        .filter(|host| !healthy_only || host.healthy)
        .collect();
    (version, Bytes::from(serde_json::to_vec(&hosts).unwrap_or_default()))
}
