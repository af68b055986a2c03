//! The config store: configs by key, a store-wide revision that every change moves up by
//! one, a bounded history per config, and the observers told of each change
//! (docs/spec.md §8). Written only by [`crate::Registry::apply`], so that every node that
//! applies the same log holds the same configs at the same revisions.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};

use super::key::{Cas, ConfigFields, ConfigKey, LazyMd5};

#[path = "transaction.rs"]
mod transaction;

/// One config as stored: what its last publish set, its md5, and when and at which
/// revisions it was created and last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What the last publish set.
    pub fields: ConfigFields,
    /// The lowercase hex MD5 of the content (see [`Config::md5`]).
    pub(crate) md5: LazyMd5,
    /// When it was first published (since its last removal), ms since the epoch, by the
    /// leader's clock.
    pub created_ms: u64,
    /// When it was last published, ms since the epoch, by the leader's clock.
    pub modified_ms: u64,
    /// The store revision of its first publish (since its last removal).
    pub created_revision: u64,
    /// The store revision of its last publish.
    pub revision: u64,
}

impl Config {
    /// A config of `fields`, first published at `created_*`, last at `modified_ms` and
    /// `revision`.
    pub(crate) fn new(
        fields: ConfigFields,
        created_ms: u64,
        modified_ms: u64,
        created_revision: u64,
        revision: u64,
    ) -> Config {
        Config {
            fields,
            md5: LazyMd5::default(),
            created_ms,
            modified_ms,
            created_revision,
            revision,
        }
    }

    /// The lowercase hex MD5 of the content, made when first asked for.
    pub fn md5(&self) -> &str {
        self.md5.of(&self.fields.content)
    }

    /// The content's type, `text` when none was given.
    pub fn kind(&self) -> &str {
        match self.fields.kind.as_str() {
            "" => "text",
            kind => kind,
        }
    }
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevisionOp {
    /// The config was published where none was.
    Created,
    /// The config was published over an earlier one.
    Updated,
    /// The config was removed; the entry keeps what it held.
    Removed,
}

/// One entry of a config's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The store revision of the change.
    pub revision: u64,
    /// When, ms since the epoch, by the leader's clock.
    pub at_ms: u64,
    /// What the change was.
    pub op: RevisionOp,
    /// The config the change published (for a removal: the one it removed).
    pub config: Arc<Config>,
}

/// How much history the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// At most this many entries per config.
    pub per_config: usize,
    /// At most about this many bytes of history, all configs together (each entry counts
    /// its key, its fields and 64 bytes); the oldest entries go first.
    pub max_bytes: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            per_config: 20,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What a config command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigOutcome {
    /// Applied: the store is at this revision, the config's.
    Written {
        /// The store revision after the change.
        revision: u64,
    },
    /// A removal of a config that was not there: nothing changed.
    Absent,
    /// The compare-and-set condition did not hold: nothing changed.
    CasFailed,
    /// A check ([`crate::Command::CheckConfig`]) held; it changes nothing.
    Held,
    /// Not applied: another command of its transaction did not hold.
    RolledBack,
}

/// Told after every change of the configs, once readers can see it.
pub trait ConfigObserver: Send + Sync {
    /// The store moved to `revision`; `changed` says which configs may differ.
    fn configs_changed(&self, revision: u64, changed: ConfigsChanged<'_>);
}

/// Which configs a change touched.
#[derive(Debug, Clone, Copy)]
pub enum ConfigsChanged<'a> {
    /// These (each published or removed).
    Keys(&'a [Arc<ConfigKey>]),
    /// Any config may have changed (the store was replaced from a snapshot).
    All,
}

/// The configs, their history and revision.
#[derive(Default)]
pub struct Configs {
    state: RwLock<ConfigState>,
    observers: RwLock<Vec<Arc<dyn ConfigObserver>>>,
    limits: HistoryLimits,
}

/// The store's data, under one lock.
#[derive(Default)]
pub(crate) struct ConfigState {
    pub(crate) configs: BTreeMap<Arc<ConfigKey>, Arc<Config>>,
    pub(crate) revision: u64,
    /// The bytes of the current configs' keys and fields.
    pub(crate) bytes: usize,
    pub(crate) history: HashMap<Arc<ConfigKey>, VecDeque<Arc<Revision>>>,
    /// Every history entry by revision, oldest first, for the byte budget; an entry a
    /// config's own bound dropped stays here until it is reached or compacted away.
    order: VecDeque<(u64, Arc<ConfigKey>)>,
    entries: usize,
    history_bytes: usize,
    /// The keys the write in progress touched.
    pub(crate) touched: Vec<Arc<ConfigKey>>,
    /// The recent removals, by revision: what a follower's delta needs to remove.
    pub(crate) removals: VecDeque<(u64, Arc<ConfigKey>)>,
    /// Every removal after this revision is in `removals`.
    pub(crate) removals_floor: u64,
}

/// How many removals are kept for followers' deltas; one that is further behind gets
/// the whole store.
const MAX_REMOVALS: usize = 10_000;

const ENTRY_OVERHEAD: usize = 64;

fn entry_bytes(key: &ConfigKey, config: &Config) -> usize {
    key.len() + config.fields.len() + ENTRY_OVERHEAD
}

/// A config command, borrowed from the log.
pub(crate) enum ConfigWrite<'a> {
    Publish {
        key: &'a ConfigKey,
        fields: &'a ConfigFields,
        cas: Option<&'a Cas>,
        now_ms: u64,
    },
    Remove {
        key: &'a ConfigKey,
        cas: Option<&'a Cas>,
        now_ms: u64,
    },
    Check {
        key: &'a ConfigKey,
        cas: &'a Cas,
    },
}

