//! Real third-party clients against real nodes: `nacos-sdk-python` 0.1.17 and
//! `py-eureka-client` 0.13.3 (PyPI, in a venv), `nacos` 2.6.3 and `eureka-js-client` 4.5.0
//! (npm), pinned with everything they pull in `tests/deps/` and installed by
//! `scripts/test-deps.sh`. Each runs its scenario from
//! `tests/clients/` (register two, see two, heartbeat, deregister one, see one, deregister
//! the other, see none) and pauses once both are registered, so that this test checks
//! them through the seed API and the other protocol meanwhile.

use std::time::Duration;

use maregistry::Config;
use serde_json::Value;
use test_support::{eventually, free_listener, start_raft, Client, Node, Scenario, LIMIT};

/// The hosts of `service` through the seed API, with the parameters the client sent.
async fn seed_view(c: &Client, node: &str, service: &str) -> Vec<Value> {
    let list = c.ok("GET", &format!("{node}/findAll?service={service}"), "").await;
    list.as_array().cloned().unwrap_or_default()
}

/// The `ip:port` of the instances of `app` through Eureka (JSON).
async fn eureka_view(c: &Client, node: &str, app: &str) -> Vec<String> {
    let answer = c
        .send(
            "GET",
            &format!("{node}/eureka/apps/{app}"),
            "",
            &[("accept", "application/json")],
        )
        .await;
    if answer.status == 404 {
        return Vec::new();
    }
    let body: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(body["application"]["name"], app.to_ascii_uppercase());
    let mut seen: Vec<String> = body["application"]["instance"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| format!("{}:{}", i["ipAddr"].as_str().unwrap_or(""), i["port"]["$"]))
                .collect()
        })
        .unwrap_or_default();
    seen.sort();
    seen
}

/// The `ip:port` of the hosts of `service` through Nacos.
async fn nacos_view(c: &Client, node: &str, service: &str) -> Vec<String> {
    let list = c
        .ok(
            "GET",
            &format!("{node}/nacos/v1/ns/instance/list?serviceName={service}"),
            "",
        )
        .await;
    let mut seen: Vec<String> = list["hosts"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .map(|h| format!("{}:{}", h["ip"].as_str().unwrap_or(""), h["port"]))
                .collect()
        })
        .unwrap_or_default();
    seen.sort();
    seen
}

