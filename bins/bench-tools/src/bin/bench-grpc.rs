//! A load client for the Nacos gRPC protocol, for `scripts/bench.sh`: the same requests to
//! maregistry and to r-nacos.
//!
//! - `register`: `--connections` clients, each registering a new instance in a new service
//!   per request (`InstanceRequest`), for `--seconds`: registrations per second and latency.
//! - `fanout`: `--connections` subscribers of one service; then `--rounds` changes of it
//!   (a registration through gRPC, then its deregistration, alternately), each timed until
//!   every subscriber has the push that shows it: p50/p99/max over all deliveries.
//! - `idle`: `--connections` set-up connections held for `--seconds`, doing nothing (the
//!   script reads the server's memory and CPU meanwhile).
//!
//! Prints one JSON object of figures on stdout.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use registry_nacos::grpc::proto::bi_request_stream_client::BiRequestStreamClient;
use registry_nacos::grpc::proto::request_client::RequestClient;
use registry_nacos::grpc::proto::{Any, Metadata, Payload};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Register,
    Fanout,
    Idle,
}

#[derive(Debug, Parser)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,
    /// The gRPC address, host:port.
    #[arg(long)]
    target: String,
    /// Connections (clients, or subscribers).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to run (register) or hold (idle).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Changes to time (fanout).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

fn payload(kind: &str, body: &Value) -> Payload {
    payload_text(kind, body.to_string())
}

