//! The gRPC connections of this node. A connection is a TCP (HTTP/2) connection: its unary
//! calls and its bi-stream are tied together by the transport, as Nacos does, not by
//! anything in the payloads. It is known from the moment it is accepted ([`ConnInfo`]) and
//! registered once it sends `ConnectionSetupRequest` on its bi-stream; from then on it owns
//! the instances it publishes (one set per service, replaced by each registration) and the
//! services it subscribes to, until it ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use registry_core::InstanceMeta;
use tokio::sync::mpsc;

use super::proto::Payload;
use crate::v1::NacosService;

/// What identifies a connection: set when it is accepted, handed to every call on it.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// This node's number for it.
    pub(crate) id: u64,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The `connectionId` the client is told: `<accepted ms>_<ip>_<port>`, as Nacos does.
    pub(crate) label: Arc<str>,
}

/// Where a connection's server-to-client messages go (its bi-stream). A push is one
/// payload shared by every subscriber's queue.
pub(crate) type Outbound = mpsc::Sender<Arc<Payload>>;

/// A subscription of a connection to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    /// The service as the client named it.
    pub(crate) service: NacosService,
    /// The namespace as the client sent it (`public` for the default one).
    pub(crate) namespace: String,
    /// The clusters it asked for, as sent (its cache key).
    pub(crate) clusters: String,
}

/// A registered connection.
pub(crate) struct Connection {
    pub(crate) info: ConnInfo,
    /// The client's `clientVersion` and app, for the console and logs.
    pub(crate) client: String,
    state: Mutex<State>,
    /// Serialises this connection's changes to what it publishes, so that the registry
    /// sees them in the order the client made them.
    pub(crate) writes: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    outbound: Option<Outbound>,
    /// When it last said anything (ms, the node's clock).
    last_active: u64,
    /// A `ClientDetectionRequest` waiting for its answer: its request id and deadline.
    detection: Option<(String, u64)>,
    /// Registry service → the instances this connection publishes in it.
    publishes: HashMap<String, Vec<Arc<InstanceMeta>>>,
    /// How many instances it publishes, all services together: kept as `publishes`
    /// changes, so that the cap is checked without walking every service it publishes in.
    published: usize,
    /// Registry service → its subscription.
    subscriptions: HashMap<String, Subscription>,
}

impl Connection {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection said something at `now`: it is alive.
    pub(crate) fn active(&self, now: u64) {
        let mut state = self.state();
        state.last_active = state.last_active.max(now);
    }

    /// An answer to the pending `ClientDetectionRequest` with `request_id` (or any, when
    /// the id is empty) arrived.
    pub(crate) fn detected(&self, request_id: &str, now: u64) {
        let mut state = self.state();
        if state
            .detection
            .as_ref()
            .is_some_and(|(pending, _)| request_id.is_empty() || pending == request_id)
        {
            state.detection = None;
        }
        state.last_active = state.last_active.max(now);
    }

    /// Its bi-stream, while it has one.
    pub(crate) fn outbound(&self) -> Option<Outbound> {
        self.state().outbound.clone()
    }

    /// What this connection publishes in `service`.
    pub(crate) fn published(&self, service: &str) -> Vec<Arc<InstanceMeta>> {
        self.state().publishes.get(service).cloned().unwrap_or_default()
    }

    /// How many instances it would publish with `replacing` in `service`: what it publishes
    /// elsewhere and those.
    pub(crate) fn published_with(&self, service: &str, replacing: usize) -> usize {
        let state = self.state();
        state.published - state.publishes.get(service).map_or(0, Vec::len) + replacing
    }

    /// How many services it subscribes to, and whether `service` is one.
    pub(crate) fn subscribed(&self, service: &str) -> (usize, bool) {
        let state = self.state();
        (state.subscriptions.len(), state.subscriptions.contains_key(service))
    }

