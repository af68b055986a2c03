//! A load client for the Nacos config service, for `scripts/bench.sh`: the same requests
//! to maregistry and to r-nacos.
//!
//! - `query`: `--connections` gRPC clients, each querying one of `--configs` configs of
//!   `--size` bytes (published first) per request (`ConfigQueryRequest`), for `--seconds`.
//! - `publish`: `--connections` gRPC clients, each publishing a new config of `--size`
//!   bytes per request (`ConfigPublishRequest`), for `--seconds`.
//! - `fanout`: `--connections` gRPC connections listening to one config
//!   (`ConfigBatchListenRequest`); then `--rounds` publishes of it, each timed until every
//!   connection has its `ConfigChangeNotifyRequest`: p50/p99/max over all deliveries.
//! - `longpoll`: `--connections` v1 long polls (`POST /nacos/v1/cs/configs/listener`, each
//!   on its own HTTP connection) of one config; then `--rounds` publishes over HTTP, each
//!   timed until every poll has answered; the polls are made again between rounds.
//! - `load`: publishes `--configs` configs of `--size` bytes over HTTP, `--concurrency` at a
//!   time (the script reads the server's memory after).
//!
//! Prints one JSON object of figures on stdout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench_tools::grpc::{body, connect, payload_text, result_code, run_for, summary, Conn};
use clap::{Parser, ValueEnum};
use registry_http::{HttpInvoker, HttpRequest, HttpResponse, HyperInvoker, HyperInvokerConfig};
use registry_nacos::grpc::proto::Payload;
use serde_json::{json, Value};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Query,
    Publish,
    Fanout,
    Longpoll,
    Load,
}

#[derive(Debug, Parser)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,
    /// The gRPC address, host:port (query, publish, fanout).
    #[arg(long, default_value = "127.0.0.1:19848")]
    target: String,
    /// The HTTP base url (longpoll, load).
    #[arg(long, default_value = "http://127.0.0.1:18848")]
    url: String,
    /// Connections (clients, listeners, long polls).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to run (query, publish).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Publishes to time (fanout, longpoll).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Configs to query (query) or load (load).
    #[arg(long, default_value_t = 100)]
    configs: usize,
    /// The content's size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Requests at a time (load).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests in flight on each gRPC connection (query, publish): callers sharing it, as
    /// a client library's callers share its connection.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
}

const GROUP: &str = "BENCH_GROUP";

