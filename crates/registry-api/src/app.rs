use std::sync::Arc;

use registry_cluster::Cluster;
use registry_core::{Clock, Registry};
use registry_http::HttpInvoker;

/// What every handler needs, shared by all connections.
pub struct App {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) invoker: Arc<dyn HttpInvoker>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_body: usize,
}

impl App {
    /// The API of one node: `cluster` (which holds the registry), the client used to
    /// forward writes, the clock that stamps renewals, and the largest request body
    /// accepted in bytes.
    pub fn new(cluster: Arc<Cluster>, invoker: Arc<dyn HttpInvoker>, clock: Arc<dyn Clock>, max_body: usize) -> Self {
        App {
            cluster,
            invoker,
            clock,
            max_body,
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.cluster.registry()
    }
}
