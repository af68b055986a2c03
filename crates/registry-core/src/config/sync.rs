//! Moving configs from a snapshot-mode leader to its followers (docs/spec.md §8.4): a
//! [`ConfigDelta`] holds the configs changed after the follower's revision and the keys
//! removed since, or, when the leader's removals do not reach back that far, every config.
//! Applying one makes the follower's store the leader's at the leader's revision.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;

use super::key::{ConfigFields, ConfigKey};
use super::store::{Config, ConfigState, Configs, RevisionOp};

/// The configs a follower lacks, as a leader answers them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDelta {
    /// The leader's revision.
    pub revision: u64,
    /// The follower's revision this delta starts from; 0: it holds every config (the
    /// follower's store is replaced).
    #[serde(default)]
    pub since: u64,
    /// The configs changed after `since` (all of them for a whole copy).
    #[serde(default)]
    pub configs: Vec<SyncedConfig>,
    /// The keys removed after `since` (and not published again since).
    #[serde(default)]
    pub removed: Vec<(ConfigKey, u64)>,
}

/// One config in a [`ConfigDelta`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedConfig {
    /// Its key.
    pub key: ConfigKey,
    /// What it holds.
    pub fields: ConfigFields,
    /// When it was created, ms since the epoch.
    pub created_ms: u64,
    /// When it was last published, ms since the epoch.
    pub modified_ms: u64,
    /// The revision it was created at.
    pub created_revision: u64,
    /// The revision of its last publish.
    pub revision: u64,
}

impl Configs {
    /// What a follower at revision `since` needs: a delta when this store's removals reach
    /// back to `since` (and `since` is not ahead of it), else every config.
    pub fn delta_since(&self, since: u64) -> ConfigDelta {
        let state = self.read();
        let whole = since == 0 || since < state.removals_floor || since > state.revision;
        let since = if whole { 0 } else { since };
        let configs = state
            .configs
            .iter()
            .filter(|(_, config)| config.revision > since)
            .map(|(key, config)| SyncedConfig {
                key: (**key).clone(),
                fields: config.fields.clone(),
                created_ms: config.created_ms,
                modified_ms: config.modified_ms,
                created_revision: config.created_revision,
                revision: config.revision,
            })
            .collect();
        let removed = if whole {
            Vec::new()
        } else {
            state
                .removals
                .iter()
                .filter(|(revision, key)| *revision > since && !state.configs.contains_key(&**key))
                .map(|(revision, key)| ((**key).clone(), *revision))
                .collect()
        };
        ConfigDelta {
            revision: state.revision,
            since,
            configs,
            removed,
        }
    }

    /// Makes this store the leader's: `delta` applied to it (a delta from another revision
    /// than this store's is refused), or, for a whole copy, in place of it. Each config is
    /// checked first; a bad one refuses the whole delta and nothing changes. History
    /// records each change as it arrives.
    pub fn apply_delta(&self, delta: ConfigDelta) -> Result<(), Error> {
        for synced in &delta.configs {
            check(synced, delta.revision)?;
        }
        for (key, revision) in &delta.removed {
            key.validate()?;
            if *revision > delta.revision {
                return Err(refused(format!("a removal at {revision} after the delta's revision")));
            }
        }
        let limits = self.limits();
        let mut state = self.write();
        if delta.since != 0 && delta.since != state.revision {
            return Err(refused(format!(
                "the delta starts at revision {}, this store is at {}",
                delta.since, state.revision
            )));
        }
        let whole = delta.since == 0;
        if whole {
            *state = ConfigState::rebuilt(Default::default(), 0, Vec::new(), &limits);
        }
        let present: HashSet<&ConfigKey> = delta.configs.iter().map(|synced| &synced.key).collect();
        let mut removed = delta.removed.clone();
        removed.sort_by_key(|(_, revision)| *revision);
        let mut changes: Vec<(u64, Change)> = removed
            .into_iter()
            .filter(|(key, _)| !present.contains(key))
            .map(|(key, revision)| (revision, Change::Remove(key)))
            .collect();
        changes.extend(
            delta
                .configs
                .into_iter()
                .map(|synced| (synced.revision, Change::Put(Box::new(synced)))),
        );
        changes.sort_by_key(|(revision, _)| *revision);
        for (revision, change) in changes {
            state.revision = revision;
            state.apply_synced(change, &limits);
        }
        state.revision = delta.revision;
        if whole {
            state.removals_floor = delta.revision;
        }
        self.publish(state, whole);
        Ok(())
    }
}

enum Change {
    Put(Box<SyncedConfig>),
    Remove(ConfigKey),
}

impl ConfigState {
    /// Applies one change of a leader's delta at the current revision (its own).
    fn apply_synced(&mut self, change: Change, limits: &super::store::HistoryLimits) {
        match change {
            Change::Remove(key) => {
                if let Some((key, config)) = self.configs.remove_entry(&key) {
                    self.bytes -= key.len() + config.fields.len();
                    self.removed(key.clone());
                    let at = config.modified_ms;
                    self.record(key, RevisionOp::Removed, at, config, limits);
                }
            }
            Change::Put(synced) => {
                let synced = *synced;
                let config = Arc::new(Config::new(
                    synced.fields,
                    synced.created_ms,
                    synced.modified_ms,
                    synced.created_revision,
                    synced.revision,
                ));
                let (key, op) = match self.configs.get_key_value(&synced.key) {
                    Some((key, _)) => (key.clone(), RevisionOp::Updated),
                    None => (Arc::new(synced.key), RevisionOp::Created),
                };
                self.bytes += key.len() + config.fields.len();
                if let Some(old) = self.configs.insert(key.clone(), config.clone()) {
                    self.bytes -= key.len() + old.fields.len();
                }
                let at = config.modified_ms;
                self.record(key, op, at, config, limits);
            }
        }
    }
}

fn check(synced: &SyncedConfig, revision: u64) -> Result<(), Error> {
    synced.key.validate()?;
    synced.fields.validate()?;
    if synced.revision > revision || synced.created_revision > synced.revision {
        return Err(refused(format!(
            "config {:?} at revision {} (created at {}) in a delta at {revision}",
            synced.key.data_id, synced.revision, synced.created_revision
        )));
    }
    Ok(())
}

fn refused(why: String) -> Error {
    Error::InvalidSnapshot(format!("a config delta: {why}"))
}
