//! Who may call what: the tokens a node is configured with, the access level each route
//! needs, and the one check.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::Request;
use registry_http::Token;

use crate::access::Guard;

use crate::error::ApiError;

/// Who may call what. Without tokens (the default) every endpoint is open, as the
/// seed's clients expect.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `--cluster-token`: required on the node-to-node endpoints (`/snapshot?since=`,
    /// `/sl`, a cluster mode's own routes) and on forwarded requests; accepted wherever
    /// the client token is.
    pub cluster: Option<Token>,
    /// `--client-token`: required on writes from clients.
    pub client: Option<Token>,
    /// `--client-token-reads`: the client token is required on reads too.
    pub client_reads: bool,
    /// `--auth-enabled`: users, roles and permissions decide every client's request
    /// (docs/spec.md §9); the client and cluster tokens keep full access.
    pub guard: Option<Arc<Guard>>,
}

impl Auth {
    /// Whether any token is configured (without one, no request is checked).
    pub fn any(&self) -> bool {
        self.cluster.is_some() || self.client.is_some() || self.guard.is_some()
    }

    /// Whether `presented` (a token, however carried) is the client or the cluster token.
    pub fn holds_a_token(&self, presented: &[u8]) -> bool {
        [&self.client, &self.cluster]
            .into_iter()
            .flatten()
            .any(|token| token.is(presented))
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A node-to-node call: the cluster token.
    Node,
    /// A write a follower relayed: the cluster token, or (without one) the client token
    /// the follower passed on.
    ForwardedWrite,
    /// A client's write: the client token (or the cluster token).
    ClientWrite,
    /// A read: open, unless `--client-token-reads`.
    ClientRead,
}

/// Refuses a request without the token its route needs (401).
pub(crate) fn check_access<B>(auth: &Auth, access: Access, request: &Request<B>) -> Result<(), ApiError> {
    let presented = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    auth.check(access, presented)
}

impl Auth {
    /// The one check, for every protocol: refuses `presented` (an `Authorization` value,
    /// however the protocol carried it) when `access` needs a token it is not (401).
    pub fn check(&self, access: Access, presented: Option<&[u8]>) -> Result<(), ApiError> {
        check(self, access, presented)
    }
}

fn check(auth: &Auth, access: Access, presented: Option<&[u8]>) -> Result<(), ApiError> {
    let cluster_ok = || auth.cluster.as_ref().is_some_and(|t| t.accepts(presented));
    let client_ok = || auth.client.as_ref().is_some_and(|t| t.accepts(presented)) || cluster_ok();
    let (needed, ok) = match access {
        Access::Node | Access::ForwardedWrite if auth.cluster.is_some() => ("the cluster token", cluster_ok()),
        Access::Node => return Ok(()),
        // With users, a client's request is decided by who it is and what it touches
        // (`App::authorize`), not here.
        Access::ClientWrite | Access::ClientRead if auth.guard.is_some() => return Ok(()),
        Access::ForwardedWrite | Access::ClientWrite if auth.client.is_some() => ("the client token", client_ok()),
        Access::ClientRead if auth.client.is_some() && auth.client_reads => ("the client token", client_ok()),
        Access::ForwardedWrite | Access::ClientWrite | Access::ClientRead => return Ok(()),
    };
    if ok {
        return Ok(());
    }
    Err(ApiError::Unauthorized(match (presented.is_some(), needed) {
        (false, "the cluster token") => "this endpoint needs the cluster token: Authorization: Bearer <token>",
        (true, "the cluster token") => "the Authorization header does not carry the cluster token",
        (false, _) => "this endpoint needs the client token: Authorization: Bearer <token>",
        (true, _) => "the Authorization header does not carry the client token",
    }))
}
