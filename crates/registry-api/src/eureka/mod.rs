//! Eureka REST v2 (`/eureka/apps/...`, also `/eureka/v2/apps/...`): a view of the same
//! registry for Eureka clients (`py-eureka-client`, `eureka-js-client`), mapped as
//! docs/spec.md §6.2 says. By job: `instance` (what a client sends → a registry instance,
//! and back as a Eureka instance object), `view` (what was answered last, and the deltas),
//! `encoding` (JSON or XML), `handlers` (the endpoints).

mod encoding;
mod handlers;
mod instance;
#[cfg(test)]
mod tests;
mod view;

pub(crate) use handlers::eureka;
pub(crate) use view::EurekaView;
