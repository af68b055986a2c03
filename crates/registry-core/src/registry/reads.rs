//! Reads: instance lists (encoded once per change), versions, totals and overviews, and the
//! consistent collection of every service's view that snapshots and checksums start from.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::instance::InstanceMeta;

use super::state::{Registry, Service, ServiceSummary, ServiceView, State, Stats, View, EMPTY_LIST};

impl Registry {
    /// The instances of `service` in registration order; empty for an unknown service.
    pub fn find_all(&self, service: &str) -> Vec<InstanceMeta> {
        match self.view(service) {
            Some(view) => view.slots.iter().filter_map(|s| s.meta()).collect(),
            None => Vec::new(),
        }
    }

    /// The instance at `url` (its identity, [`InstanceMeta::url`]) in `service`, if it is
    /// registered there.
    pub fn instance(&self, service: &str, url: &str) -> Option<InstanceMeta> {
        self.read().services.get(service)?.slot(url)?.meta()
    }

    /// The services with an instance carrying [`crate::CHECKS_PARAMETER`], each with its
    /// version: what a node that runs the checks looks at. Costs a look at each service's
    /// count, no instance.
    pub fn services_with_checks(&self) -> Vec<(String, u64)> {
        let state = self.read();
        state
            .services
            .iter()
            .filter(|(_, svc)| svc.checked > 0)
            .map(|(name, svc)| (name.to_string(), svc.version))
            .collect()
    }

    /// The JSON array `find_all` would encode to, kept until the service next changes.
    pub fn find_all_json(&self, service: &str) -> Bytes {
        self.find_all_versioned(service).1
    }

    /// [`Registry::find_all_json`] with the service's version, read together: the list
    /// is the service's state at that version.
    pub fn find_all_versioned(&self, service: &str) -> (u64, Bytes) {
        let found = self.read().services.get(service).map(|s| (s.version, s.view()));
        match found {
            Some((version, view)) => (version, view.json()),
            None => (0, Bytes::from_static(EMPTY_LIST)),
        }
    }

    pub(super) fn view(&self, service: &str) -> Option<Arc<View>> {
        self.read().services.get(service).map(Service::view)
    }

    /// The registry version at `service`'s last change; 0 if it never changed.
    pub fn version(&self, service: &str) -> u64 {
        self.read().services.get(service).map_or(0, |s| s.version)
    }

    /// [`Registry::version`] for each name, in order, read at one instant.
    pub fn versions(&self, services: &[&str]) -> Vec<u64> {
        let state = self.read();
        services
            .iter()
            .map(|name| state.services.get(*name).map_or(0, |s| s.version))
            .collect()
    }

    /// The registry-wide version: the number of changes so far (or more, after a
    /// takeover or a restore).
    pub fn registry_version(&self) -> u64 {
        self.read().version
    }

    /// The totals since start and the current size: what `/metrics` reports. Counts the
    /// instances under the shared lock (one length per service).
    pub fn stats(&self) -> Stats {
        let (services, instances, version) = {
            let state = self.read();
            let instances = state.services.values().map(|s| s.instances.len() as u64).sum();
            let services = state.services.values().filter(|s| !s.instances.is_empty()).count() as u64;
            (services, instances, state.version)
        };
        let counts = &self.counts;
        Stats {
            registrations: counts.registrations.load(Ordering::Relaxed),
            unregistrations: counts.unregistrations.load(Ordering::Relaxed),
            evictions: counts.evictions.load(Ordering::Relaxed),
            renewals: counts.renewals.load(Ordering::Relaxed),
            services,
            instances,
            version,
        }
    }

    /// Collects one reference per service under the shared lock: the registry version and,
    /// per service sorted by name, its version and current view.
    ///
    /// Building a view costs one reference count per instance. So that a snapshot taken
    /// after many changes (all views dropped) does not do that for every instance while
    /// writers wait, a first pass builds the missing views one service at a time, each
    /// under its own short hold of the lock; the consistent pass then finds them built,
    /// except for services changed in between.
    pub(super) fn views(&self) -> (u64, Vec<ServiceView>) {
        let (version, services, ()) = self.views_and(|_| ());
        (version, services)
    }

    /// [`Registry::views`], plus what `also` reads of the state in the same hold of the
    /// lock.
    pub(super) fn views_and<T>(&self, also: impl FnOnce(&State) -> T) -> (u64, Vec<ServiceView>, T) {
        let names: Vec<Arc<str>> = self.read().services.keys().cloned().collect();
        for name in &names {
            if let Some(svc) = self.read().services.get(name) {
                svc.view();
            }
        }
        let (version, mut services, extra) = {
            let state = self.read();
            let services: Vec<ServiceView> = state
                .services
                .iter()
                .map(|(name, svc)| (name.clone(), svc.version, svc.view()))
                .collect();
            (state.version, services, also(&state))
        };
        services.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (version, services, extra)
    }

    /// Every service with its version and instance count, sorted by name, and the
    /// registry version they were read at: an overview (the web console's) that does
    /// not copy any instance.
    pub fn services(&self) -> (u64, Vec<ServiceSummary>) {
        let state = self.read();
        let mut services: Vec<ServiceSummary> = state
            .services
            .iter()
            .map(|(name, svc)| ServiceSummary {
                name: name.to_string(),
                version: svc.version,
                instances: svc.instances.len(),
            })
            .collect();
        let version = state.version;
        drop(state);
        services.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        (version, services)
    }

    /// The name of the service with instances that is `name` whatever the ASCII case
    /// (`name` itself when it has instances): one map lookup, and a scan of the names
    /// only when that misses.
    pub fn service_ignoring_case(&self, name: &str) -> Option<String> {
        let state = self.read();
        if state.services.get(name).is_some_and(|s| !s.instances.is_empty()) {
            return Some(name.to_owned());
        }
        state
            .services
            .iter()
            .find(|(key, svc)| key.eq_ignore_ascii_case(name) && !svc.instances.is_empty())
            .map(|(key, _)| key.to_string())
    }

    /// The instances of `service` in registration order, each with its last renewal (ms
    /// since the epoch), and the service's version.
    pub fn instances_renewed(&self, service: &str) -> (u64, Vec<(InstanceMeta, u64)>) {
        let found = self.read().services.get(service).map(|s| (s.version, s.view()));
        match found {
            Some((version, view)) => (
                version,
                view.slots
                    .iter()
                    .filter_map(|slot| Some((slot.meta()?, slot.renewed())))
                    .collect(),
            ),
            None => (0, Vec::new()),
        }
    }
}
