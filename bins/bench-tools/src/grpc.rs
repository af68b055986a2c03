//! The Nacos gRPC load client's shared parts (`bench-grpc`, `bench-config`): a set-up
//! connection over hyper's HTTP/2, unary calls written out directly, what the server sends
//! on the stream, and latency summaries.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use registry_nacos::grpc::proto::bi_request_stream_client::BiRequestStreamClient;
use registry_nacos::grpc::proto::request_client::RequestClient;
use registry_nacos::grpc::proto::{Any, Metadata, Payload};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// A payload of `kind` whose body is `body`.
pub fn payload(kind: &str, body: &Value) -> Payload {
    payload_text(kind, body.to_string())
}

/// The JSON body of `payload`.
pub fn body(payload: &Payload) -> Value {
    let bytes = payload.body.as_ref().map(|b| b.value.clone()).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// The type of `payload`.
pub fn kind(payload: &Payload) -> &str {
    payload.metadata.as_ref().map_or("", |m| m.r#type.as_str())
}

/// One HTTP/2 connection, hyper's, as tonic's clients call through it. tonic's `Channel`
/// would add a worker task and a queue to every call.
#[derive(Clone)]
pub struct H2(SendRequest<tonic::body::Body>);

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

/// One client connection, set up. A clone is another caller on the same connection (its
/// calls are multiplexed on it).
#[derive(Clone)]
pub struct Conn {
    /// tonic's client of the unary service, over the connection.
    pub unary: RequestClient<H2>,
    h2: H2,
    origin: String,
    _stream: mpsc::Sender<Payload>,
}

impl Conn {
    /// A unary `Request/request` call written out directly: the message in one DATA frame
    /// that ends the stream. tonic's client streams the body and ends it in a frame of its
    /// own, which costs the load client a write more per call.
    pub async fn call(&mut self, payload: &Payload) -> anyhow::Result<Payload> {
        let request = http::Request::post(format!("{}/Request/request", self.origin))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::new(Full::new(message(payload)?)))?;
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
pub struct Sent {
    /// Its request id, to acknowledge it.
    pub request_id: String,
    service_info: Option<SentService>,
    /// A config push's data id.
    pub data_id: String,
}

impl Sent {
    /// How many hosts a pushed service holds.
    pub fn hosts(&self) -> usize {
        self.service_info.as_ref().map_or(0, |info| info.hosts.len())
    }
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct SentService {
    hosts: Vec<serde::de::IgnoredAny>,
}

/// Connects and sets up as a client of `module` (`naming`, `config`); `on_message` gets the
/// type of every message the server sends on the stream, what the load client reads of
/// it, and when it arrived. Pushes are acknowledged.
pub async fn connect(
    target: &str,
    module: &str,
    on_message: impl Fn(&str, &Sent, Instant) + Send + 'static,
) -> anyhow::Result<Conn> {
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
        &json!({"clientVersion":"bench-grpc","tenant":"","labels":{"source":"sdk","module":module},"abilityTable":{}}),
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
            on_message(kind, &sent, at);
            let answer = match kind {
                "NotifySubscriberRequest" => "NotifySubscriberResponse",
                "ConfigChangeNotifyRequest" => "ConfigChangeNotifyResponse",
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

/// `payload` as one gRPC message: the flag byte, the length, the encoding.
pub fn message(payload: &Payload) -> anyhow::Result<Bytes> {
    let mut frame = BytesMut::with_capacity(5 + payload.encoded_len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(payload.encoded_len())?);
    payload.encode(&mut frame)?;
    Ok(frame.freeze())
}

/// A payload of `kind` whose body is the JSON text `body`.
pub fn payload_text(kind: &str, body: String) -> Payload {
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
pub fn result_code(payload: &Payload) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "resultCode")]
        result_code: i64,
    }
    let bytes = payload.body.as_ref()?.value.as_ref();
    serde_json::from_slice::<Answer>(bytes).ok().map(|a| a.result_code)
}

/// Percentile `p` (0..=100) of sorted `values`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The count, p50, p99 and max of `millis`.
pub fn summary(mut millis: Vec<f64>) -> Value {
    millis.sort_by(f64::total_cmp);
    json!({
        "count": millis.len(),
        "p50_ms": percentile(&millis, 50.0),
        "p99_ms": percentile(&millis, 99.0),
        "max_ms": millis.last().copied().unwrap_or(0.0),
    })
}

/// What [`run_for`] measured: requests answered 200, over how long, each one's latency (ms).
pub struct Run {
    /// Requests answered 200.
    pub count: u64,
    /// How long the run took, in seconds.
    pub seconds: f64,
    /// Each answer's latency, in milliseconds.
    pub latencies: Vec<f64>,
}

impl Run {
    /// The figures as JSON: the count under `name`, per second, and the latency summary.
    pub fn figures(self, name: &str) -> serde_json::Map<String, Value> {
        let mut figures = serde_json::Map::new();
        figures.insert(name.to_owned(), json!(self.count));
        figures.insert("seconds".to_owned(), json!(self.seconds));
        figures.insert(
            "per_second".to_owned(),
            json!((self.count as f64 / self.seconds).round()),
        );
        figures.insert("latency".to_owned(), summary(self.latencies));
        figures
    }
}

/// Each of `callers` sends `request(caller, i)` for i = 0, 1, … one after the other, for
/// `seconds`; any answer but 200 ends the run with an error.
pub async fn run_for(
    callers: Vec<Conn>,
    seconds: u64,
    request: Arc<dyn Fn(usize, u64) -> Payload + Send + Sync>,
) -> anyhow::Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (c, mut conn) in callers.into_iter().enumerate() {
        let (stop, request) = (stop.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let payload = request(c, i);
                let started = Instant::now();
                let answer = conn.call(&payload).await?;
                if result_code(&answer) != Some(200) {
                    bail!("refused: {}", body(&answer));
                }
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                i += 1;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Run {
        count: latencies.len() as u64,
        seconds: elapsed,
        latencies,
    })
}
