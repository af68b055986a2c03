//! Which registry instance a Consul service id names, and the services registered through
//! Consul with their checks: read from the registry (the ids are parameters of the
//! instances), brought up to date only for the services whose version moved since the
//! last look, so that every node, leader or not, finds the same ids.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use registry_core::Registry;

use crate::service::Entry;

/// The Consul services of the registry, by id.
#[derive(Default)]
pub(crate) struct Directory {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// The registry version last looked at.
    version: u64,
    /// Each service's version when last read.
    versions: HashMap<String, u64>,
    /// The Consul-registered instances of each service, by id.
    services: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Directory {
    /// The instance registered through Consul with id `id`.
    pub(crate) fn find(&self, registry: &Registry, id: &str) -> Option<Entry> {
        self.with(registry, |services| {
            services.values().find_map(|entries| entries.get(id)).cloned()
        })
    }

    /// Every instance registered through Consul, by service.
    pub(crate) fn all(&self, registry: &Registry) -> Vec<Entry> {
        self.with(registry, |services| {
            services
                .values()
                .flat_map(|entries| entries.values().cloned())
                .collect()
        })
    }

    /// Calls `f` with the directory up to date.
    fn with<T>(&self, registry: &Registry, f: impl FnOnce(&BTreeMap<String, BTreeMap<String, Entry>>) -> T) -> T {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if registry.registry_version() != seen.version {
            seen.refresh(registry);
        }
        f(&seen.services)
    }
}

impl Seen {
    fn refresh(&mut self, registry: &Registry) {
        let (version, summaries) = registry.services();
        let mut versions = HashMap::with_capacity(summaries.len());
        for summary in summaries {
            if self.versions.get(&summary.name) != Some(&summary.version) {
                let entries: BTreeMap<String, Entry> = registry
                    .find_all(&summary.name)
                    .into_iter()
                    .map(|instance| Entry::of(&summary.name, instance))
                    .filter(|entry| entry.native)
                    .map(|entry| (entry.id.clone(), entry))
                    .collect();
                if entries.is_empty() {
                    self.services.remove(&summary.name);
                } else {
                    self.services.insert(summary.name.clone(), entries);
                }
            }
            versions.insert(summary.name, summary.version);
        }
        self.services.retain(|name, _| versions.contains_key(name));
        self.versions = versions;
        self.version = version;
    }
}
