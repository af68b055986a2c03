//! Moving whole states between nodes: the checksum of a registry, a leader's answer to a
//! follower (a delta or the whole snapshot), applying it, restoring and merging snapshots.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use crate::error::Error;
use crate::instance::InstanceMeta;
use crate::snapshot::{check_instance, check_service, check_version, listed_twice, Snapshot};

use super::state::{carries_checks, Listed, Registry, Service, ServiceView, Slot, State};
use super::wire::{state_json, write_number, write_state_json_to};

/// What applying a leader's sync answer did ([`Registry::apply_sync`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// The answer was applied and this registry now has the leader's checksum.
    Applied,
    /// The answer is older than this registry (data only flows from more to less):
    /// nothing changed.
    Older,
    /// A delta that does not start at this registry's version: nothing changed; fetch a
    /// full snapshot.
    NotFromHere,
    /// The answer was applied, but this registry's checksum differs from the leader's:
    /// the two histories diverged somewhere; fetch a full snapshot.
    Mismatch,
}

impl Registry {
    /// The checksum of the registry's canonical form: its version, and per service its
    /// name, version and instances in order (renewal times and revisions stay out of it:
    /// they differ between nodes). Two registries with the same checksum hold the same
    /// data at the same versions. Answers the registry version it was taken at, and the
    /// checksum as 16 hex digits.
    pub fn checksum(&self) -> (u64, String) {
        let (version, services) = self.views();
        (version, checksum_of(version, &services))
    }

    /// What a leader answers a follower's `/snapshot?since=V` (docs/spec.md §4.5): when `since`
    /// is not 0 and the change log reaches back to it, a *delta*: the seed's snapshot
    /// form holding only the services changed after `since` (each with its whole current
    /// instance list, empty when its last instance went) plus `"SINCE": since`; otherwise
    /// the whole snapshot. Either carries `"CHECKSUM"`, the [`Registry::checksum`] of the
    /// whole registry at the answer's version. A `since` above this registry's version
    /// (a follower ahead of its leader) gets an empty delta at this version.
    pub fn sync_json(&self, since: u64) -> Vec<u8> {
        let (version, services, tail) = self.sync_parts(since);
        state_json(&services, version, false, &tail)
    }

    /// [`Registry::sync_json`] written to `out` a service at a time: a whole snapshot of a
    /// large registry is never whole in memory when `out` compresses or sends it.
    pub fn write_sync_json(&self, since: u64, out: &mut impl Write) -> io::Result<()> {
        let (version, services, tail) = self.sync_parts(since);
        write_state_json_to(out, &services, version, false, &tail)
    }

    /// What [`Registry::sync_json`] answers: the version, the services it lists, and the
    /// members after `version` (`SINCE` for a delta, and `CHECKSUM`).
    fn sync_parts(&self, since: u64) -> (u64, Vec<ServiceView>, Vec<u8>) {
        let (version, services, changed) = self.views_and(|state| {
            if since == 0 {
                None
            } else if since > state.version {
                Some(HashSet::new())
            } else {
                state.log.since(since)
            }
        });
        let checksum = checksum_of(version, &services);
        let mut tail = Vec::with_capacity(64);
        let services = match changed {
            None => services,
            Some(changed) => {
                tail.extend_from_slice(b",\"SINCE\":");
                write_number(&mut tail, since.min(version));
                services
                    .into_iter()
                    .filter(|(name, _, _)| changed.contains(name))
                    .collect()
            }
        };
        tail.extend_from_slice(b",\"CHECKSUM\":\"");
        tail.extend_from_slice(checksum.as_bytes());
        tail.push(b'"');
        (version, services, tail)
    }

    /// Whether [`Registry::sync_json`] of `since` would answer a delta (the change log
    /// reaches back to it), as of now.
    pub fn has_delta(&self, since: u64) -> bool {
        let state = self.read();
        since != 0 && (since > state.version || state.log.reaches(since))
    }

