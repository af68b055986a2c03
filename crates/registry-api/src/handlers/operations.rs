//! What operators and their tools call: `/metrics`, `/health`, `/ready`, the web console
//! at `/ui`, and the overviews it reads, `/services` and `/instances`.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_core::{InstanceMeta, ServiceSummary};
use serde::Serialize;

use crate::answer::{json, ok_json, typed, with_version};
use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::metrics::gauge;
use crate::request::ReadQuery;

type Answer = Result<Response<Body>, ApiError>;

/// The content type of the OpenMetrics text the Prometheus client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The console: one page, its script and style inline, no request leaves this node.
const CONSOLE: &str = include_str!("../ui/console.html");

/// `GET /metrics` → every metric, read now.
pub(crate) async fn metrics(app: &App) -> Answer {
    let status = app.cluster.status().await;
    let stats = app.registry().stats();
    let configs = app.registry().configs();
    let ((count, bytes), revision) = (configs.size(), configs.revision());
    let text = app.metrics.encode(&stats, &status, app.watch.waiting(), |scrape| {
        scrape.register(
            "maregistry_configs",
            "Configs stored, all namespaces",
            gauge(count as u64),
        );
        scrape.register(
            "maregistry_config_bytes",
            "Bytes of the configs' keys and fields (contents included)",
            gauge(bytes as u64),
        );
        scrape.register(
            "maregistry_config_revision",
            "The config store's revision: every publish and removal moves it up by one",
            gauge(revision),
        );
        for facade in app.facades() {
            facade.metrics(scrape);
        }
        if let Some(guard) = &app.auth.guard {
            access_series(scrape, app, guard);
        }
    });
    Ok(typed(StatusCode::OK, Bytes::from(text), OPENMETRICS))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
}

/// `GET /health` → 200 while the process serves; 503 naming the cause once the node can
/// no longer do its job at all (raft's engine or storage failed; the process then exits).
pub(crate) fn health(app: &App) -> Response<Body> {
    match app.cluster.failure() {
        None => ok_json(&Health {
            status: "up",
            cause: None,
        }),
        Some(cause) => {
            let body = serde_json::to_vec(&Health {
                status: "down",
                cause: Some(cause),
            })
            .unwrap_or_default();
            json(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(body))
        }
    }
}

#[derive(Serialize)]
struct Ready<'a> {
    ready: bool,
    mode: &'a str,
    role: &'a str,
    leader: Option<&'a str>,
}

/// `GET /ready` → 200 when this node can do its job (a leader is known; in raft mode this
/// node has also applied the committed log), else 503 saying why.
pub(crate) async fn ready(app: &App) -> Answer {
    let status = app.cluster.status().await;
    if let Some(why) = status.not_ready() {
        return Err(ApiError::NotReady(why));
    }
    Ok(ok_json(&Ready {
        ready: true,
        mode: status.mode.name(),
        role: status.standing.name(),
        leader: status.leader.as_deref(),
    }))
}

/// `GET /ui` → the web console.
pub(crate) fn console(app: &App) -> Response<Body> {
    // The facades' own pages, linked from the header.
    let links: String = app
        .facades()
        .iter()
        .flat_map(|facade| facade.console_pages())
        .map(|page| format!(r#"<a class="page" href="{}">{}</a>"#, page.path, page.label))
        .collect();
    let mut response = typed(
        StatusCode::OK,
        Bytes::from(CONSOLE.replacen("<!--pages-->", &links, 1)),
        "text/html; charset=utf-8",
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Serialize)]
struct Services {
    version: u64,
    services: Vec<ServiceSummary>,
}

/// `GET /services` → `{"version": V, "services": [{"name", "version", "instances"}]}`,
/// sorted by name. With `since=V&wait=D`, a blocking query on the registry version.
pub(crate) async fn services(app: &App, request: Request<Incoming>) -> Answer {
    let blocking = ReadQuery::of(&request).blocking(app.limits.max_wait)?;
    drop(request);
    let registry = app.registry();
    if let Some((since, wait)) = blocking {
        Box::pin(app.watch.wait(&[], since, wait, || registry.registry_version())).await;
    }
    let (version, services) = registry.services();
    Ok(with_version(ok_json(&Services { version, services }), version))
}

#[derive(Serialize)]
struct Instances<'a> {
    service: &'a str,
    version: u64,
    instances: Vec<Renewed<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Renewed<'a> {
    #[serde(flatten)]
    instance: &'a InstanceMeta,
    url: String,
    /// Seconds since the last renewal this node knows of.
    renewed_seconds_ago: f64,
}

/// `GET /instances?service=S` → the service's instances with their parameters and the
/// seconds since each was last renewed (as this node knows: in raft mode heartbeats stay
/// on the leader). With `since=V&wait=D`, a blocking query on the service's version.
pub(crate) async fn instances(app: &App, request: Request<Incoming>) -> Answer {
    let query = ReadQuery::of(&request);
    let service = query.service()?;
    let blocking = query.blocking(app.limits.max_wait)?;
    drop(request);
    let registry = app.registry();
    if let Some((since, wait)) = blocking {
        Box::pin(app.watch.wait(&[&service], since, wait, || registry.version(&service))).await;
    }
    let (version, found) = registry.instances_renewed(&service);
    let now = app.clock.now_ms();
    let instances = found
        .iter()
        .map(|(instance, renewed)| Renewed {
            instance,
            url: instance.url(),
            renewed_seconds_ago: now.saturating_sub(*renewed) as f64 / 1000.0,
        })
        .collect();
    Ok(with_version(
        ok_json(&Instances {
            service: &service,
            version,
            instances,
        }),
        version,
    ))
}

/// With users: how many there are, and the refusals by protocol and reason.
fn access_series(scrape: &mut prometheus_client::registry::Registry, app: &App, guard: &crate::access::Guard) {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    let users = app.registry().identities().read().users.len();
    scrape.register("maregistry_users", "Users, all nodes alike", gauge(users as u64));
    let denials = Family::<[(&'static str, &'static str); 2], Counter>::default();
    for ((protocol, reason), count) in guard.denials() {
        denials
            .get_or_create(&[("protocol", protocol), ("reason", reason)])
            .inc_by(count);
    }
    scrape.register(
        "maregistry_access_denials",
        "Requests and logins refused by this node's access check, by protocol and reason",
        denials,
    );
}
