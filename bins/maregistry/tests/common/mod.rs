//! Starts real nodes on 127.0.0.1 and talks HTTP to them, as a client would.
#![allow(dead_code)]

pub mod deps;
pub mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use maregistry::Config;
use registry_http::{HttpInvoker, HttpRequest, HttpResponse, HyperInvoker, HyperInvokerConfig};
use serde_json::Value;
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
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(maregistry::run_with(listener, config, raft_invoker, async {
            let _ = stopped.await;
        }));
        Node {
            url: format!("http://{addr}"),
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

/// A plain HTTP client with generous timeouts (the machine may be slow).
pub struct Client {
    http: HyperInvoker,
}

impl Client {
    pub fn new() -> Client {
        Client {
            http: HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_secs(20))),
        }
    }

    pub async fn raw(&self, method: &str, url: &str, body: &str) -> HttpResponse {
        self.try_raw(method, url, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// [`Client::raw`] for a node that may be down or starting.
    pub async fn try_raw(
        &self,
        method: &str,
        url: &str,
        body: &str,
    ) -> Result<HttpResponse, registry_http::HttpInvokeError> {
        let request = HttpRequest {
            method: method.parse().expect("method"),
            url: url.to_owned(),
            headers: Vec::new(),
            body: body.to_owned().into(),
            timeout: None,
        };
        self.http.send(request).await
    }

    /// Status and JSON body. Every answer of the API is JSON.
    pub async fn call(&self, method: &str, url: &str, body: &str) -> (u16, Value) {
        let answer = self.raw(method, url, body).await;
        assert_eq!(answer.content_type(), Some("application/json"), "{method} {url}");
        let json = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
            panic!(
                "{method} {url}: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&answer.body)
            )
        });
        (answer.status, json)
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        self.call("GET", url, "").await
    }

    pub async fn post(&self, url: &str, body: &str) -> (u16, Value) {
        self.call("POST", url, body).await
    }

    /// A 200 answer's JSON; panics on anything else.
    pub async fn ok(&self, method: &str, url: &str, body: &str) -> Value {
        let (status, json) = self.call(method, url, body).await;
        assert_eq!(status, 200, "{method} {url} answered {json}");
        json
    }
}

/// Polls `check` every 25 ms until it holds; panics after `limit`. Limits are generous:
/// only a broken node takes that long.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn instance(host: &str, port: u16) -> String {
    format!(r#"{{"scheme":"http","host":"{host}","port":{port},"context":"ctx"}}"#)
}