/// Content of `size` bytes that differs with `seed` (so that each publish is a change).
fn content(size: usize, seed: u64) -> String {
    let stamp = format!("{seed:020}\n");
    let mut text = String::with_capacity(size.max(stamp.len()));
    text.push_str(&stamp);
    let line = "key.of.a.setting = a value of some length, as configs have them\n";
    while text.len() < size {
        text.push_str(&line[..line.len().min(size - text.len())]);
    }
    text
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn publish_request(data_id: &str, content: &str) -> String {
    format!(
        r#"{{"requestId":"","dataId":{},"group":"{GROUP}","tenant":"","module":"config","content":{},"casMd5":"","additionMap":{{"type":"text"}}}}"#,
        json_string(data_id),
        json_string(content)
    )
}

fn query_request(data_id: &str) -> String {
    format!(
        r#"{{"requestId":"","dataId":{},"group":"{GROUP}","tenant":"","module":"config","headers":{{"notify":"false"}}}}"#,
        json_string(data_id)
    )
}

async fn grpc_publish(conn: &mut Conn, data_id: &str, content: &str) -> anyhow::Result<()> {
    let answer = conn
        .call(&payload_text("ConfigPublishRequest", publish_request(data_id, content)))
        .await?;
    if result_code(&answer) != Some(200) {
        bail!("a publish was refused: {}", body(&answer));
    }
    Ok(())
}

/// The md5 the server holds for `data_id` (a query).
async fn grpc_md5(conn: &mut Conn, data_id: &str) -> anyhow::Result<String> {
    let answer = conn
        .call(&payload_text("ConfigQueryRequest", query_request(data_id)))
        .await?;
    Ok(body(&answer)["md5"].as_str().unwrap_or("").to_owned())
}

/// Waits (up to 10 s) until a query of `data_id` finds it.
async fn readable(conn: &mut Conn, data_id: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if !grpc_md5(conn, data_id).await?.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{data_id} was published but never read back")
}

/// `request(caller, i)` from `--in-flight` callers on each of `--connections`, for
/// `--seconds`: per second and latency.
async fn timed(
    args: &Args,
    what: &str,
    request: Arc<dyn Fn(usize, u64) -> Payload + Send + Sync>,
) -> anyhow::Result<Value> {
    let mut callers = Vec::new();
    for _ in 0..args.connections {
        let conn = connect(&args.target, "config", |_, _, _| {}).await?;
        callers.extend(std::iter::repeat_n(conn, args.in_flight.max(1)));
    }
    let mut figures = run_for(callers, args.seconds, request).await?.figures("requests");
    for (name, value) in [
        ("mode", json!(what)),
        ("connections", json!(args.connections)),
        ("in_flight", json!(args.in_flight)),
        ("size", json!(args.size)),
    ] {
        figures.insert(name.to_owned(), value);
    }
    Ok(Value::Object(figures))
}

async fn query(args: &Args) -> anyhow::Result<Value> {
    let mut setup = connect(&args.target, "config", |_, _, _| {}).await?;
    for i in 0..100 {
        grpc_publish(&mut setup, &format!("bench.query.{i}"), &content(args.size, i)).await?;
    }
    // A server may answer a publish before it reads back (r-nacos fills a cache from its
    // raft): the timed queries start once every config does.
    for i in 0..100 {
        readable(&mut setup, &format!("bench.query.{i}")).await?;
    }
    timed(
        args,
        "query",
        Arc::new(|c, i| {
            let data_id = format!("bench.query.{}", (c as u64 + i) % 100);
            payload_text("ConfigQueryRequest", query_request(&data_id))
        }),
    )
    .await
}

async fn publish(args: &Args) -> anyhow::Result<Value> {
    let size = args.size;
    timed(
        args,
        "publish",
        Arc::new(move |c, i| {
            let data_id = format!("bench.publish.{c}.{i}");
            payload_text("ConfigPublishRequest", publish_request(&data_id, &content(size, i)))
        }),
    )
    .await
}

async fn fanout(args: &Args) -> anyhow::Result<Value> {
    let data_id = "bench.fanout";
    let mut publisher = connect(&args.target, "config", |_, _, _| {}).await?;
    grpc_publish(&mut publisher, data_id, &content(args.size, 0)).await?;
    let md5 = grpc_md5(&mut publisher, data_id).await?;
    let (told, mut notified) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut listeners = Vec::new();
    for l in 0..args.connections {
        let told = told.clone();
        let mut conn = connect(&args.target, "config", move |kind, sent, at| {
            if kind == "ConfigChangeNotifyRequest" && sent.data_id == "bench.fanout" {
                let _ = told.send((l, at));
            }
        })
        .await?;
        let listen = json!({"requestId":"","dataId":"","group":"","tenant":"","module":"config","listen":true,
            "configListenContexts":[{"dataId":data_id,"group":GROUP,"tenant":"","md5":md5}]});
        let answer = conn
            .call(&payload_text("ConfigBatchListenRequest", listen.to_string()))
            .await?;
        if result_code(&answer) != Some(200) {
            bail!("a listen was refused: {}", body(&answer));
        }
        listeners.push(conn);
    }
    let mut deliveries = Vec::new();
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        while notified.try_recv().is_ok() {}
        let started = Instant::now();
        grpc_publish(&mut publisher, data_id, &content(args.size, round as u64 + 1)).await?;
        let mut seen = vec![false; args.connections];
        let (mut waiting, mut last) = (args.connections, 0.0);
        while waiting > 0 {
            let (l, at) = tokio::time::timeout(Duration::from_secs(60), notified.recv())
                .await
                .with_context(|| format!("round {round}: {waiting} listeners were never told"))?
                .context("closed")?;
            if !std::mem::replace(&mut seen[l], true) {
                waiting -= 1;
                last = at.duration_since(started).as_secs_f64() * 1000.0;
                deliveries.push(last);
            }
        }
        rounds.push(last);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(listeners);
    Ok(
        json!({"mode":"fanout","listeners":args.connections,"rounds":args.rounds,
        "delivery":summary(deliveries),"round_complete":summary(rounds)}),
    )
}

fn http() -> HyperInvoker {
    HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_secs(60)))
}