    /// Applies a leader's answer to `/snapshot?since=V` ([`Registry::sync_json`], parsed
    /// and validated): a delta replaces the services it lists (only when it starts at
    /// this registry's version), a whole snapshot replaces the state (only when it is
    /// not older: data flows from more to less). Afterwards the registry's checksum is
    /// compared with the answer's, when it carries one. Instances without a timestamp
    /// count as renewed at `now`.
    pub fn apply_sync(&self, answer: Snapshot, now: u64) -> Result<Synced, Error> {
        let expected = answer.checksum.clone();
        match answer.since {
            None => {
                if !self.restore_newer(answer, now)? {
                    return Ok(Synced::Older);
                }
            }
            Some(since) => {
                let services = build_services(&answer, now)?;
                let mut guard = self.write();
                if guard.version != since || answer.version < since {
                    return Ok(Synced::NotFromHere);
                }
                let mut old = Vec::with_capacity(services.len());
                let State {
                    services: ours,
                    version,
                    log,
                    touched,
                    ..
                } = &mut *guard;
                for (name, svc) in services {
                    touched.push(name.clone());
                    if let Some(replaced) = ours.insert(name, svc) {
                        old.push(replaced);
                    }
                }
                *version = answer.version;
                log.reset(answer.version);
                self.publish(guard);
                drop(old);
            }
        }
        match expected {
            Some(expected) if self.checksum().1 != expected => Ok(Synced::Mismatch),
            _ => Ok(Synced::Applied),
        }
    }

    /// A copy of the whole state. Holds the lock only to collect one reference per
    /// service; copying and reading renewal times happens after it is released.
    pub fn snapshot(&self) -> Snapshot {
        let (version, services) = self.views();
        let mut snapshot = Snapshot {
            version,
            ..Snapshot::default()
        };
        for (name, svc_version, view) in services {
            for slot in &view.slots {
                let key = format!("{name}@{}", slot.url());
                if slot.revision() != 0 {
                    snapshot.revisions.insert(key.clone(), slot.revision());
                }
                snapshot.timestamps.insert(key, slot.renewed());
            }
            snapshot
                .registry
                .insert(name.to_string(), view.slots.iter().filter_map(|s| s.meta()).collect());
            snapshot.versions.insert(name.to_string(), svc_version);
        }
        snapshot
    }

    /// Replaces the whole state with `snapshot`, all or nothing: the new state is built
    /// and every rule of [`Snapshot::validate`] checked on the way, before the lock is
    /// taken; under the lock the two states are only swapped. The registry version becomes the snapshot's.
    /// An instance without a timestamp counts as renewed at `now`. Restoring the same
    /// snapshot twice changes nothing.
    pub fn restore(&self, snapshot: Snapshot, now: u64) -> Result<(), Error> {
        let services = build_services(&snapshot, now)?;
        let state = self.fresh_state(services, snapshot.version);
        // Swap under the lock; the old state is freed after the lock is released.
        let mut guard = self.write();
        let old = std::mem::replace(&mut *guard, state);
        self.publish_all(guard);
        drop(old);
        Ok(())
    }

    /// [`Registry::restore`], unless the snapshot is older than this registry: data only
    /// flows from more to less (docs/spec.md §4.4), so a follower never goes back to a lower
    /// registry version. The comparison and the swap happen under one hold of the lock.
    /// Answers whether it restored.
    pub fn restore_newer(&self, snapshot: Snapshot, now: u64) -> Result<bool, Error> {
        let services = build_services(&snapshot, now)?;
        let mut guard = self.write();
        if snapshot.version < guard.version {
            return Ok(false);
        }
        let old = std::mem::replace(&mut *guard, self.fresh_state(services, snapshot.version));
        self.publish_all(guard);
        drop(old);
        Ok(true)
    }

    /// Folds `other` into this registry by the rule of [`Snapshot::merge`]: a service
    /// this registry does not know is taken whole, a service both know is replaced
    /// (instances and version) only when `other` has it at a higher version, and the
    /// registry version becomes the higher of the two. Everything is built and validated
    /// before the lock is taken; the comparison and the replacements happen under one hold
    /// of it, so a concurrent write is neither lost nor half-merged. Instances without a
    /// timestamp count as renewed at `now`. Answers the names of the services taken.
    pub fn adopt(&self, other: Snapshot, now: u64) -> Result<Vec<String>, Error> {
        let theirs = build_services(&other, now)?;
        let mut adopted = Vec::new();
        let mut replaced = Vec::new();
        {
            let mut guard = self.write();
            let State { services, version, .. } = &mut *guard;
            for (name, svc) in theirs {
                let ours = services.get(&name).map(|s| s.version);
                if ours.is_some_and(|ours| svc.version <= ours) {
                    continue;
                }
                adopted.push(name.to_string());
                if let Some(old) = services.insert(name, svc) {
                    replaced.push(old);
                }
            }
            *version = (*version).max(other.version);
            if !adopted.is_empty() {
                self.publish_all(guard);
            }
        }
        // The replaced services are freed after the lock is released.
        drop(replaced);
        adopted.sort_unstable();
        Ok(adopted)
    }
}

