//! How maregistry nodes talk to each other over HTTP.
//!
//! Modules:
//! - `invoker` — the [`HttpInvoker`] trait: one required method, [`HttpInvoker::send`],
//!   that answers whatever status the server gave (the API relays a leader's answer
//!   unchanged), and the seed's four calls (`get`, `get_with`, `post`, `post_with`) on
//!   top of it, which treat non-2xx answers as errors. [`get_json`] and [`post_json`]
//!   decode typed answers.
//! - `hyper_client` — [`HyperInvoker`], the implementation on hyper-util's pooled
//!   client: keep-alive pool (16 idle connections per host), connect and read timeouts
//!   (500 ms each by default), a cap on answer size. One instance is shared by the node.
//! - `error` — [`HttpInvokeError`]: url, method, status and a body excerpt when there
//!   is one, and the source error.
//! - [`tls`] — TLS for both ends: the listener's certificate and client CA
//!   ([`tls::ServerTls`]), the peers' CA and this node's certificate ([`tls::PeerTls`]);
//!   checked when loaded, reloaded without a restart.
//! - `token` — [`Token`], a shared secret compared in constant time and never printed, and
//!   [`WithToken`], an invoker that adds it to every call (the cluster token).
//!
//! Callers hold an `Arc<dyn HttpInvoker>`, so tests can route requests to an in-process
//! node or a fake without a socket.
#![deny(missing_docs)]

mod error;
mod hyper_client;
mod invoker;
pub mod tls;
mod token;

pub use error::{ErrorKind, HttpInvokeError};
pub use hyper_client::{HyperInvoker, HyperInvokerConfig};
pub use invoker::{get_json, post_json, HttpInvoker, HttpRequest, HttpResponse};
pub use token::{Token, WithToken};
