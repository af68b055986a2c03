//! A Rust client of maregistry.
//!
//! [`RegistryClient`] talks to a list of servers and fails over to the next one on a
//! connection error or a 503. [`RegistryClient::register`] registers an instance and
//! keeps it alive: one background task renews every registered instance with `/renews`
//! at [`ClientConfig::heartbeat`]. [`RegistryClient::find_all`] answers from a local copy
//! of each service it was asked for, kept fresh by a blocking query per service
//! (`/findAll?since=V&wait=D`): a change reaches the copy as soon as the server has it.
//! [`RegistryClient::watch`] hands out the successive instance lists of a service.
//! [`RegistryClient::shutdown`] stops the tasks and unregisters what was registered.
//!
//! It uses the registry's own HTTP stack ([`registry_http::HttpInvoker`], hyper), and
//! never panics on what a server answers: every failure is a [`ClientError`].
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use registry_core::{validate_service_name, InstanceMeta};
use registry_http::tls::PeerTls;
use registry_http::{HttpInvoker, HttpRequest, HttpResponse, HyperInvoker, HyperInvokerConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a client talks to the registry.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The servers' base urls (`http://host:port`, or `https://host:port` with `tls`),
    /// tried in order.
    pub servers: Vec<String>,
    /// How often registered instances are renewed (keep it well under the server's TTL).
    pub heartbeat: Duration,
    /// How long one blocking query waits on the server for a change.
    pub wait: Duration,
    /// Connect and read timeout of a call (a blocking query gets `wait` on top).
    pub timeout: Duration,
    /// How long to pause after every server failed, before trying again.
    pub retry: Duration,
    /// The CA that https:// servers' certificates must chain to, and the certificate
    /// this client presents when they require one
    /// ([`registry_http::tls::PeerTls::load`]).
    pub tls: Option<Arc<PeerTls>>,
}

impl ClientConfig {
    /// Defaults for `servers`: heartbeats every 5 s, 30 s blocking queries, 2 s timeouts.
    pub fn new(servers: &[&str]) -> ClientConfig {
        ClientConfig {
            servers: servers.iter().map(|s| s.trim_end_matches('/').to_owned()).collect(),
            heartbeat: Duration::from_secs(5),
            wait: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
            retry: Duration::from_millis(500),
            tls: None,
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No server could be reached, or every one answered 503.
    #[error("no registry server could serve the request: {0}")]
    Unavailable(String),
    /// A server refused the request (a 4xx): it will not succeed as it is.
    #[error("the registry refused the request ({status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The input is invalid (checked before anything is sent).
    #[error("{0}")]
    Invalid(String),
    /// A server answered something that is not what the API promises.
    #[error("unexpected answer from {server}: {reason}")]
    Protocol {
        /// The server.
        server: String,
        /// What was wrong.
        reason: String,
    },
    /// The client was shut down.
    #[error("the client was shut down")]
    Shutdown,
}

/// The latest instance list of a watched service (`None` until the first arrives).
type Latest = Option<Arc<Vec<InstanceMeta>>>;

/// A registry client; cheap to clone (clones share the connection, the heartbeat and the
/// caches).
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    invoker: Arc<dyn HttpInvoker>,
    /// The server that answered last: calls start there.
    current: AtomicUsize,
    /// Registered instances (by url) and their services.
    registered: Mutex<BTreeMap<String, (InstanceMeta, BTreeSet<String>)>>,
    /// Watched services: the latest list, shared with watchers.
    watched: Mutex<HashMap<String, watch::Receiver<Latest>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    closed: watch::Sender<bool>,
}

/// The successive instance lists of one service ([`RegistryClient::watch`]).
pub struct Watcher {
    receiver: watch::Receiver<Latest>,
    first: bool,
}

impl Watcher {
    /// The current list at first, then each new one as it arrives; `None` once the
    /// client is shut down.
    pub async fn next(&mut self) -> Option<Arc<Vec<InstanceMeta>>> {
        if std::mem::take(&mut self.first) {
            if let Some(list) = self.receiver.borrow_and_update().clone() {
                return Some(list);
            }
        }
        loop {
            self.receiver.changed().await.ok()?;
            if let Some(list) = self.receiver.borrow_and_update().clone() {
                return Some(list);
            }
        }
    }
}

impl RegistryClient {
    /// A client of `config.servers` over hyper.
    pub fn new(config: ClientConfig) -> Result<RegistryClient, ClientError> {
        let invoker = Arc::new(HyperInvoker::new(HyperInvokerConfig {
            tls: config.tls.clone(),
            ..HyperInvokerConfig::with_timeout(config.timeout)
        }));
        RegistryClient::with_invoker(config, invoker)
    }

