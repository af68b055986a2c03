//! The store: the services, their instances and versions under one lock, and what every
//! other part of the registry is built on (taking the lock, publishing a change to the
//! observers, inserting and removing one instance).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use hashlink::LinkedHashSet;
use xxhash_rust::xxh3::Xxh3;

use crate::changes::{ChangeLog, ChangeLogLimits, Changed, Observer, Observers};
use crate::config::{Configs, HistoryLimits};
use crate::identity::Identities;
use crate::instance::InstanceMeta;
use crate::lease::{LeaseBounds, NEVER_MS};

/// The registry: services, their instances in registration order, and the versions.
///
/// One registry-wide version counter grows by one on every change (a new registration, a
/// registration with new parameters, an unregistration that removed something, an
/// eviction); `version(service)` is the counter's value at that service's last change.
/// A heartbeat of a known instance is not a change.
///
/// Concurrency: one `RwLock` over the maps. Lookups and heartbeats of known instances take
/// the shared side only (renewal times are atomics), so readers never block each other;
/// changes take the exclusive side for O(1) work. Each service keeps an immutable view of
/// its instance list, and the view keeps its JSON encoding, both built on first read after
/// a change and dropped by the next change: `/findAll` on an unchanged service costs a
/// map lookup and a reference-count increment. A snapshot holds the lock only long enough
/// to clone one `Arc` per service.
///
/// Memory: an instance is kept as its url and canonical JSON (what `/findAll` answers for
/// it) in one text; a million instances with two parameters each (`bench-load`) take
/// 236 MiB of heap in all, about 250 bytes an instance. Building a service's answer or a
/// snapshot is a concatenation of those JSON texts.
#[derive(Default)]
pub struct Registry {
    pub(super) state: RwLock<State>,
    /// Told after every change, in the order they were added (blocking queries, each
    /// protocol's pushes).
    pub(super) observers: Observers,
    /// The bounds of the change log, kept for the states a restore builds.
    pub(super) log_limits: ChangeLogLimits,
    /// What happened since the start, for metrics.
    pub(super) counts: Counts,
    /// The leases granted to instances that declare their own.
    pub(super) leases: LeaseBounds,
    /// The configs, written by the same commands.
    pub(super) configs: Configs,
    /// The users, roles and permissions, written by the same commands.
    pub(super) identities: Identities,
}

/// Running totals since the registry was created, for metrics. A restore or an adoption
/// does not count: only the writes this node applied one by one.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) registrations: AtomicU64,
    pub(super) unregistrations: AtomicU64,
    pub(super) evictions: AtomicU64,
    pub(super) renewals: AtomicU64,
}

/// One service in [`Registry::services`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceSummary {
    /// The service's name.
    pub name: String,
    /// The registry version at its last change.
    pub version: u64,
    /// How many instances it has.
    pub instances: usize,
}

/// [`Registry::stats`]: totals since start and the current size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Registrations that were a change (a new instance, or new parameters).
    pub registrations: u64,
    /// Unregistrations that removed an instance.
    pub unregistrations: u64,
    /// Instances removed for not renewing.
    pub evictions: u64,
    /// Heartbeats, one per service renewed (an unknown instance's heartbeat registers and
    /// counts as a registration too).
    pub renewals: u64,
    /// Services with at least one instance.
    pub services: u64,
    /// Instances registered, all services together.
    pub instances: u64,
    /// The registry version.
    pub version: u64,
}

/// The changes of the write in progress, by kind; moved to [`Counts`] when it publishes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    pub(super) registrations: u64,
    pub(super) unregistrations: u64,
    pub(super) evictions: u64,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) services: HashMap<Arc<str>, Service>,
    pub(super) version: u64,
    /// The recent changes, for deltas.
    pub(super) log: ChangeLog,
    /// The services changed by the write in progress, for the observer; taken before the
    /// lock is released.
    pub(super) touched: Vec<Arc<str>>,
    /// The changes of the write in progress, by kind.
    pub(super) tally: Tally,
}

pub(super) struct Service {
    /// The service's name (the map's key).
    pub(super) name: Arc<str>,
    /// Found by the instance url (its identity), in registration order.
    pub(super) instances: LinkedHashSet<Listed>,
    /// The leases of the instances that declared one ([`crate::LEASE_PARAMETER`]), in ms,
    /// by url: kept beside the slots so that instances without one (the seed's) pay nothing.
    pub(super) leases: HashMap<Box<str>, u64>,
    /// The registry version at this service's last change.
    pub(super) version: u64,
    /// The current instance list, built on demand; reset by every change.
    pub(super) view: OnceLock<Arc<View>>,
    /// How many of its instances carry [`crate::CHECKS_PARAMETER`]: whoever runs checks
    /// looks only at the services where this is not 0.
    pub(super) checked: usize,
}

