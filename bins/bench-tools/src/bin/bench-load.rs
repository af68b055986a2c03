//! Registers exactly `--instances` distinct instances over `--services` services, each
//! with two metadata entries, into maregistry or r-nacos, `--concurrency` requests at a
//! time. Exits non-zero if any answer is not 2xx.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench_tools::{host, service};
use clap::{Parser, ValueEnum};
use registry_http::{HttpInvoker, HttpRequest, HyperInvoker, HyperInvokerConfig};

#[derive(Clone, Copy, ValueEnum)]
enum System {
    Maregistry,
    Nacos,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    system: System,
    /// Base url, e.g. http://127.0.0.1:18484
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 100_000)]
    instances: u64,
    #[arg(long, default_value_t = 1_000)]
    services: u64,
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// The instances' port: another one than an earlier load's registers new instances
    /// beside its (same hosts, same services).
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

fn request(system: System, base: &str, i: u64, services: u64, port: u16) -> HttpRequest {
    let service = service(i, services);
    let host = host(i);
    match system {
        System::Maregistry => {
            let body = format!(
                r#"{{"scheme":"http","host":"{host}","port":{port},"context":"c","parameters":{{"env":"bench","weight":"100"}}}}"#
            );
            HttpRequest::post(&format!("{base}/reg"), &[("service", &service)], body)
        }
        System::Nacos => HttpRequest::post(
            &format!("{base}/nacos/v1/ns/instance"),
            &[
                ("serviceName", &service),
                ("groupName", "DEFAULT_GROUP"),
                ("namespaceId", "public"),
                ("ip", &host),
                ("port", &port.to_string()),
                ("ephemeral", "true"),
                ("metadata", r#"{"env":"bench","weight":"100"}"#),
            ],
            bytes::Bytes::new(),
        ),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = Arc::new(HyperInvoker::new(HyperInvokerConfig::with_timeout(
        Duration::from_secs(10),
    )));
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (http, next, failed, url) = (http.clone(), next.clone(), failed.clone(), args.url.clone());
        let (system, instances, services, port) = (args.system, args.instances, args.services, args.port);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= instances {
                    return;
                }
                match http.send(request(system, &url, i, services, port)).await {
                    Ok(answer) if answer.is_success() => {}
                    Ok(answer) => {
                        if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!(
                                "instance {i}: status {}: {}",
                                answer.status,
                                String::from_utf8_lossy(&answer.body)
                            );
                        }
                    }
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("instance {i}: {e}");
                        }
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.context("a load worker")?;
    }
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "registered {} instances over {} services in {:.1} s, {failed} failed",
        args.instances,
        args.services,
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        bail!("{failed} registrations failed");
    }
    Ok(())
}
