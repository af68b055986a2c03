//! The Nacos open API v1, naming (`/nacos/v1/ns/...`): a view of the same registry for
//! Nacos clients (`nacos-sdk-python` 0.1.x, the `nacos` npm package), mapped as
//! docs/spec.md §6.1 says. By job: `params` (query and form), `names` (Nacos service →
//! registry service), `instance` (what a client sends → a registry instance, and back as a
//! host), `cache` (encoded host lists per version), `handlers` (the endpoints).

mod cache;
mod handlers;
mod instance;
mod names;
mod params;
#[cfg(test)]
mod tests;

pub(crate) use cache::{encode_hosts, NacosCache};
pub(crate) use handlers::nacos;
pub(crate) use instance::{Described, WireInstance};
pub(crate) use names::{naming_resource, service_page, NacosService, DEFAULT_GROUP};
pub(crate) use params::{number, Params};
