//! The maregistry server, as a library so that tests and examples start real nodes.
//!
//! [`run`] composes the crates through trait objects — the registry, the cluster mode
//! behind `Arc<dyn Coordinator>` (the snapshot cluster with an `Arc<dyn Election>`, or
//! the raft cluster on its data dir), an `Arc<dyn HttpInvoker>` for talking to peers, an
//! `Arc<dyn Clock>` — starts the background loops, serves the API until the shutdown
//! future completes, then stops the loops. [`config`] parses and validates settings.
#![deny(missing_docs)]

pub mod config;
mod reload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use registry_api::App;
use registry_cluster::{
    normalize_url, run_evictor, Cluster, Coordinator, MonotonicClock, SelfPreservation, ServerHealth,
    SnapshotCoordinator,
};
use registry_core::{Clock, Registry};
use registry_http::{HttpInvoker, HyperInvoker, HyperInvokerConfig, WithToken};
use registry_raft::RaftCluster;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{ClusterMode, Config, Mode, RaftMode, SnapshotMode};
pub use registry_api::GrpcSettings;
pub use registry_raft::LogFaults;

/// Runs one node on `listener` until `shutdown` completes: stops accepting, finishes
/// requests in flight, stops the background loops, and returns. In raft mode the data
/// dir is loaded before the first request is read; an unusable one is an error
/// ([`registry_raft::RaftError::DataDir`]).
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with(listener, config, None, shutdown).await
}

