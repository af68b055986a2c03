//! The maregistry server, as a library so that tests and examples start real nodes.
//!
//! [`run`] composes the crates through trait objects — the registry, a
//! [`registry_cluster::Cluster`] with an `Arc<dyn Election>`, an `Arc<dyn HttpInvoker>` for
//! talking to peers, an `Arc<dyn Clock>` — starts the background loops (eviction; cluster
//! health and sync when there are peers), serves the API until the shutdown future
//! completes, then stops the loops. [`config`] parses and validates settings.
#![deny(missing_docs)]

pub mod config;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use registry_api::App;
use registry_cluster::{
    normalize_url, run_evictor, Cluster, Coordinator, MonotonicClock, ServerHealth, SnapshotCoordinator,
};
use registry_core::{Clock, Registry};
use registry_http::{HttpInvoker, HyperInvoker, HyperInvokerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;

/// Runs one node on `listener` until `shutdown` completes: stops accepting, finishes
/// requests in flight, stops the background loops, and returns.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let local = listener.local_addr().context("reading the bound address")?;
    let my_url = match &config.my_url {
        Some(url) => url.clone(),
        None => normalize_url(&format!("http://{local}"))?,
    };
    let size = config.cluster_size(&my_url);
    let election = config.election.build(size);
    let registry = Arc::new(Registry::new());
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let invoker: Arc<dyn HttpInvoker> =
        Arc::new(HyperInvoker::new(HyperInvokerConfig::with_timeout(config.http_timeout)));
    let cluster = Arc::new(Cluster::new(
        &my_url,
        &config.server_list,
        registry,
        clock.clone(),
        election,
    )?);
    let coordinator: Arc<dyn Coordinator> = Arc::new(SnapshotCoordinator::new(cluster.clone(), invoker.clone()));
    let app = Arc::new(App::new(coordinator, invoker.clone(), clock.clone(), config.limits()));

    tracing::info!(
        address = %local,
        my_url = %cluster.my_url(),
        servers = ?cluster.peer_urls(),
        election = cluster.election().name(),
        ttl = ?config.ttl,
        evict_interval = ?config.evict_interval,
        cluster_interval = ?config.cluster_interval,
        http_timeout = ?config.http_timeout,
        max_body = config.max_body,
        body_timeout = ?config.body_timeout,
        max_connections = config.max_connections,
        "maregistry listening"
    );

    let (stop, stopped) = watch::channel(false);
    let signal = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut loops = Vec::new();
    loops.push(tokio::spawn(run_evictor(
        cluster.clone(),
        clock,
        config.ttl,
        config.evict_interval,
        signal(),
    )));
    if cluster.size() > 1 {
        let health = ServerHealth::new(cluster.clone(), invoker, config.cluster_interval, config.http_timeout);
        loops.push(tokio::spawn(health.run(signal())));
    }

    let served = registry_api::serve(listener, app, shutdown).await;
    let _ = stop.send(true);
    for task in loops {
        let _ = task.await;
    }
    tracing::info!(url = %cluster.my_url(), "maregistry stopped");
    served.context("serving the API")
}
