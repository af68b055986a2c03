//! `maregistry`: parse the configuration, start logging, bind, run until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use maregistry::config::{Cli, LogFormat, SettingsError};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: with glibc's arenas, a snapshot of 100k
/// instances taken on one thread stalled writes on another for 17-23 ms (a free into
/// the other thread's arena waits for its lock); with mimalloc the worst was 6 ms, and
/// snapshots ran 1.3x as often (`cargo bench -p registry-core --bench writer_stall`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A malformed value stops the program with status 2 and a message naming it.
    let cli = match Cli::load(std::env::args_os()) {
        Ok(cli) => cli,
        Err(SettingsError::Clap(e)) => e.exit(),
        Err(SettingsError::File(message)) => Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };
    let log_format = cli.log_format;
    let open_files = raise_open_file_limit();
    let (address, config) = match cli.validate(open_files.as_ref().map_or(1024, |(_, now)| *now)) {
        Ok(valid) => valid,
        Err(message) => Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn")))
        .with_writer(std::io::stderr);
    match log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    match open_files {
        Ok((before, now)) if before != now => tracing::info!(before, now, "raised the open-file limit"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit; assuming 1024"),
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        maregistry::run(listener, config, shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A data dir this node must not start on: the operator has to act.
        Err(e)
            if matches!(e.downcast_ref(), Some(registry_raft::RaftError::DataDir { .. }))
                || e.downcast_ref::<maregistry::NoAdmin>().is_some() =>
        {
            tracing::error!("{e:#}");
            eprintln!("maregistry: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft open-file limit to the hard one, so that the connection limit can be
/// set high. Answers the limit before and after.
fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let (before, _) = rlimit::Resource::NOFILE.get()?;
    let now = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok((before, now))
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("Ctrl-C received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}