/// [`crate::CHECKS_PARAMETER`] as an instance's canonical JSON holds it.
const CHECKS_MARKER: &str = "\"maregistry.checks\":";

/// Whether an instance's canonical JSON carries [`crate::CHECKS_PARAMETER`].
pub(super) fn carries_checks(json: &str) -> bool {
    json.contains(CHECKS_MARKER)
}

/// One registered instance. Immutable but for its renewal time and revision.
pub(super) struct Slot {
    /// The instance's url (its identity), then its canonical JSON with `status: true` (as
    /// answered): one allocation, where a separate url cost a million instances about
    /// 50 MiB (its allocation, and the pointers to it in the slot and the service's map).
    text: Box<str>,
    /// Where the url ends in `text`; its top bit is set when the instance declared no lease
    /// at all ([`crate::LEASE_NEVER`]), which no url is long enough to reach.
    url_len: usize,
    pub(super) renewed: AtomicU64,
    /// The log index of the command that last registered it (raft mode; 0 otherwise):
    /// the guard of [`crate::Command::Evict`].
    pub(super) revision: AtomicU64,
}

/// A service's name, version and view, as collected for a snapshot.
pub(super) type ServiceView = (Arc<str>, u64, Arc<View>);

/// An immutable list of a service's instances at one version.
pub(super) struct View {
    pub(super) slots: Vec<Arc<Slot>>,
    pub(super) json: OnceLock<Bytes>,
    /// The hash of the list's canonical JSON, for the registry checksum.
    pub(super) digest: OnceLock<u64>,
}

pub(super) const EMPTY_LIST: &[u8] = b"[]";

/// A slot as its service's set holds it: hashed, compared and looked up by its url.
#[derive(Clone)]
pub(super) struct Listed(pub(super) Arc<Slot>);

impl Hash for Listed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As the `str` it borrows as hashes, so that a lookup by url finds it.
        self.0.url().hash(state);
    }
}

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.0.url() == other.0.url()
    }
}

impl Eq for Listed {}

impl Borrow<str> for Listed {
    fn borrow(&self) -> &str {
        self.0.url()
    }
}

/// The bit of `Slot::url_len` that marks an instance without a lease.
const NEVER_EXPIRES: usize = 1 << (usize::BITS - 1);

impl Slot {
    /// A slot of an instance that declared `lease_ms` ([`crate::LEASE_NEVER`]'s is kept in
    /// the slot itself, so that such instances cost the lease map nothing).
    pub(super) fn with_lease(url: &str, json: &str, now: u64, revision: u64, lease_ms: u64) -> Arc<Slot> {
        let mut text = String::with_capacity(url.len() + json.len());
        text.push_str(url);
        text.push_str(json);
        let never = if lease_ms == NEVER_MS { NEVER_EXPIRES } else { 0 };
        Arc::new(Slot {
            text: text.into_boxed_str(),
            url_len: url.len() | never,
            renewed: AtomicU64::new(now),
            revision: AtomicU64::new(revision),
        })
    }

    /// Whether the instance declared no lease at all: it stays until it is unregistered.
    pub(super) fn never_expires(&self) -> bool {
        self.url_len & NEVER_EXPIRES != 0
    }

    /// The instance url, its identity.
    pub(super) fn url(&self) -> &str {
        // The text begins with the url (`Slot::new`), so this is a char boundary.
        &self.text[..self.url_len & !NEVER_EXPIRES]
    }

    /// The instance's canonical JSON.
    pub(super) fn json(&self) -> &str {
        &self.text[self.url_len & !NEVER_EXPIRES..]
    }

    pub(super) fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }

    /// Records the log entry that registered it last. Commands are applied one at a time
    /// (a raft log in order; the snapshot mode under its own counter), so a plain store.
    pub(super) fn set_revision(&self, revision: u64) {
        self.revision.store(revision, Ordering::Relaxed);
    }

    /// The instance, decoded from its canonical JSON (which this registry wrote).
    pub(super) fn meta(&self) -> Option<InstanceMeta> {
        serde_json::from_str(self.json()).ok()
    }

    pub(super) fn renewed(&self) -> u64 {
        self.renewed.load(Ordering::Relaxed)
    }

    pub(super) fn renew(&self, now: u64) {
        // A late, out-of-order heartbeat must not move the time backwards.
        self.renewed.fetch_max(now, Ordering::Relaxed);
    }
}

