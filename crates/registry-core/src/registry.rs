use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use hashlink::LinkedHashMap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::changes::{ChangeLog, ChangeLogLimits, Changed, Observer};
use crate::command::{Applied, Command, Victim};
use crate::error::Error;
use crate::instance::InstanceMeta;
use crate::lease::LeaseBounds;
use crate::service::validate_service_name;
use crate::snapshot::{check_instance, check_service, check_version, listed_twice, Snapshot};

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
/// Memory: an instance is kept as its canonical JSON (what `/findAll` answers for it) and
/// its url, about 300 bytes for a typical instance with two parameters; building a
/// service's answer or a snapshot is a concatenation of those texts.
#[derive(Default)]
pub struct Registry {
    state: RwLock<State>,
    /// Told after every change (blocking queries); set once.
    observer: OnceLock<Arc<dyn Observer>>,
    /// The bounds of the change log, kept for the states a restore builds.
    log_limits: ChangeLogLimits,
    /// What happened since the start, for metrics.
    counts: Counts,
    /// The leases granted to instances that declare their own.
    leases: LeaseBounds,
}

/// Running totals since the registry was created, for metrics. A restore or an adoption
/// does not count: only the writes this node applied one by one.
#[derive(Debug, Default)]
struct Counts {
    registrations: AtomicU64,
    unregistrations: AtomicU64,
    evictions: AtomicU64,
    renewals: AtomicU64,
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
struct Tally {
    registrations: u64,
    unregistrations: u64,
    evictions: u64,
}

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

#[derive(Default)]
struct State {
    services: HashMap<Arc<str>, Service>,
    version: u64,
    /// The recent changes, for deltas.
    log: ChangeLog,
    /// The services changed by the write in progress, for the observer; taken before the
    /// lock is released.
    touched: Vec<Arc<str>>,
    /// The changes of the write in progress, by kind.
    tally: Tally,
}

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

struct Service {
    /// The service's name (the map's key).
    name: Arc<str>,
    /// Keyed by the instance url (its identity), in registration order.
    instances: LinkedHashMap<Arc<str>, Arc<Slot>>,
    /// The leases of the instances that declared one ([`crate::LEASE_PARAMETER`]), in ms:
    /// kept beside the slots so that instances without one (the seed's) pay nothing.
    leases: HashMap<Arc<str>, u64>,
    /// The registry version at this service's last change.
    version: u64,
    /// The current instance list, built on demand; reset by every change.
    view: OnceLock<Arc<View>>,
}

/// One registered instance. Immutable but for its renewal time and revision.
struct Slot {
    /// The instance's canonical JSON with `status: true`, as answered.
    json: Box<str>,
    url: Arc<str>,
    renewed: AtomicU64,
    /// The log index of the command that last registered it (raft mode; 0 otherwise):
    /// the guard of [`Command::Evict`]. Changed only under the write lock.
    revision: AtomicU64,
}

/// A service's name, version and view, as collected for a snapshot.
type ServiceView = (Arc<str>, u64, Arc<View>);

/// An immutable list of a service's instances at one version.
struct View {
    slots: Vec<Arc<Slot>>,
    json: OnceLock<Bytes>,
    /// The hash of the list's canonical JSON, for the registry checksum.
    digest: OnceLock<u64>,
}

const EMPTY_LIST: &[u8] = b"[]";

impl Slot {
    fn new(json: Box<str>, url: Arc<str>, now: u64, revision: u64) -> Arc<Slot> {
        Arc::new(Slot {
            json,
            url,
            renewed: AtomicU64::new(now),
            revision: AtomicU64::new(revision),
        })
    }

    fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }

    /// The instance, decoded from its canonical JSON (which this registry wrote).
    fn meta(&self) -> Option<InstanceMeta> {
        serde_json::from_str(&self.json).ok()
    }

    fn renewed(&self) -> u64 {
        self.renewed.load(Ordering::Relaxed)
    }

    fn renew(&self, now: u64) {
        // A late, out-of-order heartbeat must not move the time backwards.
        self.renewed.fetch_max(now, Ordering::Relaxed);
    }
}

impl Counts {
    fn add(&self, tally: Tally) {
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

    fn renewed(&self, services: usize) {
        self.renewals.fetch_add(services as u64, Ordering::Relaxed);
    }
}

impl Service {
    fn named(name: Arc<str>) -> Service {
        Service {
            name,
            instances: LinkedHashMap::new(),
            leases: HashMap::new(),
            version: 0,
            view: OnceLock::new(),
        }
    }

