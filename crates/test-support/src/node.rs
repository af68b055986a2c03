//! Nodes in this process: started on `127.0.0.1:0` (or a listener the test chose), stopped
//! gracefully or dropped; clusters of them in either mode; and a fake peer played by the
//! test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use maregistry::{Config, Mode, RaftMode, SnapshotMode};
use registry_http::HttpInvoker;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running node.
pub struct Node {
    pub url: String,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A listener on `addr` (port 0 for a free one) that can be re-bound right after a node
/// on the same port stopped.
pub fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket.bind(addr).expect("bind");
    socket.listen(1024).expect("listen")
}

pub fn free_listener() -> TcpListener {
    listen("127.0.0.1:0".parse().unwrap())
}

impl Node {
    pub async fn start(config: Config) -> Node {
        Node::start_on(free_listener(), config)
    }

    pub fn start_on(listener: TcpListener, config: Config) -> Node {
        Node::start_with(listener, config, None)
    }

    /// A node whose raft calls go through `raft_invoker` (to cut links in tests).
    pub fn start_with(listener: TcpListener, config: Config, raft_invoker: Option<Arc<dyn HttpInvoker>>) -> Node {
        let addr = listener.local_addr().expect("local addr");
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(maregistry::run_with(listener, config, raft_invoker, async {
            let _ = stopped.await;
        }));
        Node {
            url: format!("{scheme}://{addr}"),
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop: the listener closes, idle connections close, loops stop.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("node stops within 60 s");
            result.expect("node task").expect("node ran without error");
        }
    }

    /// [`Node::stop`] of each of `nodes`, in order.
    pub async fn stop_all(nodes: Vec<Node>) {
        for node in nodes {
            node.stop().await;
        }
    }

    /// Waits up to `limit` for the node to stop on its own (no stop was asked for);
    /// answers how its run ended.
    pub async fn ended(mut self, limit: Duration) -> anyhow::Result<()> {
        let task = self.task.take().expect("a running node");
        tokio::time::timeout(limit, task)
            .await
            .unwrap_or_else(|_| panic!("the node did not stop on its own within {limit:?}"))
            .expect("node task")
    }

    pub fn at(&self, path_and_query: &str) -> String {
        format!("{}{}", self.url, path_and_query)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Settings for cluster tests: short intervals so tests run quickly, generous timeouts
/// so a slow machine does not mistake a busy peer for a dead one.
pub fn cluster_config(servers: &[String]) -> Config {
    Config {
        server_list: servers.to_vec(),
        http_timeout: Duration::from_secs(2),
        mode: Mode::Snapshot(SnapshotMode {
            cluster_interval: Duration::from_millis(100),
            ..SnapshotMode::default()
        }),
        ..Config::default()
    }
}

/// `n` free listeners and their urls.
pub fn listeners(n: usize) -> (Vec<TcpListener>, Vec<String>) {
    let listeners: Vec<TcpListener> = (0..n).map(|_| free_listener()).collect();
    let urls = listeners
        .iter()
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    (listeners, urls)
}

/// `n` nodes that know each other, started together.
pub fn start_cluster(n: usize, configure: impl Fn(Config) -> Config) -> Vec<Node> {
    let (listeners, urls) = listeners(n);
    listeners
        .into_iter()
        .map(|l| Node::start_on(l, configure(cluster_config(&urls))))
        .collect()
}

/// `n` in-process raft nodes that know each other (data dirs under `data`), with test
/// timings; `configure` adjusts each node's settings.
pub fn start_raft(data: &Path, n: usize, configure: impl Fn(Config) -> Config) -> Vec<Node> {
    start_raft_with(data, n, configure, |_, _| None)
}

/// [`start_raft`], node `i` sending its raft calls through `invoker(i, urls)` (`None`:
/// the real one).
pub fn start_raft_with(
    data: &Path,
    n: usize,
    configure: impl Fn(Config) -> Config,
    invoker: impl Fn(usize, &[String]) -> Option<Arc<dyn HttpInvoker>>,
) -> Vec<Node> {
    let (listeners, _) = listeners(n);
    start_raft_on(data, listeners, |_, config| configure(config), invoker)
}

/// [`start_raft_with`] on these listeners, node `i` configured by `configure(i, config)`.
fn start_raft_on(
    data: &Path,
    listeners: Vec<TcpListener>,
    configure: impl Fn(usize, Config) -> Config,
    invoker: impl Fn(usize, &[String]) -> Option<Arc<dyn HttpInvoker>>,
) -> Vec<Node> {
    let urls: Vec<String> = listeners
        .iter()
        .map(|l| format!("http://{}", l.local_addr().expect("local addr")))
        .collect();
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let config = Config {
                server_list: urls.clone(),
                http_timeout: Duration::from_secs(1),
                ttl: Duration::from_secs(3600),
                mode: Mode::Raft(raft_mode(data.join(i.to_string()))),
                ..Config::default()
            };
            Node::start_with(listener, configure(i, config), invoker(i, &urls))
        })
        .collect()
}