    /// Everything it publishes: (registry service, instance).
    pub(crate) fn all_published(&self) -> Vec<(String, Arc<InstanceMeta>)> {
        let state = self.state();
        state
            .publishes
            .iter()
            .flat_map(|(service, instances)| instances.iter().map(move |i| (service.clone(), i.clone())))
            .collect()
    }

    /// What liveness asks of it at `now`: a detection to send (when idle for
    /// `idle_ms`), its end (an unanswered detection past its deadline), or nothing.
    pub(crate) fn liveness(
        &self,
        now: u64,
        idle_ms: u64,
        timeout_ms: u64,
        next_id: impl FnOnce() -> String,
    ) -> Liveness {
        let mut state = self.state();
        match &state.detection {
            Some((_, deadline)) if now > *deadline => Liveness::Dead,
            Some(_) => Liveness::Fine,
            None if now.saturating_sub(state.last_active) >= idle_ms => {
                let id = next_id();
                state.detection = Some((id.clone(), now + timeout_ms));
                Liveness::Detect(id)
            }
            None => Liveness::Fine,
        }
    }
}

/// What a connection's liveness check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Nothing to do.
    Fine,
    /// Idle: send a `ClientDetectionRequest` with this id.
    Detect(String),
    /// It did not answer in time: end it.
    Dead,
}

/// This node's connections, their subscriptions, and the counts `/metrics` shows.
#[derive(Default)]
pub(crate) struct Connections {
    next_id: AtomicU64,
    registered: RwLock<HashMap<u64, Arc<Connection>>>,
    /// Registry service → (connection → its subscription).
    subscribers: RwLock<HashMap<String, HashMap<u64, Subscription>>>,
    subscriptions: AtomicUsize,
    /// Registry service → instance url → how many registered connections publish it, so
    /// that withdrawing an instance asks one map, not every other connection's list.
    publishers: Mutex<HashMap<String, HashMap<String, usize>>>,
    /// Set when the node shuts down: connections that end then keep their instances (their
    /// clients register them again elsewhere; the leases cover the gap).
    closing: AtomicBool,
}

impl Connections {
    /// A connection from `peer` was accepted at `now` (ms): its identity.
    pub(crate) fn accepted(&self, peer: SocketAddr, now: u64) -> ConnInfo {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        ConnInfo {
            id,
            peer,
            label: Arc::from(format!("{now}_{}_{}", peer.ip(), peer.port())),
        }
    }

    /// Registers the connection `info` (its `ConnectionSetupRequest`), its bi-stream
    /// being `outbound`. A second setup replaces the stream.
    pub(crate) fn setup(&self, info: &ConnInfo, outbound: Outbound, client: String, now: u64) -> Arc<Connection> {
        let mut registered = self.registered.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = registered.get(&info.id) {
            let mut state = existing.state();
            state.outbound = Some(outbound);
            state.last_active = now;
            drop(state);
            return existing.clone();
        }
        let connection = Arc::new(Connection {
            info: info.clone(),
            client,
            state: Mutex::new(State {
                outbound: Some(outbound),
                last_active: now,
                ..State::default()
            }),
            writes: tokio::sync::Mutex::new(()),
        });
        registered.insert(info.id, connection.clone());
        connection
    }