impl Counts {
    pub(super) fn add(&self, tally: Tally) {
        for (total, n) in [
            (&self.registrations, tally.registrations),
            (&self.unregistrations, tally.unregistrations),
            (&self.evictions, tally.evictions),
        ] {
            if n > 0 {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn renewed(&self, services: usize) {
        self.renewals.fetch_add(services as u64, Ordering::Relaxed);
    }
}

impl Service {
    pub(super) fn named(name: Arc<str>) -> Service {
        Service {
            name,
            instances: LinkedHashSet::new(),
            leases: HashMap::new(),
            version: 0,
            view: OnceLock::new(),
            checked: 0,
        }
    }

    /// The instances, in registration order.
    pub(super) fn slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.instances.iter().map(|listed| &listed.0)
    }

    /// The instance at `url`.
    pub(super) fn slot(&self, url: &str) -> Option<&Arc<Slot>> {
        self.instances.get(url).map(|listed| &listed.0)
    }

    /// Records the lease the instance at `url` declared (0: none).
    pub(super) fn set_lease(&mut self, url: &str, lease_ms: u64) {
        // No lease at all is the slot's to say (`Slot::with_lease`).
        if lease_ms > 0 && lease_ms != NEVER_MS {
            self.leases.insert(url.into(), lease_ms);
        } else if !self.leases.is_empty() {
            self.leases.remove(url);
        }
    }

    /// Whether `slot`'s lease has run out at `now`: its own within `bounds`, or `ttl_ms`
    /// when it declared none.
    pub(super) fn expired(&self, slot: &Slot, now: u64, ttl_ms: u64, bounds: &LeaseBounds) -> bool {
        if slot.never_expires() {
            return false;
        }
        let declared = if self.leases.is_empty() {
            0
        } else {
            self.leases.get(slot.url()).copied().unwrap_or(0)
        };
        slot.renewed().saturating_add(bounds.granted(declared, ttl_ms)) < now
    }

    pub(super) fn view(&self) -> Arc<View> {
        self.view
            .get_or_init(|| {
                Arc::new(View {
                    slots: self.slots().cloned().collect(),
                    json: OnceLock::new(),
                    digest: OnceLock::new(),
                })
            })
            .clone()
    }

    /// Records a change of this service: the registry version moves up by one and this
    /// service takes it; the change log and the observer's list get the name.
    pub(super) fn changed(&mut self, version: &mut u64, log: &mut ChangeLog, touched: &mut Vec<Arc<str>>) {
        *version += 1;
        self.version = *version;
        self.view = OnceLock::new();
        log.push(*version, self.name.clone());
        touched.push(self.name.clone());
    }
}

impl View {
    pub(super) fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let mut out = Vec::new();
                self.write_list(&mut out);
                Bytes::from(out)
            })
            .clone()
    }

    /// The hash of the list's JSON (the bytes [`View::write_list`] writes), computed
    /// without writing them.
    pub(super) fn digest(&self) -> u64 {
        *self.digest.get_or_init(|| {
            let mut hasher = Xxh3::new();
            self.each_piece(|piece| hasher.update(piece));
            hasher.digest()
        })
    }

    /// Writes the JSON array of the instances.
    pub(super) fn write_list(&self, out: &mut Vec<u8>) {
        out.reserve(2 + self.slots.iter().map(|s| s.json().len() + 1).sum::<usize>());
        self.each_piece(|piece| out.extend_from_slice(piece));
    }

    /// The JSON array of the instances, piece by piece: `[`, the instances' texts with
    /// `,` between them, `]`.
    pub(super) fn each_piece(&self, mut piece: impl FnMut(&[u8])) {
        piece(b"[");
        for (i, slot) in self.slots.iter().enumerate() {
            if i > 0 {
                piece(b",");
            }
            piece(slot.json().as_bytes());
        }
        piece(b"]");
    }
}

