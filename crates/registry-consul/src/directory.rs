//! The instances registered through Consul, read from the registry (their ids and checks
//! are parameters), so that every node, leader or not, finds the same. A [`Directory`] keeps
//! the instances carrying one parameter, and brings itself up to date only for the services
//! whose version moved since its last look, skipping at once a service whose encoded list
//! does not name that parameter.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use memchr::memmem;
use registry_core::Registry;

use crate::service::{Entry, CHECKS, ID};

/// The instances carrying one parameter, by service and id.
pub(crate) struct Directory {
    /// The parameter.
    parameter: &'static str,
    /// The parameter, quoted as the encoded lists hold it.
    marker: String,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// The registry version last looked at.
    version: u64,
    /// Each service's version when last read.
    versions: HashMap<String, u64>,
    /// The instances of each service carrying the parameter, by id.
    services: BTreeMap<String, BTreeMap<String, Entry>>,
    /// The service of each id.
    ids: HashMap<String, String>,
}

impl Directory {
    /// The instances registered through Consul (with an id).
    pub(crate) fn registered() -> Directory {
        Directory::carrying(ID)
    }

    /// The instances with checks.
    pub(crate) fn checked() -> Directory {
        Directory::carrying(CHECKS)
    }

    fn carrying(parameter: &'static str) -> Directory {
        Directory {
            parameter,
            marker: format!("\"{parameter}\""),
            seen: Mutex::default(),
        }
    }

    /// The instance with Consul id `id`.
    pub(crate) fn find(&self, registry: &Registry, id: &str) -> Option<Entry> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if registry.registry_version() != seen.version {
            seen.refresh(registry, self.parameter, &memmem::Finder::new(self.marker.as_bytes()));
        }
        seen.get(id)
    }

    /// Where the instance with Consul id `id` was at the last look, without looking again
    /// (a registration's check for an id it moves; the caller checks it is still there).
    pub(crate) fn peek(&self, id: &str) -> Option<Entry> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(id)
    }

    /// Every instance, by service.
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
            seen.refresh(registry, self.parameter, &memmem::Finder::new(self.marker.as_bytes()));
        }
        f(&seen.services)
    }
}

impl Seen {
    /// The instance with id `id`, as last seen.
    fn get(&self, id: &str) -> Option<Entry> {
        let service = self.ids.get(id)?;
        self.services.get(service)?.get(id).cloned()
    }

    fn refresh(&mut self, registry: &Registry, parameter: &str, marker: &memmem::Finder<'_>) {
        let version = registry.registry_version();
        // The registry counts the instances with checks per service: only those are read.
        // For ids, every service; a changed one whose encoded list (kept per version and
        // shared with its readers) does not name the parameter costs one search.
        let (candidates, searched) = match parameter == CHECKS {
            true => (registry.services_with_checks(), false),
            false => {
                let summaries = registry.services().1;
                (summaries.into_iter().map(|s| (s.name, s.version)).collect(), true)
            }
        };
        let mut versions = HashMap::with_capacity(candidates.len());
        for (name, service_version) in candidates {
            if self.versions.get(&name) != Some(&service_version) {
                let carries = !searched || marker.find(&registry.find_all_json(&name)).is_some();
                let entries: BTreeMap<String, Entry> = match carries {
                    false => BTreeMap::new(),
                    true => registry
                        .find_all(&name)
                        .into_iter()
                        .filter(|i| i.parameters.contains_key(parameter))
                        .map(|instance| Entry::of(&name, instance))
                        .map(|entry| (entry.id.clone(), entry))
                        .collect(),
                };
                if let Some(old) = self.services.remove(&name) {
                    for id in old.keys() {
                        if self.ids.get(id) == Some(&name) {
                            self.ids.remove(id);
                        }
                    }
                }
                if !entries.is_empty() {
                    self.ids.extend(entries.keys().map(|id| (id.clone(), name.clone())));
                    self.services.insert(name.clone(), entries);
                }
            }
            versions.insert(name, service_version);
        }
        self.services.retain(|name, _| versions.contains_key(name));
        let services = &self.services;
        self.ids.retain(|_, service| services.contains_key(service));
        self.versions = versions;
        self.version = version;
    }
}
