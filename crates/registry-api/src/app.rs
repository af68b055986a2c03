use std::sync::Arc;
use std::time::Duration;

use registry_cluster::Coordinator;
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
    pub(crate) cluster: Arc<dyn Coordinator>,
    pub(crate) invoker: Arc<dyn HttpInvoker>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
}

impl App {
    /// The API of one node: `cluster` (whichever mode runs, behind the seam; it holds the
    /// registry), the client used to forward writes, the clock that stamps renewals, and
    /// the limits on clients.
    pub fn new(
        cluster: Arc<dyn Coordinator>,
        invoker: Arc<dyn HttpInvoker>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
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

/// The largest node-to-node call accepted (`/raft/...`): a raft snapshot of a large
/// registry travels in one call (100k instances are about 30 MB).
pub(crate) const PEER_MAX_BODY: usize = 512 * 1024 * 1024;

impl Limits {
    /// These limits for a node-to-node call: a larger body, more time for it.
    pub(crate) fn for_peers(&self) -> Limits {
        Limits {
            max_body: PEER_MAX_BODY,
            body_timeout: self.body_timeout.max(std::time::Duration::from_secs(60)),
            ..*self
        }
    }
}