/// `host:port` of a node, as Nacos clients take a server.
fn nacos_server(node: &str) -> String {
    node.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_sdk_python_registers_heartbeats_and_deregisters() {
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    let scenario = Scenario::python("nacos_py.py", &[nacos_server(&node.url), "com.demo.PyNacos".to_owned()]);
    let mut scenario = scenario.expect("REGISTERED").await;
    let seen = seed_view(&c, &node.url, "com.demo.PyNacos").await;
    let urls: Vec<&str> = seen.iter().filter_map(|i| i["host"].as_str()).collect();
    assert_eq!(urls, vec!["10.0.0.1", "10.0.0.2"], "{seen:?}");
    assert_eq!(
        seen[0]["parameters"]["zone"], "eu-1",
        "the client's metadata, as parameters"
    );
    assert_eq!(seen[0]["parameters"]["nacos.weight"], "1");
    // And through Eureka: the same two, app in upper case.
    let eureka = eureka_view(&c, &node.url, "com.demo.PyNacos").await;
    assert_eq!(eureka, vec!["10.0.0.1:8080", "10.0.0.2:8080"]);
    scenario.go_on();
    scenario.finish().await;
    assert!(seed_view(&c, &node.url, "com.demo.PyNacos").await.is_empty());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_npm_client_registers_heartbeats_and_deregisters() {
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    // Its first beat comes 10 s after it started, then one every clientBeatInterval (5 s):
    // 21 s after the registration leaves room for two rounds on a slow machine.
    let scenario = Scenario::node(
        "nacos_js.js",
        &[
            nacos_server(&node.url),
            "com.demo.JsNacos".to_owned(),
            "21000".to_owned(),
        ],
    );
    let mut scenario = scenario.expect("REGISTERED").await;
    let seen = seed_view(&c, &node.url, "com.demo.JsNacos").await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["parameters"]["zone"], "us-1");
    assert_eq!(seen[0]["parameters"]["nacos.cluster"], "DEFAULT");
    scenario.go_on();
    scenario.finish().await;
    let raw = c
        .ok(
            "GET",
            &node.at("/nacos/v1/ns/instance/list?serviceName=com.demo.JsNacos"),
            "",
        )
        .await;
    assert_eq!(raw["hosts"], serde_json::json!([]), "none left: {raw}");
    let metrics = c.raw("GET", &node.at("/metrics"), "").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let renewals: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("maregistry_renewals_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(renewals >= 4.0, "two instances beat at least twice each: {renewals}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_clients_through_a_raft_follower() {
    let data = tempfile::tempdir().unwrap();
    let nodes = start_raft(data.path(), 3, |config| config);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = test_support::agreed_leader(&c, &urls).await;
    let follower = nodes.iter().find(|n| n.url != leader).expect("a follower");
    let scenario = Scenario::python(
        "nacos_py.py",
        &[nacos_server(&follower.url), "com.demo.Raft".to_owned()],
    );
    let mut scenario = scenario.expect("REGISTERED").await;
    // Written through the follower, applied on every node.
    for node in &nodes {
        let url = node.url.clone();
        eventually("every node holds both instances", LIMIT, || {
            let (c, url) = (&c, url.clone());
            async move { seed_view(c, &url, "com.demo.Raft").await.len() == 2 }
        })
        .await;
    }
    scenario.go_on();
    scenario.finish().await;
    for node in nodes {
        node.stop().await;
    }
}

/// A node whose global TTL is an hour, evicting every 100 ms: only a declared lease
/// (from 1 s) makes an instance go.
fn leasing_node() -> Node {
    Node::start_on(
        free_listener(),
        Config {
            ttl: Duration::from_secs(3600),
            evict_interval: Duration::from_millis(100),
            leases: registry_core::LeaseBounds {
                min: Duration::from_secs(1),
                max: Duration::from_secs(600),
            },
            ..Config::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nacos_instance_expires_on_its_own_lease() {
    let node = leasing_node();
    let c = Client::new();
    let metadata = "%7B%22preserved.ip.delete.timeout%22%3A%222000%22%7D";
    let short = format!("/nacos/v1/ns/instance?serviceName=lease&ip=10.0.0.1&port=1&metadata={metadata}");
    let answer = c.raw("POST", &node.at(&short), "").await;
    assert_eq!((answer.status, &answer.body[..]), (200, &b"ok"[..]));
    let plain = node.at("/nacos/v1/ns/instance?serviceName=lease&ip=10.0.0.2&port=1");
    assert_eq!(c.raw("POST", &plain, "").await.status, 200);
    // The first goes after its 2 s; the second has Nacos's 30 s.
    eventually("the short-leased instance is evicted", LIMIT, || async {
        seed_view(&c, &node.url, "lease").await.len() == 1
    })
    .await;
    let left = seed_view(&c, &node.url, "lease").await;
    assert_eq!(left[0]["host"], "10.0.0.2");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_registers_heartbeats_and_cancels() {
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    let scenario = Scenario::python(
        "eureka_py.py",
        &[format!("{}/eureka", node.url), "py-eureka".to_owned()],
    );
    let mut scenario = scenario.expect("REGISTERED").await;
    // The client upper-cases its app: the registry service is PY-EUREKA.
    let seen = seed_view(&c, &node.url, "PY-EUREKA").await;
    let hosts: Vec<&str> = seen.iter().filter_map(|i| i["host"].as_str()).collect();
    assert_eq!(hosts, vec!["10.0.2.1", "10.0.2.2"], "{seen:?}");
    assert_eq!(seen[0]["parameters"]["zone"], "eu-1", "its metadata, as parameters");
    assert_eq!(seen[0]["parameters"]["maregistry.lease"], "10s", "its own lease");
    assert_eq!(
        nacos_view(&c, &node.url, "PY-EUREKA").await,
        vec!["10.0.2.1:8080", "10.0.2.2:8080"]
    );
    scenario.go_on();
    scenario.finish().await;
    assert!(seed_view(&c, &node.url, "PY-EUREKA").await.is_empty());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_registers_heartbeats_and_cancels() {
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    let port = node.addr.port().to_string();
    let scenario = Scenario::node("eureka_js.js", &["127.0.0.1".to_owned(), port, "js-eureka".to_owned()]);
    let mut scenario = scenario.expect("REGISTERED").await;
    // It posts its app in lower case; Eureka answers it in upper case, one service either way.
    let seen = seed_view(&c, &node.url, "js-eureka").await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["parameters"]["zone"], "us-1");
    assert_eq!(
        nacos_view(&c, &node.url, "js-eureka").await,
        vec!["10.0.3.1:8080", "10.0.3.2:8080"]
    );
    assert_eq!(
        eureka_view(&c, &node.url, "JS-EUREKA").await,
        vec!["10.0.3.1:8080", "10.0.3.2:8080"]
    );
    scenario.go_on();
    scenario.finish().await;
    assert!(seed_view(&c, &node.url, "js-eureka").await.is_empty());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_eureka_instance_expires_on_its_own_lease() {
    let node = leasing_node();
    let c = Client::new();
    let register = |ip: &str, lease: u64| {
        format!(
            r#"{{"instance":{{"instanceId":"{ip}:lease:80","hostName":"{ip}","app":"LEASE","ipAddr":"{ip}","status":"UP",
               "port":{{"$":80,"@enabled":"true"}},"leaseInfo":{{"renewalIntervalInSecs":1,"durationInSecs":{lease}}}}}}}"#
        )
    };
    for (ip, lease) in [("10.0.0.1", 2), ("10.0.0.2", 600)] {
        let answer = c
            .raw("POST", &node.at("/eureka/apps/LEASE"), &register(ip, lease))
            .await;
        assert_eq!(answer.status, 204);
    }
    eventually("the 2 s instance is evicted", LIMIT, || async {
        seed_view(&c, &node.url, "LEASE").await.len() == 1
    })
    .await;
    assert_eq!(seed_view(&c, &node.url, "LEASE").await[0]["host"], "10.0.0.2");
    // A heartbeat of the evicted one is a 404: its client registers again.
    assert_eq!(
        c.raw("PUT", &node.at("/eureka/apps/LEASE/10.0.0.1:lease:80"), "")
            .await
            .status,
        404
    );
    assert_eq!(
        c.raw("PUT", &node.at("/eureka/apps/lease/10.0.0.2:lease:80"), "")
            .await
            .status,
        200
    );
    node.stop().await;
}

#[tokio::test]
async fn eureka_status_delta_xml_and_versions_across_protocols() {
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    let json = [("accept", "application/json")];
    // An empty registry: an empty application list, never a missing one.
    let empty = c.send("GET", &node.at("/eureka/apps/"), "", &json).await;
    let empty: Value = serde_json::from_slice(&empty.body).unwrap();
    assert_eq!(empty["applications"]["application"], serde_json::json!([]));
    assert_eq!(empty["applications"]["apps__hashcode"], "");

    // A Nacos registration moves the versions by one, as any change does.
    let v0 = c.ok("GET", &node.at("/version?service=mixed"), "").await;
    assert_eq!(v0, 0);
    let nacos = node.at("/nacos/v1/ns/instance?serviceName=mixed&ip=10.0.0.1&port=1");
    assert_eq!(c.raw("POST", &nacos, "").await.status, 200);
    assert_eq!(c.ok("GET", &node.at("/version?service=mixed"), "").await, 1);
    // Eureka sees it (app in upper case) with Eureka's defaults.
    let app = c.send("GET", &node.at("/eureka/apps/MIXED"), "", &json).await;
    assert_eq!(app.status, 200);
    let app: Value = serde_json::from_slice(&app.body).unwrap();
    let instance = &app["application"]["instance"][0];
    assert_eq!(
        (instance["instanceId"].as_str(), instance["status"].as_str()),
        (Some("10.0.0.1:1"), Some("UP"))
    );

    // A status override is a change, shown in the fetch and the delta.
    let status = node.at("/eureka/apps/mixed/10.0.0.1:1/status?value=OUT_OF_SERVICE");
    assert_eq!(c.raw("PUT", &status, "").await.status, 200);
    assert_eq!(c.ok("GET", &node.at("/version?service=mixed"), "").await, 2);
    let delta = c.send("GET", &node.at("/eureka/apps/delta"), "", &json).await;
    let delta: Value = serde_json::from_slice(&delta.body).unwrap();
    assert_eq!(delta["applications"]["apps__hashcode"], "OUT_OF_SERVICE_1_");
    let changed = &delta["applications"]["application"][0]["instance"][0];
    assert_eq!(changed["status"], "OUT_OF_SERVICE");
    assert_eq!(
        changed["actionType"], "MODIFIED",
        "seen before (by the app fetch), now changed"
    );
    // XML without a json Accept, as py-eureka-client reads it.
    let xml = c.raw("GET", &node.at("/eureka/apps/"), "").await;
    assert_eq!(xml.content_type(), Some("application/xml"));
    let text = String::from_utf8_lossy(&xml.body).into_owned();
    assert!(text.contains("<status>OUT_OF_SERVICE</status>"), "{text}");
    assert!(text.contains("<port enabled=\"true\">1</port>"), "{text}");
    // Back to UP: MODIFIED again.
    assert_eq!(
        c.raw("DELETE", &node.at("/eureka/apps/mixed/10.0.0.1:1/status"), "")
            .await
            .status,
        200
    );
    let delta = c.send("GET", &node.at("/eureka/apps/delta"), "", &json).await;
    let delta: Value = serde_json::from_slice(&delta.body).unwrap();
    assert_eq!(delta["applications"]["apps__hashcode"], "UP_1_");
    assert_eq!(
        delta["applications"]["application"][0]["instance"][0]["actionType"],
        "MODIFIED"
    );
    // Cancel through Eureka: gone for Nacos too, DELETED in the delta; unknown ids are 404.
    assert_eq!(
        c.raw("DELETE", &node.at("/eureka/apps/MIXED/10.0.0.1:1"), "")
            .await
            .status,
        200
    );
    assert!(nacos_view(&c, &node.url, "mixed").await.is_empty());
    let delta = c.send("GET", &node.at("/eureka/apps/delta"), "", &json).await;
    let delta: Value = serde_json::from_slice(&delta.body).unwrap();
    assert_eq!(
        delta["applications"]["application"][0]["instance"][0]["actionType"],
        "DELETED"
    );
    for (method, path) in [
        ("DELETE", "/eureka/apps/MIXED/10.0.0.1:1"),
        ("PUT", "/eureka/apps/MIXED/10.0.0.1:1"),
        ("PUT", "/eureka/apps/MIXED/nope/status?value=UP"),
        ("GET", "/eureka/apps/NOPE"),
    ] {
        assert_eq!(c.raw(method, &node.at(path), "").await.status, 404, "{method} {path}");
    }
    // Bad input: 400, nothing changed.
    for body in [
        "",
        "{}",
        "{\"instance\":{}}",
        "{\"instance\":{\"instanceId\":\"a\",\"ipAddr\":\"h h\"}}",
    ] {
        assert_eq!(
            c.raw("POST", &node.at("/eureka/apps/MIXED"), body).await.status,
            400,
            "{body}"
        );
    }
    let bad_nacos = node.at("/nacos/v1/ns/instance?serviceName=mixed&ip=h&port=99999");
    let answer = c.raw("POST", &bad_nacos, "").await;
    assert_eq!(answer.status, 400);
    assert!(String::from_utf8_lossy(&answer.body).starts_with("caused: "));
    // register, status, status back, cancel: four changes; the refusals none.
    assert_eq!(c.ok("GET", &node.at("/version?service=mixed"), "").await, 4);
    node.stop().await;
}
