//! The gRPC listener: Nacos's `Request` and `BiRequestStream` services (tonic's generated
//! servers) on HTTP/2 (over TLS when the node serves HTTPS), served by hyper connection by
//! connection, each call carrying
//! the identity of its connection and the connection's end noticed when it closes;
//! graceful shutdown that asks every client to reconnect (`ConnectResetRequest`) first.
//!
//! hyper serves the connections directly rather than tonic's transport: two services need
//! no router, and the layers it adds cost about 5% of a registration.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming as HttpBody;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsAcceptor;
use tonic::codegen::{BoxFuture, Service as _};
use tonic::{Request, Response, Status, Streaming};

use super::answered::{AfterAnswer, ThenBody};
use super::connections::{ConnInfo, Outbound};
use super::gather::{self, Gathered, Sender};
use super::naming;
use super::proto::bi_request_stream_server::{BiRequestStream, BiRequestStreamServer};
use super::proto::request_server::{Request as RequestService, RequestServer};
use super::proto::Payload;
use super::tasks::{check_liveness, end, push_changes, renew_published, reset_all};
use super::wire::Incoming;
use crate::Node;
use registry_api::{handshake, warn_at_limit, AcceptBackoff};

/// How many messages may wait to go out on one connection's stream (pushes, detections).
const STREAM_QUEUE: usize = 256;

/// How long shutdown waits for the connections to close after asking them to reconnect.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the resets are given to go out before the streams are ended.
const RESET_GRACE: Duration = Duration::from_millis(100);

