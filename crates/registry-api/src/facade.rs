//! [`Facade`]: how a protocol family plugs into the server (docs/architecture.md, "Adding a
//! protocol"). A facade is a crate over the gateway: it declares its routes (path
//! prefixes, one entry per endpoint family), answers them, and may observe the registry,
//! add series to `/metrics` and serve a listener of its own. The server names no protocol:
//! it routes, checks access, counts and serves what the binary composed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use registry_core::Observer;
use tokio::net::TcpListener;

use crate::app::App;
use crate::body::Body;

/// A future that completes when the node shuts down.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One endpoint family of a facade: the path prefixes it answers under and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FacadeRoute {
    /// The prefixes it answers. A prefix ending in `/` takes any path that starts with it;
    /// one that does not takes itself and the paths that continue it with `/`.
    pub prefixes: &'static [&'static str],
    /// Its name in metrics (the `endpoint` label) and error answers.
    pub label: &'static str,
}

impl FacadeRoute {
    /// The part of `path` after this route's prefix (without the `/` that follows a prefix
    /// not ending in one), if the path is this route's.
    pub fn rest<'a>(&self, path: &'a str) -> Option<&'a str> {
        self.prefixes.iter().find_map(|prefix| {
            let rest = path.strip_prefix(prefix)?;
            if prefix.ends_with('/') {
                return Some(rest);
            }
            (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
        })
    }
}

/// A protocol family served over the gateway: its routes, their answers, and optionally
/// its change observer, its metrics, its connections and its own listener.
#[async_trait::async_trait]
pub trait Facade: Send + Sync + 'static {
    /// Its name, as `--protocols` lists it.
    fn name(&self) -> &'static str;

    /// Its endpoint families, found after the server's own endpoints. Any method reaches
    /// them; GET is a read, every other method a write.
    fn routes(&self) -> &'static [FacadeRoute];

    /// Answers a request to `routes()[route]`; `rest` is the path after its prefix. Never
    /// fails: a refusal is answered the way the protocol answers one.
    async fn serve(&self, app: &App, route: usize, request: Request<Incoming>, rest: &str) -> Response<Body>;

    /// Told of every change of the registry (pushes, caches), after the observers added
    /// before it.
    fn observer(&self) -> Option<Arc<dyn Observer>> {
        None
    }

    /// Adds its own series to a `/metrics` scrape.
    fn metrics(&self, _scrape: &mut prometheus_client::registry::Registry) {}

    /// The clients connected to its own listener, when it serves one (`/info` and
    /// `/cluster` show them as `grpcConnections`).
    fn connections(&self) -> Option<u64> {
        None
    }

    /// Serves its own listener (bound by the binary) until `shutdown` completes. A facade
    /// without one is never given one.
    async fn serve_listener(
        self: Arc<Self>,
        app: Arc<App>,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> io::Result<()> {
        let _ = (app, listener, shutdown);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the {} protocol serves no listener of its own", self.name()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_with_a_slash_takes_whatever_follows_one_without_takes_a_segment_boundary() {
        let open = FacadeRoute {
            prefixes: &["/p/v1/"],
            label: "/p/v1",
        };
        assert_eq!(open.rest("/p/v1/x/y"), Some("x/y"));
        assert_eq!(open.rest("/p/v1//x"), Some("/x"));
        assert_eq!(open.rest("/p/v1"), None);
        let bounded = FacadeRoute {
            prefixes: &["/a", "/b/v2/a"],
            label: "/a",
        };
        assert_eq!(bounded.rest("/a"), Some(""));
        assert_eq!(bounded.rest("/a//x"), Some("x"));
        assert_eq!(bounded.rest("/b/v2/a/x"), Some("x"));
        assert_eq!(bounded.rest("/ab"), None);
    }
}