/// The checksum of `services` (all of a registry's, sorted by name) at `version`: see
/// [`Registry::checksum`]. A sum of per-service hashes, so a service's part is computed
/// once per change of it (the view keeps its digest).
fn checksum_of(version: u64, services: &[ServiceView]) -> String {
    let mut sum = 0u64;
    let mut buf = Vec::with_capacity(128);
    for (name, svc_version, view) in services {
        buf.clear();
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        buf.extend_from_slice(&svc_version.to_le_bytes());
        buf.extend_from_slice(&view.digest().to_le_bytes());
        sum = sum.wrapping_add(xxh3_64(&buf));
    }
    buf.clear();
    buf.extend_from_slice(&version.to_le_bytes());
    buf.extend_from_slice(&sum.to_le_bytes());
    buf.extend_from_slice(&(services.len() as u64).to_le_bytes());
    format!("{:016x}", xxh3_64(&buf))
}

/// The services of `snapshot`, built for a registry, every rule of [`Snapshot::validate`]
/// checked on the way.
fn build_services(snapshot: &Snapshot, now: u64) -> Result<HashMap<Arc<str>, Service>, Error> {
    let mut services: HashMap<Arc<str>, Service> =
        HashMap::with_capacity(snapshot.registry.len().max(snapshot.versions.len()));
    let mut key = String::new();
    let mut json = Vec::with_capacity(256);
    for (name, instances) in &snapshot.registry {
        check_service(name)?;
        let mut svc = Service::named(Arc::from(name.as_str()));
        for instance in instances {
            // `name@url`, the key of its timestamp and revision.
            key.clear();
            key.push_str(name);
            key.push('@');
            instance.write_url(&mut key);
            let renewed = snapshot.timestamps.get(key.as_str()).copied().unwrap_or(now);
            let revision = snapshot.revisions.get(key.as_str()).copied().unwrap_or(0);
            add_instance(&mut svc, instance, renewed, revision, &mut key, &mut json)?;
        }
        services.insert(svc.name.clone(), svc);
    }
    for (name, svc_version) in &snapshot.versions {
        check_service(name)?;
        check_version(name, *svc_version, snapshot.version)?;
        services
            .entry(Arc::from(name.as_str()))
            .or_insert_with_key(|name| Service::named(name.clone()))
            .version = *svc_version;
    }
    Ok(services)
}

/// Adds `instance` to `svc`, renewed at `renewed` and registered by log entry `revision`,
/// after checking it and that `svc` does not hold it yet. `key` and `json` are scratch
/// buffers kept between calls.
pub(super) fn add_instance(
    svc: &mut Service,
    instance: &InstanceMeta,
    renewed: u64,
    revision: u64,
    key: &mut String,
    json: &mut Vec<u8>,
) -> Result<(), Error> {
    check_instance(&svc.name, instance)?;
    key.clear();
    instance.write_url(key);
    json.clear();
    instance.write_json_with_status(true, json);
    // serde_json writes UTF-8 only; the check is the cheap whole-buffer one.
    let Ok(text) = std::str::from_utf8(json) else {
        return Err(Error::InvalidSnapshot(format!(
            "service {:?}: an instance did not encode as UTF-8",
            svc.name
        )));
    };
    let lease_ms = instance.lease_ms()?;
    if !svc
        .instances
        .insert(Listed(Slot::with_lease(key, text, renewed, revision, lease_ms)))
    {
        return Err(listed_twice(&svc.name, instance));
    }
    svc.checked += usize::from(carries_checks(text));
    svc.set_lease(key, lease_ms);
    Ok(())
}