async fn http_publish(client: &HyperInvoker, url: &str, data_id: &str, content: &str) -> anyhow::Result<()> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("dataId", data_id),
            ("group", GROUP),
            ("content", content),
            ("type", "text"),
        ])
        .finish();
    let mut request = HttpRequest::post(&format!("{url}/nacos/v1/cs/configs"), &[], body);
    request
        .headers
        .push(("content-type", "application/x-www-form-urlencoded".to_owned()));
    let answer = client.send(request).await?;
    // Nacos answers `true` (a server that is not ready may answer 200 with something else).
    if !answer.is_success() || answer.body.as_ref() != b"true" {
        bail!(
            "a publish was refused: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    Ok(())
}

/// A v1 read of `data_id`.
async fn http_get(client: &HyperInvoker, url: &str, data_id: &str) -> anyhow::Result<HttpResponse> {
    let request = HttpRequest::get(
        &format!("{url}/nacos/v1/cs/configs"),
        &[("dataId", data_id), ("group", GROUP)],
    );
    Ok(client.send(request).await?)
}

/// The content of `data_id`, if it is there.
async fn http_content(client: &HyperInvoker, url: &str, data_id: &str) -> anyhow::Result<Option<String>> {
    let answer = http_get(client, url, data_id).await?;
    Ok(answer
        .is_success()
        .then(|| String::from_utf8_lossy(&answer.body).into_owned()))
}

async fn http_md5(client: &HyperInvoker, url: &str, data_id: &str) -> anyhow::Result<String> {
    let answer = http_get(client, url, data_id).await?;
    let md5 = answer
        .headers
        .get("content-md5")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(md5.to_owned())
}

async fn longpoll(args: &Args) -> anyhow::Result<Value> {
    let data_id = "bench.longpoll";
    let client = http();
    http_publish(&client, &args.url, data_id, &content(args.size, 0)).await?;
    let mut deliveries = Vec::new();
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let md5 = http_md5(&client, &args.url, data_id).await?;
        let record = format!("{data_id}\u{2}{GROUP}\u{2}{md5}\u{1}");
        let (answered, mut answers) = mpsc::unbounded_channel::<(Instant, bool)>();
        for _ in 0..args.connections {
            // Each poll on a connection of its own, as each client process has one.
            let (poller, url, record, answered) = (http(), args.url.clone(), record.clone(), answered.clone());
            tokio::spawn(async move {
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair("Listening-Configs", &record)
                    .finish();
                let mut request = HttpRequest::post(&format!("{url}/nacos/v1/cs/configs/listener"), &[], body);
                request
                    .headers
                    .push(("content-type", "application/x-www-form-urlencoded".to_owned()));
                request.headers.push(("long-pulling-timeout", "30000".to_owned()));
                let answer = poller.send(request).await;
                let changed = answer.is_ok_and(|a| a.is_success() && a.body.len() > 4);
                let _ = answered.send((Instant::now(), changed));
            });
        }
        // Every poll sent and waiting on the server.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        http_publish(&client, &args.url, data_id, &content(args.size, round as u64 + 1)).await?;
        let mut last = 0.0;
        for waiting in (1..=args.connections).rev() {
            let (at, changed) = tokio::time::timeout(Duration::from_secs(60), answers.recv())
                .await
                .with_context(|| format!("round {round}: {waiting} polls never answered"))?
                .context("closed")?;
            if !changed {
                bail!("round {round}: a poll answered without the change");
            }
            last = at.saturating_duration_since(started).as_secs_f64() * 1000.0;
            deliveries.push(last);
        }
        rounds.push(last);
    }
    Ok(json!({"mode":"longpoll","polls":args.connections,"rounds":args.rounds,
        "delivery":summary(deliveries),"round_complete":summary(rounds)}))
}

async fn load(args: &Args) -> anyhow::Result<Value> {
    let client = Arc::new(http());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, next, url, total, size) = (
            client.clone(),
            next.clone(),
            args.url.clone(),
            args.configs as u64,
            args.size,
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                http_publish(&client, &url, &format!("bench.load.{i}"), &content(size, i)).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Memory is measured after: every thousandth config, and the last, must read back
    // whole first (a server may answer a publish before it holds the config in memory).
    let total = args.configs as u64;
    let sample: Vec<u64> = (0..total).step_by(1000).chain(total.checked_sub(1)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in sample {
        let body = content(args.size, i);
        while http_content(&client, &args.url, &format!("bench.load.{i}"))
            .await?
            .as_deref()
            != Some(body.as_str())
        {
            if Instant::now() > deadline {
                bail!("bench.load.{i} was published but never read back");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(
        json!({"mode":"load","configs":args.configs,"size":args.size,"seconds":seconds,
        "read_back_seconds":started.elapsed().as_secs_f64()}),
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Thousands of connections need more descriptors than the default soft limit.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let figures = runtime.block_on(async {
        match args.mode {
            Mode::Query => query(&args).await,
            Mode::Publish => publish(&args).await,
            Mode::Fanout => fanout(&args).await,
            Mode::Longpoll => longpoll(&args).await,
            Mode::Load => load(&args).await,
        }
    })?;
    println!("{figures}");
    Ok(())
}
