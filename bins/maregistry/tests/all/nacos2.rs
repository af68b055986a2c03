//! The Nacos 2/3 gRPC facade (docs/spec.md §6.3): the protocol as a raw tonic client sees
//! it, then the real clients: `nacos-sdk-python` 3.2.0 (in its locked venv) and the Rust
//! `nacos-sdk` 0.8.3, against a node, a raft follower, and a node killed with `kill -9`.
//! Every instance registered over gRPC is the same instance through the seed API, Nacos v1
//! and Eureka, and every change, whoever made it, is pushed to the subscribers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use maregistry::{Config, GrpcSettings};
use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingService, NamingServiceBuilder, ServiceInstance,
};
use nacos_sdk::api::props::ClientProps;
use registry_nacos::grpc::proto::bi_request_stream_client::BiRequestStreamClient;
use registry_nacos::grpc::proto::request_client::RequestClient;
use registry_nacos::grpc::proto::request_stream_client::RequestStreamClient;
use registry_nacos::grpc::proto::{Any, Metadata, Payload};
use serde_json::{json, Value};
use test_support::{
    agreed_leader, eventually, free_ports, instance, start_grpc, start_raft_grpc, Client, Node, Proc, Scenario, LIMIT,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// A payload of `kind` with `body`.
fn payload(kind: &str, body: Value) -> Payload {
    Payload {
        metadata: Some(Metadata {
            r#type: kind.to_owned(),
            client_ip: "192.0.2.2".to_owned(),
            headers: HashMap::new(),
        }),
        body: Some(Any {
            type_url: String::new(),
            value: Bytes::from(body.to_string()),
        }),
    }
}

/// The type and JSON body of `payload`.
fn read(payload: &Payload) -> (String, Value) {
    let kind = payload.metadata.as_ref().map(|m| m.r#type.clone()).unwrap_or_default();
    let body = payload.body.as_ref().map(|b| b.value.clone()).unwrap_or_default();
    (kind, serde_json::from_slice(&body).expect("a JSON body"))
}

/// No JSON `null` anywhere in `value` (Python clients refuse one in any text field).
fn assert_no_nulls(value: &Value, at: &str) {
    match value {
        Value::Null => panic!("a null at {at}"),
        Value::Array(items) => items.iter().for_each(|v| assert_no_nulls(v, at)),
        Value::Object(map) => map.iter().for_each(|(k, v)| assert_no_nulls(v, &format!("{at}.{k}"))),
        _ => {}
    }
}

/// A raw protocol client (also the console test's): one channel (one TCP connection), its unary calls and its stream.
pub(crate) struct Raw {
    unary: RequestClient<Channel>,
    stream: Option<(mpsc::Sender<Payload>, tonic::Streaming<Payload>)>,
    channel: Channel,
}

impl Raw {
    pub(crate) async fn connect(grpc: u16) -> Raw {
        Raw::connect_to(Channel::from_shared(format!("http://127.0.0.1:{grpc}")).expect("a uri")).await
    }

    /// A client on `endpoint` (a TLS one, say).
    pub(crate) async fn connect_to(endpoint: tonic::transport::Endpoint) -> Raw {
        // The node binds its gRPC port as it starts: retry until it listens.
        let grpc = endpoint.uri().to_string();
        let deadline = tokio::time::Instant::now() + LIMIT;
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing_ignore(&e);
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => panic!("the gRPC listener on {grpc} does not answer: {e}"),
            }
        };
        Raw {
            unary: RequestClient::new(channel.clone()),
            stream: None,
            channel,
        }
    }

    pub(crate) async fn call(&mut self, kind: &str, body: Value) -> (String, Value) {
        self.call_with(kind, body, &[]).await
    }

    /// [`Raw::call`] with these headers in the payload's metadata.
    pub(crate) async fn call_with(&mut self, kind: &str, body: Value, headers: &[(&str, &str)]) -> (String, Value) {
        let mut payload = payload(kind, body);
        if let Some(metadata) = payload.metadata.as_mut() {
            metadata.headers = headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        }
        let answer = self
            .unary
            .request(payload)
            .await
            .expect("gRPC status OK: errors travel in the payload");
        let (kind, body) = read(answer.get_ref());
        assert_no_nulls(&body, &kind);
        assert!(
            body["resultCode"].is_i64() && body["errorCode"].is_i64(),
            "{kind}: {body}"
        );
        (kind, body)
    }

    /// Opens the bi-stream and sets the connection up on it.
    pub(crate) async fn setup(&mut self) {
        let (tx, rx) = mpsc::channel(16);
        let inbound = BiRequestStreamClient::new(self.channel.clone())
            .request_bi_stream(ReceiverStream::new(rx))
            .await
            .expect("the bi-stream opens")
            .into_inner();
        tx.send(payload(
            "ConnectionSetupRequest",
            json!({"clientVersion":"raw-test","tenant":"","labels":{"source":"sdk","module":"naming"},"abilityTable":{}}),
        ))
        .await
        .expect("setup sent");
        self.stream = Some((tx, inbound));
    }

    /// Whether the node holds this connection as set up (a `HealthCheckRequest` is
    /// answered, not refused as from an unregistered connection).
    pub(crate) async fn is_registered(&self) -> bool {
        let mut unary = self.unary.clone();
        let answer = unary
            .request(payload("HealthCheckRequest", json!({})))
            .await
            .expect("an answer");
        read(answer.get_ref()).0 == "HealthCheckResponse"
    }

    /// The next message the server sends on the stream (within the bound).
    pub(crate) async fn next_pushed(&mut self) -> (String, Value) {
        let (_, inbound) = self.stream.as_mut().expect("set up");
        let message = tokio::time::timeout(LIMIT, inbound.message())
            .await
            .expect("a message on the stream in time")
            .expect("the stream is fine")
            .expect("the stream is open");
        read(&message)
    }

    /// Whether the server sends nothing on the stream within `window` (an absence, checked
    /// for a while).
    pub(crate) async fn nothing_pushed_within(&mut self, window: Duration) -> bool {
        let (_, inbound) = self.stream.as_mut().expect("set up");
        tokio::time::timeout(window, inbound.message()).await.is_err()
    }

    pub(crate) async fn answer_on_stream(&mut self, kind: &str, request_id: &str) {
        let (tx, _) = self.stream.as_ref().expect("set up");
        tx.send(payload(
            kind,
            json!({"resultCode":200,"errorCode":0,"message":"","requestId":request_id}),
        ))
        .await
        .expect("an answer on the stream");
    }
}