impl ConfigWrite<'_> {
    fn key(&self) -> &ConfigKey {
        match self {
            ConfigWrite::Publish { key, .. } | ConfigWrite::Remove { key, .. } | ConfigWrite::Check { key, .. } => key,
        }
    }

    fn cas(&self) -> Option<&Cas> {
        match self {
            ConfigWrite::Publish { cas, .. } | ConfigWrite::Remove { cas, .. } => *cas,
            ConfigWrite::Check { cas, .. } => Some(cas),
        }
    }
}

impl Configs {
    /// An empty store keeping history within `limits`.
    pub fn with_history(limits: HistoryLimits) -> Configs {
        Configs {
            limits,
            ..Configs::default()
        }
    }

    /// Adds `observer` to those told after every change.
    pub fn observe(&self, observer: Arc<dyn ConfigObserver>) {
        self.observers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(observer);
    }

    /// The store revision: the number of changes ever applied.
    pub fn revision(&self) -> u64 {
        self.read().revision
    }

    /// The config at `key`.
    pub fn get(&self, key: &ConfigKey) -> Option<Arc<Config>> {
        self.read().configs.get(key).cloned()
    }

    /// How many configs there are, and the bytes of their keys and fields.
    pub fn size(&self) -> (usize, usize) {
        let state = self.read();
        (state.configs.len(), state.bytes)
    }

    /// The configs `keep` accepts, in key order; with a `namespace`, only that
    /// namespace's (a range, not a scan).
    pub fn list(
        &self,
        namespace: Option<&str>,
        mut keep: impl FnMut(&ConfigKey, &Config) -> bool,
    ) -> Vec<(Arc<ConfigKey>, Arc<Config>)> {
        let state = self.read();
        let pick = |(key, config): (&Arc<ConfigKey>, &Arc<Config>)| (key.clone(), config.clone());
        match namespace {
            None => state
                .configs
                .iter()
                .filter(|(key, config)| keep(key, config))
                .map(pick)
                .collect(),
            Some(namespace) => state
                .configs
                .range(from(namespace, "", ""))
                .take_while(|(key, _)| key.namespace == namespace)
                .filter(|(key, config)| keep(key, config))
                .map(pick)
                .collect(),
        }
    }

    /// The configs of `group` in `namespace` whose data id starts with `prefix`, in order.
    pub fn with_prefix(&self, namespace: &str, group: &str, prefix: &str) -> Vec<(Arc<ConfigKey>, Arc<Config>)> {
        let state = self.read();
        state
            .configs
            .range(from(namespace, group, prefix))
            .take_while(|(key, _)| key.namespace == namespace && key.group == group && key.data_id.starts_with(prefix))
            .map(|(key, config)| (key.clone(), config.clone()))
            .collect()
    }

