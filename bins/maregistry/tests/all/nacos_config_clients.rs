//! The real Nacos config clients against a node (docs/spec.md §8): `nacos-sdk-python`
//! 3.2.0 and the Rust `nacos-sdk` 0.8.3 over gRPC, the legacy `nacos-sdk-python` 0.1.x and
//! the npm `nacos` 2.6.3 over v1 HTTP and its long poll. Each publishes, reads, overwrites,
//! listens and is told of a change another client made, removes, reads a missing config,
//! keeps namespaces and groups apart, and carries unicode and large content; the gRPC
//! clients also publish with CAS (the HTTP clients have no CAS call).

use std::sync::{Arc, Mutex};

use maregistry::Config;
use nacos_sdk::api::config::{ConfigChangeListener, ConfigResponse, ConfigServiceBuilder};
use nacos_sdk::api::props::ClientProps;
use registry_core::md5_hex;
use test_support::{eventually, start_grpc, Client, Node, Scenario, LIMIT};

use crate::nacos2::server;
use crate::nacos_config::{publish, text};

/// The value of the counter `name` in the node's `/metrics`.
async fn counter(c: &Client, node: &Node, name: &str) -> u64 {
    let metrics = text(&c.raw("GET", &node.at("/metrics"), "").await);
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs a scenario to its `LISTENING`, publishes "from HTTP" at `data_id` in `group`, and
/// runs it to its end.
async fn with_http_change(c: &Client, node: &Node, scenario: Scenario, data_id: &str, group: &str) {
    let mut scenario = scenario.expect("LISTENING").await;
    let answer = publish(
        c,
        &node.url,
        &[("dataId", data_id), ("group", group), ("content", "from HTTP")],
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", text(&answer));
    scenario.go_on();
    scenario.expect("PUSHED").await.expect("ok").await.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_sdk_python_3_configs_over_grpc() {
    let node = start_grpc(Config::default());
    let c = Client::new();
    let scenario = Scenario::python_nacos3(
        "nacos3_config.py",
        &[server(&node), "py3.yaml".to_owned(), "ns-py3".to_owned()],
    );
    with_http_change(&c, &node, scenario, "py3.yaml", "PY_GROUP").await;
    // The client re-checks unsynced keys every 5 s, which would hide a server that never
    // pushes: the node's own count says it pushed.
    assert!(counter(&c, &node, "maregistry_config_pushes_total").await >= 2);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_python_client_over_v1_http() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let scenario = Scenario::python(
        "nacos_config_py.py",
        &[server(&node), "legacy.yaml".to_owned(), "ns-legacy".to_owned()],
    );
    with_http_change(&c, &node, scenario, "legacy.yaml", "LEGACY_GROUP").await;
    assert!(counter(&c, &node, "maregistry_config_long_polls_answered_total").await >= 3);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_client_over_v1_http() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let port = test_support::free_ports(1)[0].to_string();
    let scenario = Scenario::node_with(
        "nacos_config_js.js",
        &[server(&node), "npm.yaml".to_owned(), "ns-npm".to_owned()],
        &[("NODE_CLUSTER_CLIENT_PORT", &port)],
    );
    with_http_change(&c, &node, scenario, "npm.yaml", "JS_GROUP").await;
    node.stop().await;
}

/// Keeps what the Rust client's listener is told.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl ConfigChangeListener for Heard {
    fn notify(&self, config: ConfigResponse) {
        self.0.lock().expect("not poisoned").push(config.content().clone());
    }
}

impl Heard {
    fn last(&self) -> Option<String> {
        self.0.lock().expect("not poisoned").last().cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_nacos_sdk_configs_over_grpc() {
    let node = start_grpc(Config::default());
    let c = Client::new();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let service = |namespace: &str| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cache = std::env::temp_dir().join(format!("nacos-rs-config-{}-{n}", std::process::id()));
        let props = ClientProps::new()
            .server_addr(server(&node))
            .namespace(namespace)
            .config_load_cache_at_start(false)
            .cache_dir(cache.display().to_string());
        ConfigServiceBuilder::new(props).build()
    };
    // A reads and writes; L only listens (a client with a listener reads its cache, kept by
    // pushes, and keeps a removed config's last content there); N is in another namespace.
    let (a, n) = (
        service("").await.expect("a client"),
        service("ns-rs").await.expect("a client"),
    );
    let listening = service("").await.expect("a client");
    let (id, group) = ("rs.toml".to_owned(), "RS_GROUP".to_owned());
    let missing = a.get_config(id.clone(), group.clone()).await;
    assert!(
        matches!(missing, Err(nacos_sdk::api::error::Error::ConfigNotFound(_))),
        "{missing:?}"
    );
    let first = "rs = 1 # ✓ 配置".to_owned();
    assert!(a
        .publish_config(id.clone(), group.clone(), first.clone(), Some("toml".to_owned()))
        .await
        .expect("published"));
    let read = a.get_config(id.clone(), group.clone()).await.expect("read");
    assert_eq!(
        (read.content(), read.md5(), read.content_type().as_str()),
        (&first, &md5_hex(&first), "toml")
    );
    assert!(a
        .publish_config(id.clone(), group.clone(), "rs = 2".to_owned(), None)
        .await
        .expect("overwritten"));

    let heard = Arc::new(Heard::default());
    listening
        .add_listener(id.clone(), group.clone(), heard.clone())
        .await
        .expect("listening");
    // Its batch listen goes out in the background: once the node holds it, a change is
    // pushed (the client reads only pushes).
    eventually("the listen reaches the node", LIMIT, || async {
        counter(&c, &node, "maregistry_config_listens").await >= 1
    })
    .await;
    let answer = publish(
        &c,
        &node.url,
        &[("dataId", &id), ("group", &group), ("content", "from HTTP")],
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    eventually("told of the HTTP change", LIMIT, || async {
        heard.last().as_deref() == Some("from HTTP")
    })
    .await;

    // Isolation.
    assert!(
        n.get_config(id.clone(), group.clone()).await.is_err(),
        "another namespace"
    );
    assert!(
        a.get_config(id.clone(), "OTHER_GROUP".to_owned()).await.is_err(),
        "another group"
    );
    assert!(n
        .publish_config(id.clone(), group.clone(), "in ns".to_owned(), None)
        .await
        .expect("published"));
    assert_eq!(
        a.get_config(id.clone(), group.clone()).await.expect("read").content(),
        "from HTTP"
    );

    // CAS refused, then accepted.
    let refused = a
        .publish_config_cas(id.clone(), group.clone(), "cas".to_owned(), None, md5_hex("stale"))
        .await;
    assert!(!refused.unwrap_or(false), "a stale casMd5 is refused");
    assert_eq!(
        a.get_config(id.clone(), group.clone()).await.expect("read").content(),
        "from HTTP"
    );
    let accepted = a
        .publish_config_cas(
            id.clone(),
            group.clone(),
            "cas ok".to_owned(),
            None,
            md5_hex("from HTTP"),
        )
        .await
        .expect("answered");
    assert!(accepted);
    eventually("told of the CAS publish", LIMIT, || async {
        heard.last().as_deref() == Some("cas ok")
    })
    .await;

    let large = "配置 ✓ line\n".repeat(30_000);
    assert!(a
        .publish_config(id.clone(), group.clone(), large.clone(), None)
        .await
        .expect("published"));
    assert_eq!(
        a.get_config(id.clone(), group.clone()).await.expect("read").content(),
        &large
    );

    assert!(a.remove_config(id.clone(), group.clone()).await.expect("removed"));
    assert!(a.get_config(id.clone(), group.clone()).await.is_err(), "gone");
    node.stop().await;
}
