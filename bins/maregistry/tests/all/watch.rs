//! Blocking queries, gzip answers and the follower's delta sync (issue: watch and fast
//! replication), against real nodes over HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use maregistry::{Config, Mode, SnapshotMode};
use registry_core::{Command, InstanceMeta, Registry};
use serde_json::{json, Value};
use test_support::{
    batch_op, cluster_config, eventually, free_listener, instance, serve_fake, start_cluster, start_raft, Client, Node,
    LIMIT,
};
use tokio::task::JoinHandle;

const VERSION: &str = "x-maregistry-version";

/// A blocking query in the background: its status, version header and JSON body.
fn spawn_get(url: String) -> JoinHandle<(u16, u64, Value)> {
    tokio::spawn(async move {
        let answer = Client::new().send("GET", &url, "", &[]).await;
        let version = answer
            .header(VERSION)
            .and_then(|v| v.parse().ok())
            .expect("a version header");
        (
            answer.status,
            version,
            serde_json::from_slice(&answer.body).expect("JSON"),
        )
    })
}

/// Gives a spawned request time to arrive and start waiting; then checks it still waits.
async fn still_waiting<T>(task: &JoinHandle<T>) -> bool {
    tokio::time::sleep(Duration::from_millis(300)).await;
    !task.is_finished()
}

async fn get_versioned(c: &Client, url: &str) -> (u64, Value) {
    let answer = c.send("GET", url, "", &[]).await;
    assert_eq!(answer.status, 200, "{url}");
    let version = answer
        .header(VERSION)
        .and_then(|v| v.parse().ok())
        .expect("a version header");
    (version, serde_json::from_slice(&answer.body).expect("JSON"))
}

