//! Expiry: which instances outlived their lease, removing them, and the grace every instance
//! gets when a node takes office.

use crate::command::Victim;
use crate::instance::InstanceMeta;

use super::state::{carries_checks, Listed, Registry, State};

/// An instance the eviction sweep removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    /// The service it was registered under.
    pub service: String,
    /// The instance, as registered.
    pub instance: InstanceMeta,
    /// Its last renewal, ms since the epoch.
    pub renewed: u64,
}

impl Registry {
    /// Every instance counts as renewed at `now`: what a raft leader does when it takes
    /// office (one TTL of grace for instances whose heartbeats went to the old leader).
    /// No version moves.
    pub fn renew_all(&self, now: u64) {
        let state = self.read();
        for svc in state.services.values() {
            for slot in svc.slots() {
                slot.renew(now);
            }
        }
    }

    /// The instances whose lease has run out at `now`, with their revisions: what a raft
    /// leader proposes to evict. An instance's lease is the one it declared
    /// ([`crate::LEASE_PARAMETER`]) within this registry's bounds, else `ttl_ms`. Removes
    /// nothing.
    pub fn expired(&self, now: u64, ttl_ms: u64) -> Vec<Victim> {
        let state = self.read();
        let leases = &self.leases;
        state
            .services
            .iter()
            .flat_map(|(name, svc)| {
                svc.slots()
                    .filter(move |slot| svc.expired(slot, now, ttl_ms, leases))
                    .map(move |slot| Victim {
                        service: name.to_string(),
                        url: slot.url().to_string(),
                        revision: slot.revision(),
                    })
            })
            .collect()
    }

    /// Removes every instance whose lease has run out at `now` ([`Registry::expired`]:
    /// its own, or `ttl_ms`). Each removal is a change. The scan runs under the shared lock; the exclusive lock is
    /// taken only when something expired, and each candidate is checked again under it so
    /// that a heartbeat that raced the scan wins.
    pub fn evict_expired(&self, now: u64, ttl_ms: u64) -> Vec<Evicted> {
        let candidates = self.expired(now, ttl_ms);
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut guard = self.write();
        let State {
            services,
            version,
            log,
            touched,
            tally,
        } = &mut *guard;
        let mut evicted = Vec::with_capacity(candidates.len());
        for Victim { service, url, .. } in candidates {
            let Some(svc) = services.get_mut(service.as_str()) else {
                continue;
            };
            // A heartbeat may have come in since the scan.
            let still_expired = svc
                .slot(url.as_str())
                .is_some_and(|slot| svc.expired(slot, now, ttl_ms, &self.leases));
            if !still_expired {
                continue;
            }
            let Some(Listed(slot)) = svc.instances.take(url.as_str()) else {
                continue;
            };
            svc.checked -= usize::from(carries_checks(slot.json()));
            svc.leases.remove(url.as_str());
            svc.changed(version, log, touched);
            tally.evictions += 1;
            if let Some(instance) = slot.meta() {
                evicted.push(Evicted {
                    service,
                    instance,
                    renewed: slot.renewed(),
                });
            }
        }
        self.publish(guard);
        evicted
    }

    /// What a node does when it becomes leader: raise the registry version above both its
    /// own and `seen_version` (the highest version seen anywhere in the cluster), mark
    /// every service as changed at that version so that consumers refetch from the new
    /// leader, and treat every instance as renewed at `now` (a grace period of one TTL for
    /// instances whose heartbeats went to the old leader). Returns the new version.
    pub fn take_over(&self, seen_version: u64, now: u64) -> u64 {
        let mut state = self.write();
        let version = state.version.max(seen_version) + 1;
        state.version = version;
        for svc in state.services.values_mut() {
            svc.version = version;
            for slot in svc.slots() {
                slot.renew(now);
            }
        }
        self.publish_all(state);
        version
    }
}