/// [`run`], with the invoker raft nodes talk to each other through, for raft's calls and
/// for the writes a follower relays to the leader (tests pass one that cuts chosen links
/// or holds answers; `None` is the real one).
pub async fn run_with(
    listener: TcpListener,
    config: Config,
    raft_invoker: Option<Arc<dyn HttpInvoker>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("reading the bound address")?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let my_url = match &config.my_url {
        Some(url) => url.clone(),
        None => normalize_url(&format!("{scheme}://{local}"))?,
    };
    warn_of_plain_tokens(&config, local);
    warn_of_missing_peer_certificate(&config);
    // The gRPC port is taken first: a port in use stops the node before it loads anything.
    let grpc_listener = match config.grpc_port {
        Some(port) => {
            let address = SocketAddr::new(local.ip(), port);
            Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen for Nacos gRPC clients on {address} (--grpc-port)"))?,
            )
        }
        None => None,
    };
    let registry = Arc::new(Registry::with_change_log(config.change_log).with_lease_bounds(config.leases));
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    // Every call to a peer carries the cluster token, when there is one.
    let to_peers = |invoker: Arc<dyn HttpInvoker>| -> Arc<dyn HttpInvoker> {
        match &config.auth.cluster {
            Some(token) => Arc::new(WithToken::new(invoker, token)),
            None => invoker,
        }
    };
    // Every invoker calls the other nodes' https:// urls with the peers' TLS.
    let peer_tls = config.peer_tls.clone();
    let with_timeout = |timeout| HyperInvokerConfig {
        tls: peer_tls.clone(),
        ..HyperInvokerConfig::with_timeout(timeout)
    };
    let invoker = to_peers(Arc::new(HyperInvoker::new(with_timeout(config.http_timeout))));
    let (stop, stopped) = watch::channel(false);
    let signal = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };

    let mut loops: Vec<JoinHandle<()>> = Vec::new();
    let mut raft: Option<Arc<RaftCluster>> = None;
    // What relays a follower's writes to the leader: in raft mode the leader answers
    // within its write timeout, so the relay waits that long (and a little more) before
    // it gives up; in snapshot mode a write is applied at once.
    let mut relay = invoker.clone();
    let preservation = || SelfPreservation::new(config.evict_max_fraction, config.ttl);
    let coordinator: Arc<dyn Coordinator> = match &config.mode {
        Mode::Snapshot(snapshot) => {
            let election = snapshot.election.build(config.cluster_size(&my_url));
            let cluster = Arc::new(Cluster::new(
                &my_url,
                &config.server_list,
                registry,
                clock.clone(),
                election,
            )?);
            tracing::info!(
                address = %local,
                my_url = %cluster.my_url(),
                servers = ?cluster.peer_urls(),
                mode = "snapshot",
                election = cluster.election().name(),
                ttl = ?config.ttl,
                evict_interval = ?config.evict_interval,
                evict_max_fraction = config.evict_max_fraction,
                cluster_interval = ?snapshot.cluster_interval,
                http_timeout = ?config.http_timeout,
                max_body = config.max_body,
                body_timeout = ?config.body_timeout,
                max_connections = config.max_connections,
                grpc_max_connections = config.grpc.max_connections,
                "maregistry listening"
            );
            if cluster.size() > 1 {
                let health = ServerHealth::new(
                    cluster.clone(),
                    invoker.clone(),
                    snapshot.cluster_interval,
                    config.http_timeout,
                )
                .with_sync_wait(snapshot.sync_wait);
                loops.push(tokio::spawn(health.run(signal())));
            }
            Arc::new(SnapshotCoordinator::new(cluster, invoker.clone(), preservation()))
        }
        Mode::Raft(mode) => {
            let settings = mode.settings(&config, my_url.clone());
            // Raft calls carry whole snapshots: the read timeout is the install timeout,
            // and openraft cuts each call off at its own deadline.
            let peers = to_peers(raft_invoker.clone().unwrap_or_else(|| {
                Arc::new(HyperInvoker::new(HyperInvokerConfig {
                    read_timeout: settings.install_timeout,
                    ..with_timeout(config.http_timeout)
                }))
            }));
            tracing::info!(
                address = %local,
                my_url = %my_url,
                mode = "raft",
                data_dir = %settings.data_dir.display(),
                join = settings.join,
                servers = ?settings.server_list,
                heartbeat = ?settings.heartbeat,
                election = ?settings.election,
                write_timeout = ?settings.write_timeout,
                ttl = ?config.ttl,
                max_connections = config.max_connections,
                grpc_max_connections = config.grpc.max_connections,
                "maregistry loading its data dir"
            );
            let node = RaftCluster::start(settings, registry, clock.clone(), peers, invoker.clone()).await?;
            tracing::info!(
                version = node.registry().registry_version(),
                node_id = node.id(),
                "data loaded; maregistry listening"
            );
            raft = Some(node.clone());
            // A relayed write is given the write timeout in all, as one applied here is: a
            // leader that stops answering (paused, cut off) never holds it longer. The
            // relay also moves on as soon as this node learns of another leader.
            relay = to_peers(raft_invoker.unwrap_or_else(|| {
                Arc::new(HyperInvoker::new(HyperInvokerConfig {
                    // (The invoker's deadline is its connect timeout plus this.)
                    read_timeout: mode
                        .write_timeout
                        .saturating_sub(config.http_timeout)
                        .max(std::time::Duration::from_millis(100)),
                    ..with_timeout(config.http_timeout)
                }))
            }));
            node
        }
    };
    // One eviction pass for either mode, stopped by the same signal as the other loops.
    loops.push(tokio::spawn(run_evictor(
        coordinator.clone(),
        clock.clone(),
        config.ttl,
        config.evict_interval,
        signal(),
    )));
    if config.tls.is_some() || config.peer_tls.is_some() {
        loops.push(tokio::spawn(reload::tls_files(
            config.tls.clone(),
            config.peer_tls.clone(),
            reload::CHECK_EVERY,
            signal(),
        )));
    }
    let url = coordinator.my_url();
    let mut app = App::new(coordinator, relay, clock, config.limits())
        .with_auth(config.auth.clone())
        .with_grpc(config.grpc);
    if let Some(tls) = &config.tls {
        app = app.with_tls(tls.clone());
    }
    let app = Arc::new(app);

    // Both listeners stop when `shutdown` completes.
    let (begin, begun) = watch::channel(false);
    let grpc = match grpc_listener {
        Some(grpc_listener) => {
            let address = grpc_listener.local_addr().context("reading the gRPC address")?;
            tracing::info!(%address, lease = ?config.grpc.lease, "Nacos gRPC clients served");
            let mut begun = begun.clone();
            let stopping = async move {
                let _ = begun.wait_for(|b| *b).await;
            };
            Some(tokio::spawn(registry_api::serve_grpc(
                grpc_listener,
                app.clone(),
                stopping,
            )))
        }
        None => None,
    };
    // A raft node whose engine or storage failed stops as if asked to, and then reports
    // the failure: a supervisor restarts it (as etcd exits on a failed fsync).
    let failed = {
        let raft = raft.clone();
        async move {
            match raft {
                Some(raft) => raft.failed().await,
                None => std::future::pending().await,
            }
        }
    };
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            why = failed => tracing::error!(cause = %why, "stopping: this node cannot take part in the cluster any more"),
        }
        let _ = begin.send(true);
    };
    let served = registry_api::serve(listener, app, shutdown).await;
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the gRPC listener failed"),
            Err(e) => tracing::warn!(error = %e, "the gRPC listener did not finish"),
        }
    }
    let _ = stop.send(true);
    for task in loops {
        let _ = task.await;
    }
    let failure = raft.as_ref().and_then(|raft| raft.failure());
    if let Some(raft) = raft {
        raft.shutdown().await;
    }
    tracing::info!(url = %url, "maregistry stopped");
    served.context("serving the API")?;
    match failure {
        Some(why) => Err(anyhow::anyhow!("{why}: restart this node once the cause is fixed")),
        None => Ok(()),
    }
}

/// A token that crosses the network in plain text can be read and replayed: said once at
/// start when the node listens in plain HTTP beyond loopback.
fn warn_of_plain_tokens(config: &Config, local: SocketAddr) {
    if config.auth.any() && config.tls.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            address = %local,
            "tokens are set and this node listens in plain HTTP beyond loopback: anyone who can read the \
             network can take them; serve HTTPS (--tls-cert, --tls-key)"
        );
    }
}

/// A node that requires client certificates (`--tls-client-ca`) and calls https:// peers
/// without one of its own (`--peer-cert`) will be refused by peers configured like it:
/// said once at start.
fn warn_of_missing_peer_certificate(config: &Config) {
    let requires = config
        .tls
        .as_ref()
        .is_some_and(|tls| tls.requires_client_certificates());
    let presents = config
        .peer_tls
        .as_ref()
        .is_some_and(|tls| tls.files().identity.is_some());
    let https_peers = config.server_list.iter().any(|url| url.starts_with("https://"));
    if requires && https_peers && !presents {
        tracing::warn!(
            "this node requires client certificates (--tls-client-ca) but presents none to its peers: peers \
             configured like it will refuse its calls; give --peer-cert and --peer-key"
        );
    }
}