#[tokio::test]
async fn blocking_queries_wait_for_their_service_and_answer_at_timeout_or_at_once() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();

    // Without `since`: the answer of today, plus the version header.
    assert_eq!(
        get_versioned(&c, &node.at("/findAll?service=svc")).await,
        (0, json!([]))
    );
    c.ok("POST", &node.at("/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;
    assert_eq!(get_versioned(&c, &node.at("/version?service=svc")).await, (1, json!(1)));

    // `since` older than the current version: answered at once.
    let (version, list) = get_versioned(&c, &node.at("/findAll?service=svc&since=0&wait=60s")).await;
    assert_eq!((version, list.as_array().map(Vec::len)), (1, Some(1)));

    // A waiter on svc; a change of another service does not answer it, one of svc does.
    let waiter = spawn_get(node.at("/findAll?service=svc&since=1&wait=60s"));
    assert!(still_waiting(&waiter).await);
    c.ok("POST", &node.at("/reg?service=other"), &instance("10.0.0.9", 9))
        .await;
    assert!(
        still_waiting(&waiter).await,
        "a change of another service wakes nobody here"
    );
    c.ok("POST", &node.at("/reg?service=svc"), &instance("10.0.0.2", 2))
        .await;
    let (status, version, list) = tokio::time::timeout(LIMIT, waiter).await.unwrap().unwrap();
    assert_eq!((status, version), (200, 3));
    assert_eq!(list.as_array().map(Vec::len), Some(2), "the answer holds the change");

    // A heartbeat of a known instance is no change: the wait runs out with the same answer.
    let waiter = spawn_get(node.at("/version?service=svc&since=3&wait=700ms"));
    c.ok("POST", &node.at("/renew?service=svc"), &instance("10.0.0.2", 2))
        .await;
    let started = tokio::time::Instant::now();
    let (status, version, body) = tokio::time::timeout(LIMIT, waiter).await.unwrap().unwrap();
    assert_eq!((status, version, body), (200, 3, json!(3)));
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited");

    // /versions wakes on a change of any listed service; the header is the highest.
    let waiter = spawn_get(node.at("/versions?services=svc,other&since=3&wait=60s"));
    assert!(still_waiting(&waiter).await);
    c.ok("POST", &node.at("/unreg?service=other"), &instance("10.0.0.9", 9))
        .await;
    let (_, version, body) = tokio::time::timeout(LIMIT, waiter).await.unwrap().unwrap();
    assert_eq!((version, body), (4, json!({"svc": 3, "other": 4})));

    // Bad parameters are a 400 and wait for nothing.
    for bad in ["since=x", "since=-1", "since=1&wait=soon", "since=1&wait=1d"] {
        let (status, error) = c.get(&node.at(&format!("/findAll?service=svc&{bad}"))).await;
        assert_eq!(status, 400, "{bad}: {error}");
    }

    // Graceful shutdown answers every waiter with what it holds now.
    let waiters: Vec<_> = (0..20)
        .map(|_| spawn_get(node.at("/findAll?service=svc&since=3&wait=5m")))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    let stopping = tokio::spawn(node.stop());
    for waiter in waiters {
        let (status, version, list) = tokio::time::timeout(LIMIT, waiter).await.unwrap().unwrap();
        assert_eq!((status, version), (200, 3));
        assert_eq!(list.as_array().map(Vec::len), Some(2));
    }
    tokio::time::timeout(LIMIT, stopping).await.unwrap().unwrap();
}

/// Opens a blocking query on a follower (`path` with `{since}`, the follower's version of
/// `service`, filled in), registers an instance of `service` at `port` through the
/// leader, and answers the query's answer with the `since` it waited on.
async fn wake_through_follower(
    c: &Client,
    nodes: &[Node],
    service: &str,
    path: &str,
    port: u16,
) -> (u16, u64, u64, Value) {
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = test_support::agreed_leader(c, &urls).await;
    let follower = nodes.iter().find(|n| n.url != leader).expect("a follower");
    let (since, _) = get_versioned(c, &follower.at(&format!("/version?service={service}"))).await;
    let waiter = spawn_get(follower.at(&path.replace("{since}", &since.to_string())));
    assert!(still_waiting(&waiter).await);
    let registration = format!("{leader}/reg?service={service}");
    c.ok("POST", &registration, &instance("10.1.1.1", port)).await;
    let (status, version, body) = tokio::time::timeout(LIMIT, waiter).await.unwrap().unwrap();
    (status, since, version, body)
}

/// A waiter on a follower wakes when a write made through the leader reaches it.
async fn follower_waiter_wakes(c: &Client, nodes: &[Node]) {
    let path = "/findAll?service=watched&since={since}&wait=60s";
    let (status, since, version, list) = wake_through_follower(c, nodes, "watched", path, 7).await;
    assert_eq!(status, 200);
    assert!(version > since);
    assert_eq!(list[0]["port"], json!(7));
}

#[tokio::test]
async fn blocking_queries_work_through_a_follower_in_snapshot_mode() {
    let nodes = start_cluster(2, |c| c);
    follower_waiter_wakes(&Client::new(), &nodes).await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn blocking_queries_work_through_a_follower_in_raft_mode() {
    let data = tempfile::tempdir().unwrap();
    let nodes = start_raft(data.path(), 3, |c| c);
    let c = Client::new();
    follower_waiter_wakes(&c, &nodes).await;

    // With consistent=true a follower relays the whole blocking query to the leader.
    let path = "/version?service=relayed&since={since}&wait=60s&consistent=true";
    let (status, _, version, body) = wake_through_follower(&c, &nodes, "relayed", path, 8).await;
    assert_eq!(status, 200);
    assert!(version > 0 && body == json!(version));
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn large_answers_are_gzipped_only_when_asked() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    for port in 1..=40 {
        c.ok("POST", &node.at("/reg?service=big"), &instance("10.0.0.1", port))
            .await;
    }
    c.ok("POST", &node.at("/reg?service=small"), &instance("10.0.0.1", 1))
        .await;
    for path in ["/findAll?service=big", "/snapshot", "/snapshot?since=0&wait=0s"] {
        let plain = c.send("GET", &node.at(path), "", &[]).await;
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert_eq!(plain.wire_len, plain.body.len());
        assert!(plain.body.len() > 1024, "{path} is large");
        let zipped = c
            .send("GET", &node.at(path), "", &[("accept-encoding", "gzip, deflate")])
            .await;
        assert_eq!(zipped.header("content-encoding"), Some("gzip"), "{path}");
        if path.starts_with("/findAll") {
            assert_eq!(zipped.header("vary"), Some("accept-encoding"));
        }
        assert!(zipped.wire_len < plain.body.len() / 2, "{path}: compressed");
        let (a, b): (Value, Value) = (
            serde_json::from_slice(&plain.body).unwrap(),
            serde_json::from_slice(&zipped.body).unwrap(),
        );
        if path.starts_with("/findAll") {
            assert_eq!(a, b, "the same JSON once decompressed");
        } else {
            assert_eq!(a["REGISTRY"], b["REGISTRY"], "the same JSON once decompressed");
            assert_eq!(a["VERSIONS"], b["VERSIONS"]);
        }
        let refused = c
            .send("GET", &node.at(path), "", &[("accept-encoding", "gzip;q=0")])
            .await;
        assert_eq!(refused.header("content-encoding"), None);
    }
    let small = c
        .send(
            "GET",
            &node.at("/findAll?service=small"),
            "",
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(small.header("content-encoding"), None, "small answers stay plain");
    node.stop().await;
}

#[tokio::test]
async fn a_large_whole_snapshot_is_streamed_as_it_is_written_and_reads_the_same() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    // Over the size from which a whole snapshot is streamed.
    for chunk in 0..6u16 {
        let batch: Vec<Value> = (1..=200u16)
            .map(|port| batch_op("reg", &format!("svc-{}", port % 7), "10.0.0.1", chunk * 200 + port))
            .collect();
        c.ok("POST", &node.at("/batch"), &json!(batch).to_string()).await;
    }
    for path in ["/snapshot", "/snapshot?since=0&wait=0s"] {
        let plain = c.send("GET", &node.at(path), "", &[]).await;
        let zipped = c.send("GET", &node.at(path), "", &[("accept-encoding", "gzip")]).await;
        assert_eq!(zipped.header("content-encoding"), Some("gzip"), "{path}");
        for streamed in [&plain, &zipped] {
            assert_eq!(streamed.header("transfer-encoding"), Some("chunked"), "{path}");
            assert_eq!(streamed.header("content-length"), None, "{path}");
        }
        assert!(zipped.wire_len < plain.body.len() / 4, "{path}: compressed");
        assert_eq!(zipped.body, plain.body, "{path}: the same bytes once decompressed");
        let document: Value = serde_json::from_slice(&zipped.body).unwrap();
        let instances: usize = document["REGISTRY"]
            .as_object()
            .unwrap()
            .values()
            .map(|list| list.as_array().unwrap().len())
            .sum();
        assert_eq!(instances, 1200, "{path}");
    }
    node.stop().await;
}

#[tokio::test]
async fn snapshot_since_answers_a_delta_with_a_checksum_and_the_plain_form_is_unchanged() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    c.ok("POST", &node.at("/reg?service=a"), &instance("10.0.0.1", 1)).await;
    c.ok("POST", &node.at("/reg?service=b"), &instance("10.0.0.1", 2)).await;

    let plain = c.ok("GET", &node.at("/snapshot"), "").await;
    assert_eq!(
        plain.as_object().map(|o| o.len()),
        Some(4),
        "REGISTRY, VERSIONS, TIMESTAMPS, version"
    );
    let full = c.ok("GET", &node.at("/snapshot?since=0&wait=0s"), "").await;
    assert_eq!(full["REGISTRY"], plain["REGISTRY"]);
    assert!(full["CHECKSUM"].is_string() && full.get("SINCE").is_none());

    let delta = c.ok("GET", &node.at("/snapshot?since=1&wait=0s"), "").await;
    assert_eq!(delta["SINCE"], json!(1));
    assert_eq!(delta["version"], json!(2));
    assert_eq!(
        delta["REGISTRY"],
        json!({"b": plain["REGISTRY"]["b"]}),
        "only what changed"
    );
    assert_eq!(
        delta["CHECKSUM"], full["CHECKSUM"],
        "the checksum of the whole registry"
    );

    // A long poll at the current version waits for the next change.
    let poll = tokio::spawn({
        let url = node.at("/snapshot?since=2&wait=60s");
        async move { Client::new().ok("GET", &url, "").await }
    });
    assert!(still_waiting(&poll).await);
    c.ok("POST", &node.at("/unreg?service=a"), &instance("10.0.0.1", 1))
        .await;
    let delta = tokio::time::timeout(LIMIT, poll).await.unwrap().unwrap();
    assert_eq!((delta["SINCE"].clone(), delta["version"].clone()), (json!(2), json!(3)));
    assert_eq!(
        delta["REGISTRY"],
        json!({"a": []}),
        "a service whose last instance went"
    );
    node.stop().await;
}

/// A leader played by the test: `/info` and `/snapshot?since=` from a real registry,
/// except that deltas can be made to carry a wrong checksum. Records the `since` asked.
#[derive(Clone, Default)]
struct FakeLeader {
    truth: Arc<Registry>,
    bad_checksum: Arc<Mutex<bool>>,
    asked: Arc<Mutex<Vec<u64>>>,
}

impl FakeLeader {
    fn answer(&self, url: &str, path: &str, query: &str) -> String {
        match path {
            "/info" => json!({"url": url, "status": true, "leader": true, "version": self.truth.registry_version()})
                .to_string(),
            "/snapshot" => {
                let since: u64 = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("since="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                self.asked.lock().unwrap().push(since);
                let mut answer: Value = serde_json::from_slice(&self.truth.sync_json(since)).unwrap();
                if since != 0 && *self.bad_checksum.lock().unwrap() {
                    answer["CHECKSUM"] = json!("0000000000000000");
                }
                answer.to_string()
            }
            _ => "{}".to_owned(),
        }
    }
}

/// Registers `instance` in `svc` on the fake leader, through the one interpreter.
fn register(registry: &Registry, instance: InstanceMeta) {
    let command = Command::Register {
        service: "svc".to_owned(),
        instance,
        now_ms: 1,
    };
    assert!(!registry.apply(&command, 0).rejected);
}

/// A node's checksum, as its own `/snapshot?since=0` states it.
async fn checksum_of(c: &Client, node: &Node) -> Value {
    c.ok("GET", &node.at("/snapshot?since=0&wait=0s"), "").await["CHECKSUM"].clone()
}

#[tokio::test]
async fn a_checksum_mismatch_makes_the_follower_fetch_the_whole_snapshot() {
    let fake = FakeLeader::default();
    let meta = |port: u16| InstanceMeta::new("http", "10.2.2.2", port, "").unwrap();
    for port in 1..=3 {
        register(&fake.truth, meta(port));
    }
    let fake_listener = free_listener();
    let fake_url = format!("http://{}", fake_listener.local_addr().unwrap());
    {
        let (fake, url) = (fake.clone(), fake_url.clone());
        // The delay stands in for a long poll: no busy loop of answers.
        serve_fake(fake_listener, Duration::from_millis(20), move |path, query| {
            fake.answer(&url, path, query)
        });
    }
    let node_listener = free_listener();
    let node_url = format!("http://{}", node_listener.local_addr().unwrap());
    let node = Node::start_on(
        node_listener,
        Config {
            mode: Mode::Snapshot(SnapshotMode {
                election: "hash".parse().unwrap(),
                cluster_interval: Duration::from_millis(100),
                ..SnapshotMode::default()
            }),
            ..cluster_config(&[fake_url.clone(), node_url])
        },
    );
    let c = Client::new();
    eventually("the follower copies the leader", LIMIT, || async {
        checksum_of(&c, &node).await == json!(fake.truth.checksum().1)
    })
    .await;

    // From now on deltas carry a wrong checksum.
    *fake.bad_checksum.lock().unwrap() = true;
    let asked_before = fake.asked.lock().unwrap().len();
    register(&fake.truth, meta(4));
    eventually("the follower holds the change", LIMIT, || async {
        checksum_of(&c, &node).await == json!(fake.truth.checksum().1)
    })
    .await;
    eventually("after the mismatch the whole snapshot is fetched", LIMIT, || async {
        let asked: Vec<u64> = fake.asked.lock().unwrap()[asked_before..].to_vec();
        asked
            .iter()
            .position(|s| *s == 3)
            .is_some_and(|delta_at| asked[delta_at..].contains(&0))
    })
    .await;
    assert_eq!(checksum_of(&c, &node).await, json!(fake.truth.checksum().1));
    let all = c.ok("GET", &node.at("/findAll?service=svc"), "").await;
    assert_eq!(all.as_array().map(Vec::len), Some(4));
    node.stop().await;
}
