//! What a client may take of a node: bounds that keep one slow or greedy client from
//! exhausting memory, file descriptors or connections. Every part of the API reads them
//! from here.

use std::time::Duration;

/// The limits on clients, set by the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body accepted, in bytes (413 above).
    pub max_body: usize,
    /// How long a request body may take to arrive, from the handler's first read to its
    /// last byte (408 after).
    pub body_timeout: Duration,
    /// How many connections the HTTP listener serves at once (its part of the process's
    /// connection budget; the gRPC listener has the rest). A connection over the limit is
    /// still accepted, answered 503 and closed, so the listener never stalls.
    pub max_connections: usize,
    /// How many connections over the limit are answered 503 at once; beyond that they are
    /// closed unanswered, so that refusing cannot itself exhaust file descriptors (they
    /// come out of the descriptors the budget keeps back).
    pub max_refusals: usize,
    /// How long a connection may take over its TLS handshake; on the gRPC listener, also
    /// how long a connection may stay without a set-up protocol connection.
    pub handshake_timeout: Duration,
    /// How long an HTTP connection may wait for a request (and take over its head) before
    /// it is closed.
    pub idle_timeout: Duration,
    /// The longest a blocking query (`since=V&wait=D`) waits; longer waits are cut to it.
    pub max_wait: Duration,
    /// The most operations one `/batch` may hold.
    pub max_batch: usize,
    /// The largest config content accepted, in bytes (413 above).
    pub config_max_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_refusals: 64,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(300),
            max_batch: 1000,
            config_max_size: 1024 * 1024,
        }
    }
}

/// The largest node-to-node call accepted (a cluster mode's routes with peer bodies): a
/// raft snapshot of a large registry travels in one call (100k instances are about 30 MB).
pub(crate) const PEER_MAX_BODY: usize = 512 * 1024 * 1024;

/// The longest request target (path and query) accepted, in bytes; longer is a 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The longest request target accepted under [`LONG_URI_PREFIX`], in bytes: the Nacos
/// 1.x Python client sends a config's content in the query string (Nacos itself allows
/// 512 KiB); hyper refuses targets of 64 KiB and more itself.
pub const MAX_CONFIG_URI_BYTES: usize = 64 * 1024 - 2;

/// The paths whose request targets may be as long as [`MAX_CONFIG_URI_BYTES`].
pub const LONG_URI_PREFIX: &str = "/nacos/v1/cs/";

/// The largest header section accepted (names, values and their separators), in bytes;
/// larger is a 431. Both limits sit well below hyper's own (a 64 KiB target, a 408 KiB
/// head, 100 header lines), so that an oversized request gets the JSON error of
/// docs/spec.md §3.4 from us rather than hyper's empty one.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

impl Limits {
    /// These limits for a node-to-node call: a larger body, more time for it.
    pub(crate) fn for_peers(&self) -> Limits {
        Limits {
            max_body: PEER_MAX_BODY,
            body_timeout: self.body_timeout.max(Duration::from_secs(60)),
            ..*self
        }
    }

    /// These limits for a config write: a body that holds the largest content, escaped
    /// (a form body may triple it), and its fields.
    pub fn for_configs(&self) -> Limits {
        Limits {
            max_body: self
                .max_body
                .max(self.config_max_size.saturating_mul(3).saturating_add(64 * 1024)),
            ..*self
        }
    }

    /// These limits for a `/batch`: sixteen bodies' worth.
    pub fn for_batches(&self) -> Limits {
        Limits {
            max_body: self.max_body.saturating_mul(16),
            ..*self
        }
    }
}
