//! What operators read: `/metrics`, `/health` and `/ready` in both cluster modes, and
//! self-preservation (`--evict-max-fraction`), against real nodes over HTTP.

use std::collections::HashMap;
use std::time::Duration;

use maregistry::{Config, Mode, RaftMode};
use test_support::{
    cluster_config, eventually, free_listener, instance, listeners, start_cluster, start_raft, Client, Node, LIMIT,
};

/// The samples of a `/metrics` answer: `name{labels}` → value.
async fn metrics(c: &Client, node: &Node) -> HashMap<String, f64> {
    let answer = c.raw("GET", &node.at("/metrics"), "").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .content_type()
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        answer.content_type()
    );
    let text = String::from_utf8(answer.body.to_vec()).expect("UTF-8");
    assert!(text.ends_with("# EOF\n"), "an OpenMetrics document ends with # EOF");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn sample(samples: &HashMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no sample {name} in {:?}", sorted_names(samples)))
}

fn sorted_names(samples: &HashMap<String, f64>) -> Vec<&String> {
    let mut names: Vec<&String> = samples.keys().collect();
    names.sort();
    names
}

#[tokio::test]
async fn metrics_count_requests_changes_and_waiting_queries() {
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    for port in [1, 2, 3] {
        c.ok("POST", &node.at("/reg?service=svc"), &instance("h", port)).await;
    }
    c.ok("POST", &node.at("/unreg?service=svc"), &instance("h", 3)).await;
    for _ in 0..2 {
        c.ok("POST", &node.at("/renew?service=svc"), &instance("h", 1)).await;
    }
    c.ok("POST", &node.at("/renews?services=svc,other"), &instance("h", 2))
        .await;
    for path in ["/findAll?service=svc", "/findall?service=svc", "/findAll?service=x"] {
        c.ok("GET", &node.at(path), "").await;
    }
    assert_eq!(c.raw("GET", &node.at("/nowhere"), "").await.status, 404);
    assert_eq!(c.raw("POST", &node.at("/reg?service=a%20b"), "{}").await.status, 400);

    let m = metrics(&c, &node).await;
    assert_eq!(
        sample(&m, r#"maregistry_http_requests_total{endpoint="/reg",code="2xx"}"#),
        3.0
    );
    assert_eq!(
        sample(&m, r#"maregistry_http_requests_total{endpoint="/reg",code="4xx"}"#),
        1.0
    );
    assert_eq!(
        sample(&m, r#"maregistry_http_requests_total{endpoint="/findAll",code="2xx"}"#),
        3.0,
        "/findall counts as /findAll"
    );
    assert_eq!(
        sample(&m, r#"maregistry_http_requests_total{endpoint="other",code="4xx"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            r#"maregistry_http_request_duration_seconds_count{endpoint="/findAll"}"#
        ),
        3.0
    );
    assert!(
        sample(
            &m,
            r#"maregistry_http_request_duration_seconds_sum{endpoint="/findAll"}"#
        ) > 0.0
    );
    // 3 registered, 1 gone; the /renews of `other` registered h:2 there too.
    assert_eq!(sample(&m, "maregistry_instances"), 3.0);
    assert_eq!(sample(&m, "maregistry_services"), 2.0);
    assert_eq!(sample(&m, "maregistry_registrations_total"), 4.0);
    assert_eq!(sample(&m, "maregistry_unregistrations_total"), 1.0);
    assert_eq!(
        sample(&m, "maregistry_renewals_total"),
        4.0,
        "2 renews + one renews of 2 services"
    );
    assert_eq!(sample(&m, "maregistry_evictions_total"), 0.0);
    assert_eq!(sample(&m, "maregistry_registry_version"), 5.0);
    assert_eq!(sample(&m, r#"maregistry_role{role="leader"}"#), 1.0);
    assert_eq!(sample(&m, r#"maregistry_role{role="none"}"#), 0.0);
    assert_eq!(sample(&m, r#"maregistry_cluster_mode{mode="snapshot"}"#), 1.0);
    assert_eq!(sample(&m, "maregistry_ready"), 1.0);
    assert_eq!(sample(&m, "maregistry_blocking_queries_waiting"), 0.0);

    // A blocking query shows while it waits, and not in the latency histogram.
    let url = node.at("/findAll?service=svc&since=5&wait=30s");
    let waiter = tokio::spawn(async move { Client::new().raw("GET", &url, "").await.status });
    eventually("the blocking query is counted as waiting", LIMIT, || async {
        sample(&metrics(&c, &node).await, "maregistry_blocking_queries_waiting") == 1.0
    })
    .await;
    c.ok("POST", &node.at("/reg?service=svc"), &instance("h", 4)).await;
    assert_eq!(waiter.await.unwrap(), 200);
    let m = metrics(&c, &node).await;
    assert_eq!(sample(&m, "maregistry_blocking_queries_waiting"), 0.0);
    assert_eq!(
        sample(&m, r#"maregistry_http_requests_total{endpoint="/findAll",code="2xx"}"#),
        4.0
    );
    assert_eq!(
        sample(
            &m,
            r#"maregistry_http_request_duration_seconds_count{endpoint="/findAll"}"#
        ),
        3.0,
        "a blocking query waits on purpose: not timed"
    );
    node.stop().await;
}

#[tokio::test]
async fn health_and_ready_without_and_with_a_leader() {
    // Three servers, two of them never up: the quorum rule elects no one.
    let (listeners, urls) = listeners(3);
    let mut listeners = listeners.into_iter();
    let lonely = Node::start_on(listeners.next().unwrap(), cluster_config(&urls));
    let c = Client::new();
    let health = c.raw("GET", &lonely.at("/health"), "").await;
    assert_eq!(health.status, 200);
    assert_eq!(&health.body[..], br#"{"status":"up"}"#);
    // Let a few probe rounds pass: still no leader.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = c.get(&lonely.at("/ready")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("not ready: no leader")),
        "{body}"
    );
    assert_eq!(body["path"], "/ready");
    let m = metrics(&c, &lonely).await;
    assert_eq!(sample(&m, r#"maregistry_role{role="none"}"#), 1.0);
    assert_eq!(sample(&m, "maregistry_ready"), 0.0);
    lonely.stop().await;
    drop(listeners);

    // A two-node cluster: both ready once they agree on a leader.
    let nodes = start_cluster(2, |config| config);
    let leader_url = test_support::agreed_leader(&c, &[nodes[0].url.as_str(), nodes[1].url.as_str()]).await;
    let (leader, follower) = if nodes[0].url == leader_url {
        (&nodes[0], &nodes[1])
    } else {
        (&nodes[1], &nodes[0])
    };
    for (node, role) in [(leader, "leader"), (follower, "follower")] {
        let ready = c.ok("GET", &node.at("/ready"), "").await;
        assert_eq!(ready["ready"], true);
        assert_eq!(ready["mode"], "snapshot");
        assert_eq!(ready["role"], role);
        assert_eq!(ready["leader"], leader_url.as_str());
    }

    // The follower's metrics: a relayed write, its sync lag, the leader it saw.
    c.ok("POST", &follower.at("/reg?service=svc"), &instance("h", 1)).await;
    let version = c.ok("GET", &leader.at("/info"), "").await["version"].as_u64().unwrap();
    eventually("the follower has synced the write", LIMIT, || async {
        let m = metrics(&c, follower).await;
        m.get("maregistry_registry_version") == Some(&(version as f64))
            && m.get("maregistry_sync_versions_behind") == Some(&0.0)
            && m.contains_key("maregistry_sync_seconds_since_last")
    })
    .await;
    let m = metrics(&c, follower).await;
    assert_eq!(sample(&m, "maregistry_forwarded_total"), 1.0);
    assert_eq!(sample(&m, "maregistry_forward_failures_total"), 0.0);
    assert!(sample(&m, "maregistry_leader_changes_total") >= 1.0);
    assert_eq!(sample(&m, r#"maregistry_role{role="follower"}"#), 1.0);
    assert!(
        !metrics(&c, leader)
            .await
            .contains_key("maregistry_sync_versions_behind"),
        "the leader has no sync lag"
    );
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_metrics_and_readiness() {
    let data = tempfile::tempdir().unwrap();
    let nodes = start_raft(data.path(), 3, |config| config);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader_url = test_support::agreed_leader(&c, &urls).await;
    let leader = nodes.iter().find(|n| n.url == leader_url).unwrap();
    for i in 0..5 {
        c.ok("POST", &leader.at("/reg?service=svc"), &instance("h", 100 + i))
            .await;
    }
    eventually(
        "every node is ready and the leader sees both followers caught up",
        LIMIT,
        || async {
            for node in &nodes {
                if c.raw("GET", &node.at("/ready"), "").await.status != 200 {
                    return false;
                }
            }
            let m = metrics(&c, leader).await;
            let lags: Vec<f64> = m
                .iter()
                .filter(|(k, _)| k.starts_with("maregistry_raft_replication_lag{"))
                .map(|(_, v)| *v)
                .collect();
            lags.len() == 2 && lags.iter().all(|lag| *lag == 0.0)
        },
    )
    .await;
    let m = metrics(&c, leader).await;
    assert!(sample(&m, "maregistry_raft_term") >= 1.0);
    let (last, commit, applied) = (
        sample(&m, "maregistry_raft_last_log_index"),
        sample(&m, "maregistry_raft_commit_index"),
        sample(&m, "maregistry_raft_applied_index"),
    );
    assert!(
        last >= 5.0 && commit == last && applied == commit,
        "{last} {commit} {applied}"
    );
    assert_eq!(sample(&m, r#"maregistry_cluster_mode{mode="raft"}"#), 1.0);
    assert_eq!(sample(&m, r#"maregistry_role{role="leader"}"#), 1.0);
    assert_eq!(sample(&m, "maregistry_instances"), 5.0);
    for node in nodes.iter().filter(|n| n.url != leader_url) {
        let peer = format!(r#"maregistry_raft_replication_matched_index{{peer="{}"}}"#, node.url);
        assert_eq!(sample(&m, &peer), last);
        let fm = metrics(&c, node).await;
        assert_eq!(sample(&fm, r#"maregistry_role{role="follower"}"#), 1.0);
        assert_eq!(
            sample(&fm, "maregistry_registrations_total"),
            5.0,
            "applied from the log"
        );
        assert!(
            !fm.keys().any(|k| k.starts_with("maregistry_raft_replication_lag{")),
            "only the leader replicates"
        );
    }

    // A node started with --join that no leader added: it knows no leader, not ready.
    let loner = Node::start_on(
        free_listener(),
        Config {
            mode: Mode::Raft(RaftMode {
                join: true,
                ..RaftMode::new(data.path().join("loner"))
            }),
            ..Config::default()
        },
    );
    let (status, body) = c.get(&loner.at("/ready")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(sample(&metrics(&c, &loner).await, "maregistry_ready"), 0.0);
    loner.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_preservation_holds_back_a_mass_eviction_until_heartbeats_return() {
    let node = Node::start_on(
        free_listener(),
        Config {
            // A heartbeat every 100 ms is ten times within a TTL, so a slow machine does
            // not expire a live instance.
            ttl: Duration::from_secs(1),
            evict_interval: Duration::from_millis(100),
            evict_max_fraction: 0.5,
            ..Config::default()
        },
    );
    let c = Client::new();
    let batch: Vec<String> = (1..=4)
        .map(|port| format!(r#"{{"op":"reg","service":"svc","instance":{}}}"#, instance("h", port)))
        .collect();
    c.ok("POST", &node.at("/batch"), &format!("[{}]", batch.join(",")))
        .await;
    // Only h:1 keeps renewing: 3 of 4 expire, above the fraction.
    let renewed = std::sync::Arc::new(std::sync::Mutex::new(vec![1u16]));
    let heartbeats = {
        let (url, renewed) = (node.at("/renew?service=svc"), renewed.clone());
        tokio::spawn(async move {
            let c = Client::new();
            loop {
                let ports = renewed.lock().unwrap().clone();
                for port in ports {
                    c.ok("POST", &url, &instance("h", port)).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    eventually("passes are skipped", LIMIT, || async {
        sample(&metrics(&c, &node).await, "maregistry_eviction_passes_skipped_total") >= 2.0
    })
    .await;
    let m = metrics(&c, &node).await;
    assert_eq!(sample(&m, "maregistry_instances"), 4.0, "nothing evicted");
    assert_eq!(sample(&m, "maregistry_evictions_total"), 0.0);

    // Heartbeats of h:2 and h:3 come back: only h:4 expires, 1 of 4, and goes.
    renewed.lock().unwrap().extend([2, 3]);
    eventually("the one dead instance is evicted", LIMIT, || async {
        let list = c.ok("GET", &node.at("/findAll?service=svc"), "").await;
        list.as_array().map(Vec::len) == Some(3)
    })
    .await;
    let ports: Vec<u64> = c
        .ok("GET", &node.at("/findAll?service=svc"), "")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["port"].as_u64())
        .collect();
    assert_eq!(ports, vec![1, 2, 3]);
    assert_eq!(sample(&metrics(&c, &node).await, "maregistry_evictions_total"), 1.0);
    heartbeats.abort();
    node.stop().await;
}