/// Serves the Nacos gRPC protocol on `listener` until `shutdown` completes: then the
/// listener stops, every client is asked to reconnect elsewhere, the streams are closed
/// (the instances stay for their lease: clients register them again where they reconnect)
/// and the connections are given 5 s (`DRAIN_TIMEOUT`) to close.
pub(crate) async fn serve_grpc(
    listener: TcpListener,
    app: Arc<Node>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    app.grpc().serve();
    let tasks = [
        tokio::spawn(push_changes(app.clone())),
        tokio::spawn(super::config::push_configs(app.clone())),
        tokio::spawn(check_liveness(app.clone())),
        tokio::spawn(renew_published(app.clone())),
    ];
    let services = Services::new(app.clone());
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new());
    // gRPC answers carry no Date header (grpc-java's do not either); it costs every answer.
    http2.auto_date_header(false);
    let graceful = GracefulShutdown::new();
    let tls = app.tls().map(|tls| TlsAcceptor::from(tls.config(&[b"h2"])));
    let limit = app.grpc().settings.max_connections;
    let slots = Arc::new(Semaphore::new(limit));
    let within = app.limits().handshake_timeout;
    let mut last_warning: Option<Instant> = None;
    let mut backoff = AcceptBackoff::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.accepted();
                    accepted
                }
                Err(e) => {
                    backoff.failed("gRPC", &e).await;
                    continue;
                }
            },
        };
        // The slot is taken at accept, so a connection still in its TLS handshake counts.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn_at_limit(&mut last_warning, "gRPC", limit);
            continue;
        };
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                let (id, connection, sender) = serve_one(&app, &services, &http2, stream, peer);
                let connection = gather::drive(sender, graceful.watch(connection));
                let app = app.clone();
                tokio::spawn(async move {
                    until_unset(&app, id, peer, connection).await;
                    drop(slot);
                });
            }
            // The handshake is made on the connection's own task; the Nacos connection
            // begins once it succeeded.
            Some(tls) => {
                let (tls, app, services, http2) = (tls.clone(), app.clone(), services.clone(), http2.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    if let Some(stream) = handshake(&tls, stream, peer, within).await {
                        let (id, connection, sender) = serve_one(&app, &services, &http2, stream, peer);
                        let connection = gather::drive(sender, watcher.watch(connection));
                        until_unset(&app, id, peer, connection).await;
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    drain(&app, graceful).await;
    for task in tasks {
        task.abort();
    }
    tracing::info!("gRPC listener stopped");
    Ok(())
}

/// Asks every client to reconnect elsewhere, ends every stream (the instances stay for
/// their lease) and gives the connections [`DRAIN_TIMEOUT`] to close.
async fn drain(app: &Node, graceful: GracefulShutdown) {
    let connections = &app.grpc().connections;
    connections.start_closing();
    reset_all(app);
    // Let the resets go out, then end every stream so that their calls complete.
    tokio::time::sleep(RESET_GRACE).await;
    for connection in connections.all() {
        end(app, connection.info.id, "the node shuts down").await;
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("gRPC connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// An accepted connection's HTTP/2 side, as hyper serves it.
type Http2Connection<S> = http2::Connection<TokioIo<Gathered<Transport<S>>>, OnConnection, TokioExecutor>;

/// One accepted connection served as a Nacos connection, until it closes: its number, the
/// HTTP/2 connection to drive, and what sends its writes (see [`gather`]).
fn serve_one<S>(
    app: &Arc<Node>,
    services: &Services,
    http2: &http2::Builder<TokioExecutor>,
    stream: S,
    peer: SocketAddr,
) -> (u64, Http2Connection<S>, Sender<Transport<S>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let info = app.grpc().connections.accepted(peer, app.now_ms());
    let id = info.id;
    let transport = Transport {
        stream,
        id,
        app: app.clone(),
    };
    let (gathered, sender) = gather::gather(transport);
    (
        id,
        http2.serve_connection(TokioIo::new(gathered), services.on(info)),
        sender,
    )
}

/// Drives `connection` (the transport of Nacos connection `id`) until it ends, or until it
/// has gone the handshake timeout without a set-up Nacos connection: never set up (a
/// client that sent nothing, or only the HTTP/2 preface), or no longer (its stream ended,
/// or it stopped answering detections; looked at once a timeout, so closed within two
/// timeouts of that). Then it is closed, and its slot is free.
async fn until_unset<C>(app: &Node, id: u64, peer: SocketAddr, connection: C)
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let limit = app.limits().handshake_timeout;
    let unset = async {
        // Since when it has been seen without a set-up Nacos connection (from its accept).
        let mut unset_since = Some(tokio::time::Instant::now());
        loop {
            let now = tokio::time::Instant::now();
            tokio::time::sleep_until(unset_since.unwrap_or(now) + limit).await;
            let now = tokio::time::Instant::now();
            match (app.grpc().connections.get(id), unset_since) {
                (Some(_), _) => unset_since = None,
                (None, Some(since)) if now >= since + limit => return,
                (None, Some(_)) => {}
                (None, None) => unset_since = Some(now),
            }
        }
    };
    tokio::select! {
        ended = connection => {
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "gRPC connection ended with an error");
            }
        }
        () = unset => {
            tracing::debug!(%peer, ?limit, "closing a gRPC connection that holds no set-up Nacos connection");
        }
    }
}

/// One accepted connection (TCP, or TLS over it), ending the Nacos connection when it
/// goes.
struct Transport<S> {
    stream: S,
    id: u64,
    app: Arc<Node>,
}

impl<S> Drop for Transport<S> {
    fn drop(&mut self) {
        let connections = &self.app.grpc().connections;
        if connections.get(self.id).is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (app, id) = (self.app.clone(), self.id);
            runtime.spawn(async move { end(&app, id, "its connection closed").await });
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Transport<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Both generated services, over the one node.
#[derive(Clone)]
struct Services {
    request: RequestServer<Service>,
    stream: BiRequestStreamServer<Service>,
}

impl Services {
    fn new(app: Arc<Node>) -> Services {
        // A config publish carries up to --config-max-size of content, escaped.
        let max = app.limits().for_configs().max_body.saturating_add(64 * 1024);
        let service = Service { app };
        Services {
            request: RequestServer::new(service.clone()).max_decoding_message_size(max),
            stream: BiRequestStreamServer::new(service).max_decoding_message_size(max),
        }
    }

    /// The services as one connection's calls reach them.
    fn on(&self, info: ConnInfo) -> OnConnection {
        OnConnection {
            services: self.clone(),
            info,
        }
    }
}

/// The services of one connection: each call routed by its path, with the connection's
/// identity in its extensions.
struct OnConnection {
    services: Services,
    info: ConnInfo,
}

impl hyper::service::Service<http::Request<HttpBody>> for OnConnection {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn call(&self, mut request: http::Request<HttpBody>) -> Self::Future {
        request.extensions_mut().insert(self.info.clone());
        // The generated servers are always ready; each call works on its own handle.
        match request.uri().path() {
            "/Request/request" => {
                let after = AfterAnswer::default();
                request.extensions_mut().insert(after.clone());
                let answer = self.services.request.clone().call(request);
                Box::pin(async move {
                    let response = answer.await?;
                    if !after.is_set() {
                        return Ok(response);
                    }
                    Ok(response.map(|inner| tonic::body::Body::new(ThenBody { inner, after })))
                })
            }
            "/BiRequestStream/requestBiStream" => self.services.stream.clone().call(request),
            path => {
                let answer = Status::unimplemented(format!("no service at {path}")).into_http();
                Box::pin(std::future::ready(Ok(answer)))
            }
        }
    }
}

/// What a connection's stream sends: its queue, each shared payload cloned (its body is
/// shared bytes) as it goes out.
pub struct Outgoing(mpsc::Receiver<Arc<Payload>>);

impl tokio_stream::Stream for Outgoing {
    type Item = Result<Payload, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|next| next.map(|payload| Ok(Arc::unwrap_or_clone(payload))))
    }
}

/// What both services do, over the one node.
#[derive(Clone)]
struct Service {
    app: Arc<Node>,
}

/// The identity of the connection a call came on.
fn conn_info<T>(request: &Request<T>) -> Result<ConnInfo, Status> {
    request
        .extensions()
        .get::<ConnInfo>()
        .cloned()
        .ok_or_else(|| Status::internal("a call without its connection"))
}

#[tonic::async_trait]
impl RequestService for Service {
    async fn request(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        let info = conn_info(&request)?;
        let after = request.extensions().get::<AfterAnswer>().cloned().unwrap_or_default();
        Ok(Response::new(
            naming::answer(&self.app, &info, request.into_inner(), &after).await,
        ))
    }
}

#[tonic::async_trait]
impl BiRequestStream for Service {
    type requestBiStreamStream = Outgoing;

    async fn request_bi_stream(
        &self,
        request: Request<Streaming<Payload>>,
    ) -> Result<Response<Self::requestBiStreamStream>, Status> {
        let info = conn_info(&request)?;
        let mut inbound = request.into_inner();
        let (outbound, stream) = mpsc::channel(STREAM_QUEUE);
        let app = self.app.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(payload)) => on_stream(&app, &info, &outbound, payload),
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(connection = %info.label, %status, "gRPC stream failed");
                        break;
                    }
                }
            }
            drop(outbound);
            // Boxed: the end's future (a write) is large, and this task lives as long as
            // the connection.
            Box::pin(end(&app, info.id, "its stream closed")).await;
        });
        Ok(Response::new(Outgoing(stream)))
    }
}

