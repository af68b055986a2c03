//! The maregistry server, as a library so that tests and examples start real nodes.
//!
//! [`run`] composes the crates through trait objects — the registry, the cluster mode
//! behind `Arc<dyn Coordinator>` (the snapshot cluster with an `Arc<dyn Election>`, or
//! the raft cluster on its data dir), an `Arc<dyn HttpInvoker>` for talking to peers, an
//! `Arc<dyn Clock>`, the protocol facades behind `Arc<dyn Facade>` — starts the background
//! loops, serves the API until the shutdown future completes, then stops the loops.
//! [`config`] parses and validates settings; `reload` reloads the TLS files on SIGHUP and
//! when they change.
#![deny(missing_docs)]

mod admin;
pub mod config;
mod reload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use admin::NoAdmin;
use anyhow::Context;
use registry_api::{App, Facade};
use registry_cluster::{
    normalize_url, run_evictor, Cluster, Coordinator, MonotonicClock, SelfPreservation, ServerHealth,
    SnapshotCoordinator,
};
use registry_consul::Consul;
use registry_core::{Clock, Registry};
use registry_eureka::Eureka;
use registry_http::{HttpInvoker, HyperInvoker, HyperInvokerConfig, WithToken};
use registry_nacos::Nacos;
use registry_raft::RaftCluster;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{ClusterMode, Config, Mode, Protocol, RaftMode, SnapshotMode};
pub use registry_nacos::GrpcSettings;
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
    let my_url = my_url(&config, local)?;
    warn_of_plain_tokens(&config, local);
    warn_of_missing_peer_certificate(&config);
    // The gRPC port is taken first: a port in use stops the node before it loads anything.
    let grpc_listener = bind_grpc(&config, local).await?;
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let peers = Peers::new(&config);
    let (stop, stopped) = watch::channel(false);
    let signal = Signal(stopped);
    let mode = match &config.mode {
        Mode::Snapshot(snapshot) => build_snapshot(&config, snapshot, &my_url, local, &clock, &peers, &signal)?,
        Mode::Raft(raft) => build_raft(&config, raft, &my_url, local, &clock, &peers, raft_invoker).await?,
    };
    let mut loops = mode.loops;
    loops.extend(background(&config, &mode.coordinator, &clock, &signal));
    let url = mode.coordinator.my_url();
    let (app, nacos, consul) = app(&config, mode.coordinator, mode.relay, clock);
    if let Some(consul) = consul {
        loops.push(tokio::spawn(consul.run_checks(app.clone(), Box::pin(signal.stopped()))));
    }
    let consul_listener = bind_consul(&config, local).await?;
    // With auth on: the first admin made, or (none anywhere) the node stops.
    let (no_admin, found_no_admin) = tokio::sync::oneshot::channel();
    if let Some(admin) = config.admin.clone() {
        let (ensured, stopped) = (admin::ensure(app.clone(), admin, no_admin), signal.stopped());
        loops.push(tokio::spawn(async move {
            tokio::select! {
                () = ensured => {}
                () = stopped => {}
            }
        }));
    }
    let mut found_no_admin = found_no_admin;
    let shutdown = async {
        tokio::select! {
            () = shutdown => None,
            Ok(why) = &mut found_no_admin => Some(why),
        }
    };
    let (shutdown, no_admin) = split_reason(shutdown);
    let listeners = Listeners {
        http: listener,
        grpc: grpc_listener,
        consul: consul_listener,
    };
    let served = serve(app, listeners, nacos, mode.raft.clone(), shutdown).await;
    let _ = stop.send(true);
    for task in loops {
        let _ = task.await;
    }
    let failure = mode.raft.as_ref().and_then(|raft| raft.failure());
    if let Some(raft) = mode.raft {
        raft.shutdown().await;
    }
    tracing::info!(url = %url, "maregistry stopped");
    served.context("serving the API")?;
    if let Some(why) = no_admin.lock().ok().and_then(|mut why| why.take()) {
        return Err(why.into());
    }
    match failure {
        Some(why) => Err(anyhow::anyhow!("{why}: restart this node once the cause is fixed")),
        None => Ok(()),
    }
}

