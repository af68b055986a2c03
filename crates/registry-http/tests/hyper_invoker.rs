//! HyperInvoker against a real local hyper server: success, 4xx/5xx, timeout, refused.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use registry_http::{get_json, post_json, ErrorKind, HttpInvoker, HttpRequest, HyperInvoker, HyperInvokerConfig};
use tokio::net::TcpListener;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (status, text) = match path.as_str() {
        "/ok" => (200, "hello".to_owned()),
        "/json" => (200, r#"{"a":1}"#.to_owned()),
        "/echo" => (200, format!("{method} {query} {}", String::from_utf8_lossy(&body))),
        "/bad" => (400, r#"{"status":400,"message":"nope"}"#.to_owned()),
        "/boom" => (500, "it broke".to_owned()),
        "/big" => (200, "x".repeat(10_000)),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            (200, "late".to_owned())
        }
        _ => (404, String::new()),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap())
}

async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(handle)));
        }
    });
    addr
}

fn generous() -> HyperInvoker {
    HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_secs(10)))
}

#[tokio::test]
async fn the_four_seed_calls_succeed() {
    let addr = server().await;
    let http = generous();
    assert_eq!(http.get(&format!("http://{addr}/ok")).await.unwrap(), "hello");
    assert_eq!(
        http.get_with(&format!("http://{addr}/echo"), &[("services", "a,b")])
            .await
            .unwrap(),
        "GET services=a%2Cb "
    );
    assert_eq!(
        http.post(&format!("http://{addr}/echo"), "{}").await.unwrap(),
        "POST  {}"
    );
    assert_eq!(
        http.post_with(&format!("http://{addr}/echo"), &[("service", "s")], r#"{"x":1}"#)
            .await
            .unwrap(),
        r#"POST service=s {"x":1}"#
    );
    let v: serde_json::Value = get_json(&http, &format!("http://{addr}/json")).await.unwrap();
    assert_eq!(v["a"], 1);
    let v: serde_json::Value = post_json(&http, &format!("http://{addr}/json"), &[], &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(v["a"], 1);
}

#[tokio::test]
async fn error_statuses_are_errors_with_status_and_excerpt_but_send_relays_them() {
    let addr = server().await;
    let http = generous();
    let url = format!("http://{addr}/bad");
    let e = http.get(&url).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Status);
    assert_eq!(e.status, Some(400));
    assert_eq!(e.url, url);
    assert_eq!(e.method, "GET");
    assert!(e.body_excerpt.as_deref().unwrap().contains("nope"));
    assert!(e.to_string().contains("400"), "{e}");

    let e = http.post(&format!("http://{addr}/boom"), "{}").await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Status, Some(500)));

    // The raw call answers the status instead: a follower relays it unchanged.
    let raw = http.send(HttpRequest::get(&url, &[])).await.unwrap();
    assert_eq!(raw.status, 400);
    assert_eq!(raw.content_type(), Some("application/json"));
    assert_eq!(&raw.body[..], br#"{"status":400,"message":"nope"}"#);

    let e = get_json::<Vec<u8>>(&http, &format!("http://{addr}/ok"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Decode);
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let addr = server().await;
    let http = HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_millis(100)));
    let e = http.get(&format!("http://{addr}/slow")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = generous().get(&format!("http://{addr}/ok")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect, "{e}");
}

#[tokio::test]
async fn bad_urls_and_oversized_answers_are_refused() {
    let http = generous();
    for url in ["not a url", "https://127.0.0.1:1/x", "/relative"] {
        assert_eq!(http.get(url).await.unwrap_err().kind, ErrorKind::InvalidUrl, "{url}");
    }
    let addr = server().await;
    let small = HyperInvoker::new(HyperInvokerConfig {
        max_response_bytes: 1_000,
        ..HyperInvokerConfig::with_timeout(Duration::from_secs(10))
    });
    assert_eq!(
        small.get(&format!("http://{addr}/big")).await.unwrap_err().kind,
        ErrorKind::TooLarge
    );
}
