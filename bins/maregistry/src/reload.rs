//! Reloading the TLS files without a restart: on SIGHUP, and when one of them changes
//! (checked every few seconds). Connections made after a reload use the new files; files
//! that fail their checks are logged and the ones in use stay.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use registry_http::tls::{PeerTls, ServerTls};

/// How often the files are looked at for a change.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Reloads `server`'s and `peers`' files on SIGHUP and when they change, until `stop`.
pub(crate) async fn tls_files(
    server: Option<Arc<ServerTls>>,
    peers: Option<Arc<PeerTls>>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let files = watched(server.as_deref(), peers.as_deref());
    let mut seen = stamps(&files).await;
    let mut hangups = hangups();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = next_hangup(&mut hangups) => {
                tracing::info!("SIGHUP: reloading the TLS files");
                seen = stamps(&files).await;
            }
            _ = tick.tick() => {
                let now = stamps(&files).await;
                if now == seen {
                    continue;
                }
                tracing::info!("a TLS file changed: reloading the TLS files");
                seen = now;
            }
        }
        reload(server.as_deref(), peers.as_deref());
    }
}

/// Every file the listener and the peers' TLS read.
fn watched(server: Option<&ServerTls>, peers: Option<&PeerTls>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(tls) = server {
        let f = tls.files();
        files.extend([f.cert.clone(), f.key.clone()]);
        files.extend(f.client_ca.clone());
    }
    if let Some(tls) = peers {
        let f = tls.files();
        files.push(f.ca.clone());
        if let Some((cert, key)) = &f.identity {
            files.extend([cert.clone(), key.clone()]);
        }
    }
    files
}

/// Each file's modification time and length (`None`: unreadable now).
async fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    let mut stamps = Vec::with_capacity(files.len());
    for file in files {
        let stamp = tokio::fs::metadata(file)
            .await
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        stamps.push(stamp);
    }
    stamps
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: TLS files are reloaded when they change only");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// Completes on the next SIGHUP (never, without a handler).
async fn next_hangup(hangups: &mut Hangups) {
    #[cfg(unix)]
    if let Some(hangups) = hangups {
        if hangups.recv().await.is_some() {
            return;
        }
    }
    let _ = hangups;
    std::future::pending::<()>().await;
}

/// Reads the TLS files again; new connections use them.
fn reload(server: Option<&ServerTls>, peers: Option<&PeerTls>) {
    if let Some(tls) = server {
        match tls.reload() {
            Ok(()) => tracing::info!(cert = %tls.files().cert.display(), "reloaded the listener's TLS files"),
            Err(e) => {
                tracing::error!(error = %e, "kept the listener's TLS files in use: the new ones fail their checks")
            }
        }
    }
    if let Some(tls) = peers {
        match tls.reload() {
            Ok(()) => tracing::info!(ca = %tls.files().ca.display(), "reloaded the peers' TLS files"),
            Err(e) => tracing::error!(error = %e, "kept the peers' TLS files in use: the new ones fail their checks"),
        }
    }
}