/// `shutdown` as a future that completes, and where the reason it carried (if any) is
/// left once it has.
fn split_reason<T: Send + 'static>(
    shutdown: impl Future<Output = Option<T>>,
) -> (impl Future<Output = ()>, Arc<std::sync::Mutex<Option<T>>>) {
    let reason = Arc::new(std::sync::Mutex::new(None));
    let kept = reason.clone();
    let done = async move {
        let why = shutdown.await;
        if let Ok(mut slot) = kept.lock() {
            *slot = why;
        }
    };
    (done, reason)
}

/// This node's url: `--my-url`, or the bound address.
fn my_url(config: &Config, local: SocketAddr) -> anyhow::Result<String> {
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    Ok(match &config.my_url {
        Some(url) => url.clone(),
        None => normalize_url(&format!("{scheme}://{local}"))?,
    })
}

/// The Nacos gRPC listener, when there is one.
async fn bind_grpc(config: &Config, local: SocketAddr) -> anyhow::Result<Option<TcpListener>> {
    let Some(port) = config.grpc_port else {
        return Ok(None);
    };
    let address = SocketAddr::new(local.ip(), port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for Nacos gRPC clients on {address} (--grpc-port)"))?;
    Ok(Some(listener))
}

/// The calls to other nodes: every one carries the cluster token, when there is one, and
/// reaches https:// urls with the peers' TLS.
struct Peers {
    token: Option<registry_http::Token>,
    tls: Option<Arc<registry_http::tls::PeerTls>>,
    timeout: std::time::Duration,
    /// The invoker of snapshot sync, probes and relays.
    invoker: Arc<dyn HttpInvoker>,
}

impl Peers {
    fn new(config: &Config) -> Peers {
        let (token, tls, timeout) = (
            config.auth.cluster.clone(),
            config.peer_tls.clone(),
            config.http_timeout,
        );
        let invoker = with_token(&token, Arc::new(HyperInvoker::new(invoker_config(&tls, timeout))));
        Peers {
            token,
            tls,
            timeout,
            invoker,
        }
    }

    /// The invoker settings: the http timeout and the peers' TLS.
    fn config(&self) -> HyperInvokerConfig {
        invoker_config(&self.tls, self.timeout)
    }

    /// `invoker`, adding the cluster token to every call when there is one.
    fn with_token(&self, invoker: Arc<dyn HttpInvoker>) -> Arc<dyn HttpInvoker> {
        with_token(&self.token, invoker)
    }
}

fn invoker_config(tls: &Option<Arc<registry_http::tls::PeerTls>>, timeout: std::time::Duration) -> HyperInvokerConfig {
    HyperInvokerConfig {
        tls: tls.clone(),
        ..HyperInvokerConfig::with_timeout(timeout)
    }
}

fn with_token(token: &Option<registry_http::Token>, invoker: Arc<dyn HttpInvoker>) -> Arc<dyn HttpInvoker> {
    match token {
        Some(token) => Arc::new(WithToken::new(invoker, token)),
        None => invoker,
    }
}

/// The signal the background loops stop on.
struct Signal(watch::Receiver<bool>);

impl Signal {
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.0.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    }
}

/// The cluster mode, built: its coordinator, the invoker that relays a follower's writes,
/// its own loops, and the raft node in raft mode.
struct Built {
    coordinator: Arc<dyn Coordinator>,
    relay: Arc<dyn HttpInvoker>,
    loops: Vec<JoinHandle<()>>,
    raft: Option<Arc<RaftCluster>>,
}

