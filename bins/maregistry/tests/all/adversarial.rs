//! What an adversarial probe found (issue 32), each held here: gRPC connections that never
//! set up or go idle, a connection flood under a small open-file limit, gRPC clean-up
//! that stays linear, gRPC requests held to the HTTP limits, cross-site writes, the first
//! push to a subscriber, and lenient parsing refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use maregistry::{Config, GrpcSettings};
use serde_json::{json, Value};
use test_support::{
    agreed_leader, eventually, free_ports, instance, loading_the_machine, start_grpc, start_raft_grpc, Client, Node,
    Proc, Scenario, LIMIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::nacos2::{grpc_port, server, Raw};

/// How many instances the service named `service` holds, per `/services`.
async fn instances_of(c: &Client, node: &Node, service: &str) -> u64 {
    instances_of_at(c, &node.at(""), service).await
}

/// [`instances_of`] the node at `url`.
async fn instances_of_at(c: &Client, url: &str, service: &str) -> u64 {
    let services = c.ok("GET", &format!("{url}/services"), "").await;
    services["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == service))
        .and_then(|s| s["instances"].as_u64())
        .unwrap_or(0)
}

/// A `BatchInstanceRequest` publishing `count` instances from `10.<net>.x.y` in `service`.
fn batch_of(service: &str, net: u8, count: u16) -> Value {
    let instances: Vec<Value> = (0..count)
        .map(|i| {
            json!({"ip": format!("10.{net}.{}.{}", i / 250, i % 250 + 1), "port": 8080, "weight": 1.0,
                "healthy": true, "enabled": true, "ephemeral": true, "metadata": {"zone": "a"}})
        })
        .collect();
    json!({"namespace": "public", "groupName": "DEFAULT_GROUP", "serviceName": service,
        "type": "batchRegisterInstance", "instances": instances})
}

/// Two connections publish 16,000 instances each in one service; when one goes, its
/// 16,000 are withdrawn within a second (each looked up in one map, not in the other
/// connection's list: this took 10 s before), and `/health` answers within half a second
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_owning_16000_instances_is_cleaned_up_within_a_second() {
    const EACH: u16 = 16_000;
    let node = start_grpc(Config {
        max_body: 256 * 1024,
        max_batch: usize::from(EACH),
        grpc: GrpcSettings {
            max_instances: usize::from(EACH),
            ..GrpcSettings::default()
        },
        ..Config::default()
    });
    let c = Client::new();
    let mut leaving = Raw::connect(grpc_port(&node)).await;
    leaving.setup().await;
    let mut staying = Raw::connect(grpc_port(&node)).await;
    staying.setup().await;
    for (raw, net) in [(&mut leaving, 1), (&mut staying, 2)] {
        eventually("the connection is set up", LIMIT, || raw.is_registered()).await;
        let (kind, body) = raw.call("BatchInstanceRequest", batch_of("crowded", net, EACH)).await;
        assert_eq!(kind, "BatchInstanceResponse", "{body}");
    }
    assert_eq!(instances_of(&c, &node, "crowded").await, 2 * u64::from(EACH));

    let health = node.at("/health");
    let probe = tokio::spawn(async move {
        let c = Client::new();
        let mut slowest = Duration::ZERO;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let asked = Instant::now();
            let answer = c.raw("GET", &health, "").await;
            assert_eq!(answer.status, 200);
            slowest = slowest.max(asked.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slowest
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dropped = Instant::now();
    drop(leaving);
    eventually("the leaving connection's instances are withdrawn", LIMIT, || async {
        instances_of(&c, &node, "crowded").await == u64::from(EACH)
    })
    .await;
    let took = dropped.elapsed();
    let slowest = probe.await.expect("the probe ran");
    assert!(took <= Duration::from_secs(1), "the clean-up took {took:?}");
    assert!(
        slowest <= Duration::from_millis(500),
        "/health took {slowest:?} during the clean-up"
    );
    assert_eq!(
        instances_of(&c, &node, "crowded").await,
        u64::from(EACH),
        "the other connection's stay"
    );
    drop(staying);
    node.stop().await;
}

/// What one flooding connection sends before it waits.
#[derive(Clone, Copy)]
enum Flood {
    /// Nothing at all.
    Silent,
    /// The HTTP/2 preface, then nothing (a gRPC client that never sets up).
    Preface,
    /// A request head announcing a body that never comes.
    Unfinished,
}

impl Flood {
    fn bytes(self) -> &'static [u8] {
        match self {
            Flood::Silent => b"",
            Flood::Preface => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            Flood::Unfinished => b"POST /reg?service=x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n{",
        }
    }
}

/// One flooding client: connects to `port`, sends `what`, and waits for the node to close
/// the connection; again, until `stop`. Answers how many connections the node closed.
async fn flood(port: u16, what: Flood, stop: Arc<AtomicBool>) -> usize {
    let mut closed = 0;
    while !stop.load(Ordering::Relaxed) {
        let connecting = TcpStream::connect(("127.0.0.1", port));
        let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(5), connecting).await else {
            continue;
        };
        if stream.write_all(what.bytes()).await.is_err() {
            continue;
        }
        // Whatever the node answers, then its close (the flood never closes first).
        let mut sink = Vec::new();
        let ended = tokio::time::timeout(LIMIT, stream.read_to_end(&mut sink)).await;
        assert!(ended.is_ok(), "the node kept a flooding connection open for {LIMIT:?}");
        closed += 1;
        // Enough to keep every slot taken, short of using the test machine up.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    closed
}

/// A raft node under an open-file limit of 300 (a budget of 225 connections), flooded on
/// both listeners by 400 clients (200 a listener, over either's part) with
/// connections that send nothing, only the HTTP/2 preface, or an unfinished request,
/// while a client connected before keeps writing over gRPC (raft writes its snapshot file
/// meanwhile): the node stays up and leads, closes every flooding connection itself,
/// serves again once the flood stops, and after `kill -9` holds every write it
/// acknowledged. Before issue 32 the two listeners could take more descriptors than the
/// process had, and the node exited when raft could not create its snapshot file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_under_a_small_open_file_limit_stops_nothing() {
    let _machine = loading_the_machine().await;
    // The flood holds hundreds of sockets on this side too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let data = tempfile::tempdir().expect("a temp dir");
    let ports = free_ports(2);
    let (http, grpc) = (ports[0], ports[1]);
    let args: Vec<String> = [
        "--data-dir",
        &data.path().display().to_string(),
        "--grpc-port",
        &grpc.to_string(),
        "--raft-snapshot-every",
        "10",
        "--handshake-timeout",
        "1s",
        "--idle-timeout",
        "1s",
        "--body-timeout",
        "1s",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut node = Proc::start_with_open_files(http, &args, 300);
    let url = node.url.clone();
    let c = Client::new();
    agreed_leader(&c, &[&url]).await;
    for i in 0..50u16 {
        c.ok(
            "POST",
            &format!("{url}/reg?service=kept"),
            &instance("10.9.0.1", 1000 + i),
        )
        .await;
    }
    let mut writer = Raw::connect(grpc).await;
    writer.setup().await;
    eventually("the writer's connection is set up", LIMIT, || writer.is_registered()).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut flooders = Vec::new();
    for i in 0..400 {
        let (port, what) = match i % 4 {
            0 => (http, Flood::Silent),
            1 => (http, Flood::Unfinished),
            2 => (grpc, Flood::Silent),
            _ => (grpc, Flood::Preface),
        };
        flooders.push(tokio::spawn(flood(port, what, stop.clone())));
    }
    // Every publication is a log entry: a snapshot every ten.
    let flooded_for = Instant::now();
    let mut rounds = 0u16;
    while flooded_for.elapsed() < Duration::from_secs(4) || rounds < 40 {
        rounds += 1;
        let (kind, body) = writer
            .call("BatchInstanceRequest", batch_of("flooded", 3, rounds))
            .await;
        assert_eq!(kind, "BatchInstanceResponse", "{body}");
        assert!(node.running(), "the node exited under the flood");
    }
    stop.store(true, Ordering::Relaxed);
    let mut closed = 0;
    for flooder in flooders {
        closed += flooder.await.expect("a flooding client ran");
    }
    assert!(closed >= 400, "every flooding client had connections closed: {closed}");
    assert!(node.running(), "the node exited under the flood");
    let log = node.log_text();
    assert!(
        log.matches("raft snapshot written").count() >= 2,
        "snapshots were written under the flood"
    );

    // It serves again, and still leads.
    assert_eq!(agreed_leader(&c, &[&url]).await, url);
    c.ok("POST", &format!("{url}/reg?service=kept"), &instance("10.9.0.2", 80))
        .await;
    assert_eq!(instances_of_at(&c, &url, "flooded").await, u64::from(rounds));
    drop(writer);

    // Nothing acknowledged was lost.
    node.restart();
    agreed_leader(&c, &[&url]).await;
    assert_eq!(instances_of_at(&c, &url, "kept").await, 51);
}

/// A gRPC connection that sends nothing, or only the HTTP/2 preface, is closed once the
/// handshake timeout passes without a Nacos setup; one that set up stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connections_that_never_set_up_are_closed() {
    let node = start_grpc(Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    let mut set_up = Raw::connect(grpc_port(&node)).await;
    set_up.setup().await;
    eventually("the connection is set up", LIMIT, || set_up.is_registered()).await;
    for what in [Flood::Silent, Flood::Preface] {
        let mut stream = TcpStream::connect(("127.0.0.1", grpc_port(&node)))
            .await
            .expect("connects");
        stream.write_all(what.bytes()).await.expect("sent");
        let mut sink = Vec::new();
        tokio::time::timeout(LIMIT, stream.read_to_end(&mut sink))
            .await
            .expect("the node closes it")
            .expect("a clean end");
    }
    assert!(set_up.is_registered().await, "a set-up connection stays");
    node.stop().await;
}

/// An `InstanceRequest` for `service` registering `ip` with `metadata_bytes` of metadata.
fn registration(service: &str, ip: &str, metadata_bytes: usize) -> Value {
    json!({"namespace": "public", "groupName": "DEFAULT_GROUP", "serviceName": service, "type": "registerInstance",
        "instance": {"ip": ip, "port": 8080, "weight": 1.0, "healthy": true, "enabled": true, "ephemeral": true,
        "metadata": {"blob": "x".repeat(metadata_bytes)}}})
}

/// The error code of an `ErrorResponse`, or `None` for any other answer.
fn error_code((kind, body): &(String, Value)) -> Option<i64> {
    (kind == "ErrorResponse").then(|| body["errorCode"].as_i64()).flatten()
}

/// gRPC requests are held to the HTTP limits on the node that holds the connection, so a
/// leader and a follower refuse them alike, with a Nacos error (413, 400), never a 500:
/// an instance over `--max-body`, a batch over the `/batch` limit or over `--max-batch`
/// instances. A connection's caps on instances and subscriptions hold too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_requests_are_held_to_the_http_limits_on_leader_and_follower() {
    let data = tempfile::tempdir().expect("a temp dir");
    let nodes = start_raft_grpc(data.path(), 3, |config| Config {
        max_batch: 50,
        grpc: GrpcSettings {
            max_instances: 60,
            max_subscriptions: 2,
            ..config.grpc
        },
        ..config
    });
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let follower = nodes.iter().find(|n| n.url != leader).expect("a follower");
    let leader = nodes.iter().find(|n| n.url == leader).expect("the leader");
    for (name, node) in [("leader", leader), ("follower", follower)] {
        let service = format!("limits-{name}");
        let mut raw = Raw::connect(grpc_port(node)).await;
        raw.setup().await;
        eventually("the connection is set up", LIMIT, || raw.is_registered()).await;

        let oversized = raw
            .call("InstanceRequest", registration(&service, "10.7.0.1", 70 * 1024))
            .await;
        assert_eq!(error_code(&oversized), Some(413), "{name}: {oversized:?}");
        // Within the request limit, but the instance alone is over --max-body.
        let mut batch = batch_of(&service, 7, 1);
        batch["instances"][0]["metadata"]["blob"] = json!("x".repeat(70 * 1024));
        let answer = raw.call("BatchInstanceRequest", batch).await;
        assert_eq!(error_code(&answer), Some(413), "{name}: {answer:?}");
        let mut batch = batch_of(&service, 7, 20);
        for i in 0..20 {
            batch["instances"][i]["metadata"]["blob"] = json!("x".repeat(60 * 1024));
        }
        let answer = raw.call("BatchInstanceRequest", batch).await;
        assert_eq!(
            error_code(&answer),
            Some(413),
            "{name}: over the /batch limit: {answer:?}"
        );
        let answer = raw.call("BatchInstanceRequest", batch_of(&service, 7, 51)).await;
        assert_eq!(error_code(&answer), Some(400), "{name}: over --max-batch: {answer:?}");
        assert_eq!(
            instances_of(&c, node, &service).await,
            0,
            "{name}: nothing refused was stored"
        );

        // What fits is applied, up to the connection's cap.
        let (kind, body) = raw.call("BatchInstanceRequest", batch_of(&service, 7, 50)).await;
        assert_eq!(kind, "BatchInstanceResponse", "{name}: {body}");
        let answer = raw
            .call(
                "InstanceRequest",
                registration(&format!("{service}-2"), "10.7.1.1", 60 * 1024),
            )
            .await;
        assert_eq!(
            answer.0, "InstanceResponse",
            "{name}: an instance just within --max-body"
        );
        let answer = raw
            .call("BatchInstanceRequest", batch_of(&format!("{service}-3"), 8, 10))
            .await;
        assert_eq!(
            error_code(&answer),
            Some(503),
            "{name}: over --grpc-max-instances: {answer:?}"
        );
        for (i, expected) in [(1, None), (2, None), (3, Some(503))] {
            let subscribe = json!({"namespace": "public", "groupName": "DEFAULT_GROUP",
                "serviceName": format!("watched-{i}"), "subscribe": true, "clusters": ""});
            let answer = raw.call("SubscribeServiceRequest", subscribe).await;
            assert_eq!(error_code(&answer), expected, "{name}: subscription {i}: {answer:?}");
        }
        eventually("the applied writes reach this node", LIMIT, || async {
            instances_of(&c, node, &service).await == 50
        })
        .await;
    }
    Node::stop_all(nodes).await;
}

/// A write a page of another site makes a browser send (`text/plain` needs no preflight)
/// is refused 403 and changes nothing, on every protocol's write path; the node's own
/// console and clients that send no `Origin` are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_are_refused() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let body = instance("10.6.0.1", 80);
    let own = node.url.clone();
    let writes = [
        ("POST", node.at("/reg?service=cs"), body.clone()),
        (
            "POST",
            node.at("/batch"),
            format!(r#"[{{"op":"reg","service":"cs","instance":{body}}}]"#),
        ),
        (
            "POST",
            node.at("/nacos/v1/ns/instance?serviceName=cs&ip=10.6.0.2&port=80"),
            String::new(),
        ),
        (
            "POST",
            node.at("/eureka/apps/CS"),
            r#"{"instance":{"instanceId":"i","ipAddr":"10.6.0.3","port":80}}"#.to_owned(),
        ),
    ];
    for (method, url, body) in &writes {
        for headers in [
            vec![("content-type", "text/plain"), ("origin", "http://evil.example")],
            vec![("content-type", "text/plain"), ("origin", "null")],
            vec![("content-type", "text/plain"), ("sec-fetch-site", "cross-site")],
        ] {
            let answer = c.send(method, url, body, &headers).await;
            assert_eq!(answer.status, 403, "{url} with {headers:?}");
            let refusal: Value = serde_json::from_slice(&answer.body).expect("the JSON error shape");
            assert_eq!(refusal["status"], 403, "{refusal}");
        }
    }
    assert_eq!(instances_of(&c, &node, "cs").await, 0, "nothing refused was applied");
    assert_eq!(instances_of(&c, &node, "CS").await, 0);
    let console = c
        .send(
            "POST",
            &writes[0].1,
            &writes[0].2,
            &[("origin", &own), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(console.status, 200, "the node's own console");
    let client = c.send("POST", &writes[1].1, &writes[1].2, &[]).await;
    assert_eq!(client.status, 200, "a client without Origin");
    let read = c
        .send(
            "GET",
            &node.at("/findAll?service=cs"),
            "",
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(read.status, 200, "reads are not writes");
    node.stop().await;
}

/// Threads that keep all cores but one busy (at least one thread) until dropped: load for
/// the clients and the node, with a core left for the suite's other tests.
struct CpuLoad(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl CpuLoad {
    fn start() -> CpuLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let threads = (0..cores.saturating_sub(1).max(1))
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut spins = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        spins = std::hint::black_box(spins.wrapping_add(1));
                    }
                })
            })
            .collect();
        CpuLoad(stop, threads)
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for thread in self.1.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Twenty `nacos-sdk-python` 3.2.0 subscribers in turn, with the cores kept busy, are each
/// called back with the service: the first push follows the `SubscribeServiceResponse`
/// on the wire, as Nacos sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_python_subscriber_gets_its_first_callback_under_cpu_load() {
    let _machine = loading_the_machine().await;
    let node = start_grpc(Config::default());
    let load = CpuLoad::start();
    let scenario = Scenario::python_nacos3(
        "nacos3_first_push.py",
        &[server(&node), "com.demo.FirstPush".to_owned(), "20".to_owned()],
    );
    scenario.finish().await;
    drop(load);
    node.stop().await;
}

/// What was accepted leniently is refused 400 in the JSON error shape (the facades in
/// their own), and changes nothing: an invalid percent-escape, bidirectional controls in
/// a service name or host, duplicate keys in a `/batch` operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_input_is_refused() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let good = instance("10.5.0.1", 80);
    let bidi_host = instance("10.5.0.1\u{202e}", 80);
    for (method, path, body) in [
        ("GET", "/findAll?service=%ZZ".to_owned(), String::new()),
        ("POST", "/reg?service=a%".to_owned(), good.clone()),
        ("POST", "/reg?service=rtl%E2%80%AEgnp".to_owned(), good.clone()),
        ("POST", "/reg?service=lenient".to_owned(), bidi_host),
        (
            "POST",
            "/batch".to_owned(),
            format!(r#"[{{"op":"unreg","op":"reg","service":"lenient","instance":{good}}}]"#),
        ),
        (
            "POST",
            "/batch".to_owned(),
            format!(r#"[{{"op":"reg","service":"x","service":"lenient","instance":{good}}}]"#),
        ),
    ] {
        let (status, refusal) = c.call(method, &node.at(&path), &body).await;
        assert_eq!(status, 400, "{method} {path} {body}: {refusal}");
        assert_eq!(refusal["status"], 400, "the JSON error shape: {refusal}");
        assert!(refusal["message"].as_str().is_some_and(|m| !m.is_empty()), "{refusal}");
    }
    for (path, body) in [
        ("/nacos/v1/ns/instance?serviceName=%ZZ&ip=10.5.0.2&port=80", ""),
        (
            "/nacos/v1/ns/instance?serviceName=lenient&ip=10.5.0.2%E2%80%AE&port=80",
            "",
        ),
        (
            "/eureka/apps/LENIENT",
            r#"{"instance":{"instanceId":"i","ipAddr":"10.5.0.3\u202e","port":80}}"#,
        ),
    ] {
        let answer = c.raw("POST", &node.at(path), body).await;
        assert_eq!(answer.status, 400, "{path}: {}", String::from_utf8_lossy(&answer.body));
    }
    let services = c.ok("GET", &node.at("/services"), "").await;
    assert_eq!(services["services"], json!([]), "nothing refused was applied");
    node.stop().await;
}
