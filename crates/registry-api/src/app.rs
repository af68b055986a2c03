use std::sync::Arc;
use std::time::Duration;

use registry_cluster::Cluster;
use registry_core::{Clock, Registry};
use registry_http::HttpInvoker;

/// What a client may take of a node: bounds that keep one slow or greedy client from
/// exhausting memory, file descriptors or connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body accepted, in bytes (413 above).
    pub max_body: usize,
    /// How long a request body may take to arrive, from the handler's first read to its
    /// last byte (408 after).
    pub body_timeout: Duration,
    /// How many connections are served at once. A connection over the limit is still
    /// accepted, answered 503 and closed, so the listener never stalls.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// What every handler needs, shared by all connections.
pub struct App {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) invoker: Arc<dyn HttpInvoker>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
}

impl App {
    /// The API of one node: `cluster` (which holds the registry), the client used to
    /// forward writes, the clock that stamps renewals, and the limits on clients.
    pub fn new(cluster: Arc<Cluster>, invoker: Arc<dyn HttpInvoker>, clock: Arc<dyn Clock>, limits: Limits) -> Self {
        App {
            cluster,
            invoker,
            clock,
            limits,
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.cluster.registry()
    }
}
