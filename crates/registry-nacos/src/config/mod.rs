//! The Nacos config service (docs/spec.md §8) over the registry's config store: the v1
//! HTTP API (`/nacos/v1/cs/...`: configs, the listener long poll, history, export and
//! import), the v2 open API (`/nacos/v2/cs/config`), and what the gRPC requests share with
//! them. Writes go through the gateway as every protocol's do; reads come from this node's
//! copy of the store; listeners are woken by the store's change observer.
//!
//! By job: `names` (Nacos's rules for data ids, groups and tenants), `listen` (long polls
//! and gRPC listens, woken on change), `v1` (the config endpoints), `poll` (the listener
//! long poll), `history`, `transfer` (Nacos's zip layouts), `v2` (the open API), `http`
//! (what the HTTP answers share).

mod history;
mod http;
mod listen;
mod names;
mod poll;
mod transfer;
mod v1;
mod v2;

use registry_api::{ApiError, App, ConfigPublish, Op, Origin};
use registry_core::{Cas, ConfigFields, ConfigKey, ConfigOutcome};

pub(crate) use http::{form, page, refusal};
pub(crate) use listen::{ConfigListeners, ToPush};
pub(crate) use names::{named, Named};
pub(crate) use poll::long_poll;
pub(crate) use v1::serve_v1;
pub(crate) use v2::serve_v2;

/// The config service's series in a `/metrics` scrape.
pub(crate) fn metrics(listeners: &ConfigListeners, r: &mut prometheus_client::registry::Registry) {
    use prometheus_client::metrics::counter::ConstCounter;
    use std::sync::atomic::Ordering::Relaxed;
    let (polls, listens) = listeners.listening();
    let counts = listeners.counts();
    r.register(
        "maregistry_config_publishes",
        "Config publishes through this node's Nacos APIs (v1, v2, gRPC, imports), applied or refused by CAS",
        ConstCounter::new(counts.publishes.load(Relaxed)),
    );
    r.register(
        "maregistry_config_long_polls",
        "Nacos v1 config long polls waiting on this node",
        registry_api::gauge(polls as u64),
    );
    r.register(
        "maregistry_config_listens",
        "Configs listened to by this node's gRPC connections, one per connection and config",
        registry_api::gauge(listens as u64),
    );
    r.register(
        "maregistry_config_pushes",
        "ConfigChangeNotifyRequests put on listening connections' streams",
        ConstCounter::new(counts.pushes.load(Relaxed)),
    );
    r.register(
        "maregistry_config_push_failures",
        "ConfigChangeNotifyRequests that found a stream full or closed (each retried, then the connection ended)",
        ConstCounter::new(counts.push_failures.load(Relaxed)),
    );
    r.register(
        "maregistry_config_long_polls_answered",
        "Nacos v1 config long polls answered, with changes or at their timeout",
        ConstCounter::new(counts.polls_answered.load(Relaxed)),
    );
}

/// The console's configs page (`/ui/configs`): static, it reads and writes through the v1
/// API.
pub(crate) fn console_page() -> ::http::Response<registry_api::Body> {
    let mut response = registry_api::answer::typed(
        ::http::StatusCode::OK,
        bytes::Bytes::from_static(include_str!("console.html").as_bytes()),
        "text/html; charset=utf-8",
    );
    response.headers_mut().insert(
        ::http::header::CACHE_CONTROL,
        ::http::HeaderValue::from_static("no-cache"),
    );
    response
}

/// The content types Nacos knows (`ConfigType`); any other becomes `text`.
const TYPES: &[&str] = &["text", "json", "xml", "yaml", "html", "properties", "toml"];

/// `kind` if Nacos knows it, else `text`.
pub(crate) fn known_type(kind: &str) -> String {
    let kind = kind.trim().to_ascii_lowercase();
    if TYPES.contains(&kind.as_str()) {
        kind
    } else {
        "text".to_owned()
    }
}

/// What a publish or removal did, as every Nacos API answers it.
pub(crate) enum Written {
    /// Applied (a removal of a missing config too: Nacos answers it the same).
    Done,
    /// The `casMd5` did not match the config (or it does not exist).
    CasFailed,
}

/// Publishes `fields` at `key` through the gateway, if `cas` holds.
pub(crate) async fn publish(
    app: &App,
    listeners: &ConfigListeners,
    origin: &Origin,
    key: ConfigKey,
    fields: ConfigFields,
    cas: Option<Cas>,
) -> Result<Written, ApiError> {
    let outcome = app
        .write(origin, Op::Publish(Box::new(ConfigPublish { key, fields, cas })))
        .await?;
    listeners
        .counts()
        .publishes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    written(outcome.configs.first().copied())
}

/// Removes the config at `key` through the gateway, if `cas` holds.
pub(crate) async fn remove(app: &App, origin: &Origin, key: ConfigKey, cas: Option<Cas>) -> Result<Written, ApiError> {
    let outcome = app.write(origin, Op::Remove(Box::new((key, cas)))).await?;
    written(outcome.configs.first().copied())
}

fn written(outcome: Option<ConfigOutcome>) -> Result<Written, ApiError> {
    match outcome {
        Some(ConfigOutcome::Written { .. } | ConfigOutcome::Absent | ConfigOutcome::Held) => Ok(Written::Done),
        // Only a transaction's commands are rolled back; a Nacos write is never one.
        Some(ConfigOutcome::CasFailed | ConfigOutcome::RolledBack) => Ok(Written::CasFailed),
        // A leader of an older build applies the write and answers no outcome.
        None => Err(ApiError::Indeterminate(
            "the leader answered the config write without its outcome; it may or may not have been applied".to_owned(),
        )),
    }
}

/// Nacos's message for a refused compare-and-set.
pub(crate) const CAS_FAILED: &str = "Cas publish fail, server md5 may have changed.";

/// Nacos's answer to a config that does not exist.
pub(crate) const NOT_FOUND: &str = "config data not exist";

/// Gray (beta) publishing and tag isolation are not served.
pub(crate) const NO_BETA: &str =
    "beta (gray) publishing is not served by this registry: publish without betaIps (docs/api.md)";
/// See [`NO_BETA`].
pub(crate) const NO_TAG: &str = "tag isolation is not served by this registry: use namespaces or groups (docs/api.md)";
