//! maregistry's Eureka facade (docs/spec.md §6.2): Eureka REST v2 (`/eureka/apps/...`, also
//! `/eureka/v2/apps/...`), a view of the one registry for Eureka clients
//! (`py-eureka-client`, `eureka-js-client`), its writes through the server's gateway.
//!
//! Modules, by job:
//! - `instance` — what a client sends → a registry instance, and back as a Eureka
//!   instance object;
//! - `view` — what was answered last, and the deltas;
//! - `encoding` — JSON or XML, as the client asks;
//! - `handlers` — the endpoints.
//!
//! [`Eureka`] is the facade the binary composes.
#![deny(missing_docs)]

mod encoding;
mod handlers;
mod instance;
#[cfg(test)]
mod tests;
mod view;

use http::{Request, Response};
use hyper::body::Incoming;
use registry_api::{App, Body, Facade, FacadeRoute};

use view::EurekaView;

/// Where Eureka clients find the registry (the second is Netflix's default path).
const ROUTES: &[FacadeRoute] = &[FacadeRoute {
    prefixes: &["/eureka/apps", "/eureka/v2/apps"],
    label: "/eureka/apps",
    long_poll: false,
    login: false,
}];

/// The Eureka facade: what its view last answered, for the deltas.
#[derive(Default)]
pub struct Eureka {
    view: EurekaView,
}

#[async_trait::async_trait]
impl Facade for Eureka {
    fn name(&self) -> &'static str {
        "eureka"
    }

    fn routes(&self) -> &'static [FacadeRoute] {
        ROUTES
    }

    async fn serve(&self, app: &App, _route: usize, request: Request<Incoming>, rest: &str) -> Response<Body> {
        handlers::eureka(app, &self.view, request, rest).await
    }
}
