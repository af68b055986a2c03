//! The endpoints a cluster mode serves itself, beyond the API every mode shares: the mode
//! lists them ([`crate::Coordinator::routes`]) and answers them
//! ([`crate::Coordinator::serve_route`]); the API routes, guards, meters and relays them
//! without knowing what they are.

use bytes::Bytes;

/// One endpoint of a cluster mode, e.g. raft's `/raft/append` or `/cluster/join`.
///
/// Every such endpoint is a node-to-node or operator call: with a cluster token set, it
/// needs that token. It answers GET and POST, 200 with the JSON the mode returns, and an
/// error as the API answers any [`crate::CoordinatorError`]. When the mode answers
/// [`crate::CoordinatorError::NotLeader`] with a leader, the API relays the request there
/// (once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeRoute {
    /// The path, which is also the endpoint's name in metrics.
    pub path: &'static str,
    /// Query parameters the call needs, decoded and handed over in this order; a missing
    /// one is a 400 before the mode is asked.
    pub params: &'static [&'static str],
    /// The body may be as large as a peer's (a raft snapshot), not a client's.
    pub peer_body: bool,
    /// The call waits on purpose (a follower's long poll): left out of the latency
    /// histogram.
    pub long_poll: bool,
}

/// A call to a [`ModeRoute`], as the API hands it over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteCall {
    /// The values of the route's `params`, in its order.
    pub params: Vec<String>,
    /// The request body, read within the route's limit.
    pub body: Bytes,
}
