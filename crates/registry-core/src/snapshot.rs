use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::instance::InstanceMeta;
use crate::service::validate_service_name;

/// The whole registry state as it travels from leader to follower, in the seed's JSON
/// form:
///
/// ```json
/// { "REGISTRY":   { "svc": [ { "scheme": "http", "host": "h", "port": 80, "context": "" } ] },
///   "VERSIONS":   { "svc": 10 },
///   "TIMESTAMPS": { "svc@http://h:80/": 1708876800000 },
///   "version": 15 }
/// ```
///
/// All four fields are required when parsing: a document that lacks one is not a
/// snapshot. `REGISTRY` and `VERSIONS` are ordered by service name; `TIMESTAMPS` is a hash
/// map, since restoring looks up one entry per instance (the server's own `/snapshot`,
/// written by [`crate::Registry::snapshot_json`], lists them service by service).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Service name → instances in registration order.
    #[serde(rename = "REGISTRY")]
    pub registry: BTreeMap<String, Vec<InstanceMeta>>,
    /// Service name → registry version at its last change.
    #[serde(rename = "VERSIONS")]
    pub versions: BTreeMap<String, u64>,
    /// `service@url` → last renewal, ms since the epoch.
    #[serde(rename = "TIMESTAMPS")]
    pub timestamps: HashMap<String, u64>,
    /// `service@url` → the log index of its last registration, in a raft snapshot (the
    /// guard of an eviction); absent from the seed's form, where it is empty.
    #[serde(rename = "REVISIONS", default, skip_serializing_if = "HashMap::is_empty")]
    pub revisions: HashMap<String, u64>,
    /// The registry version the snapshot was taken at.
    pub version: u64,
    /// In a delta (`/snapshot?since=V`): `V`. The document then lists only the services
    /// changed after `V`, and applies only to a registry at version `V`.
    #[serde(rename = "SINCE", default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// The checksum of the whole registry it came from ([`crate::Registry::checksum`]),
    /// in answers to `/snapshot?since=V`.
    #[serde(rename = "CHECKSUM", default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Snapshot {
    /// Parses and validates a snapshot.
    pub fn from_json(json: &[u8]) -> Result<Snapshot, Error> {
        let snapshot: Snapshot = serde_json::from_slice(json).map_err(|e| Error::InvalidSnapshot(e.to_string()))?;
        snapshot.validate()?;
        Ok(snapshot)
    }

    /// Whether a node whose registry is at `local_version` should adopt this snapshot:
    /// only when it is newer. Data only flows from more to less (docs/spec.md §4.4): a follower
    /// ahead of its leader keeps its data until the leader has adopted it.
    pub fn should_sync(&self, local_version: u64) -> bool {
        self.version > local_version
    }

    /// Checks every rule a registry relies on: valid service names and instances, no
    /// identity twice within a service, no service version above the snapshot version.
    /// Timestamps of instances that are not in `REGISTRY` are ignored.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, instances) in &self.registry {
            check_service(name)?;
            let mut seen = HashSet::with_capacity(instances.len());
            for instance in instances {
                check_instance(name, instance)?;
                if !seen.insert(instance.url()) {
                    return Err(listed_twice(name, instance));
                }
            }
        }
        for (name, version) in &self.versions {
            check_service(name)?;
            check_version(name, *version, self.version)?;
        }
        Ok(())
    }

    /// Folds `other` into `self`: the union of services, and for a service both hold,
    /// the one with the higher version wins whole (instances, version and timestamps; on
    /// a tie `self` is kept). The snapshot version becomes the higher of the two.
    pub fn merge(&mut self, other: Snapshot) {
        let Snapshot {
            mut registry,
            versions,
            timestamps,
            revisions,
            version,
            ..
        } = other;
        let mut taken: HashSet<String> = HashSet::new();
        let names: Vec<String> = registry.keys().chain(versions.keys()).cloned().collect();
        for name in names {
            if taken.contains(&name) {
                continue;
            }
            let theirs = versions.get(&name).copied().unwrap_or(0);
            let ours = self.versions.get(&name).copied();
            let known = ours.is_some() || self.registry.contains_key(&name);
            if known && theirs <= ours.unwrap_or(0) {
                continue;
            }
            let prefix = format!("{name}@");
            self.timestamps.retain(|key, _| !key.starts_with(&prefix));
            self.revisions.retain(|key, _| !key.starts_with(&prefix));
            match registry.remove(&name) {
                Some(instances) => self.registry.insert(name.clone(), instances),
                None => self.registry.remove(&name),
            };
            match versions.get(&name) {
                Some(v) => self.versions.insert(name.clone(), *v),
                None => self.versions.remove(&name),
            };
            taken.insert(name);
        }
        let is_taken = |key: &str| key.split_once('@').is_some_and(|(name, _)| taken.contains(name));
        for (key, ts) in timestamps {
            if is_taken(&key) {
                self.timestamps.insert(key, ts);
            }
        }
        for (key, revision) in revisions {
            if is_taken(&key) {
                self.revisions.insert(key, revision);
            }
        }
        self.version = self.version.max(version);
    }
}

// The rules of a snapshot, shared by `Snapshot::validate` and `Registry::restore` (which
// checks them while it builds the new state).

pub(crate) fn check_service(name: &str) -> Result<(), Error> {
    validate_service_name(name).map_err(|e| Error::InvalidSnapshot(e.to_string()))
}

pub(crate) fn check_instance(service: &str, instance: &InstanceMeta) -> Result<(), Error> {
    instance
        .validate()
        .map_err(|e| Error::InvalidSnapshot(format!("service {service:?}: {e}")))
}

pub(crate) fn listed_twice(service: &str, instance: &InstanceMeta) -> Error {
    Error::InvalidSnapshot(format!("service {service:?} lists {} twice", instance.url()))
}

pub(crate) fn check_version(service: &str, version: u64, snapshot_version: u64) -> Result<(), Error> {
    if version > snapshot_version {
        return Err(Error::InvalidSnapshot(format!(
            "VERSIONS[{service:?}] = {version} is above the snapshot version {snapshot_version}"
        )));
    }
    Ok(())
}