fn body(payload: &Payload) -> Value {
    let bytes = payload.body.as_ref().map(|b| b.value.clone()).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn kind(payload: &Payload) -> &str {
    payload.metadata.as_ref().map_or("", |m| m.r#type.as_str())
}

/// One HTTP/2 connection, hyper's, as tonic's clients call through it. tonic's `Channel`
/// would add a worker task and a queue to every call.
#[derive(Clone)]
struct H2(SendRequest<tonic::body::Body>);

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

/// One client connection, set up.
struct Conn {
    unary: RequestClient<H2>,
    h2: H2,
    origin: String,
    _stream: mpsc::Sender<Payload>,
}

impl Conn {
    /// A unary `Request/request` call written out directly: the message in one DATA frame
    /// that ends the stream. tonic's client streams the body and ends it in a frame of its
    /// own, which costs the load client a write more per call.
    async fn call(&mut self, payload: &Payload) -> anyhow::Result<Payload> {
        let mut frame = BytesMut::with_capacity(5 + payload.encoded_len());
        frame.put_u8(0);
        frame.put_u32(u32::try_from(payload.encoded_len())?);
        payload.encode(&mut frame)?;
        let request = http::Request::post(format!("{}/Request/request", self.origin))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::new(Full::new(frame.freeze())))?;
        std::future::poll_fn(|cx| self.h2.0.poll_ready(cx)).await?;
        let answer = self.h2.0.send_request(request).await?;
        let bytes = answer.into_body().collect().await?.to_bytes();
        if bytes.len() < 5 {
            bail!("an answer without a message ({} bytes)", bytes.len());
        }
        Ok(Payload::decode(&bytes[5..])?)
    }
}

/// What the load client reads of a message the server sends on the stream (read once,
/// into these fields only: the client must not be what delays a delivery it times).
#[derive(Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Sent {
    request_id: String,
    service_info: Option<SentService>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct SentService {
    hosts: Vec<serde::de::IgnoredAny>,
}

/// Connects and sets up; `on_message` gets the type of every message the server sends on
/// the stream, the host count of a pushed service, and when it arrived.
async fn connect(target: &str, on_message: impl Fn(&str, usize, Instant) + Send + 'static) -> anyhow::Result<Conn> {
    let tcp = TcpStream::connect(target)
        .await
        .with_context(|| format!("connecting to {target}"))?;
    tcp.set_nodelay(true)?;
    let (send, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let h2 = H2(send);
    let origin = format!("http://{target}");
    let uri: http::Uri = origin.parse()?;
    let mut unary = RequestClient::with_origin(h2.clone(), uri.clone());
    unary.request(payload("ServerCheckRequest", &json!({}))).await?;
    let (tx, rx) = mpsc::channel(16);
    let mut inbound = BiRequestStreamClient::with_origin(h2.clone(), uri)
        .request_bi_stream(ReceiverStream::new(rx))
        .await?
        .into_inner();
    tx.send(payload(
        "ConnectionSetupRequest",
        &json!({"clientVersion":"bench-grpc","tenant":"","labels":{"source":"sdk","module":"naming"},"abilityTable":{}}),
    ))
    .await?;
    let acks = tx.clone();
    tokio::spawn(async move {
        while let Ok(Some(message)) = inbound.message().await {
            let at = Instant::now();
            let sent: Sent = message
                .body
                .as_ref()
                .and_then(|body| serde_json::from_slice(&body.value).ok())
                .unwrap_or_default();
            let kind = kind(&message);
            on_message(kind, sent.service_info.map_or(0, |info| info.hosts.len()), at);
            let answer = match kind {
                "NotifySubscriberRequest" => "NotifySubscriberResponse",
                "ClientDetectionRequest" => "ClientDetectionResponse",
                _ => continue,
            };
            let id = serde_json::to_string(&sent.request_id).unwrap_or_else(|_| "\"\"".to_owned());
            let ack = format!(r#"{{"resultCode":200,"errorCode":0,"message":"","requestId":{id}}}"#);
            let _ = acks.send(payload_text(answer, ack)).await;
        }
    });
    // Until the server has registered the connection (301 before).
    for _ in 0..200 {
        let answer = unary
            .request(payload("HealthCheckRequest", &json!({})))
            .await?
            .into_inner();
        if kind(&answer) == "HealthCheckResponse" {
            return Ok(Conn {
                unary,
                h2,
                origin,
                _stream: tx,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("the connection to {target} never set up")
}

/// An `InstanceRequest` body of `kind` (`registerInstance`, `deregisterInstance`), written
/// out directly rather than built as a JSON value: the load loop stays cheap, so that the
/// client (on its own core) is not what limits the rate measured.
fn instance_request(service: &str, ip: &str, port: u16, kind: &str) -> String {
    format!(
        r#"{{"requestId":"","namespace":"public","groupName":"DEFAULT_GROUP","serviceName":"{service}","module":"naming","type":"{kind}","instance":{{"ip":"{ip}","port":{port},"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT","metadata":{{"env":"bench"}}}}}}"#
    )
}

fn payload_text(kind: &str, body: String) -> Payload {
    Payload {
        metadata: Some(Metadata {
            r#type: kind.to_owned(),
            client_ip: "127.0.0.1".to_owned(),
            headers: HashMap::new(),
        }),
        body: Some(Any {
            type_url: String::new(),
            value: Bytes::from(body),
        }),
    }
}

/// The `resultCode` of an answer, read without building a JSON value.
fn result_code(payload: &Payload) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "resultCode")]
        result_code: i64,
    }
    let bytes = payload.body.as_ref()?.value.as_ref();
    serde_json::from_slice::<Answer>(bytes).ok().map(|a| a.result_code)
}

/// Percentile `p` (0..=100) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut millis: Vec<f64>) -> Value {
    millis.sort_by(f64::total_cmp);
    json!({
        "count": millis.len(),
        "p50_ms": percentile(&millis, 50.0),
        "p99_ms": percentile(&millis, 99.0),
        "max_ms": millis.last().copied().unwrap_or(0.0),
    })
}

async fn register(args: &Args) -> anyhow::Result<Value> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let mut conn = connect(&args.target, |_, _, _| {}).await?;
        let (stop, done) = (stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let request = instance_request(&format!("bench.{c}.{i}"), "10.9.0.1", 8080, "registerInstance");
                let started = Instant::now();
                let answer = conn.call(&payload_text("InstanceRequest", request)).await;
                match answer {
                    Ok(answer) if result_code(&answer) == Some(200) => {
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(answer) => return Err(anyhow::anyhow!("refused: {}", body(&answer))),
                    Err(e) => return Err(e),
                }
                i += 1;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let count = done.load(Ordering::Relaxed);
    Ok(
        json!({"mode":"register","connections":args.connections,"seconds":elapsed,
        "registrations":count,"per_second":(count as f64 / elapsed).round(),"latency":summary(all)}),
    )
}

async fn fanout(args: &Args) -> anyhow::Result<Value> {
    let service = "bench.fanout";
    // Each subscriber reports the host count of every push it gets.
    let (pushed_tx, mut pushed) = mpsc::unbounded_channel::<(usize, usize, Instant)>();
    let mut subscribers = Vec::new();
    for s in 0..args.connections {
        let tx = pushed_tx.clone();
        let mut conn = connect(&args.target, move |kind, hosts, at| {
            if kind == "NotifySubscriberRequest" {
                let _ = tx.send((s, hosts, at));
            }
        })
        .await?;
        let subscribe = json!({"requestId":"","namespace":"public","groupName":"DEFAULT_GROUP","serviceName":service,
            "module":"naming","subscribe":true,"clusters":""});
        conn.unary
            .request(payload("SubscribeServiceRequest", &subscribe))
            .await?;
        subscribers.push(conn);
    }
    // Everyone has the first push (no hosts yet) before the clock starts.
    let mut first = vec![false; args.connections];
    let mut waiting = args.connections;
    while waiting > 0 {
        let (s, _, _) = tokio::time::timeout(Duration::from_secs(60), pushed.recv())
            .await
            .context("the first pushes")?
            .context("closed")?;
        if !std::mem::replace(&mut first[s], true) {
            waiting -= 1;
        }
    }
    let mut publisher = connect(&args.target, |_, _, _| {}).await?;
    let mut deliveries = Vec::new();
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let (kind_of, expected) = if round % 2 == 0 {
            ("registerInstance", 1)
        } else {
            ("deregisterInstance", 0)
        };
        while pushed.try_recv().is_ok() {}
        let started = Instant::now();
        let answer = publisher
            .unary
            .request(payload_text(
                "InstanceRequest",
                instance_request(service, "10.9.9.9", 9999, kind_of),
            ))
            .await?;
        if result_code(answer.get_ref()) != Some(200) {
            bail!("the change was refused: {}", body(answer.get_ref()));
        }
        let mut seen = vec![false; args.connections];
        let mut waiting = args.connections;
        let mut last = 0.0;
        while waiting > 0 {
            let (s, hosts, at) = tokio::time::timeout(Duration::from_secs(60), pushed.recv())
                .await
                .with_context(|| format!("round {round}: {waiting} subscribers never got the push"))?
                .context("closed")?;
            if hosts == expected && !std::mem::replace(&mut seen[s], true) {
                waiting -= 1;
                let ms = at.duration_since(started).as_secs_f64() * 1000.0;
                deliveries.push(ms);
                last = ms;
            }
        }
        rounds.push(last);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(subscribers);
    Ok(
        json!({"mode":"fanout","subscribers":args.connections,"rounds":args.rounds,
        "delivery":summary(deliveries),"round_complete":summary(rounds)}),
    )
}

async fn idle(args: &Args) -> anyhow::Result<Value> {
    let mut held = Vec::with_capacity(args.connections);
    let started = Instant::now();
    for _ in 0..args.connections {
        held.push(connect(&args.target, |_, _, _| {}).await?);
    }
    let opened = started.elapsed().as_secs_f64();
    // Tell the script the connections are up, then hold them.
    eprintln!("IDLE-UP {}", held.len());
    let (_tx, mut rx) = watch::channel(());
    let _ = tokio::time::timeout(Duration::from_secs(args.seconds), rx.changed()).await;
    Ok(json!({"mode":"idle","connections":held.len(),"open_seconds":opened}))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Thousands of connections need more descriptors than the default soft limit.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let figures = runtime.block_on(async {
        match args.mode {
            Mode::Register => register(&args).await,
            Mode::Fanout => fanout(&args).await,
            Mode::Idle => idle(&args).await,
        }
    })?;
    println!("{figures}");
    Ok(())
}
