//! Graceful shutdown: a request in flight when the signal comes is answered, then the
//! node stops accepting and `run` returns.

use std::time::Duration;

use maregistry::Config;
use test_support::{free_listener, instance, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_request_in_flight_is_finished_before_the_node_stops() {
    let listener = free_listener();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(maregistry::run(listener, Config::default(), async {
        let _ = stopped.await;
    }));

    // Send the head of a registration with `Expect: 100-continue`. The server answers
    // "100 Continue" only once the handler is running and reading the body, so after
    // that line arrives the request is certainly in flight.
    let body = instance("10.1.1.1", 8080);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /reg?service=inflight HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );

    // Shut down while the handler waits for the body.
    stop.send(()).unwrap();
    // New connections are refused once the listener is gone.
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener closes on shutdown");

    // The body arrives after the signal; the answer still comes, complete.
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":true"#), "{answer}");

    let result = tokio::time::timeout(Duration::from_secs(60), node)
        .await
        .expect("run returns");
    result.unwrap().unwrap();
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_shutdown() {
    let listener = free_listener();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(maregistry::run(listener, Config::default(), async {
        let _ = stopped.await;
    }));
    // The client keeps its connection alive in its pool after this call.
    let c = Client::new();
    c.ok("GET", &format!("http://{addr}/info"), "").await;
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), node)
        .await
        .expect("run returns promptly");
    result.unwrap().unwrap();
}
