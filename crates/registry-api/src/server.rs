use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::router::{handle, short};
use crate::transport::Transport;

/// How long shutdown waits for in-flight requests before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections over the limit are answered (503) at once; beyond that they are
/// closed unanswered, so that refusing cannot itself exhaust file descriptors.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a connection over the limit may take to send its request head and read the
/// 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// How often, at most, refusing connections is logged as a warning.
const REFUSAL_WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves the API on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish (idle keep-alive connections are closed at once), and
/// returns. Tests pass a oneshot receiver; the binary passes Ctrl-C/SIGTERM.
///
/// At most `max_connections` (see [`crate::Limits`]) are served at once. The listener
/// keeps accepting above that: a connection over the limit gets a 503 JSON error and is
/// closed, so a client that holds every slot cannot make the node go silent.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let mut http = http1::Builder::new();
    // Answers are small: one flat buffer and one write() beat a vectored write here
    // (renew +5% under wrk; see docs/benchmarks.md).
    http.timer(TokioTimer::new()).keep_alive(true).writev(false);
    let slots = Arc::new(Semaphore::new(app.limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let mut last_warning: Option<Instant> = None;
    let graceful = GracefulShutdown::new();
    let tls = app
        .tls
        .as_ref()
        .map(|tls| TlsAcceptor::from(tls.config(&[b"http/1.1"])));
    let beyond_loopback = listener.local_addr().is_ok_and(|a| !a.ip().is_loopback());
    app.metrics
        .listening(tls.is_some(), tls.is_none() && app.auth.any() && beyond_loopback);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if last_warning.is_none_or(|at| at.elapsed() >= REFUSAL_WARN_EVERY) {
                last_warning = Some(Instant::now());
                tracing::warn!(
                    max_connections = app.limits.max_connections,
                    "connection limit reached: new connections are answered 503 and closed"
                );
            }
            refuse(stream, tls.clone(), &refusals, app.limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |request| handle(app.clone(), request));
        match &tls {
            None => {
                let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            // The handshake is made on the connection's own task, under its slot.
            Some(tls) => {
                let (tls, http, watcher) = (tls.clone(), http.clone(), graceful.watcher());
                tokio::spawn(async move {
                    if let Some(stream) = handshake(&tls, stream, peer).await {
                        let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                        if let Err(e) = connection.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    // Waiting blocking queries answer what they hold now.
    app.watch.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}

/// Answers one request on a connection over the limit with a 503 and closes it, within
/// [`REFUSAL_TIMEOUT`]; closes it at once when too many refusals are under way.
fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, refusals: &Arc<Semaphore>, max_connections: usize) {
    let Ok(refusal) = refusals.clone().try_acquire_owned() else {
        tracing::debug!("too many refusals under way; closing a connection unanswered");
        return;
    };
    let service = service_fn(move |request: Request<Incoming>| async move {
        let answer: Response<Body> =
            ApiError::TooManyConnections(max_connections).into_response(short(request.uri().path()));
        Ok::<_, Infallible>(answer)
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(REFUSAL_TIMEOUT);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async move {
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(tls) => {
                    let peer = stream.peer_addr().ok();
                    if let Ok(stream) = tls.accept(stream).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    } else {
                        tracing::debug!(?peer, "a refused connection's TLS handshake failed");
                    }
                }
            }
        })
        .await;
        drop(refusal);
    });
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS session of a new connection, or `None` (logged) when the handshake fails or
/// takes too long. A client that speaks plain text to the TLS port is told so in a plain
/// HTTP/1.1 400 before the connection is closed.
pub(crate) async fn handshake(tls: &TlsAcceptor, stream: TcpStream, peer: SocketAddr) -> Option<TlsStream<Transport>> {
    let mut first = [0u8; 1];
    // A TLS connection starts with a handshake record (22).
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != 22 => {
            tracing::debug!(%peer, "plain HTTP on the TLS port");
            let mut stream = stream;
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, stream.write_all(PLAIN_ON_TLS)).await;
            let _ = stream.shutdown().await;
            return None;
        }
        Ok(Ok(_)) => {}
        Ok(Err(_)) | Err(_) => return None,
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(Transport(stream))).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// The answer to plain HTTP on the TLS port.
const PLAIN_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 70\r\n\r\n{\"error\":\"this port speaks HTTPS: the request was sent as plain HTTP\"}";