/// A message a client sent on its stream: its setup, or an answer to what the server sent.
fn on_stream(app: &Node, info: &ConnInfo, outbound: &Outbound, payload: Payload) {
    let message = match Incoming::parse(payload) {
        Ok(message) => message,
        Err(refusal) => {
            tracing::debug!(connection = %info.label, message = %refusal.message, "an unreadable stream message");
            return;
        }
    };
    let now = app.now_ms();
    let connections = &app.grpc().connections;
    match message.kind.as_str() {
        "ConnectionSetupRequest" => {
            let version = message.text("clientVersion").unwrap_or("unknown client");
            let app_name = match message.get("labels").and_then(|l| l.get("AppName")) {
                Some(serde_json::Value::String(name)) => format!(" ({name})"),
                _ => String::new(),
            };
            let client = format!("{version}{app_name}");
            tracing::info!(connection = %info.label, peer = %info.peer, %client, "gRPC connection set up");
            connections.setup(info, outbound.clone(), client, now);
        }
        "ClientDetectionResponse" => {
            if let Some(connection) = connections.get(info.id) {
                connection.detected(&message.request_id(), now);
            }
        }
        kind if kind.ends_with("Response") => {
            if let Some(connection) = connections.get(info.id) {
                connection.active(now);
            }
        }
        other => {
            tracing::debug!(connection = %info.label, kind = other, "a request on the stream; requests go as calls")
        }
    }
}