    /// A client that sends through `invoker` (to add a token, or in tests).
    pub fn with_invoker(config: ClientConfig, invoker: Arc<dyn HttpInvoker>) -> Result<RegistryClient, ClientError> {
        if config.servers.is_empty() {
            return Err(ClientError::Invalid("a client needs at least one server".to_owned()));
        }
        if let Some(bad) = config
            .servers
            .iter()
            .find(|s| !s.starts_with("http://") && !s.starts_with("https://"))
        {
            return Err(ClientError::Invalid(format!(
                "server {bad:?} is not an http:// or https:// url"
            )));
        }
        if let Some(bad) = config.servers.iter().find(|s| s.starts_with("https://")) {
            if config.tls.is_none() {
                return Err(ClientError::Invalid(format!(
                    "server {bad:?} is https://: give the client the CA to check it (ClientConfig::tls)"
                )));
            }
        }
        if config.heartbeat.is_zero() {
            return Err(ClientError::Invalid(
                "the heartbeat interval must be above zero".to_owned(),
            ));
        }
        let (closed, _) = watch::channel(false);
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                config,
                invoker,
                current: AtomicUsize::new(0),
                registered: Mutex::new(BTreeMap::new()),
                watched: Mutex::new(HashMap::new()),
                tasks: Mutex::new(Vec::new()),
                heartbeat: Mutex::new(None),
                closed,
            }),
        })
    }

    /// Registers `instance` under `service` and keeps it renewed until
    /// [`RegistryClient::unregister`] or [`RegistryClient::shutdown`]. Answers the
    /// instance as the registry stored it.
    pub async fn register(&self, service: &str, instance: &InstanceMeta) -> Result<InstanceMeta, ClientError> {
        self.check_open()?;
        check(service, instance)?;
        let answer = self.inner.write("/reg", &[("service", service)], instance).await?;
        let stored: InstanceMeta = parse(&answer, "an instance")?;
        lock(&self.inner.registered)
            .entry(instance.url())
            .or_insert_with(|| (instance.clone(), BTreeSet::new()))
            .1
            .insert(service.to_owned());
        self.start_heartbeat();
        Ok(stored)
    }

    /// Unregisters `instance` from `service` and stops renewing it there.
    pub async fn unregister(&self, service: &str, instance: &InstanceMeta) -> Result<(), ClientError> {
        self.check_open()?;
        check(service, instance)?;
        {
            let mut registered = lock(&self.inner.registered);
            if let Some((_, services)) = registered.get_mut(&instance.url()) {
                services.remove(service);
                if services.is_empty() {
                    registered.remove(&instance.url());
                }
            }
        }
        self.inner.write("/unreg", &[("service", service)], instance).await?;
        Ok(())
    }

    /// The instances of `service`, from the local copy (the first call fetches it and
    /// starts keeping it fresh).
    pub async fn find_all(&self, service: &str) -> Result<Arc<Vec<InstanceMeta>>, ClientError> {
        let mut watcher = self.watch(service).await?;
        watcher.next().await.ok_or(ClientError::Shutdown)
    }

    /// The successive instance lists of `service`, starting with the current one.
    pub async fn watch(&self, service: &str) -> Result<Watcher, ClientError> {
        self.check_open()?;
        validate_service_name(service).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let existing = lock(&self.inner.watched).get(service).cloned();
        let receiver = match existing {
            Some(receiver) => receiver,
            None => {
                // The first list is fetched here, so that an unreachable registry is an
                // error now rather than a watcher that never yields.
                let (version, list) = self.inner.fetch(service, None).await?;
                let (sender, receiver) = watch::channel(Some(Arc::new(list)));
                lock(&self.inner.watched).insert(service.to_owned(), receiver.clone());
                let task = tokio::spawn(follow(self.inner.clone(), service.to_owned(), version, sender));
                lock(&self.inner.tasks).push(task);
                receiver
            }
        };
        Ok(Watcher { receiver, first: true })
    }

    /// Stops the heartbeat and the watchers, and unregisters every registered instance
    /// (errors are logged; the instances would expire on their own).
    pub async fn shutdown(&self) {
        if self.inner.closed.send_replace(true) {
            return;
        }
        if let Some(task) = lock(&self.inner.heartbeat).take() {
            task.abort();
        }
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        lock(&self.inner.watched).clear();
        let registered = std::mem::take(&mut *lock(&self.inner.registered));
        for (instance, services) in registered.into_values() {
            for service in services {
                if let Err(e) = self.inner.write("/unreg", &[("service", &service)], &instance).await {
                    tracing::warn!(service, instance = %instance.url(), error = %e, "could not unregister at shutdown");
                }
            }
        }
    }

    fn check_open(&self) -> Result<(), ClientError> {
        if *self.inner.closed.borrow() {
            return Err(ClientError::Shutdown);
        }
        Ok(())
    }

    fn start_heartbeat(&self) {
        let mut heartbeat = lock(&self.inner.heartbeat);
        if heartbeat.is_none() {
            *heartbeat = Some(tokio::spawn(heartbeats(Arc::downgrade(&self.inner))));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn check(service: &str, instance: &InstanceMeta) -> Result<(), ClientError> {
    validate_service_name(service).map_err(|e| ClientError::Invalid(e.to_string()))?;
    instance.validate().map_err(|e| ClientError::Invalid(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(answer: &(String, HttpResponse), what: &str) -> Result<T, ClientError> {
    serde_json::from_slice(&answer.1.body).map_err(|e| ClientError::Protocol {
        server: answer.0.clone(),
        reason: format!("expected {what}: {e}"),
    })
}

impl Inner {
    /// Sends `build(server)` to the servers in turn, from the one that answered last,
    /// until one answers other than 503. Answers that server and its answer.
    async fn call(&self, build: impl Fn(&str) -> HttpRequest) -> Result<(String, HttpResponse), ClientError> {
        let servers = &self.config.servers;
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..servers.len() {
            let index = (start + i) % servers.len();
            let server = &servers[index];
            match self.invoker.send(build(server)).await {
                Ok(answer) if answer.status == 503 => {
                    last = format!("{server} answered 503: {}", String::from_utf8_lossy(&answer.body));
                }
                Ok(answer) if answer.is_success() => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok((server.clone(), answer));
                }
                Ok(answer) => {
                    let message = serde_json::from_slice::<serde_json::Value>(&answer.body)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
                    return Err(ClientError::Rejected {
                        status: answer.status,
                        message,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(ClientError::Unavailable(last))
    }

    async fn write(
        &self,
        path: &str,
        params: &[(&str, &str)],
        instance: &InstanceMeta,
    ) -> Result<(String, HttpResponse), ClientError> {
        let body = Bytes::from(instance.to_json_with_status(true));
        self.call(|server| HttpRequest::post(&format!("{server}{path}"), params, body.clone()))
            .await
    }

    /// The instances of `service` and their version: at once, or (with `since`) once the
    /// version is above it or the wait ran out.
    async fn fetch(&self, service: &str, since: Option<u64>) -> Result<(u64, Vec<InstanceMeta>), ClientError> {
        let since_text = since.map(|v| v.to_string());
        let wait = format!("{}ms", self.config.wait.as_millis());
        let mut params = vec![("service", service)];
        if let Some(since) = &since_text {
            params.push(("since", since));
            params.push(("wait", &wait));
        }
        let timeout = since.map(|_| self.config.wait + self.config.timeout);
        let answer = self
            .call(|server| HttpRequest {
                timeout,
                ..HttpRequest::get(&format!("{server}/findAll"), &params)
            })
            .await?;
        let version = answer
            .1
            .header("x-maregistry-version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Protocol {
                server: answer.0.clone(),
                reason: "no X-Maregistry-Version header".to_owned(),
            })?;
        Ok((version, parse(&answer, "a list of instances")?))
    }
}

/// Keeps the copy of `service` fresh: one blocking query after the other; after a
/// failure, a pause, then a plain fetch (the next server may hold other versions). Runs
/// until the client shuts down (which aborts it).
async fn follow(inner: Arc<Inner>, service: String, mut version: u64, sender: watch::Sender<Latest>) {
    let mut since = Some(version);
    loop {
        let server_before = inner.current.load(Ordering::Relaxed);
        match inner.fetch(&service, since).await {
            Ok((now, list)) => {
                let moved = inner.current.load(Ordering::Relaxed) != server_before;
                if now != version || moved || since.is_none() {
                    version = now;
                    sender.send_replace(Some(Arc::new(list)));
                }
                since = Some(version);
            }
            Err(e) => {
                tracing::debug!(service, error = %e, "watch: no server answered; retrying");
                since = None;
                tokio::time::sleep(inner.config.retry).await;
            }
        }
    }
}

/// Renews every registered instance every interval, with one `/renews` per instance.
async fn heartbeats(inner: std::sync::Weak<Inner>) {
    let Some(interval) = inner.upgrade().map(|i| i.config.heartbeat) else {
        return;
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let registered: Vec<(InstanceMeta, String)> = lock(&inner.registered)
            .values()
            .map(|(instance, services)| (instance.clone(), services.iter().cloned().collect::<Vec<_>>().join(",")))
            .collect();
        for (instance, services) in registered {
            if let Err(e) = inner.write("/renews", &[("services", &services)], &instance).await {
                tracing::warn!(instance = %instance.url(), error = %e, "heartbeat failed; retrying next round");
            }
        }
    }
}
