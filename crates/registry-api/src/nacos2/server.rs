//! The gRPC listener: tonic serving Nacos's `Request` and `BiRequestStream` services on
//! plain HTTP/2, each TCP connection tagged with its identity when it is accepted and its
//! end noticed when it closes; graceful shutdown that asks every client to reconnect
//! (`ConnectResetRequest`) first.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

use super::connections::{ConnInfo, Outbound};
use super::naming;
use super::proto::bi_request_stream_server::{BiRequestStream, BiRequestStreamServer};
use super::proto::request_server::{Request as RequestService, RequestServer};
use super::proto::Payload;
use super::tasks::{check_liveness, end, push_changes, renew_published, reset_all};
use super::wire::Incoming;
use crate::app::App;

/// How many messages may wait to go out on one connection's stream (pushes, detections).
const STREAM_QUEUE: usize = 256;

/// How long shutdown waits for the connections to close after asking them to reconnect.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the Nacos gRPC protocol on `listener` until `shutdown` completes: then every
/// client is asked to reconnect elsewhere, the streams are closed (the instances stay for
/// their lease: clients register them again where they reconnect), and the listener stops.
pub async fn serve_grpc(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    app.nacos2.serve();
    let tasks = [
        tokio::spawn(push_changes(app.clone())),
        tokio::spawn(check_liveness(app.clone())),
        tokio::spawn(renew_published(app.clone())),
    ];
    let (incoming_tx, incoming_rx) = mpsc::channel::<io::Result<Transport>>(64);
    let acceptor = tokio::spawn(accept(listener, app.clone(), incoming_tx));
    let service = Service { app: app.clone() };
    let stopping = {
        let app = app.clone();
        async move {
            shutdown.await;
            let connections = &app.nacos2.connections;
            connections.start_closing();
            reset_all(&app);
            // Let the resets go out, then end every stream so that their calls complete.
            tokio::time::sleep(Duration::from_millis(100)).await;
            for connection in connections.all() {
                end(&app, connection.info.id, "the node shuts down").await;
            }
        }
    };
    let served = tonic::transport::Server::builder()
        .add_service(RequestServer::new(service.clone()))
        .add_service(BiRequestStreamServer::new(service))
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming_rx), stopping);
    let result = tokio::select! {
        result = served => result.map_err(io::Error::other),
        // Connections that do not close are not waited for past the drain time.
        () = drained(&app) => Ok(()),
    };
    acceptor.abort();
    for task in tasks {
        task.abort();
    }
    tracing::info!("gRPC listener stopped");
    result
}

/// Completes `DRAIN_TIMEOUT` after shutdown began.
async fn drained(app: &App) {
    while !app.nacos2.connections.closing() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(DRAIN_TIMEOUT).await;
}

/// Accepts connections, each tagged with its identity; over the connection limit, a
/// connection is closed at once.
async fn accept(listener: TcpListener, app: Arc<App>, incoming: mpsc::Sender<io::Result<Transport>>) {
    let limit = app.nacos2.settings.max_connections;
    let mut last_warning: Option<Instant> = None;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "gRPC accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if app.nacos2.connections.open() >= limit {
            if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(limit, "gRPC connection limit reached: closing new connections");
                last_warning = Some(Instant::now());
            }
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let info = app.nacos2.connections.accepted(peer, app.clock.now_ms());
        let connection = Transport {
            stream,
            info,
            app: app.clone(),
        };
        if incoming.send(Ok(connection)).await.is_err() {
            return;
        }
    }
}

/// One accepted TCP connection: what tonic serves on, carrying its identity to every call,
/// and ending the Nacos connection when the transport goes.
struct Transport {
    stream: TcpStream,
    info: ConnInfo,
    app: Arc<App>,
}

impl Connected for Transport {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let connections = &self.app.nacos2.connections;
        connections.transport_closed();
        if connections.get(self.info.id).is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (app, id) = (self.app.clone(), self.info.id);
            runtime.spawn(async move { end(&app, id, "its connection closed").await });
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
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

/// Both services, over the one node.
#[derive(Clone)]
struct Service {
    app: Arc<App>,
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
        Ok(Response::new(
            naming::answer(&self.app, &info, request.into_inner()).await,
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
fn on_stream(app: &App, info: &ConnInfo, outbound: &Outbound, payload: Payload) {
    let message = match Incoming::parse(payload) {
        Ok(message) => message,
        Err(refusal) => {
            tracing::debug!(connection = %info.label, message = %refusal.message, "an unreadable stream message");
            return;
        }
    };
    let now = app.clock.now_ms();
    let connections = &app.nacos2.connections;
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
