//! [`Nacos2`]: what this node keeps for its Nacos gRPC clients, shared by the listener, its
//! tasks and `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::connections::Connections;
use super::hub::PushHub;
use super::service_info::RefTimes;

/// How the gRPC facade treats its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcSettings {
    /// The lease of the instances a connection publishes. The node holding the connection
    /// renews them (every third of it) and unregisters them when the connection ends;
    /// if the node dies, the lease runs out and the cluster evicts them.
    pub lease: Duration,
    /// A connection silent this long is sent a `ClientDetectionRequest`...
    pub detect_idle: Duration,
    /// ...and ended when it does not answer within this.
    pub detect_timeout: Duration,
    /// How many connections it serves at once (its part of the process's connection
    /// budget); more are closed at once.
    pub max_connections: usize,
    /// How many instances one connection may publish, all services together.
    pub max_instances: usize,
    /// How many services one connection may subscribe to.
    pub max_subscriptions: usize,
}

impl Default for GrpcSettings {
    /// Nacos's times: detection after 20 s of silence, 3 s to answer; a 20 s lease.
    fn default() -> Self {
        GrpcSettings {
            lease: Duration::from_secs(20),
            detect_idle: Duration::from_secs(20),
            detect_timeout: Duration::from_secs(3),
            max_connections: 512,
            max_instances: 10_000,
            max_subscriptions: 10_000,
        }
    }
}

/// The gRPC facade's state.
pub(crate) struct Nacos2 {
    pub(crate) settings: GrpcSettings,
    pub(crate) connections: Arc<Connections>,
    pub(crate) hub: Arc<PushHub>,
    pub(crate) ref_times: RefTimes,
    next_request: AtomicU64,
    /// Whether this node serves gRPC (its listener runs).
    serving: AtomicBool,
}

/// What `/metrics` and `/info` show of the gRPC listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GrpcCounts {
    pub(crate) connections: u64,
    pub(crate) subscriptions: u64,
    pub(crate) pushes: u64,
    pub(crate) push_failures: u64,
}

impl Nacos2 {
    pub(crate) fn new(settings: GrpcSettings) -> Nacos2 {
        let connections = Arc::new(Connections::default());
        Nacos2 {
            settings,
            hub: Arc::new(PushHub::new(connections.clone())),
            connections,
            ref_times: RefTimes::default(),
            next_request: AtomicU64::new(0),
            serving: AtomicBool::new(false),
        }
    }

    /// The listener runs.
    pub(crate) fn serve(&self) {
        self.serving.store(true, Ordering::Relaxed);
    }

    /// The gRPC connections this node holds, when it serves gRPC at all (`/info` and
    /// `/cluster` show them then, and keep the seed's fields alone otherwise).
    pub(crate) fn shown_connections(&self) -> Option<u64> {
        self.serving
            .load(Ordering::Relaxed)
            .then(|| self.connections.registered() as u64)
    }

    /// A request id for a message this node sends on a stream: unique on this node, so
    /// unique on every connection.
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The counts now.
    pub(crate) fn counts(&self) -> GrpcCounts {
        let (pushes, push_failures) = self.hub.counts();
        GrpcCounts {
            connections: self.connections.registered() as u64,
            subscriptions: self.connections.subscriptions() as u64,
            pushes,
            push_failures,
        }
    }
}
