//! Two maregistry nodes in one process: they elect a leader, a registration on the leader
//! reaches the follower, and both end at the same snapshot version.
//!
//! ```sh
//! cargo run --example two_node
//! ```

use std::time::Duration;

use anyhow::{bail, Context};
use maregistry::{Config, Mode, SnapshotMode};
use registry_http::{get_json, HttpInvoker, HyperInvoker, HyperInvokerConfig};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();

    // Two free loopback ports, known before either node starts.
    let listeners = [
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
    ];
    let urls: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| format!("http://{a}")))
        .collect::<Result<_, _>>()?;
    println!("1. starting two nodes: {} and {}", urls[0], urls[1]);
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for listener in listeners {
        let config = Config {
            server_list: urls.clone(),
            mode: Mode::Snapshot(SnapshotMode {
                cluster_interval: Duration::from_millis(200),
                ..SnapshotMode::default()
            }),
            ..Config::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(maregistry::run(listener, config, async {
            let _ = stopped.await;
        })));
    }

    let http = HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_secs(5)));
    let leader = wait_for("one leader that both nodes agree on", || async {
        let a: Value = get_json(&http, &format!("{}/leader", urls[0])).await.ok()?;
        let b: Value = get_json(&http, &format!("{}/leader", urls[1])).await.ok()?;
        (a["url"].is_string() && a["url"] == b["url"]).then(|| a["url"].as_str().map(str::to_owned))?
    })
    .await?;
    let follower = urls.iter().find(|u| **u != leader).context("a follower")?.clone();
    println!("2. leader: {leader} (smallest Java hashCode); follower: {follower}");

    let instance = r#"{"scheme":"http","host":"192.168.1.100","port":9090,"context":"sync"}"#;
    let answer = http
        .post(&format!("{leader}/reg?service=com.test.SyncService"), instance)
        .await?;
    println!("3. registered on the leader: {answer}");

    let seen = wait_for("the follower to list the instance", || async {
        let all: Value = get_json(&http, &format!("{follower}/findAll?service=com.test.SyncService"))
            .await
            .ok()?;
        (all.as_array().map(Vec::len) == Some(1)).then_some(all)
    })
    .await?;
    println!("4. the follower lists it: {seen}");

    let version = wait_for("equal snapshot versions", || async {
        let l: Value = get_json(&http, &format!("{leader}/snapshot")).await.ok()?;
        let f: Value = get_json(&http, &format!("{follower}/snapshot")).await.ok()?;
        (l["version"] == f["version"]).then(|| l["version"].clone())
    })
    .await?;
    println!("5. both snapshots are at version {version}");

    for stop in stops {
        let _ = stop.send(());
    }
    for task in tasks {
        task.await??;
    }
    println!("6. both nodes shut down gracefully");
    Ok(())
}

/// Polls `check` until it answers `Some`, for at most [`WAIT`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("gave up after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