impl State {
    /// Inserts or updates one (already validated) instance, given as its url and canonical
    /// JSON, registered by the log entry `revision` (0 outside raft); returns whether that
    /// was a change.
    pub(super) fn upsert(
        &mut self,
        service: &str,
        url: &str,
        json: &str,
        now: u64,
        revision: u64,
        lease_ms: u64,
    ) -> bool {
        if !self.services.contains_key(service) {
            let name: Arc<str> = Arc::from(service);
            self.services.insert(name.clone(), Service::named(name));
        }
        let State {
            services,
            version,
            log,
            touched,
            ..
        } = self;
        let Some(svc) = services.get_mut(service) else {
            return false; // inserted just above
        };
        match svc.slot(url) {
            // Same identity, same canonical text: same parameters.
            Some(slot) if slot.json() == json => {
                slot.renew(now);
                slot.set_revision(revision);
                return false;
            }
            // New parameters: a new slot in the old one's place.
            Some(old) => {
                let was_checked = usize::from(carries_checks(old.json()));
                svc.instances
                    .replace(Listed(Slot::with_lease(url, json, now, revision, lease_ms)));
                svc.checked = svc.checked - was_checked + usize::from(carries_checks(json));
            }
            None => {
                svc.instances
                    .insert(Listed(Slot::with_lease(url, json, now, revision, lease_ms)));
                svc.checked += usize::from(carries_checks(json));
            }
        }
        svc.set_lease(url, lease_ms);
        svc.changed(version, log, touched);
        self.tally.registrations += 1;
        true
    }
}

impl State {
    /// Removes `url` from `service` (only if its revision is `revision`, when given);
    /// returns whether that was a change.
    pub(super) fn remove(&mut self, service: &str, url: &str, revision: Option<u64>) -> bool {
        let State {
            services,
            version,
            log,
            touched,
            tally,
        } = self;
        let Some(svc) = services.get_mut(service) else {
            return false;
        };
        if revision.is_some_and(|r| svc.slot(url).is_some_and(|slot| slot.revision() != r)) {
            return false;
        }
        let was_checked = svc.slot(url).is_some_and(|slot| carries_checks(slot.json()));
        if !svc.instances.remove(url) {
            return false;
        }
        svc.checked -= usize::from(was_checked);
        svc.leases.remove(url);
        svc.changed(version, log, touched);
        // A guarded removal is an eviction's; an unguarded one, an unregistration's.
        match revision {
            Some(_) => tally.evictions += 1,
            None => tally.unregistrations += 1,
        }
        true
    }
}

impl Registry {
    /// An empty registry at version 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose change log (what deltas are answered from) keeps at most
    /// what `limits` allow.
    pub fn with_change_log(limits: ChangeLogLimits) -> Self {
        Registry {
            state: RwLock::new(State {
                log: ChangeLog::new(limits),
                ..State::default()
            }),
            observers: Observers::default(),
            log_limits: limits,
            counts: Counts::default(),
            leases: LeaseBounds::default(),
            configs: Configs::default(),
            identities: Identities::default(),
        }
    }

    /// This registry keeping config history within `limits`.
    pub fn with_config_history(mut self, limits: HistoryLimits) -> Self {
        self.configs = Configs::with_history(limits);
        self
    }

    /// The configs kept beside the instances, written by [`Registry::apply`].
    pub fn configs(&self) -> &Configs {
        &self.configs
    }

    /// The users, roles and permissions, written by [`Registry::apply`].
    pub fn identities(&self) -> &Identities {
        &self.identities
    }

    /// This registry granting declared leases within `bounds` (the default: 5 s to 5 min).
    pub fn with_lease_bounds(mut self, bounds: LeaseBounds) -> Self {
        self.leases = bounds;
        self
    }

    /// Adds `observer` to those told after every change, after the ones added before.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        self.observers.add(observer);
    }

    /// Releases the write lock of a write, then tells the observers which services it
    /// changed.
    pub(super) fn publish(&self, mut guard: RwLockWriteGuard<'_, State>) {
        if guard.touched.is_empty() {
            return;
        }
        let tally = std::mem::take(&mut guard.tally);
        self.counts.add(tally);
        let touched = std::mem::take(&mut guard.touched);
        let version = guard.version;
        drop(guard);
        self.observers.tell(version, Changed::Services(&touched));
    }

    /// Releases the write lock of a write that replaced the state wholesale (a restore,
    /// an adoption, a takeover): the change log starts again at the new version, and the
    /// observer hears that anything may have changed.
    pub(super) fn publish_all(&self, mut guard: RwLockWriteGuard<'_, State>) {
        let version = guard.version;
        guard.log.reset(version);
        guard.touched.clear();
        guard.tally = Tally::default();
        drop(guard);
        self.observers.tell(version, Changed::All);
    }

    /// A fresh state at `version` with `services`, keeping this registry's change-log
    /// bounds.
    pub(super) fn fresh_state(&self, services: HashMap<Arc<str>, Service>, version: u64) -> State {
        State {
            services,
            version,
            log: ChangeLog::new(self.log_limits),
            touched: Vec::new(),
            tally: Tally::default(),
        }
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, State> {
        // No code path panics while holding the lock; should one ever, the maps are still
        // consistent (every change is a single insert/remove), so recover rather than
        // take the whole node down.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}
