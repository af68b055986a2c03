//! What one slow or greedy client may take of a node: a body that stalls is cut off, a
//! client holding every connection slot cannot make the node go silent, and oversized
//! request heads get the JSON error of docs/spec.md §3.

use std::net::SocketAddr;
use std::time::Duration;

use maregistry::Config;
use serde_json::{json, Value};
use test_support::{eventually, instance, Client, Node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(30);

/// Opens a connection and sends a request head that promises a 100-byte body, then one
/// byte of it; the rest never comes.
async fn stalled_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head =
        "POST /reg?service=s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
}

/// Reads until the server closes the connection (bounded), answering status line and body.
async fn read_answer(stream: &mut TcpStream) -> (String, String) {
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes the connection")
        .expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// Sends `request` as is on a new connection and reads the answer.
async fn raw(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    read_answer(&mut stream).await
}

fn error_json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a JSON error ({e}): {body:?}"))
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_with_408_and_changes_nothing() {
    let node = Node::start(Config {
        body_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let mut stream = stalled_request(node.addr).await;
    let (status, body) = read_answer(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    let error = error_json(&body);
    assert_eq!(error["status"], json!(408));
    assert_eq!(error["path"], json!("/reg"));
    assert!(error["message"].as_str().unwrap_or_default().contains("did not arrive"));

    let c = Client::new();
    assert_eq!(c.ok("GET", &node.at("/snapshot"), "").await["version"], json!(0));
    node.stop().await;
}

#[tokio::test]
async fn with_every_connection_slot_held_a_new_client_still_gets_an_answer() {
    let node = Node::start(Config {
        max_connections: 4,
        body_timeout: Duration::from_secs(120),
        ..Config::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(stalled_request(node.addr).await);
    }
    // Connections are accepted in order: these four hold every slot. A new client is
    // answered 503 with the JSON error, not left waiting.
    let c = Client::new();
    let (status, error) = c.get(&node.at("/findAll?service=s")).await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["path"], json!("/findAll"));
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 4 connections"),
        "{error}"
    );
    // Refused again and again: the listener keeps answering.
    for _ in 0..20 {
        let (status, _) = raw(node.addr, b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    }

    // One holder goes away: its slot frees and a client is served again.
    drop(held.pop());
    eventually("a freed slot serves a client", LIMIT, || async {
        c.call("POST", &node.at("/reg?service=s"), &instance("10.0.0.1", 1))
            .await
            .0
            == 200
    })
    .await;
    drop(held);
    node.stop().await;
}

#[tokio::test]
async fn oversized_request_heads_get_json_errors() {
    let node = Node::start(Config::default()).await;

    let long_target = format!(
        "GET /findAll?service={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "s".repeat(registry_api::MAX_URI_BYTES)
    );
    let (status, body) = raw(node.addr, long_target.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 414"), "{status}");
    let error = error_json(&body);
    assert_eq!(error["status"], json!(414));
    assert_eq!(error["path"], json!("/findAll"));

    let long_path = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "p".repeat(registry_api::MAX_URI_BYTES)
    );
    let (status, body) = raw(node.addr, long_path.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 414"), "{status}");
    assert_eq!(
        error_json(&body)["path"].as_str().map(str::len),
        Some(256),
        "an oversized path is not echoed whole"
    );

    let big_header = format!(
        "GET /findAll?service=s HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "v".repeat(registry_api::MAX_HEADER_BYTES)
    );
    let (status, body) = raw(node.addr, big_header.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert_eq!(error_json(&body)["status"], json!(431));

    // A request line that is not HTTP is refused by hyper before any handler runs: a 400
    // with an empty body (docs/api.md lists this exception).
    let (status, body) = raw(node.addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert_eq!(body, "");

    // The node still serves.
    let c = Client::new();
    assert_eq!(c.ok("GET", &node.at("/findAll?service=s"), "").await, json!([]));
    node.stop().await;
}
