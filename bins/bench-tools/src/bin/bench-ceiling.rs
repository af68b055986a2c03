//! The HTTP ceiling: a bare hyper 1.x HTTP/1.1 server on the same runtime settings as
//! maregistry, answering every request with a fixed JSON body of `--body-bytes` bytes.
//! Whatever maregistry does on top of hyper shows as the distance to this.

use std::convert::Infallible;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Parser)]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 18999)]
    port: u16,
    /// Size of the answer body in bytes.
    #[arg(long, default_value_t = 1202)]
    body_bytes: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let body = Bytes::from(format!("[\"{}\"]", "x".repeat(args.body_bytes.saturating_sub(4))));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            let service = service_fn(move |_req| {
                let mut response = Response::new(Full::new(body.clone()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                async move { Ok::<_, Infallible>(response) }
            });
            // The same connection settings as maregistry's server (registry-api::serve).
            let mut http = http1::Builder::new();
            http.keep_alive(true).writev(false);
            tokio::spawn(http.serve_connection(TokioIo::new(stream), service));
        }
    })
}