/// The snapshot mode: the cluster, its probe and sync loop when it has peers.
fn build_snapshot(
    config: &Config,
    snapshot: &SnapshotMode,
    my_url: &str,
    local: SocketAddr,
    clock: &Arc<dyn Clock>,
    peers: &Peers,
    signal: &Signal,
) -> anyhow::Result<Built> {
    let registry = Arc::new(
        Registry::with_change_log(config.change_log)
            .with_lease_bounds(config.leases)
            .with_config_history(config.config_history),
    );
    let election = snapshot.election.build(config.cluster_size(my_url));
    let cluster = Arc::new(Cluster::new(
        my_url,
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
    let mut loops = Vec::new();
    if cluster.size() > 1 {
        let health = ServerHealth::new(
            cluster.clone(),
            peers.invoker.clone(),
            snapshot.cluster_interval,
            config.http_timeout,
        )
        .with_sync_wait(snapshot.sync_wait);
        loops.push(tokio::spawn(health.run(signal.stopped())));
    }
    let preservation = SelfPreservation::new(config.evict_max_fraction, config.ttl);
    Ok(Built {
        coordinator: Arc::new(
            SnapshotCoordinator::new(cluster, peers.invoker.clone(), preservation).with_config_wait(config.max_wait),
        ),
        relay: peers.invoker.clone(),
        loops,
        raft: None,
    })
}

/// The raft mode: the node on its data dir, loaded before the first request is read.
async fn build_raft(
    config: &Config,
    mode: &RaftMode,
    my_url: &str,
    local: SocketAddr,
    clock: &Arc<dyn Clock>,
    peers: &Peers,
    raft_invoker: Option<Arc<dyn HttpInvoker>>,
) -> anyhow::Result<Built> {
    let registry = Arc::new(
        Registry::with_change_log(config.change_log)
            .with_lease_bounds(config.leases)
            .with_config_history(config.config_history),
    );
    let settings = mode.settings(config, my_url.to_owned());
    // Raft calls carry whole snapshots: the read timeout is the install timeout, and
    // openraft cuts each call off at its own deadline.
    let raft_calls = peers.with_token(raft_invoker.clone().unwrap_or_else(|| {
        Arc::new(HyperInvoker::new(HyperInvokerConfig {
            read_timeout: settings.install_timeout,
            ..peers.config()
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
    let node = RaftCluster::start(settings, registry, clock.clone(), raft_calls, peers.invoker.clone()).await?;
    tracing::info!(
        version = node.registry().registry_version(),
        node_id = node.id(),
        "data loaded; maregistry listening"
    );
    // A relayed write is given the write timeout in all, as one applied here is: a leader
    // that stops answering (paused, cut off) never holds it longer. The relay also moves
    // on as soon as this node learns of another leader.
    let relay = peers.with_token(raft_invoker.unwrap_or_else(|| {
        Arc::new(HyperInvoker::new(HyperInvokerConfig {
            // (The invoker's deadline is its connect timeout plus this.)
            read_timeout: mode
                .write_timeout
                .saturating_sub(config.http_timeout)
                .max(std::time::Duration::from_millis(100)),
            ..peers.config()
        }))
    }));
    Ok(Built {
        coordinator: node.clone(),
        relay,
        loops: Vec::new(),
        raft: Some(node),
    })
}

/// The loops of either mode: one eviction pass, and the TLS files' reload.
fn background(
    config: &Config,
    coordinator: &Arc<dyn Coordinator>,
    clock: &Arc<dyn Clock>,
    signal: &Signal,
) -> Vec<JoinHandle<()>> {
    let mut loops = vec![tokio::spawn(run_evictor(
        coordinator.clone(),
        clock.clone(),
        config.ttl,
        config.evict_interval,
        signal.stopped(),
    ))];
    if config.tls.is_some() || config.peer_tls.is_some() {
        loops.push(tokio::spawn(reload::tls_files(
            config.tls.clone(),
            config.peer_tls.clone(),
            reload::CHECK_EVERY,
            signal.stopped(),
        )));
    }
    loops
}

/// The API over the mode, with the facades `--protocols` names (the seed's API is the
/// server's own); answers the Nacos facade too, which serves the gRPC listener, and the
/// Consul facade, whose checks run beside.
fn app(
    config: &Config,
    coordinator: Arc<dyn Coordinator>,
    relay: Arc<dyn HttpInvoker>,
    clock: Arc<dyn Clock>,
) -> (Arc<App>, Option<Arc<Nacos>>, Option<Arc<Consul>>) {
    let mut facades: Vec<Arc<dyn Facade>> = Vec::new();
    let mut nacos = None;
    let mut consul = None;
    for protocol in &config.protocols {
        match protocol {
            Protocol::Seed => {}
            Protocol::Nacos => {
                let facade = Arc::new(Nacos::new(config.grpc));
                nacos = Some(facade.clone());
                facades.push(facade);
            }
            Protocol::Eureka => facades.push(Arc::new(Eureka::default())),
            Protocol::Consul => {
                let facade = Arc::new(Consul::new(config.consul.clone()));
                consul = Some(facade.clone());
                facades.push(facade);
            }
        }
    }
    let mut app = App::new(coordinator, relay, clock, config.limits(), facades)
        .with_auth(config.auth.clone())
        .with_seed_api(config.protocols.contains(&Protocol::Seed));
    if let Some(tls) = &config.tls {
        app = app.with_tls(tls.clone());
    }
    (Arc::new(app), nacos, consul)
}

/// The listeners a node serves: the API, the Nacos gRPC one, and the API again for Consul
/// clients.
struct Listeners {
    http: TcpListener,
    grpc: Option<TcpListener>,
    consul: Option<TcpListener>,
}

/// The `--consul-port` listener, taken before anything is loaded.
async fn bind_consul(config: &Config, local: SocketAddr) -> anyhow::Result<Option<TcpListener>> {
    let Some(port) = config.consul_port else {
        return Ok(None);
    };
    let address = SocketAddr::new(local.ip(), port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the Consul port {address}"))?;
    Ok(Some(listener))
}

/// Serves the API (and the Nacos gRPC listener) until `shutdown` completes, or until the
/// raft node fails: then it stops as if asked to, and the failure is reported after.
async fn serve(
    app: Arc<App>,
    listeners: Listeners,
    nacos: Option<Arc<Nacos>>,
    raft: Option<Arc<RaftCluster>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Both listeners stop when `shutdown` completes.
    let (begin, begun) = watch::channel(false);
    let Listeners {
        http: listener,
        grpc: grpc_listener,
        consul: consul_listener,
    } = listeners;
    let consul = consul_listener.map(|consul_listener| {
        if let Ok(address) = consul_listener.local_addr() {
            tracing::info!(%address, "Consul clients served on their own port too");
        }
        let stopping = Signal(begun.clone()).stopped();
        tokio::spawn(registry_api::serve(consul_listener, app.clone(), stopping))
    });
    let grpc = match (grpc_listener, nacos) {
        (Some(grpc_listener), Some(nacos)) => {
            if let Ok(address) = grpc_listener.local_addr() {
                tracing::info!(%address, "Nacos gRPC clients served");
            }
            let stopping = Signal(begun).stopped();
            Some(tokio::spawn(nacos.serve_listener(
                app.clone(),
                grpc_listener,
                Box::pin(stopping),
            )))
        }
        _ => None,
    };
    // A raft node whose engine or storage failed stops as if asked to, and then reports
    // the failure: a supervisor restarts it (as etcd exits on a failed fsync).
    let failed = async move {
        match raft {
            Some(raft) => raft.failed().await,
            None => std::future::pending().await,
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
    if let Some(consul) = consul {
        if let Ok(Err(e)) = consul.await {
            tracing::warn!(error = %e, "the Consul listener failed");
        }
    }
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the gRPC listener failed"),
            Err(e) => tracing::warn!(error = %e, "the gRPC listener did not finish"),
        }
    }
    served
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