    /// The history kept of `key`, newest first (also of a removed config, while kept).
    pub fn history(&self, key: &ConfigKey) -> Vec<Arc<Revision>> {
        self.read()
            .history
            .get(key)
            .map(|entries| entries.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// The history entry of `key` at `revision`, if kept.
    pub fn history_entry(&self, key: &ConfigKey, revision: u64) -> Option<Arc<Revision>> {
        let state = self.read();
        let entries = state.history.get(key)?;
        entries.iter().find(|entry| entry.revision == revision).cloned()
    }

    /// Applies config writes in order under one lock, then tells the observers once.
    pub(crate) fn apply<'a>(&self, writes: impl Iterator<Item = ConfigWrite<'a>>) -> Vec<ConfigOutcome> {
        let mut state = self.write();
        let outcomes: Vec<ConfigOutcome> = writes.map(|write| state.apply(write, &self.limits)).collect();
        self.publish(state, false);
        outcomes
    }

    /// Applies config writes and checks in order, all or nothing, under one lock: each
    /// condition is checked against the store as the writes before it in `writes` leave it;
    /// if one does not hold, it is answered [`ConfigOutcome::CasFailed`], every other
    /// [`ConfigOutcome::RolledBack`], and nothing changes.
    pub(crate) fn apply_all_or_nothing(&self, writes: Vec<ConfigWrite<'_>>) -> Vec<ConfigOutcome> {
        let mut state = self.write();
        if let Some(failed) = state.first_failing(&writes) {
            return (0..writes.len())
                .map(|at| match at == failed {
                    true => ConfigOutcome::CasFailed,
                    false => ConfigOutcome::RolledBack,
                })
                .collect();
        }
        let outcomes: Vec<ConfigOutcome> = writes
            .into_iter()
            .map(|write| state.apply(write, &self.limits))
            .collect();
        self.publish(state, false);
        outcomes
    }

    /// Releases the lock of a write and tells the observers what it touched (or, `all`,
    /// that anything may have changed).
    pub(crate) fn publish(&self, mut state: RwLockWriteGuard<'_, ConfigState>, all: bool) {
        let touched = std::mem::take(&mut state.touched);
        let revision = state.revision;
        drop(state);
        if touched.is_empty() && !all {
            return;
        }
        let changed = if all {
            ConfigsChanged::All
        } else {
            ConfigsChanged::Keys(&touched)
        };
        // Observers are only added at start (none adds another while told).
        for observer in self.observers.read().unwrap_or_else(PoisonError::into_inner).iter() {
            observer.configs_changed(revision, changed);
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, ConfigState> {
        // Every change is a few map operations that cannot panic midway.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, ConfigState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn limits(&self) -> HistoryLimits {
        self.limits
    }
}

/// The first key at or after (`namespace`, `group`, `data_id`).
fn from(namespace: &str, group: &str, data_id: &str) -> (Bound<ConfigKey>, Bound<ConfigKey>) {
    (
        Bound::Included(ConfigKey::new(namespace, group, data_id)),
        Bound::Unbounded,
    )
}

impl ConfigState {
    fn apply(&mut self, write: ConfigWrite<'_>, limits: &HistoryLimits) -> ConfigOutcome {
        match write {
            ConfigWrite::Publish {
                key,
                fields,
                cas,
                now_ms,
            } => self.publish(key, fields, cas, now_ms, limits),
            ConfigWrite::Remove { key, cas, now_ms } => self.remove(key, cas, now_ms, limits),
            ConfigWrite::Check { key, cas } => match cas_holds(Some(cas), self.configs.get(key).map(|c| &**c)) {
                true => ConfigOutcome::Held,
                false => ConfigOutcome::CasFailed,
            },
        }
    }

    fn publish(
        &mut self,
        key: &ConfigKey,
        fields: &ConfigFields,
        cas: Option<&Cas>,
        now_ms: u64,
        limits: &HistoryLimits,
    ) -> ConfigOutcome {
        let current = self.configs.get_key_value(key);
        if !cas_holds(cas, current.map(|(_, config)| &**config)) {
            return ConfigOutcome::CasFailed;
        }
        self.revision += 1;
        let revision = self.revision;
        let (key, op, created_ms, created_revision) = match current {
            Some((key, config)) => (
                key.clone(),
                RevisionOp::Updated,
                config.created_ms,
                config.created_revision,
            ),
            None => (Arc::new(key.clone()), RevisionOp::Created, now_ms, revision),
        };
        let config = Arc::new(Config::new(
            fields.clone(),
            created_ms,
            now_ms,
            created_revision,
            revision,
        ));
        self.bytes += key.len() + config.fields.len();
        if let Some(old) = self.configs.insert(key.clone(), config.clone()) {
            self.bytes -= key.len() + old.fields.len();
        }
        self.record(key, op, now_ms, config, limits);
        ConfigOutcome::Written { revision }
    }

    fn remove(&mut self, key: &ConfigKey, cas: Option<&Cas>, now_ms: u64, limits: &HistoryLimits) -> ConfigOutcome {
        let current = self.configs.get(key).map(|config| &**config);
        if !cas_holds(cas, current) {
            return ConfigOutcome::CasFailed;
        }
        let Some((key, config)) = self.configs.remove_entry(key) else {
            return ConfigOutcome::Absent;
        };
        self.revision += 1;
        self.bytes -= key.len() + config.fields.len();
        self.removed(key.clone());
        self.record(key, RevisionOp::Removed, now_ms, config, limits);
        ConfigOutcome::Written {
            revision: self.revision,
        }
    }

    /// Keeps the removal of `key` at the current revision for followers' deltas.
    pub(crate) fn removed(&mut self, key: Arc<ConfigKey>) {
        self.removals.push_back((self.revision, key));
        while self.removals.len() > MAX_REMOVALS {
            if let Some((revision, _)) = self.removals.pop_front() {
                self.removals_floor = revision;
            }
        }
    }

    /// Adds the change at the current revision to `key`'s history, within the limits, and
    /// to the keys touched.
    pub(crate) fn record(
        &mut self,
        key: Arc<ConfigKey>,
        op: RevisionOp,
        at_ms: u64,
        config: Arc<Config>,
        limits: &HistoryLimits,
    ) {
        self.touched.push(key.clone());
        if limits.per_config == 0 || limits.max_bytes == 0 {
            return;
        }
        let entry = Arc::new(Revision {
            revision: self.revision,
            at_ms,
            op,
            config,
        });
        self.push_history(key, entry, limits);
    }

    /// Appends `entry` to `key`'s history and trims to the limits.
    pub(crate) fn push_history(&mut self, key: Arc<ConfigKey>, entry: Arc<Revision>, limits: &HistoryLimits) {
        self.history_bytes += entry_bytes(&key, &entry.config);
        self.entries += 1;
        self.order.push_back((entry.revision, key.clone()));
        let entries = self.history.entry(key.clone()).or_default();
        entries.push_back(entry);
        while entries.len() > limits.per_config {
            if let Some(dropped) = entries.pop_front() {
                self.history_bytes -= entry_bytes(&key, &dropped.config);
                self.entries -= 1;
            }
        }
        while self.history_bytes > limits.max_bytes {
            let Some((revision, oldest)) = self.order.pop_front() else {
                break;
            };
            self.drop_oldest(&oldest, revision);
        }
        // Entries a config's own bound dropped leave their place in `order`: compact it
        // once they are as many as the live ones.
        if self.order.len() > 2 * self.entries + 1024 {
            let history = &self.history;
            self.order.retain(|(revision, key)| {
                history
                    .get(key)
                    .is_some_and(|entries| entries.iter().any(|entry| entry.revision == *revision))
            });
        }
    }

    /// Drops `key`'s oldest history entry if it is the one at `revision`.
    fn drop_oldest(&mut self, key: &Arc<ConfigKey>, revision: u64) {
        let Some(entries) = self.history.get_mut(key) else {
            return;
        };
        if entries.front().is_some_and(|entry| entry.revision == revision) {
            if let Some(dropped) = entries.pop_front() {
                self.history_bytes -= entry_bytes(key, &dropped.config);
                self.entries -= 1;
            }
        }
        if entries.is_empty() {
            self.history.remove(key);
        }
    }

    /// A state holding `configs` at `revision`, its histories added oldest first.
    pub(crate) fn rebuilt(
        configs: BTreeMap<Arc<ConfigKey>, Arc<Config>>,
        revision: u64,
        mut history: Vec<(Arc<ConfigKey>, Arc<Revision>)>,
        limits: &HistoryLimits,
    ) -> ConfigState {
        let bytes = configs
            .iter()
            .map(|(key, config)| key.len() + config.fields.len())
            .sum();
        let mut state = ConfigState {
            configs,
            revision,
            bytes,
            removals_floor: revision,
            ..ConfigState::default()
        };
        history.sort_by_key(|(_, entry)| entry.revision);
        if limits.per_config > 0 && limits.max_bytes > 0 {
            for (key, entry) in history {
                state.push_history(key, entry, limits);
            }
        }
        state
    }
}

/// Whether `cas` holds for the config as it is (`current`).
fn cas_holds(cas: Option<&Cas>, current: Option<&Config>) -> bool {
    match (cas, current) {
        (None, _) => true,
        (Some(Cas::Md5(md5)), Some(config)) => config.md5() == md5,
        (Some(Cas::Md5(_)), None) => false,
        (Some(Cas::Revision(0)), current) => current.is_none(),
        (Some(Cas::Revision(revision)), Some(config)) => config.revision == *revision,
        (Some(Cas::Revision(_)), None) => false,
    }
}
