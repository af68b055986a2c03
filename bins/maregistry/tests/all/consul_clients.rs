//! Real Consul clients and a Consul cluster (docs/spec.md §10): py-consul 1.8.0 (PyPI) and
//! the npm `consul` 2.0.1 package, pinned with everything they pull in `tests/deps/` and
//! run from `tests/clients/` (each checks its own scenario and prints DONE); and an HTTP
//! check that goes on when the raft node running it is killed.

use maregistry::Config;
use serde_json::json;
use test_support::{agreed_leader, eventually, free_listener, Client, Node, Scenario, LIMIT};

use crate::consul::{consul_config, health_server, put, read, statuses_at};
use crate::raft::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_consul_registers_passes_watches_expires_deregisters_and_uses_kv() {
    let node = Node::start_on(free_listener(), consul_config(Config::default()));
    let port = node.addr.port().to_string();
    let scenario = Scenario::python("consul_py.py", &["127.0.0.1".to_owned(), port]);
    scenario.expect("DONE").await.finish().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_consul_registers_passes_watches_expires_deregisters_and_uses_kv() {
    let node = Node::start_on(free_listener(), consul_config(Config::default()));
    let port = node.addr.port().to_string();
    let scenario = Scenario::node("consul_js.js", &["127.0.0.1".to_owned(), port]);
    scenario.expect("DONE").await.finish().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_check_goes_on_when_the_raft_node_running_it_is_killed() {
    let extra = ["--consul-check-every", "100ms", "--consul-deregister-min", "1s"];
    let mut cluster = Cluster::start(3, &extra);
    let urls = cluster.urls.clone();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let follower = all.iter().copied().find(|u| *u != leader).unwrap();
    let (port, server) = health_server(200);
    // Registered through a follower: the write is relayed; the leader runs the check.
    let body = json!({"Name": "pay", "ID": "pay-1", "Address": "127.0.0.1", "Port": port,
        "Check": {"HTTP": format!("http://127.0.0.1:{port}/health"), "Interval": "200ms", "Timeout": "1s",
                  "DeregisterCriticalServiceAfter": "1s"}});
    let (status, text) = put(&c, &format!("{follower}/v1/agent/service/register"), &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    for url in &all {
        eventually("every node answers the check passing", LIMIT, || async {
            statuses_at(&c, url, "pay").await == ["passing"]
        })
        .await;
    }
    // A consistent read through a follower is the leader's, with its index headers.
    let consistent = c
        .raw("GET", &format!("{follower}/v1/health/service/pay?consistent"), "")
        .await;
    assert_eq!(consistent.status, 200);
    assert!(consistent.header("x-consul-index").is_some_and(|i| i != "0"));
    assert_eq!(consistent.header("x-consul-knownleader"), Some("true"));
    // Kill -9 the leader, the node running the check; another takes it over.
    let old = cluster.index(&leader);
    cluster.nodes[old].kill9();
    let rest: Vec<&str> = all.iter().copied().filter(|u| *u != leader).collect();
    let new_leader = agreed_leader(&c, &rest).await;
    server.abort();
    for url in &rest {
        eventually("the new leader's probe finds the server gone", LIMIT, || async {
            statuses_at(&c, url, "pay").await == ["critical"]
        })
        .await;
    }
    eventually(
        "the critical service is deregistered by the new leader",
        LIMIT,
        || async {
            let (_, _, entries) = read(&c, &format!("{new_leader}/v1/catalog/service/pay")).await;
            entries == json!([])
        },
    )
    .await;
}

/// VictoriaMetrics scraping with `consul_sd_configs` pointed at `node`, its discovery
/// looking every second (each look a blocking query); killed when dropped.
struct Scraper {
    child: std::process::Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Scraper {
    fn start(node: &Node) -> Scraper {
        let data = tempfile::tempdir().expect("a temporary dir");
        let config = data.path().join("scrape.yml");
        let scrape = format!(
            "scrape_configs:\n  - job_name: consul\n    scrape_interval: 1s\n    consul_sd_configs:\n      - server: {}\n",
            node.addr
        );
        std::fs::write(&config, scrape).expect("write the scrape config");
        let port = test_support::free_ports(1)[0];
        let child = std::process::Command::new(test_support::deps::victoria_metrics())
            .arg(format!("-storageDataPath={}", data.path().join("data").display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-promscrape.config={}", config.display()))
            .arg("-promscrape.consulSDCheckInterval=1s")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        Scraper {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        }
    }

    /// The discovered labels of each active target, by Consul service id.
    async fn targets(&self, c: &Client) -> std::collections::BTreeMap<String, serde_json::Value> {
        let Ok(answer) = c.try_raw("GET", &format!("{}/api/v1/targets", self.url), "").await else {
            return Default::default();
        };
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        body["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["discoveredLabels"].clone())
            .filter_map(|labels| Some((labels["__meta_consul_service_id"].as_str()?.to_owned(), labels)))
            .collect()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many Consul catalog and health reads `node` has answered.
async fn catalog_reads(c: &Client, node: &Node) -> u64 {
    let metrics = c.raw("GET", &node.at("/metrics"), "").await;
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .filter(|l| l.starts_with("maregistry_http_requests_total{endpoint=\"/v1/catalog\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consul_sd_scraper_finds_the_targets_with_their_labels_blocks_and_drops_a_deregistered_one() {
    let node = Node::start_on(free_listener(), consul_config(Config::default()));
    let c = Client::new();
    // Two targets on two addresses (a scraper keeps one target per address): the node's
    // own metrics, and a port nobody serves.
    let port = node.addr.port();
    let other = test_support::free_ports(1)[0];
    for (id, tags, port) in [
        ("metrics-a", json!(["prod", "eu"]), port),
        ("metrics-b", json!([]), other),
    ] {
        let body = json!({"Name": id, "ID": id, "Address": "127.0.0.1", "Port": port, "Tags": tags,
            "Meta": {"team": "core"}});
        let (status, text) = put(&c, &node.at("/v1/agent/service/register"), &body.to_string()).await;
        assert_eq!(status, 200, "{text}");
    }
    let scraper = Scraper::start(&node);
    eventually("the scraper discovers both services", LIMIT, || async {
        scraper.targets(&c).await.len() == 2
    })
    .await;
    let targets = scraper.targets(&c).await;
    let a = &targets["metrics-a"];
    assert_eq!(a["__meta_consul_service"], "metrics-a");
    assert_eq!(a["__meta_consul_tags"], ",prod,eu,");
    assert_eq!(a["__meta_consul_service_metadata_team"], "core");
    assert_eq!(a["__meta_consul_dc"], "dc1");
    assert_eq!(a["__meta_consul_health"], "passing");
    assert_eq!(a["__address__"], format!("127.0.0.1:{port}"));
    // Idle, its blocking queries are held: none is answered.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let before = catalog_reads(&c, &node).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        catalog_reads(&c, &node).await,
        before,
        "idle blocking queries are answered only on a change"
    );
    let answer = c
        .raw("PUT", &node.at("/v1/agent/service/deregister/metrics-b"), "")
        .await;
    assert_eq!(answer.status, 200);
    eventually("the scraper drops the deregistered service", LIMIT, || async {
        scraper.targets(&c).await.keys().cloned().collect::<Vec<_>>() == ["metrics-a"]
    })
    .await;
    drop(scraper);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_tokens_are_decided_by_the_same_permissions() {
    use crate::auth::{grant, login, token, with_auth, ADMIN_PASSWORD};
    let node = Node::start_on(
        free_listener(),
        with_auth(Config::default(), std::time::Duration::from_secs(600)),
    );
    let c = Client::new();
    eventually("the first admin logs in", LIMIT, || async {
        login(&c, &node.url, "nacos", ADMIN_PASSWORD).await.0 == 200
    })
    .await;
    let admin = token(&c, &node.url, "nacos", ADMIN_PASSWORD).await;
    // "web" may read and write service web and config web (KV key web), nothing else.
    grant(&c, &node.url, &admin, "web", "web-role", (":*:web", "rw")).await;
    grant(&c, &node.url, &admin, "other", "other-role", (":*:nothing", "r")).await;
    let web = token(&c, &node.url, "web", "web-pass").await;
    let register = node.at("/v1/agent/service/register");
    let body = json!({"Name": "web", "ID": "web-1", "Address": "127.0.0.1", "Port": 80}).to_string();
    let with = |t: &str| vec![("x-consul-token", t.to_owned())];
    let send = |method: &'static str, url: String, body: String, headers: Vec<(&'static str, String)>| {
        let c = c.clone();
        async move {
            let headers: Vec<(&'static str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            c.send(method, &url, &body, &headers).await.status
        }
    };
    assert_eq!(
        send("PUT", register.clone(), body.clone(), vec![]).await,
        403,
        "nobody may register"
    );
    assert_eq!(
        send("PUT", register.clone(), body.clone(), with(&web)).await,
        200,
        "X-Consul-Token"
    );
    let health = node.at("/v1/health/service/web");
    assert_eq!(send("GET", health.clone(), String::new(), vec![]).await, 403);
    assert_eq!(
        send("GET", format!("{health}?token={web}"), String::new(), vec![]).await,
        200,
        "?token="
    );
    let bearer = vec![("authorization", format!("Bearer {web}"))];
    assert_eq!(
        send("GET", health.clone(), String::new(), bearer).await,
        200,
        "Authorization: Bearer"
    );
    let other = token(&c, &node.url, "other", "other-pass").await;
    assert_eq!(
        send("GET", health, String::new(), with(&other)).await,
        403,
        "no grant on web"
    );
    assert_eq!(
        send("GET", node.at("/v1/catalog/services"), String::new(), with(&web)).await,
        403,
        "a list reads all"
    );
    let kv = node.at("/v1/kv/web");
    assert_eq!(send("PUT", kv.clone(), "v".to_owned(), with(&web)).await, 200);
    assert_eq!(send("PUT", kv.clone(), "v".to_owned(), with(&other)).await, 403);
    assert_eq!(send("GET", kv, String::new(), with(&other)).await, 403);
    assert_eq!(
        send(
            "PUT",
            node.at("/v1/agent/service/deregister/web-1"),
            String::new(),
            with(&other)
        )
        .await,
        403
    );
    assert_eq!(
        send("GET", node.at("/v1/agent/services"), String::new(), with(&admin)).await,
        200
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_go_on_when_the_snapshot_leader_stops() {
    let mut nodes = test_support::start_cluster(3, consul_config);
    let c = Client::new();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let leader = agreed_leader(&c, &all).await;
    let follower = all.iter().copied().find(|u| *u != leader).unwrap().to_owned();
    let (port, server) = health_server(200);
    let body = json!({"Name": "pay", "ID": "pay-1", "Address": "127.0.0.1", "Port": port,
        "Checks": [{"HTTP": format!("http://127.0.0.1:{port}/health"), "Interval": "200ms"},
                   {"CheckID": "beat", "TTL": "3s", "Status": "passing"}]});
    let (status, text) = put(&c, &format!("{follower}/v1/agent/service/register"), &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    eventually("the follower answers both checks passing", LIMIT, || async {
        statuses_at(&c, &follower, "pay").await == ["passing", "passing"]
    })
    .await;
    // The leader stops; another takes the checks over: the HTTP check finds its server gone,
    // and the TTL nobody passes runs out.
    let at = nodes.iter().position(|n| n.url == leader).unwrap();
    nodes.remove(at).stop().await;
    let rest: Vec<&str> = all.iter().copied().filter(|u| *u != leader).collect();
    let new_leader = agreed_leader(&c, &rest).await;
    server.abort();
    eventually("the new leader runs both checks", LIMIT, || async {
        statuses_at(&c, &new_leader, "pay").await == ["critical", "critical"]
    })
    .await;
    Node::stop_all(nodes).await;
}