    /// Records the lease the instance at `url` declared (0: none).
    fn set_lease(&mut self, url: &Arc<str>, lease_ms: u64) {
        if lease_ms > 0 {
            self.leases.insert(url.clone(), lease_ms);
        } else if !self.leases.is_empty() {
            self.leases.remove(url);
        }
    }

    /// Whether `slot`'s lease has run out at `now`: its own within `bounds`, or `ttl_ms`
    /// when it declared none.
    fn expired(&self, slot: &Slot, now: u64, ttl_ms: u64, bounds: &LeaseBounds) -> bool {
        let declared = if self.leases.is_empty() {
            0
        } else {
            self.leases.get(&slot.url).copied().unwrap_or(0)
        };
        slot.renewed().saturating_add(bounds.granted(declared, ttl_ms)) < now
    }

    fn view(&self) -> Arc<View> {
        self.view
            .get_or_init(|| {
                Arc::new(View {
                    slots: self.instances.values().cloned().collect(),
                    json: OnceLock::new(),
                    digest: OnceLock::new(),
                })
            })
            .clone()
    }

    /// Records a change of this service: the registry version moves up by one and this
    /// service takes it; the change log and the observer's list get the name.
    fn changed(&mut self, version: &mut u64, log: &mut ChangeLog, touched: &mut Vec<Arc<str>>) {
        *version += 1;
        self.version = *version;
        self.view = OnceLock::new();
        log.push(*version, self.name.clone());
        touched.push(self.name.clone());
    }
}

impl View {
    fn json(&self) -> Bytes {
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
    fn digest(&self) -> u64 {
        *self.digest.get_or_init(|| {
            let mut hasher = Xxh3::new();
            self.each_piece(|piece| hasher.update(piece));
            hasher.digest()
        })
    }

    /// Writes the JSON array of the instances.
    fn write_list(&self, out: &mut Vec<u8>) {
        out.reserve(2 + self.slots.iter().map(|s| s.json.len() + 1).sum::<usize>());
        self.each_piece(|piece| out.extend_from_slice(piece));
    }

    /// The JSON array of the instances, piece by piece: `[`, the instances' texts with
    /// `,` between them, `]`.
    fn each_piece(&self, mut piece: impl FnMut(&[u8])) {
        piece(b"[");
        for (i, slot) in self.slots.iter().enumerate() {
            if i > 0 {
                piece(b",");
            }
            piece(slot.json.as_bytes());
        }
        piece(b"]");
    }
}

impl State {
    /// Inserts or updates one (already validated) instance, given as its url and canonical
    /// JSON, registered by the log entry `revision` (0 outside raft); returns whether that
    /// was a change.
    fn upsert(&mut self, service: &str, url: &str, json: &str, now: u64, revision: u64, lease_ms: u64) -> bool {
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
        match svc.instances.get_mut(url) {
            // Same identity, same canonical text: same parameters.
            Some(slot) if *slot.json == *json => {
                slot.renew(now);
                slot.revision.store(revision, Ordering::Relaxed);
                return false;
            }
            Some(slot) => {
                *slot = Slot::new(json.into(), slot.url.clone(), now, revision);
                let url = slot.url.clone();
                svc.set_lease(&url, lease_ms);
            }
            None => {
                let url: Arc<str> = Arc::from(url);
                svc.instances
                    .insert(url.clone(), Slot::new(json.into(), url.clone(), now, revision));
                svc.set_lease(&url, lease_ms);
            }
        }
        svc.changed(version, log, touched);
        self.tally.registrations += 1;
        true
    }
}

impl State {
    /// Removes `url` from `service` (only if its revision is `revision`, when given);
    /// returns whether that was a change.
    fn remove(&mut self, service: &str, url: &str, revision: Option<u64>) -> bool {
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
        if revision.is_some_and(|r| svc.instances.get(url).is_some_and(|slot| slot.revision() != r)) {
            return false;
        }
        if svc.instances.remove(url).is_none() {
            return false;
        }
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

impl State {
    /// Applies one command; answers whether it (or one of a batch) was rejected.
    fn apply(&mut self, command: &Command, index: u64) -> bool {
        match command {
            Command::Register {
                service,
                instance,
                now_ms,
            } => match validate_service_name(service).and_then(|()| instance.validate()) {
                Ok(()) => {
                    let json = instance.to_json_with_status(true);
                    let lease = instance.lease_ms().unwrap_or(0);
                    self.upsert(service, &instance.url(), &json, *now_ms, index, lease);
                    false
                }
                Err(_) => true,
            },
            Command::Unregister { service, instance } => {
                match validate_service_name(service).and_then(|()| instance.validate()) {
                    Ok(()) => {
                        self.remove(service, &instance.url(), None);
                        false
                    }
                    Err(_) => true,
                }
            }
            Command::Evict { victims, .. } => {
                for victim in victims {
                    self.remove(&victim.service, &victim.url, Some(victim.revision));
                }
                false
            }
            Command::Batch { commands } => {
                let mut rejected = false;
                for command in commands {
                    rejected |= self.apply(command, index);
                }
                rejected
            }
        }
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
            observer: OnceLock::new(),
            log_limits: limits,
            counts: Counts::default(),
            leases: LeaseBounds::default(),
        }
    }

    /// This registry granting declared leases within `bounds` (the default: 5 s to 5 min).
    pub fn with_lease_bounds(mut self, bounds: LeaseBounds) -> Self {
        self.leases = bounds;
        self
    }

    /// Installs the observer told after every change; answers `false` (and keeps the
    /// first) if one is installed already.
    pub fn observe(&self, observer: Arc<dyn Observer>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Releases the write lock of a write, then tells the observer which services it
    /// changed.
    fn publish(&self, mut guard: RwLockWriteGuard<'_, State>) {
        if guard.touched.is_empty() {
            return;
        }
        let tally = std::mem::take(&mut guard.tally);
        self.counts.add(tally);
        let touched = std::mem::take(&mut guard.touched);
        let version = guard.version;
        drop(guard);
        if let Some(observer) = self.observer.get() {
            observer.changed(version, Changed::Services(&touched));
        }
    }

    /// Releases the write lock of a write that replaced the state wholesale (a restore,
    /// an adoption, a takeover): the change log starts again at the new version, and the
    /// observer hears that anything may have changed.
    fn publish_all(&self, mut guard: RwLockWriteGuard<'_, State>) {
        let version = guard.version;
        guard.log.reset(version);
        guard.touched.clear();
        guard.tally = Tally::default();
        drop(guard);
        if let Some(observer) = self.observer.get() {
            observer.changed(version, Changed::All);
        }
    }

    /// A fresh state at `version` with `services`, keeping this registry's change-log
    /// bounds.
    fn fresh_state(&self, services: HashMap<Arc<str>, Service>, version: u64) -> State {
        State {
            services,
            version,
            log: ChangeLog::new(self.log_limits),
            touched: Vec::new(),
            tally: Tally::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // No code path panics while holding the lock; should one ever, the maps are still
        // consistent (every change is a single insert/remove), so recover rather than
        // take the whole node down.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `instance` under `service`, or renews it if it is already there.
    /// Registering an existing identity again replaces its parameters (a change only if
    /// they differ). Answers the instance as stored, `status: true`.
    pub fn register(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<InstanceMeta, Error> {
        self.upsert_instance(service, instance, now)?;
        Ok(answer(instance, true))
    }

    /// [`Registry::register`] without building the answer: returns whether it was a
    /// change.
    pub fn upsert_instance(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<bool, Error> {
        validate_service_name(service)?;
        instance.validate()?;
        let url = instance.url();
        let json = instance.to_json_with_status(true);
        if self.renew_known(service, &url, Some(&json), now) {
            return Ok(false);
        }
        let mut guard = self.write();
        let changed = guard.upsert(service, &url, &json, now, 0, instance.lease_ms()?);
        self.publish(guard);
        Ok(changed)
    }

    /// Removes `instance` (by identity) from `service`. Answers the instance with
    /// `status: false`, whether or not it was registered; only a removal is a change.
    pub fn unregister(&self, service: &str, instance: &InstanceMeta) -> Result<InstanceMeta, Error> {
        self.remove_instance(service, instance)?;
        Ok(answer(instance, false))
    }

    /// [`Registry::unregister`] without building the answer: returns whether it was a
    /// change.
    pub fn remove_instance(&self, service: &str, instance: &InstanceMeta) -> Result<bool, Error> {
        validate_service_name(service)?;
        instance.validate()?;
        let mut guard = self.write();
        let changed = guard.remove(service, &instance.url(), None);
        self.publish(guard);
        Ok(changed)
    }

    /// Applies one command of the replicated log at position `index` (docs/spec.md §7): a pure
    /// function of the registry, the command and the index, so that every node computes
    /// the same registry and versions. A command that breaks a rule of the data model is
    /// applied as nothing (`rejected`), the same way on every node.
    pub fn apply(&self, command: &Command, index: u64) -> Applied {
        let mut guard = self.write();
        let state = &mut *guard;
        let before = state.version;
        let rejected = state.apply(command, index);
        let applied = Applied {
            version: state.version,
            changes: state.version - before,
            rejected,
        };
        self.publish(guard);
        applied
    }

    /// Every instance counts as renewed at `now`: what a raft leader does when it takes
    /// office (one TTL of grace for instances whose heartbeats went to the old leader).
    /// No version moves.
    pub fn renew_all(&self, now: u64) {
        let state = self.read();
        for svc in state.services.values() {
            for slot in svc.instances.values() {
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
                svc.instances
                    .values()
                    .filter(move |slot| svc.expired(slot, now, ttl_ms, leases))
                    .map(move |slot| Victim {
                        service: name.to_string(),
                        url: slot.url.to_string(),
                        revision: slot.revision(),
                    })
            })
            .collect()
    }

    /// A heartbeat: touches the renewal time of a known instance (not a change), or
    /// registers an unknown one (a change; this heals a registry that lost data).
    /// Returns `true` when it registered.
    pub fn renew(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<bool, Error> {
        self.renews(&[service], instance, now)
    }

    /// [`Registry::renew`] for several services at once. All names are checked before
    /// anything is touched. Returns `true` when any of them registered.
    pub fn renews(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<bool, Error> {
        for service in services {
            validate_service_name(service)?;
        }
        instance.validate()?;
        self.counts.renewed(services.len());
        let url = instance.url();
        let mut json: Option<String> = None;
        let mut registered = false;
        for service in services {
            if !self.renew_known(service, &url, None, now) {
                let json = json.get_or_insert_with(|| instance.to_json_with_status(true));
                let mut guard = self.write();
                registered |= guard.upsert(service, &url, json, now, 0, instance.lease_ms()?);
                self.publish(guard);
            }
        }
        Ok(registered)
    }

    /// A heartbeat that registers nothing: renews `instance` in each of `services` where it
    /// is registered, and answers the services where it is not (a raft leader turns those
    /// into register commands). All names are checked before anything is touched.
    pub fn renew_known_only(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<Vec<String>, Error> {
        for service in services {
            validate_service_name(service)?;
        }
        instance.validate()?;
        self.counts.renewed(services.len());
        let url = instance.url();
        Ok(services
            .iter()
            .filter(|service| !self.renew_known(service, &url, None, now))
            .map(|service| (*service).to_owned())
            .collect())
    }

    /// Renews `url` under `service` if it is registered (and, when `same_json` is given,
    /// encodes to exactly that text, i.e. has the same parameters), under the shared lock.
    /// Returns whether it did.
    fn renew_known(&self, service: &str, url: &str, same_json: Option<&str>, now: u64) -> bool {
        let state = self.read();
        let Some(slot) = state.services.get(service).and_then(|svc| svc.instances.get(url)) else {
            return false;
        };
        if same_json.is_some_and(|json| *slot.json != *json) {
            return false;
        }
        slot.renew(now);
        true
    }

    /// The instances of `service` in registration order; empty for an unknown service.
    pub fn find_all(&self, service: &str) -> Vec<InstanceMeta> {
        match self.view(service) {
            Some(view) => view.slots.iter().filter_map(|s| s.meta()).collect(),
            None => Vec::new(),
        }
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

    fn view(&self, service: &str) -> Option<Arc<View>> {
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
                .instances
                .get(url.as_str())
                .is_some_and(|slot| svc.expired(slot, now, ttl_ms, &self.leases));
            if !still_expired {
                continue;
            }
            let Some(slot) = svc.instances.remove(url.as_str()) else {
                continue;
            };
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
            for slot in svc.instances.values() {
                slot.renew(now);
            }
        }
        self.publish_all(state);
        version
    }

    /// Collects one reference per service under the shared lock: the registry version and,
    /// per service sorted by name, its version and current view.
    ///
    /// Building a view costs one reference count per instance. So that a snapshot taken
    /// after many changes (all views dropped) does not do that for every instance while
    /// writers wait, a first pass builds the missing views one service at a time, each
    /// under its own short hold of the lock; the consistent pass then finds them built,
    /// except for services changed in between.
    fn views(&self) -> (u64, Vec<ServiceView>) {
        let (version, services, ()) = self.views_and(|_| ());
        (version, services)
    }

    /// [`Registry::views`], plus what `also` reads of the state in the same hold of the
    /// lock.
    fn views_and<T>(&self, also: impl FnOnce(&State) -> T) -> (u64, Vec<ServiceView>, T) {
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
        let mut out = match changed {
            None => write_state_json(&services, version, false),
            Some(changed) => {
                let delta: Vec<ServiceView> = services
                    .into_iter()
                    .filter(|(name, _, _)| changed.contains(name))
                    .collect();
                let mut out = write_state_json(&delta, version, false);
                out.pop();
                out.extend_from_slice(b",\"SINCE\":");
                write_number(&mut out, since.min(version));
                out.push(b'}');
                out
            }
        };
        out.pop();
        out.extend_from_slice(b",\"CHECKSUM\":\"");
        out.extend_from_slice(checksum.as_bytes());
        out.extend_from_slice(b"\"}");
        out
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
                let key = format!("{name}@{}", slot.url);
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

    /// The snapshot's JSON in the seed's form (docs/spec.md §5), written straight from the stored
    /// instance texts: the same document as encoding [`Registry::snapshot`] (services in
    /// name order, instances in registration order) without `REVISIONS`, and without
    /// building the copy. Like `snapshot`, it holds the lock only to collect one reference
    /// per service.
    pub fn snapshot_json(&self) -> Vec<u8> {
        self.write_snapshot_json(false)
    }

    /// [`Registry::snapshot_json`] plus the `REVISIONS` of a raft registry: the whole
    /// replicated state, as a raft snapshot carries it. Equal to encoding
    /// [`Registry::snapshot`].
    pub fn snapshot_json_with_revisions(&self) -> Vec<u8> {
        self.write_snapshot_json(true)
    }

    fn write_snapshot_json(&self, revisions: bool) -> Vec<u8> {
        let (version, services) = self.views();
        write_state_json(&services, version, revisions)
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

/// The seed's snapshot document of `services` at `version` (with `REVISIONS` when
/// asked), written from the stored instance texts.
fn write_state_json(services: &[ServiceView], version: u64, revisions: bool) -> Vec<u8> {
    let instances: usize = services.iter().map(|(_, _, v)| v.slots.len()).sum();
    let text: usize = services
        .iter()
        .flat_map(|(_, _, v)| v.slots.iter().map(|s| s.json.len() + s.url.len()))
        .sum();
    let mut out = Vec::with_capacity(64 + text + instances * 80);
    out.extend_from_slice(b"{\"REGISTRY\":{");
    for (i, (name, _, view)) in services.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(&mut out, name);
        out.push(b':');
        view.write_list(&mut out);
    }
    out.extend_from_slice(b"},\"VERSIONS\":{");
    for (i, (name, svc_version, _)) in services.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(&mut out, name);
        out.push(b':');
        write_number(&mut out, *svc_version);
    }
    out.extend_from_slice(b"},\"TIMESTAMPS\":");
    write_instance_map(&mut out, services, |slot| Some(slot.renewed()));
    if revisions {
        out.extend_from_slice(b",\"REVISIONS\":");
        write_instance_map(&mut out, services, |slot| Some(slot.revision()).filter(|r| *r != 0));
    }
    out.extend_from_slice(b",\"version\":");
    write_number(&mut out, version);
    out.push(b'}');
    out
}

impl Registry {
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
            check_instance(name, instance)?;
            // One buffer for `name@url`, whose tail is the url.
            key.clear();
            key.push_str(name);
            key.push('@');
            instance.write_url(&mut key);
            let url: Arc<str> = Arc::from(&key[name.len() + 1..]);
            let renewed = snapshot.timestamps.get(key.as_str()).copied().unwrap_or(now);
            let revision = snapshot.revisions.get(key.as_str()).copied().unwrap_or(0);
            json.clear();
            instance.write_json_with_status(true, &mut json);
            let text: Box<str> = String::from_utf8_lossy(&json).into();
            if svc
                .instances
                .insert(url.clone(), Slot::new(text, url.clone(), renewed, revision))
                .is_some()
            {
                return Err(listed_twice(name, instance));
            }
            svc.set_lease(&url, instance.lease_ms()?);
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

/// Appends `{"service@url": n, …}` for every instance of `services` that `value` gives a
/// number for, service by service in registration order.
fn write_instance_map(out: &mut Vec<u8>, services: &[ServiceView], value: impl Fn(&Slot) -> Option<u64>) {
    out.push(b'{');
    let mut key = String::new();
    let mut first = true;
    for (name, _, view) in services {
        for slot in &view.slots {
            let Some(n) = value(slot) else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            key.clear();
            key.push_str(name);
            key.push('@');
            key.push_str(&slot.url);
            write_json_str(out, &key);
            out.push(b':');
            write_number(out, n);
        }
    }
    out.push(b'}');
}

/// Appends `n` in decimal, without allocating.
fn write_number(out: &mut Vec<u8>, n: u64) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// Appends `s` as a JSON string.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn answer(instance: &InstanceMeta, status: bool) -> InstanceMeta {
    let mut meta = instance.clone();
    meta.status = status;
    meta
}