    /// The registered connection `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Connection>> {
        self.registered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Every registered connection.
    pub(crate) fn all(&self) -> Vec<Arc<Connection>> {
        self.registered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Registered connections now.
    pub(crate) fn registered(&self) -> usize {
        self.registered.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Subscriptions now, all connections together.
    pub(crate) fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// Ends the registered connection `id`: it is forgotten with its subscriptions and its
    /// stream is closed; it no longer counts as a publisher of anything. Answers it (with
    /// what it publishes) when it was registered, for the caller to unregister its
    /// instances.
    pub(crate) fn close(&self, id: u64) -> Option<Arc<Connection>> {
        let connection = self
            .registered
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)?;
        let services: Vec<String> = {
            let mut state = connection.state();
            state.outbound = None;
            let mut publishers = self.publishers();
            for (service, instances) in &state.publishes {
                count_out(&mut publishers, service, instances);
            }
            state.subscriptions.keys().cloned().collect()
        };
        let mut subscribers = self.subscribers.write().unwrap_or_else(PoisonError::into_inner);
        for service in services {
            if let Some(of_service) = subscribers.get_mut(&service) {
                if of_service.remove(&id).is_some() {
                    self.subscriptions.fetch_sub(1, Ordering::Relaxed);
                }
                if of_service.is_empty() {
                    subscribers.remove(&service);
                }
            }
        }
        Some(connection)
    }

    /// `connection` subscribes to `service` (a registry service) as `subscription`.
    pub(crate) fn subscribe(&self, connection: &Connection, service: &str, subscription: Subscription) {
        connection
            .state()
            .subscriptions
            .insert(service.to_owned(), subscription.clone());
        let mut subscribers = self.subscribers.write().unwrap_or_else(PoisonError::into_inner);
        if subscribers
            .entry(service.to_owned())
            .or_default()
            .insert(connection.info.id, subscription)
            .is_none()
        {
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `connection` no longer subscribes to `service`.
    pub(crate) fn unsubscribe(&self, connection: &Connection, service: &str) {
        connection.state().subscriptions.remove(service);
        let mut subscribers = self.subscribers.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(of_service) = subscribers.get_mut(service) {
            if of_service.remove(&connection.info.id).is_some() {
                self.subscriptions.fetch_sub(1, Ordering::Relaxed);
            }
            if of_service.is_empty() {
                subscribers.remove(service);
            }
        }
    }

    /// Whether any connection subscribes to `service`.
    pub(crate) fn is_subscribed(&self, service: &str) -> bool {
        self.subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(service)
    }

    /// Every subscribed registry service.
    pub(crate) fn subscribed_services(&self) -> Vec<String> {
        self.subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// The subscribers of `service`: each connection with its subscription.
    pub(crate) fn subscribers_of(&self, service: &str) -> Vec<(Arc<Connection>, Subscription)> {
        let ids: Vec<(u64, Subscription)> = match self
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
        {
            Some(of_service) => of_service.iter().map(|(id, s)| (*id, s.clone())).collect(),
            None => return Vec::new(),
        };
        ids.into_iter()
            .filter_map(|(id, subscription)| Some((self.get(id)?, subscription)))
            .collect()
    }

    fn publishers(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, usize>>> {
        self.publishers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the registered `connection` publishes exactly `instances` in `service`
    /// (none: it publishes nothing there). Nothing, once it was closed.
    pub(crate) fn set_published(&self, connection: &Connection, service: &str, instances: Vec<Arc<InstanceMeta>>) {
        let mut state = connection.state();
        // Checked under its state, which `close` takes after removing it.
        if self.get(connection.info.id).is_none() {
            return;
        }
        let mut publishers = self.publishers();
        if let Some(old) = state.publishes.get(service) {
            count_out(&mut publishers, service, old);
            state.published -= old.len();
        }
        count_in(&mut publishers, service, &instances);
        state.published += instances.len();
        if instances.is_empty() {
            state.publishes.remove(service);
        } else {
            state.publishes.insert(service.to_owned(), instances);
        }
    }

    /// How many registered connections publish the instance at `url` in `service`.
    pub(crate) fn publishers_of(&self, service: &str, url: &str) -> usize {
        self.publishers()
            .get(service)
            .and_then(|of_service| of_service.get(url))
            .copied()
            .unwrap_or(0)
    }

    /// The node is shutting down.
    pub(crate) fn start_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Whether the node is shutting down.
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }
}

/// Counts one connection in as a publisher of `instances` in `service`.
fn count_in(publishers: &mut HashMap<String, HashMap<String, usize>>, service: &str, instances: &[Arc<InstanceMeta>]) {
    if instances.is_empty() {
        return;
    }
    let of_service = publishers.entry(service.to_owned()).or_default();
    for instance in instances {
        *of_service.entry(instance.url()).or_default() += 1;
    }
}

/// Counts one connection out as a publisher of `instances` in `service`.
fn count_out(publishers: &mut HashMap<String, HashMap<String, usize>>, service: &str, instances: &[Arc<InstanceMeta>]) {
    let Some(of_service) = publishers.get_mut(service) else {
        return;
    };
    for instance in instances {
        let url = instance.url();
        if let Some(count) = of_service.get_mut(&url) {
            *count -= 1;
            if *count == 0 {
                of_service.remove(&url);
            }
        }
    }
    if of_service.is_empty() {
        publishers.remove(service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> NacosService {
        NacosService::named(None, "DEFAULT_GROUP", name).unwrap()
    }

    fn subscription(name: &str) -> Subscription {
        Subscription {
            service: service(name),
            namespace: "public".to_owned(),
            clusters: String::new(),
        }
    }

    #[test]
    fn a_connection_is_known_by_its_transport_and_registered_by_its_setup() {
        let connections = Connections::default();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let a = connections.accepted(peer, 1_000);
        let b = connections.accepted(peer, 2_000);
        assert_ne!(a.id, b.id);
        assert_eq!(&*a.label, "1000_127.0.0.1_40000");
        assert!(connections.get(a.id).is_none(), "not registered before its setup");
        let (tx, _rx) = mpsc::channel(1);
        let conn = connections.setup(&a, tx, "test".into(), 1_000);
        assert!(connections.get(a.id).is_some());
        connections.subscribe(&conn, "svc", subscription("svc"));
        assert!(connections.is_subscribed("svc"));
        assert_eq!(connections.subscriptions(), 1);
        let instance = InstanceMeta::new("http", "10.0.0.1", 1, "").unwrap();
        connections.set_published(&conn, "svc", vec![Arc::new(instance.clone())]);
        assert_eq!(connections.publishers_of("svc", &instance.url()), 1);
        let (tx, _rx) = mpsc::channel(1);
        let other = connections.setup(&b, tx, "test".into(), 2_000);
        connections.set_published(&other, "svc", vec![Arc::new(instance.clone())]);
        assert_eq!(connections.publishers_of("svc", &instance.url()), 2);
        connections.set_published(&other, "svc", Vec::new());
        assert_eq!(connections.publishers_of("svc", &instance.url()), 1, "withdrawn by one");
        let closed = connections.close(a.id).expect("it was registered");
        assert_eq!(
            closed.all_published(),
            vec![("svc".to_owned(), Arc::new(instance.clone()))]
        );
        assert_eq!(
            connections.publishers_of("svc", &instance.url()),
            0,
            "a closed connection publishes nothing"
        );
        assert!(!connections.is_subscribed("svc"));
        assert_eq!(connections.subscriptions(), 0);
        assert!(connections.close(a.id).is_none(), "once");
    }

    #[test]
    fn an_idle_connection_is_detected_and_ended_when_it_does_not_answer() {
        let connections = Connections::default();
        let info = connections.accepted("127.0.0.1:1".parse().unwrap(), 0);
        let (tx, _rx) = mpsc::channel(1);
        let conn = connections.setup(&info, tx, String::new(), 0);
        let id = || "d1".to_owned();
        assert_eq!(conn.liveness(10_000, 20_000, 3_000, id), Liveness::Fine);
        assert_eq!(conn.liveness(20_000, 20_000, 3_000, id), Liveness::Detect("d1".into()));
        assert_eq!(
            conn.liveness(22_000, 20_000, 3_000, id),
            Liveness::Fine,
            "waiting for the answer"
        );
        conn.detected("d1", 22_500);
        assert_eq!(conn.liveness(23_500, 20_000, 3_000, id), Liveness::Fine, "answered");
        assert_eq!(conn.liveness(42_500, 20_000, 3_000, id), Liveness::Detect("d1".into()));
        assert_eq!(conn.liveness(45_501, 20_000, 3_000, id), Liveness::Dead);
    }
}
