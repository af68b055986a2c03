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
    // (renew +5% under wrk; see docs/benchmarks.md). A connection waiting for a request
    // longer than the idle timeout is closed.
    http.timer(TokioTimer::new())
        .keep_alive(true)
        .writev(false)
        .header_read_timeout(app.limits.idle_timeout);
    let slots = Arc::new(Semaphore::new(app.limits.max_connections));
    let refusals = Arc::new(Semaphore::new(app.limits.max_refusals.max(1)));
    let mut backoff = AcceptBackoff::default();
    let within = app.limits.handshake_timeout;
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
                Ok(accepted) => {
                    backoff.accepted();
                    accepted
                }
                Err(e) => {
                    backoff.failed("HTTP", &e).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn_at_limit(&mut last_warning, "HTTP", app.limits.max_connections);
            refuse(stream, tls.clone(), &refusals, app.limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |request| handle(app.clone(), request, peer));
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
                    if let Some(stream) = handshake(&tls, stream, peer, within).await {
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

/// Warns that the `listener`'s connection limit is reached, at most every
/// ten seconds.
pub fn warn_at_limit(last_warning: &mut Option<Instant>, listener: &str, max_connections: usize) {
    if last_warning.is_none_or(|at| at.elapsed() >= REFUSAL_WARN_EVERY) {
        *last_warning = Some(Instant::now());
        tracing::warn!(
            listener,
            max_connections,
            "connection limit reached: new connections are refused (HTTP: answered 503) and closed"
        );
    }
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

/// The shortest and the longest wait after a failed accept.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// What a listener does when `accept` fails (out of file descriptors, mostly): waits,
/// 50 ms and doubling up to 1 s while accepts keep failing, and warns at most every 10 s.
/// The connections already served go on meanwhile, and free descriptors as they close.
pub struct AcceptBackoff {
    delay: Duration,
    last_warning: Option<Instant>,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            delay: ACCEPT_BACKOFF.0,
            last_warning: None,
        }
    }
}

impl AcceptBackoff {
    /// An accept succeeded: the next failure waits the shortest time again.
    pub fn accepted(&mut self) {
        self.delay = ACCEPT_BACKOFF.0;
    }

    /// An accept of the `listener` failed with `error`: waits before the next.
    pub async fn failed(&mut self, listener: &str, error: &io::Error) {
        if self.last_warning.is_none_or(|at| at.elapsed() >= REFUSAL_WARN_EVERY) {
            self.last_warning = Some(Instant::now());
            tracing::warn!(listener, %error, retry_in = ?self.delay, "accepting a connection failed; waiting");
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(ACCEPT_BACKOFF.1);
    }
}

/// The TLS session of a new connection, or `None` (logged) when the handshake fails or
/// takes longer than `within`. A client that speaks plain text to the TLS port is told so
/// in a plain HTTP/1.1 400 (the JSON error of every other refusal) before the connection
/// is closed.
pub async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    within: Duration,
) -> Option<TlsStream<Transport>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut first = [0u8; 1];
    // A TLS connection starts with a handshake record (22).
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != 22 => {
            tracing::debug!(%peer, "plain HTTP on the TLS port");
            answer_plain_on_tls(stream).await;
            return None;
        }
        Ok(Ok(_)) => {}
        Ok(Err(_)) | Err(_) => return None,
    }
    match tokio::time::timeout_at(deadline, tls.accept(Transport(stream))).await {
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

/// Answers a request sent as plain HTTP to the TLS port with a 400 in the JSON error shape,
/// within [`REFUSAL_TIMEOUT`], and closes the connection.
async fn answer_plain_on_tls(stream: TcpStream) {
    let service = service_fn(|request: Request<Incoming>| async move {
        let refusal = ApiError::BadRequest("this port speaks HTTPS: the request was sent as plain HTTP".to_owned());
        Ok::<_, Infallible>(refusal.into_response(short(request.uri().path())))
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(REFUSAL_TIMEOUT);
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, http.serve_connection(TokioIo::new(stream), service)).await;
}