/// Settings for cluster tests: short intervals so tests run quickly, generous timeouts
/// so a slow machine does not mistake a busy peer for a dead one.
pub fn cluster_config(servers: &[String]) -> Config {
    Config {
        server_list: servers.to_vec(),
        cluster_interval: Duration::from_millis(100),
        http_timeout: Duration::from_secs(2),
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

impl Client {
    /// The url of the leader `node` reports, if any.
    pub async fn leader_of(&self, node: &Node) -> Option<String> {
        let leader = self.ok("GET", &node.at("/leader"), "").await;
        leader["url"].as_str().map(str::to_owned)
    }

    /// Waits until every node in `nodes` reports the same leader, and that leader says
    /// it leads; answers its url.
    pub async fn agreed_leader(&self, nodes: &[&Node]) -> String {
        let limit = Duration::from_secs(60);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(leader) = self.agreement(nodes).await {
                return leader;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn agreement(&self, nodes: &[&Node]) -> Option<String> {
        let first = self.leader_of(nodes.first()?).await?;
        for node in &nodes[1..] {
            if self.leader_of(node).await.as_deref() != Some(first.as_str()) {
                return None;
            }
        }
        if let Some(leader) = nodes.iter().find(|n| n.url == first) {
            if self.ok("GET", &leader.at("/info"), "").await["leader"] != Value::Bool(true) {
                return None;
            }
        }
        Some(first)
    }
}

impl Client {
    /// A raw request with extra headers.
    pub async fn send(&self, method: &str, url: &str, body: &str, headers: &[(&'static str, &str)]) -> HttpResponse {
        let request = HttpRequest {
            method: method.parse().expect("method"),
            url: url.to_owned(),
            headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            body: body.to_owned().into(),
            timeout: Some(Duration::from_secs(60)),
        };
        self.http
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// A raw request with one extra header.
    pub async fn raw_with_header(&self, method: &str, url: &str, body: &str, header: &'static str) -> HttpResponse {
        let request = HttpRequest {
            method: method.parse().expect("method"),
            url: url.to_owned(),
            headers: vec![(header, "test".to_owned())],
            body: body.to_owned().into(),
            timeout: None,
        };
        self.http
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }
}

/// `n` in-process raft nodes that know each other (data dirs under `data`), with test
/// timings; `configure` adjusts each node's settings.
pub fn start_raft(data: &std::path::Path, n: usize, configure: impl Fn(Config) -> Config) -> Vec<Node> {
    start_raft_with(data, n, configure, |_, _| None)
}

/// [`start_raft`], node `i` sending its raft calls through `invoker(i, urls)` (`None`:
/// the real one).
pub fn start_raft_with(
    data: &std::path::Path,
    n: usize,
    configure: impl Fn(Config) -> Config,
    invoker: impl Fn(usize, &[String]) -> Option<Arc<dyn HttpInvoker>>,
) -> Vec<Node> {
    let (listeners, urls) = listeners(n);
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let config = Config {
                cluster_mode: maregistry::ClusterMode::Raft,
                data_dir: Some(data.join(i.to_string())),
                server_list: urls.clone(),
                raft_heartbeat: Duration::from_millis(200),
                raft_election: Duration::from_secs(1),
                write_timeout: Duration::from_secs(3),
                http_timeout: Duration::from_secs(1),
                ttl: Duration::from_secs(3600),
                ..Config::default()
            };
            Node::start_with(listener, configure(config), invoker(i, &urls))
        })
        .collect()
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

/// How long a test waits for a cluster to settle; only a broken node takes that long.
pub const LIMIT: Duration = Duration::from_secs(60);

// Helpers for nodes known by url only (processes, or nodes that may be down).

/// A node's `/info`, or `None` when it does not answer.
pub async fn info(c: &Client, url: &str) -> Option<Value> {
    let answer = c.try_raw("GET", &format!("{url}/info"), "").await.ok()?;
    (answer.status == 200).then(|| serde_json::from_slice(&answer.body).ok())?
}

/// Waits until every node of `urls` answers and names the same leader, which is one of
/// them and says it leads; answers its url.
pub async fn agreed_leader(c: &Client, urls: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(leader) = agreement(c, urls).await {
            return leader;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{urls:?} agree on no leader after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn agreement(c: &Client, urls: &[&str]) -> Option<String> {
    let mut leaders = Vec::new();
    for url in urls {
        let answer = c.try_raw("GET", &format!("{url}/leader"), "").await.ok()?;
        let leader: Value = serde_json::from_slice(&answer.body).ok()?;
        leaders.push(leader["url"].as_str()?.to_owned());
    }
    let first = leaders[0].clone();
    if leaders.iter().any(|l| *l != first) || !urls.contains(&first.as_str()) {
        return None;
    }
    let leads = info(c, &first).await?["leader"] == Value::Bool(true);
    leads.then_some(first)
}

/// The ports of the instances of service `svc` that `url` lists; empty when it does not
/// answer.
pub async fn ports_on(c: &Client, url: &str) -> Vec<u16> {
    let Ok(answer) = c.try_raw("GET", &format!("{url}/findAll?service=svc"), "").await else {
        return Vec::new();
    };
    let list: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    list.as_array()
        .map(|l| l.iter().filter_map(|i| i["port"].as_u64()).map(|p| p as u16).collect())
        .unwrap_or_default()
}

/// Waits until every node of `urls` lists (at least) every port of `ports` under `svc`,
/// and all report one registry version.
pub async fn all_hold(c: &Client, urls: &[&str], ports: &[u16]) {
    eventually("every node holds every instance at one version", LIMIT, || async {
        let mut versions = Vec::new();
        for url in urls {
            let held = ports_on(c, url).await;
            if !ports.iter().all(|p| held.contains(p)) {
                return false;
            }
            match info(c, url).await {
                Some(info) => versions.push(info["version"].as_u64()),
                None => return false,
            }
        }
        versions.windows(2).all(|w| w[0] == w[1])
    })
    .await;
}