/// A free listener whose port + 1000 (where Nacos clients look for gRPC) is free too, and
/// that port. A node started on it with `grpc_port: Some(port)` serves gRPC where clients
/// given the HTTP address find it.
pub fn grpc_listener() -> (TcpListener, u16) {
    let (listener, grpc, _reserved) = reserved_grpc_listener();
    (listener, grpc)
}

/// [`grpc_listener`], with the gRPC port still held (until the third is dropped), so that
/// picking more listeners cannot land on it.
fn reserved_grpc_listener() -> (TcpListener, u16, std::net::TcpListener) {
    loop {
        let listener = free_listener();
        let port = listener.local_addr().expect("local addr").port();
        if let Some(grpc) = port.checked_add(1000) {
            if let Ok(reserved) = std::net::TcpListener::bind(("127.0.0.1", grpc)) {
                return (listener, grpc, reserved);
            }
        }
    }
}

/// A node serving gRPC at its HTTP port + 1000, with `config` otherwise.
pub fn start_grpc(config: Config) -> Node {
    let (listener, grpc) = grpc_listener();
    Node::start_on(
        listener,
        Config {
            grpc_port: Some(grpc),
            ..config
        },
    )
}

/// [`start_raft`], each node serving gRPC at its HTTP port + 1000.
pub fn start_raft_grpc(data: &Path, n: usize, configure: impl Fn(Config) -> Config) -> Vec<Node> {
    // Each node's gRPC port is held while the others are picked: no node's HTTP port can
    // be another's gRPC port.
    let picked: Vec<_> = (0..n).map(|_| reserved_grpc_listener()).collect();
    let (listeners, ports): (Vec<TcpListener>, Vec<u16>) = picked
        .into_iter()
        .map(|(listener, grpc, _reserved)| (listener, grpc))
        .unzip();
    start_raft_on(
        data,
        listeners,
        |i, config| {
            configure(Config {
                grpc_port: Some(ports[i]),
                ..config
            })
        },
        |_, _| None,
    )
}

/// The raft settings of a test node with its log in `data_dir`: heartbeats every 200 ms,
/// elections after 1–1.25 s, writes given up after 3 s.
pub fn raft_mode(data_dir: PathBuf) -> RaftMode {
    RaftMode {
        heartbeat: Duration::from_millis(200),
        election: Duration::from_secs(1),
        write_timeout: Duration::from_secs(3),
        ..RaftMode::new(data_dir)
    }
}

/// A stand-in for another node, played by the test: every request on `listener` is
/// answered 200 with `answer(path, query)` as its body, after `delay`.
pub fn serve_fake<F>(listener: TcpListener, delay: Duration, answer: F)
where
    F: Fn(&str, &str) -> String + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let answer = answer.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    let body = answer(request.uri().path(), request.uri().query().unwrap_or(""));
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from(body),
                    )))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
}
