use std::convert::Infallible;
use std::future::Future;
use std::io;
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

use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::router::{handle, short};

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
            refuse(stream, &refusals, app.limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |request| handle(app.clone(), request));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
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
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, max_connections: usize) {
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
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, connection).await;
        drop(refusal);
    });
}
