//! The gRPC ceiling: a bare hyper HTTP/2 server with maregistry's gRPC settings (no Date
//! header, its writes sent once per turn as the node's are), answering every unary Nacos
//! call with one canned `ConfigQueryResponse` of `--content-bytes` of content (a
//! `HealthCheckResponse` to a health check, so that clients set up) and holding every
//! bi-stream open. `bench-config --mode query` against it shows what the load client and
//! the kernel leave for any server on this machine.

use std::convert::Infallible;

use bytes::Bytes;
use clap::Parser;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prost::Message as _;
use registry_nacos::grpc::gather::{drive, gather};
use registry_nacos::grpc::proto::Payload;
use tokio::net::TcpListener;

use bench_tools::grpc::{message, payload_text};

#[derive(Parser)]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 19999)]
    port: u16,
    /// Size of the canned answer's content in bytes.
    #[arg(long, default_value_t = 1024)]
    content_bytes: usize,
}

type Body = BoxBody<Bytes, Infallible>;

/// A unary answer: the message, then `grpc-status: 0`.
fn unary(answer: Bytes) -> http::Response<Body> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = [Ok(Frame::data(answer)), Ok(Frame::trailers(trailers))];
    grpc(StreamBody::new(tokio_stream::iter(frames)).boxed())
}

fn grpc(body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    response
        .headers_mut()
        .insert("content-type", http::HeaderValue::from_static("application/grpc"));
    response
}

async fn answer(request: http::Request<Incoming>, query: Bytes, health: Bytes) -> http::Response<Body> {
    if request.uri().path() != "/Request/request" {
        // A bi-stream: answered, never ended, never read.
        return grpc(StreamBody::new(tokio_stream::pending()).boxed());
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let kind = body
        .get(5..)
        .and_then(|message| Payload::decode(message).ok())
        .and_then(|payload| payload.metadata)
        .map(|metadata| metadata.r#type)
        .unwrap_or_default();
    unary(if kind == "HealthCheckRequest" { health } else { query })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let content = "x".repeat(args.content_bytes);
    let body = format!(
        r#"{{"resultCode":200,"errorCode":0,"message":"","requestId":"","success":true,"content":"{content}","contentType":"text","md5":"00000000000000000000000000000000","lastModified":0,"beta":false}}"#
    );
    let query = message(&payload_text("ConfigQueryResponse", body))?;
    let health = message(&payload_text(
        "HealthCheckResponse",
        r#"{"resultCode":200,"errorCode":0,"message":"","requestId":"","success":true}"#.to_owned(),
    ))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
        let mut http = http2::Builder::new(TokioExecutor::new());
        http.timer(TokioTimer::new()).auto_date_header(false);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (query, health) = (query.clone(), health.clone());
            let service = service_fn(move |request| {
                let (query, health) = (query.clone(), health.clone());
                async move { Ok::<_, Infallible>(answer(request, query, health).await) }
            });
            let (io, sender) = gather(stream);
            tokio::spawn(drive(sender, http.serve_connection(TokioIo::new(io), service)));
        }
    })
}