/// A connection error while the node starts: expected, retried.
fn tracing_ignore(_: &tonic::transport::Error) {}

pub(crate) fn grpc_port(node: &Node) -> u16 {
    node.addr.port() + 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_as_clients_speak_it() {
    let node = start_grpc(Config::default());
    let mut raw = Raw::connect(grpc_port(&node)).await;

    // Before setup: ServerCheck is answered, anything else is 301.
    let (kind, body) = raw
        .call("ServerCheckRequest", json!({"headers":{},"requestId":""}))
        .await;
    assert_eq!(kind, "ServerCheckResponse");
    assert_eq!(
        (body["resultCode"].as_i64(), body["supportAbilityNegotiation"].as_bool()),
        (Some(200), Some(false))
    );
    let connection_id = body["connectionId"].as_str().expect("a connection id").to_owned();
    let (kind, body) = raw.call("HealthCheckRequest", json!({"requestId":"7"})).await;
    assert_eq!(
        (kind.as_str(), body["errorCode"].as_i64()),
        ("ErrorResponse", Some(301))
    );
    assert_eq!(body["requestId"], "7", "the request id is echoed");

    raw.setup().await;
    eventually("the connection is set up", LIMIT, || raw.is_registered()).await;
    let (_, body) = raw.call("ServerCheckRequest", json!({})).await;
    assert_eq!(
        body["connectionId"],
        json!(connection_id),
        "the same connection, the same id"
    );
    let (kind, body) = raw.call("ConfigQueryRequest", json!({})).await;
    assert_eq!(
        (kind.as_str(), body["errorCode"].as_i64()),
        ("ConfigQueryResponse", Some(400)),
        "a config request's refusal comes in its own response type"
    );
    let (kind, body) = raw.call("ClientConfigMetricRequest", json!({})).await;
    assert_eq!(
        (kind.as_str(), body["errorCode"].as_i64()),
        ("ErrorResponse", Some(302))
    );
    let answer = raw
        .unary
        .request(Payload {
            body: Some(Any {
                type_url: String::new(),
                value: Bytes::from_static(b"{not json"),
            }),
            ..payload("InstanceRequest", json!({}))
        })
        .await
        .expect("an answer");
    assert_eq!(read(answer.get_ref()).1["errorCode"], 502);
    // A service Nacos declares but this node does not serve.
    let refused = RequestStreamClient::new(raw.channel.clone())
        .request_stream(payload("ServerCheckRequest", json!({})))
        .await
        .expect_err("no RequestStream service");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);

    // Naming: register, subscribe (answered, then pushed), list, query.
    let registered = json!({"requestId":"1","namespace":"public","groupName":"G1","serviceName":"raw",
        "type":"registerInstance","instance":{"ip":"10.0.3.1","port":7001,"weight":1.5,"healthy":true,"enabled":true,
        "ephemeral":true,"clusterName":null,"serviceName":null,"instanceId":null,"metadata":{"k":"v"}},"module":"naming"});
    let (kind, body) = raw.call("InstanceRequest", registered).await;
    assert_eq!(
        (kind.as_str(), body["type"].as_str()),
        ("InstanceResponse", Some("registerInstance"))
    );
    let (kind, body) = raw
        .call(
            "InstanceRequest",
            json!({"serviceName":"raw","groupName":"G1","type":"bogus","instance":{}}),
        )
        .await;
    assert_eq!(
        (kind.as_str(), body["errorCode"].as_i64()),
        ("ErrorResponse", Some(400))
    );
    let (kind, body) = raw
        .call(
            "SubscribeServiceRequest",
            json!({"namespace":"public","groupName":"G1","serviceName":"raw","subscribe":true,"clusters":""}),
        )
        .await;
    assert_eq!(kind, "SubscribeServiceResponse");
    let info = &body["serviceInfo"];
    for field in [
        "name",
        "groupName",
        "clusters",
        "cacheMillis",
        "lastRefTime",
        "checksum",
        "reachProtectionThreshold",
        "hosts",
    ] {
        assert!(info.get(field).is_some(), "serviceInfo lacks {field}: {info}");
    }
    assert_eq!(
        (info["name"].as_str(), info["groupName"].as_str()),
        (Some("raw"), Some("G1"))
    );
    let host = &info["hosts"][0];
    assert_eq!(
        (host["ip"].as_str(), host["port"].as_i64(), host["weight"].as_f64()),
        (Some("10.0.3.1"), Some(7001), Some(1.5))
    );
    assert_eq!(host["metadata"], json!({"k":"v"}));
    assert_eq!(host["clusterName"], "DEFAULT");
    let answered = info["lastRefTime"].as_u64().expect("a time");
    let (kind, pushed) = raw.next_pushed().await;
    assert_eq!(kind, "NotifySubscriberRequest");
    assert_eq!(pushed["serviceInfo"]["hosts"][0]["ip"], "10.0.3.1");
    assert!(
        pushed["serviceInfo"]["lastRefTime"].as_u64() > Some(answered),
        "later than the answer"
    );
    let id = pushed["requestId"].as_str().expect("an id").to_owned();
    raw.answer_on_stream("NotifySubscriberResponse", &id).await;

    // A registration through the seed API is pushed, later again.
    let c = Client::new();
    c.ok("POST", &node.at("/reg?service=G1::raw"), &instance("10.0.3.2", 7002))
        .await;
    let (_, again) = raw.next_pushed().await;
    assert_eq!(again["serviceInfo"]["hosts"].as_array().map(Vec::len), Some(2));
    assert!(again["serviceInfo"]["lastRefTime"].as_u64() > pushed["serviceInfo"]["lastRefTime"].as_u64());

    let (_, list) = raw
        .call("ServiceListRequest", json!({"groupName":"G1","pageNo":1,"pageSize":10}))
        .await;
    assert_eq!(
        (list["count"].as_i64(), list["serviceNames"].clone()),
        (Some(1), json!(["raw"]))
    );
    let (_, query) = raw
        .call(
            "ServiceQueryRequest",
            json!({"groupName":"G1","serviceName":"raw","cluster":"","healthyOnly":false}),
        )
        .await;
    assert_eq!(query["serviceInfo"]["hosts"].as_array().map(Vec::len), Some(2));
    let (kind, _) = raw
        .call(
            "PersistentInstanceRequest",
            json!({"serviceName":"raw","type":"registerInstance"}),
        )
        .await;
    assert_eq!(kind, "ErrorResponse");

    // The gRPC instance is the same instance through the seed API, with its attributes.
    let seen = c.ok("GET", &node.at("/findAll?service=G1::raw"), "").await;
    assert_eq!(seen[0]["host"], "10.0.3.1");
    assert_eq!(seen[0]["parameters"]["k"], "v");
    assert_eq!(seen[0]["parameters"]["nacos.weight"], "1.5");
    let metrics = c.raw("GET", &node.at("/metrics"), "").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.contains("maregistry_grpc_connections 1"), "{text}");
    assert!(text.contains("maregistry_grpc_subscriptions 1"));
    assert_eq!(c.ok("GET", &node.at("/info"), "").await["grpc_connections"], 1);

    // Unsubscribed: answered with the service, and pushed no more.
    let (kind, body) = raw
        .call(
            "SubscribeServiceRequest",
            json!({"groupName":"G1","serviceName":"raw","subscribe":false,"clusters":""}),
        )
        .await;
    assert_eq!(kind, "SubscribeServiceResponse");
    assert_eq!(body["serviceInfo"]["hosts"].as_array().map(Vec::len), Some(2));
    c.ok("POST", &node.at("/reg?service=G1::raw"), &instance("10.0.3.3", 7003))
        .await;
    assert!(
        raw.nothing_pushed_within(Duration::from_millis(500)).await,
        "an unsubscribed connection gets no push"
    );
    c.ok("POST", &node.at("/unreg?service=G1::raw"), &instance("10.0.3.3", 7003))
        .await;

    // The connection ends: its instance goes, the seed API's stays.
    drop(raw);
    eventually("the connection's instance is unregistered", LIMIT, || async {
        let list = c.ok("GET", &node.at("/findAll?service=G1::raw"), "").await;
        list.as_array().map(Vec::len) == Some(1) && list[0]["host"] == "10.0.3.2"
    })
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_detected_ended_and_its_instances_go() {
    let node = start_grpc(Config {
        grpc: GrpcSettings {
            detect_idle: Duration::from_millis(500),
            detect_timeout: Duration::from_millis(500),
            ..GrpcSettings::default()
        },
        ..Config::default()
    });
    let mut answering = Raw::connect(grpc_port(&node)).await;
    answering.setup().await;
    let mut silent = Raw::connect(grpc_port(&node)).await;
    silent.setup().await;
    for (raw, ip) in [(&mut answering, "10.0.4.1"), (&mut silent, "10.0.4.2")] {
        let register = json!({"serviceName":"quiet","type":"registerInstance","instance":{"ip":ip,"port":1}});
        eventually("the registration is taken", LIMIT, || {
            let mut unary = raw.unary.clone();
            let register = register.clone();
            async move {
                let answer = unary
                    .request(payload("InstanceRequest", register))
                    .await
                    .expect("an answer");
                read(answer.get_ref()).0 == "InstanceResponse"
            }
        })
        .await;
    }
    // The answering client answers each detection; the silent one never does.
    let (kind, detection) = answering.next_pushed().await;
    assert_eq!(kind, "ClientDetectionRequest");
    assert_eq!(detection["module"], "internal");
    let id = detection["requestId"].as_str().expect("an id").to_owned();
    answering.answer_on_stream("ClientDetectionResponse", &id).await;
    let c = Client::new();
    eventually("the silent connection's instance is gone", LIMIT, || async {
        let list = c.ok("GET", &node.at("/findAll?service=quiet"), "").await;
        list.as_array().map(Vec::len) == Some(1) && list[0]["host"] == "10.0.4.1"
    })
    .await;
    let (_, body) = silent.call("HealthCheckRequest", json!({})).await;
    assert_eq!(body["errorCode"], 301, "an ended connection must set up again");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_asks_every_client_to_reconnect() {
    let node = start_grpc(Config::default());
    let mut raw = Raw::connect(grpc_port(&node)).await;
    raw.setup().await;
    eventually("the connection is set up", LIMIT, || raw.is_registered()).await;
    let stopping = tokio::spawn(node.stop());
    let (kind, reset) = raw.next_pushed().await;
    assert_eq!(kind, "ConnectResetRequest");
    assert!(reset["connectionId"].is_string());
    stopping.await.expect("the node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_snapshot_follower_writes_through_the_leader() {
    let (listeners, grpc): (Vec<_>, Vec<u16>) = (0..2).map(|_| test_support::grpc_listener()).unzip();
    let urls: Vec<String> = listeners
        .iter()
        .map(|l| format!("http://{}", l.local_addr().expect("an address")))
        .collect();
    let nodes: Vec<Node> = listeners
        .into_iter()
        .zip(&grpc)
        .map(|(listener, port)| {
            Node::start_on(
                listener,
                Config {
                    grpc_port: Some(*port),
                    ..test_support::cluster_config(&urls)
                },
            )
        })
        .collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &[urls[0].as_str(), urls[1].as_str()]).await;
    let follower = nodes.iter().position(|n| n.url != leader).expect("a follower");
    let mut raw = Raw::connect(grpc[follower]).await;
    raw.setup().await;
    let register = json!({"serviceName":"relayed","type":"registerInstance","instance":{"ip":"10.0.7.1","port":1}});
    eventually("the follower takes the registration", LIMIT, || {
        let mut unary = raw.unary.clone();
        let register = register.clone();
        async move {
            let answer = unary
                .request(payload("InstanceRequest", register))
                .await
                .expect("an answer");
            read(answer.get_ref()).0 == "InstanceResponse"
        }
    })
    .await;
    let on_leader = || async {
        let list = c.ok("GET", &format!("{leader}/findAll?service=relayed"), "").await;
        list.as_array().map(Vec::len).unwrap_or(0)
    };
    assert_eq!(on_leader().await, 1, "applied by the leader before the answer");
    drop(raw);
    eventually(
        "the ended connection's instance is gone on the leader",
        LIMIT,
        || async { on_leader().await == 0 },
    )
    .await;
    for node in nodes {
        node.stop().await;
    }
}

/// The `host:port` a Nacos client is given: the HTTP address.
pub(crate) fn server(node: &Node) -> String {
    node.url.trim_start_matches("http://").to_owned()
}

/// The `ip:port` of the instances of `service` through the seed API.
async fn seed_hosts(c: &Client, node: &Node, service: &str) -> Vec<String> {
    let list = c.ok("GET", &node.at(&format!("/findAll?service={service}")), "").await;
    let mut hosts: Vec<String> = list
        .as_array()
        .map(|l| {
            l.iter()
                .map(|i| format!("{}:{}", i["host"].as_str().unwrap_or(""), i["port"]))
                .collect()
        })
        .unwrap_or_default();
    hosts.sort();
    hosts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_sdk_python_3_registers_subscribes_and_is_pushed() {
    let node = start_grpc(Config::default());
    let c = Client::new();
    let scenario = Scenario::python_nacos3("nacos3_py.py", &[server(&node), "com.demo.Py3".to_owned()]);
    let mut scenario = scenario.expect("REGISTERED").await;
    // Through the seed API, Nacos v1 and Eureka: the same two instances.
    assert_eq!(
        seed_hosts(&c, &node, "com.demo.Py3").await,
        ["10.0.2.1:8080", "10.0.2.2:8080"]
    );
    let list = c.ok("GET", &node.at("/findAll?service=com.demo.Py3"), "").await;
    let first = list
        .as_array()
        .and_then(|l| l.iter().find(|i| i["host"] == "10.0.2.1"))
        .cloned();
    let first = first.expect("10.0.2.1");
    assert_eq!(first["parameters"]["zone"], "py-1");
    assert_eq!(first["parameters"]["nacos.cluster"], "C1");
    let v1 = c
        .ok(
            "GET",
            &node.at("/nacos/v1/ns/instance/list?serviceName=com.demo.Py3"),
            "",
        )
        .await;
    assert_eq!(v1["hosts"].as_array().map(Vec::len), Some(2));
    let eureka = c
        .send(
            "GET",
            &node.at("/eureka/apps/com.demo.Py3"),
            "",
            &[("accept", "application/json")],
        )
        .await;
    let eureka: Value = serde_json::from_slice(&eureka.body).expect("JSON");
    assert_eq!(eureka["application"]["instance"].as_array().map(Vec::len), Some(2));
    scenario.go_on();
    let mut scenario = scenario.expect("PUSHED-3").await;
    assert_eq!(seed_hosts(&c, &node, "com.demo.Py3").await.len(), 3);
    scenario.go_on();
    scenario.finish().await;
    // Deregistered, batch-deregistered, and the last one gone with its client's connection.
    eventually("every gRPC instance is gone", LIMIT, || async {
        seed_hosts(&c, &node, "com.demo.Py3").await.is_empty()
    })
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_sdk_python_3_through_a_raft_follower() {
    let data = tempfile::tempdir().expect("a data dir");
    let nodes = start_raft_grpc(data.path(), 3, |config| config);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let follower = nodes.iter().find(|n| n.url != leader).expect("a follower");
    let scenario = Scenario::python_nacos3("nacos3_py.py", &[server(follower), "com.demo.Raft3".to_owned()]);
    let mut scenario = scenario.expect("REGISTERED").await;
    for node in &nodes {
        eventually("every node holds both instances", LIMIT, || async {
            seed_hosts(&c, node, "com.demo.Raft3").await.len() == 2
        })
        .await;
    }
    scenario.go_on();
    let mut scenario = scenario.expect("PUSHED-3").await;
    scenario.go_on();
    scenario.finish().await;
    for node in &nodes {
        eventually("every node lost them all", LIMIT, || async {
            seed_hosts(&c, node, "com.demo.Raft3").await.is_empty()
        })
        .await;
    }
    for node in nodes {
        node.stop().await;
    }
}

/// The Rust Nacos client as a child process (this test binary, running
/// [`nacos_rs_driver`]), driven by JSON commands on its stdin: the client keeps its
/// connection on a runtime of its own that only the process's end closes, as a service
/// that exits would.
struct RustClient {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    pushes: Arc<Mutex<Vec<Vec<String>>>>,
}

impl RustClient {
    async fn connect(server: &str, app: &str) -> RustClient {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "nacos2::nacos_rs_driver",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("NACOS_RS_SERVER", server)
            .env("NACOS_RS_APP", app)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the driver starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, lines) = mpsc::unbounded_channel();
        let pushes: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let seen = pushes.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                // The first line printed follows libtest's own `test <name> ... `.
                let line = line
                    .strip_prefix("test nacos2::nacos_rs_driver ... ")
                    .map(str::to_owned)
                    .unwrap_or(line);
                if let Some(push) = line.strip_prefix("PUSH ") {
                    let ips: Vec<String> = serde_json::from_str(push).unwrap_or_default();
                    seen.lock().expect("pushes").push(ips);
                } else if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut client = RustClient {
            child,
            stdin,
            lines,
            pushes,
        };
        client.expect("READY").await;
        client
    }

    /// The next line that starts with `prefix` (others are passed over), its rest.
    async fn expect(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("the Rust client never said {prefix}"))
                .unwrap_or_else(|| panic!("the Rust client ended before saying {prefix}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
            if line.starts_with("FAILED") {
                panic!("the Rust client failed: {line}");
            }
        }
    }

    /// Runs `command` and waits for its `OK` (or its `LIST` answer).
    async fn run(&mut self, command: Value) -> String {
        use std::io::Write;
        writeln!(self.stdin, "{command}").expect("a command to the Rust client");
        if command["op"] == "list" {
            return self.expect("LIST").await;
        }
        self.expect("OK").await
    }

    async fn until_pushed(&self, what: &str, expected: &[&str]) {
        eventually(what, LIMIT, || async {
            self.pushes
                .lock()
                .expect("pushes")
                .last()
                .is_some_and(|last| last == expected)
        })
        .await;
    }

    /// Ends the client's process (and so its connection).
    fn close(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RustClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test of its own: the Rust client's side of [`RustClient`], run as a child process
/// of the tests above (with `NACOS_RS_SERVER` set; without it, it does nothing). Commands,
/// one JSON object a line: `batch` (ips), `register`/`deregister` (ip), `list`,
/// `subscribe` (each push printed as `PUSH [ips]`).
#[test]
#[ignore = "a child process of the Nacos gRPC tests, which start it themselves"]
fn nacos_rs_driver() {
    use std::io::BufRead;
    let Ok(server) = std::env::var("NACOS_RS_SERVER") else {
        return;
    };
    let app = std::env::var("NACOS_RS_APP").unwrap_or_default();
    struct Printer;
    impl NamingEventListener for Printer {
        fn event(&self, event: Arc<NamingChangeEvent>) {
            let mut ips: Vec<String> = event.instances.iter().flatten().map(|i| i.ip.clone()).collect();
            ips.sort();
            println!("PUSH {}", json!(ips));
        }
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async move {
        let cache = std::env::temp_dir().join(format!("nacos-rs-{}", std::process::id()));
        let props = ClientProps::new()
            .server_addr(server)
            .namespace("")
            .app_name(app)
            .naming_push_empty_protection(false)
            .naming_load_cache_at_start(false)
            .cache_dir(cache);
        let naming: NamingService = match NamingServiceBuilder::new(props).build().await {
            Ok(naming) => naming,
            Err(e) => {
                println!("FAILED to connect: {e}");
                return;
            }
        };
        println!("READY");
        let stdin = std::io::stdin();
        for line in stdin.lock().lines().map_while(Result::ok) {
            let command: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let service = command["service"].as_str().unwrap_or_default().to_owned();
            let ip = command["ip"].as_str().unwrap_or_default();
            let outcome = match command["op"].as_str().unwrap_or_default() {
                "batch" => {
                    let instances = command["ips"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|ip| {
                            let ip = ip.as_str().unwrap_or_default();
                            let metadata: Vec<(&str, &str)> = if ip.ends_with(".1") {
                                vec![("zone", "rs-1")]
                            } else {
                                vec![]
                            };
                            rust_instance(ip, &metadata)
                        })
                        .collect();
                    naming
                        .batch_register_instance(service, None, instances)
                        .await
                        .map(|()| "OK".to_owned())
                }
                "register" => naming
                    .register_instance(service, None, rust_instance(ip, &[]))
                    .await
                    .map(|()| "OK".to_owned()),
                "deregister" => naming
                    .deregister_instance(service, None, rust_instance(ip, &[]))
                    .await
                    .map(|()| "OK".to_owned()),
                "list" => naming
                    .get_all_instances(service, None, Vec::new(), false)
                    .await
                    .map(|all| {
                        let listed: Vec<Value> = all
                            .iter()
                            .map(|i| json!({"ip": i.ip, "metadata": i.metadata}))
                            .collect();
                        format!("LIST {}", json!(listed))
                    }),
                "subscribe" => naming
                    .subscribe(service, None, Vec::new(), Arc::new(Printer))
                    .await
                    .map(|()| "OK".to_owned()),
                other => Ok(format!("FAILED unknown command {other:?}")),
            };
            match outcome {
                Ok(answer) => println!("{answer}"),
                Err(e) => println!("FAILED {e}"),
            }
        }
    });
    // The end of stdin: exit without waiting for the client's threads.
    std::process::exit(0);
}

fn rust_instance(ip: &str, metadata: &[(&str, &str)]) -> ServiceInstance {
    ServiceInstance {
        ip: ip.to_owned(),
        port: 9090,
        metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ServiceInstance::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_sdk_rust_registers_subscribes_and_is_pushed() {
    let node = start_grpc(Config::default());
    let c = Client::new();
    let service = "com.demo.Rs";
    let mut a = RustClient::connect(&server(&node), "rs-a").await;
    a.run(json!({"op":"batch","service":service,"ips":["10.0.5.1","10.0.5.2"]}))
        .await;

    let mut b = RustClient::connect(&server(&node), "rs-b").await;
    let listed: Value = serde_json::from_str(&b.run(json!({"op":"list","service":service})).await).expect("JSON");
    let mut ips: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str())
        .collect();
    ips.sort_unstable();
    assert_eq!(ips, ["10.0.5.1", "10.0.5.2"]);
    let zone = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["ip"] == "10.0.5.1")
        .map(|i| i["metadata"]["zone"].clone());
    assert_eq!(zone, Some(json!("rs-1")));
    b.run(json!({"op":"subscribe","service":service})).await;
    b.until_pushed("the first push", &["10.0.5.1", "10.0.5.2"]).await;

    // A third client's registration, then a registration through the seed API: both pushed.
    let mut third = RustClient::connect(&server(&node), "rs-c").await;
    third
        .run(json!({"op":"register","service":service,"ip":"10.0.5.3"}))
        .await;
    b.until_pushed("a push of three", &["10.0.5.1", "10.0.5.2", "10.0.5.3"])
        .await;
    c.ok(
        "POST",
        &node.at(&format!("/reg?service={service}")),
        &instance("10.0.5.9", 9090),
    )
    .await;
    b.until_pushed(
        "the seed API's registration pushed",
        &["10.0.5.1", "10.0.5.2", "10.0.5.3", "10.0.5.9"],
    )
    .await;
    third
        .run(json!({"op":"deregister","service":service,"ip":"10.0.5.3"}))
        .await;
    b.until_pushed("a push without the third", &["10.0.5.1", "10.0.5.2", "10.0.5.9"])
        .await;
    // Batch deregistration as the clients make it: the rest, sent again.
    a.run(json!({"op":"batch","service":service,"ips":["10.0.5.1"]})).await;
    b.until_pushed("a push of one fewer", &["10.0.5.1", "10.0.5.9"]).await;
    assert_eq!(seed_hosts(&c, &node, service).await, ["10.0.5.1:9090", "10.0.5.9:9090"]);

    // The first client goes away: its instance goes with its connection, and is pushed.
    a.close();
    b.until_pushed("a push without the closed client's", &["10.0.5.9"])
        .await;
    third.close();
    b.close();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_grpc_instances_expire_after_their_lease() {
    // Three raft processes with gRPC; the client holds its connection to a follower.
    let ports = loop {
        let ports = free_ports(3);
        if ports
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p + 1000)).is_ok())
        {
            break ports;
        }
    };
    let data = tempfile::tempdir().expect("a data dir");
    let list = test_support::server_list(&ports);
    let procs: Vec<Proc> = ports
        .iter()
        .map(|port| {
            let args: Vec<String> = [
                "--data-dir",
                &data.path().join(port.to_string()).display().to_string(),
                "--server-list",
                &list,
                "--grpc-port",
                &(port + 1000).to_string(),
                "--grpc-lease",
                "5s",
                "--evict-interval",
                "500ms",
                "--raft-heartbeat",
                "200ms",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            Proc::start(*port, &args)
        })
        .collect();
    let c = Client::new();
    let urls: Vec<&str> = procs.iter().map(|p| p.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let follower = procs.iter().position(|p| p.url != leader).expect("a follower");
    let server = procs[follower].url.trim_start_matches("http://").to_owned();
    let mut client = RustClient::connect(&server, "rs-killed").await;
    client
        .run(json!({"op":"register","service":"com.demo.Killed","ip":"10.0.6.1"}))
        .await;
    let url = format!("{leader}/findAll?service=com.demo.Killed");
    let on_leader = || async {
        let list: Value = c.ok("GET", &url, "").await;
        list.as_array().map(Vec::len).unwrap_or(0)
    };
    eventually("the leader holds the instance", LIMIT, || async {
        on_leader().await == 1
    })
    .await;
    // Well past the lease, the follower's renewals keep it.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(on_leader().await, 1, "renewed while its connection lives");
    let mut procs = procs;
    procs[follower].kill9();
    eventually("the lease runs out and the leader evicts it", LIMIT, || async {
        on_leader().await == 0
    })
    .await;
    client.close();
}
