//! The Consul HTTP API (docs/spec.md §10), driven over HTTP as Consul clients drive it:
//! registrations with TTL and HTTP checks, the health and catalog reads with blocking
//! queries, the checks the leader runs, KV, one instance seen through every protocol, and
//! what bad input gets.

use std::time::Duration;

use maregistry::Config;
use serde_json::{json, Value};
use test_support::{eventually, free_listener, Client, Node, LIMIT};
use tokio::task::JoinHandle;

/// A node whose checker looks every 50 ms and honours DeregisterCriticalServiceAfter from
/// 1 s.
pub(crate) fn consul_config(config: Config) -> Config {
    let mut config = config;
    config.consul.check_every = Duration::from_millis(50);
    config.consul.deregister_min = Duration::from_secs(1);
    config
}

/// A Consul read: status, `X-Consul-Index`, JSON body.
pub(crate) async fn read(c: &Client, url: &str) -> (u16, u64, Value) {
    let answer = c.raw("GET", url, "").await;
    let index = answer
        .header("x-consul-index")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("{url}: no X-Consul-Index"));
    let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status, index, body)
}

/// A Consul write: status and the body as text.
pub(crate) async fn put(c: &Client, url: &str, body: &str) -> (u16, String) {
    let answer = c.raw("PUT", url, body).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

/// The statuses of the checks of `service`'s instances as the node at `url` answers them
/// (the node's own left out); none when it does not answer.
pub(crate) async fn statuses_at(c: &Client, url: &str, service: &str) -> Vec<String> {
    let answer = c
        .try_raw("GET", &format!("{url}/v1/health/service/{service}"), "")
        .await;
    let Ok(answer) = answer else { return Vec::new() };
    let entries: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    entries
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["Checks"].as_array().cloned().unwrap_or_default())
        .filter(|check| check["CheckID"] != "serfHealth")
        .map(|check| check["Status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// [`statuses_at`] of `node`.
async fn statuses(c: &Client, node: &Node, service: &str) -> Vec<String> {
    statuses_at(c, &node.url, service).await
}

#[tokio::test]
async fn a_ttl_check_starts_critical_passes_wakes_a_blocking_query_and_runs_out() {
    let node = Node::start(consul_config(Config::default())).await;
    let c = Client::new();
    // py-consul's spelling: lower-case keys, a list of one check.
    let body = json!({"name": "web", "id": "web-1", "address": "127.0.0.1", "port": 8080, "tags": ["v1"],
        "meta": {"version": "1"}, "checks": [{"ttl": "2s"}]});
    assert_eq!(
        put(&c, &node.at("/v1/agent/service/register"), &body.to_string()).await,
        (200, String::new())
    );
    assert_eq!(
        statuses(&c, &node, "web").await,
        ["critical"],
        "a new check starts critical"
    );
    let (_, index, passing) = read(&c, &node.at("/v1/health/service/web?passing=1")).await;
    assert_eq!(passing, json!([]));
    // Spring's passing=false is false.
    let (_, _, all) = read(&c, &node.at("/v1/health/service/web?passing=false")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1));

    // A blocking query on the index is woken by the first pass.
    let waiting = {
        let (c, url) = (
            c.clone(),
            node.at(&format!("/v1/health/service/web?passing=true&index={index}&wait=30s")),
        );
        tokio::spawn(async move { read(&c, &url).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "a blocking query waits for a change");
    assert_eq!(
        put(&c, &node.at("/v1/agent/check/pass/service:web-1?note=ok"), "")
            .await
            .0,
        200
    );
    let (_, woken_at, entries) = waiting.await.unwrap();
    assert!(woken_at > index);
    let entry = &entries[0];
    assert_eq!(entry["Service"]["ID"], "web-1");
    assert_eq!(entry["Service"]["Tags"], json!(["v1"]));
    assert_eq!(entry["Service"]["Meta"], json!({"version": "1"}));
    assert_eq!(entry["Checks"][1]["Output"], "ok");
    assert_eq!(entry["Checks"][0]["CheckID"], "serfHealth");

    // The same pass again changes nothing: a blocking query on the new index sleeps on.
    let (_, now_at, _) = read(&c, &node.at("/v1/health/service/web")).await;
    assert_eq!(
        put(&c, &node.at("/v1/agent/check/pass/service:web-1?note=ok"), "")
            .await
            .0,
        200
    );
    let (_, after, _) = read(
        &c,
        &node.at(&format!("/v1/health/service/web?index={now_at}&wait=300ms")),
    )
    .await;
    assert_eq!(after, now_at, "a heartbeat is not a change");

    // Catalog views.
    let (_, _, services) = read(&c, &node.at("/v1/catalog/services")).await;
    assert_eq!(services["web"], json!(["v1"]));
    let (_, _, catalog) = read(&c, &node.at("/v1/catalog/service/web?tag=v1")).await;
    assert_eq!(catalog[0]["ServiceID"], "web-1");
    assert_eq!(catalog[0]["ServicePort"], 8080);
    let (_, _, none) = read(&c, &node.at("/v1/catalog/service/web?tag=v2")).await;
    assert_eq!(none, json!([]));
    let (_, _, unknown) = read(&c, &node.at("/v1/health/service/nobody")).await;
    assert_eq!(unknown, json!([]));
    let agent = c.ok("GET", &node.at("/v1/agent/services"), "").await;
    assert_eq!(agent["web-1"]["Service"], "web");

    // No pass for 2 s: critical, still listed.
    eventually("the TTL runs out", LIMIT, || async {
        statuses(&c, &node, "web").await == ["critical"]
    })
    .await;
    // Unknown checks: Consul's 500 and text.
    assert_eq!(
        put(&c, &node.at("/v1/agent/check/pass/nope"), "").await,
        (500, "CheckID \"nope\" does not have associated TTL".to_owned())
    );
    assert_eq!(put(&c, &node.at("/v1/agent/service/deregister/web-1"), "").await.0, 200);
    assert_eq!(put(&c, &node.at("/v1/agent/service/deregister/web-1"), "").await.0, 200);
    assert_eq!(read(&c, &node.at("/v1/health/service/web")).await.2, json!([]));
    node.stop().await;
}

#[tokio::test]
async fn the_update_endpoint_and_warn_set_the_status_and_bad_statuses_are_refused() {
    let node = Node::start(consul_config(Config::default())).await;
    let c = Client::new();
    let body = json!({"Name": "api", "ID": "api-1", "Address": "127.0.0.1", "Port": 81,
        "Check": {"CheckID": "api-ttl", "TTL": "30s", "Status": "passing"}});
    assert_eq!(
        put(&c, &node.at("/v1/agent/service/register"), &body.to_string())
            .await
            .0,
        200
    );
    assert_eq!(statuses(&c, &node, "api").await, ["passing"]);
    assert_eq!(put(&c, &node.at("/v1/agent/check/warn/api-ttl"), "").await.0, 200);
    assert_eq!(statuses(&c, &node, "api").await, ["warning"]);
    let (_, _, passing) = read(&c, &node.at("/v1/health/service/api?passing")).await;
    assert_eq!(passing, json!([]), "?passing leaves out warning");
    let update = json!({"Status": "critical", "Output": "disk full"}).to_string();
    assert_eq!(
        put(&c, &node.at("/v1/agent/check/update/api-ttl"), &update).await.0,
        200
    );
    assert_eq!(statuses(&c, &node, "api").await, ["critical"]);
    let bad = json!({"Status": "up"}).to_string();
    assert_eq!(
        put(&c, &node.at("/v1/agent/check/update/api-ttl"), &bad).await,
        (400, "Invalid check status: 'up'".to_owned())
    );
    let checks = c.ok("GET", &node.at("/v1/agent/checks"), "").await;
    assert_eq!(checks["api-ttl"]["Output"], "disk full");
    // Maintenance: a critical check while enabled.
    assert_eq!(
        put(
            &c,
            &node.at("/v1/agent/service/maintenance/api-1?enable=true&reason=deploy"),
            ""
        )
        .await
        .0,
        200
    );
    let checks = c.ok("GET", &node.at("/v1/agent/checks"), "").await;
    assert_eq!(checks["_service_maintenance:api-1"]["Notes"], "deploy");
    assert_eq!(
        put(&c, &node.at("/v1/agent/service/maintenance/api-1?enable=false"), "")
            .await
            .0,
        200
    );
    let checks = c.ok("GET", &node.at("/v1/agent/checks"), "").await;
    assert!(checks.get("_service_maintenance:api-1").is_none());
    node.stop().await;
}

/// A small HTTP server answering `status` on every path; stopped by aborting it.
pub(crate) fn health_server(status: u16) -> (u16, JoinHandle<()>) {
    let listener = free_listener();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service =
                hyper::service::service_fn(move |_request: hyper::Request<hyper::body::Incoming>| async move {
                    let mut answer =
                        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"fine")));
                    *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, std::convert::Infallible>(answer)
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    (port, task)
}

/// Registers `service` at 127.0.0.1:`port` with an HTTP check on it every 100 ms, removed
/// after 1 s critical.
pub(crate) async fn register_http_checked(c: &Client, node: &Node, service: &str, port: u16) {
    let body = json!({"Name": service, "ID": format!("{service}-1"), "Address": "127.0.0.1", "Port": port,
        "Check": {"HTTP": format!("http://127.0.0.1:{port}/health"), "Interval": "100ms", "Timeout": "1s",
                  "DeregisterCriticalServiceAfter": "1s"}});
    let (status, text) = put(c, &node.at("/v1/agent/service/register"), &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn an_http_check_passes_goes_critical_when_its_server_stops_and_the_service_is_removed() {
    let node = Node::start(consul_config(Config::default())).await;
    let c = Client::new();
    let (port, server) = health_server(200);
    register_http_checked(&c, &node, "pay", port).await;
    eventually("the HTTP check passes", LIMIT, || async {
        statuses(&c, &node, "pay").await == ["passing"]
    })
    .await;
    let (_, _, entries) = read(&c, &node.at("/v1/health/service/pay?passing=1")).await;
    assert!(entries[0]["Checks"][1]["Output"].as_str().unwrap().contains("200"));
    server.abort();
    eventually("the HTTP check goes critical", LIMIT, || async {
        statuses(&c, &node, "pay").await == ["critical"]
    })
    .await;
    eventually("the critical service is deregistered", LIMIT, || async {
        read(&c, &node.at("/v1/catalog/service/pay")).await.2 == json!([])
    })
    .await;
    // 429 is a warning.
    let (port, server) = health_server(429);
    register_http_checked(&c, &node, "slow", port).await;
    eventually("a 429 is a warning", LIMIT, || async {
        statuses(&c, &node, "slow").await == ["warning"]
    })
    .await;
    server.abort();
    node.stop().await;
}

#[tokio::test]
async fn kv_puts_gets_lists_cas_and_a_blocking_read_woken_by_a_put() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let (status, _, _) = read(&c, &node.at("/v1/kv/app/missing")).await;
    assert_eq!(status, 404, "a missing key is a 404 with an index");
    assert_eq!(
        put(&c, &node.at("/v1/kv/app/db/url?flags=42"), "postgres://db").await,
        (200, "true".to_owned())
    );
    // npm's spelling: the slashes percent-encoded.
    assert_eq!(
        put(&c, &node.at("/v1/kv/app%2Fdb%2Fuser"), "admin").await,
        (200, "true".to_owned())
    );
    let (_, index, entries) = read(&c, &node.at("/v1/kv/app/db/url")).await;
    assert_eq!(entries[0]["Key"], "app/db/url");
    assert_eq!(entries[0]["Value"], "cG9zdGdyZXM6Ly9kYg==");
    assert_eq!(entries[0]["ModifyIndex"].as_u64(), Some(index));
    assert_eq!(entries[0]["Flags"], 42);
    let raw = c.raw("GET", &node.at("/v1/kv/app/db/user?raw"), "").await;
    assert_eq!(&raw.body[..], b"admin");
    let (_, _, all) = read(&c, &node.at("/v1/kv/app?recurse")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let (_, _, keys) = read(&c, &node.at("/v1/kv/?keys&separator=/")).await;
    assert_eq!(keys, json!(["app/"]));
    // CAS: a stale index is refused, the current one taken; 0 only creates.
    let stale = format!("/v1/kv/app/db/url?cas={}", index - 1);
    assert_eq!(put(&c, &node.at(&stale), "x").await.1, "false");
    assert_eq!(put(&c, &node.at("/v1/kv/app/db/url?cas=0"), "x").await.1, "false");
    assert_eq!(
        put(&c, &node.at(&format!("/v1/kv/app/db/url?cas={index}")), "mysql://db")
            .await
            .1,
        "true"
    );
    // A blocking read is woken by a put of its key.
    let (_, index, _) = read(&c, &node.at("/v1/kv/app/db/url")).await;
    let waiting = {
        let (c, url) = (c.clone(), node.at(&format!("/v1/kv/app/db/url?index={index}&wait=30s")));
        tokio::spawn(async move { read(&c, &url).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    assert_eq!(put(&c, &node.at("/v1/kv/app/db/url"), "sqlite://").await.1, "true");
    let (_, woken_at, entries) = waiting.await.unwrap();
    assert!(woken_at > index);
    assert_eq!(entries[0]["Value"], "c3FsaXRlOi8v");
    // The same store as Nacos's configs: a key's '/' is a data id's ':'.
    let nacos = c
        .raw(
            "GET",
            &node.at("/nacos/v1/cs/configs?dataId=app:db:url&group=DEFAULT_GROUP"),
            "",
        )
        .await;
    assert_eq!(&nacos.body[..], b"sqlite://");
    assert_eq!(c.raw("DELETE", &node.at("/v1/kv/app?recurse"), "").await.status, 200);
    assert_eq!(read(&c, &node.at("/v1/kv/app?recurse")).await.0, 404);
    node.stop().await;
}

#[tokio::test]
async fn the_consul_port_serves_the_same_registry() {
    let port = test_support::free_ports(1)[0];
    let node = Node::start(Config {
        consul_port: Some(port),
        ..Config::default()
    })
    .await;
    let c = Client::new();
    let consul = format!("http://127.0.0.1:{port}");
    let body = json!({"Name": "side", "Address": "127.0.0.1", "Port": 7}).to_string();
    eventually("the Consul port answers", LIMIT, || async {
        c.try_raw("GET", &format!("{consul}/v1/status/leader"), "")
            .await
            .is_ok()
    })
    .await;
    assert_eq!(
        put(&c, &format!("{consul}/v1/agent/service/register"), &body).await.0,
        200
    );
    let (_, _, entries) = read(&c, &node.at("/v1/catalog/service/side")).await;
    assert_eq!(
        entries[0]["ServicePort"], 7,
        "registered on the Consul port, read on the main one"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_transaction_applies_all_or_nothing() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let txn = node.at("/v1/txn");
    let b64 = |text: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
    // Two sets and a read, together.
    let ops = json!([
        {"KV": {"Verb": "set", "Key": "t/a", "Value": b64("1")}},
        {"KV": {"Verb": "set", "Key": "t/b", "Value": b64("2"), "Flags": 7}},
        {"KV": {"Verb": "get", "Key": "t/a"}},
    ]);
    let answer = c.raw("PUT", &txn, &ops.to_string()).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["KV"]["Value"], b64("1"));
    let (_, _, b) = read(&c, &node.at("/v1/kv/t/b")).await;
    assert_eq!(b[0]["Flags"], 7);
    let index_a = b[0]["ModifyIndex"].as_u64().unwrap() - 1;
    // A check that fails: nothing of the transaction is applied, and 409 names it.
    let ops = json!([
        {"KV": {"Verb": "set", "Key": "t/a", "Value": b64("changed")}},
        {"KV": {"Verb": "delete", "Key": "t/b"}},
        {"KV": {"Verb": "check-not-exists", "Key": "t/a"}},
    ]);
    let answer = c.raw("PUT", &txn, &ops.to_string()).await;
    assert_eq!(answer.status, 409, "{}", String::from_utf8_lossy(&answer.body));
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["Errors"][0]["OpIndex"], 2);
    let (_, _, a) = read(&c, &node.at("/v1/kv/t/a")).await;
    assert_eq!(a[0]["Value"], b64("1"), "nothing applied");
    assert_eq!(read(&c, &node.at("/v1/kv/t/b")).await.0, 200);
    // A check sees what the operations before it leave: after the delete, t/b is absent.
    let ops = json!([
        {"KV": {"Verb": "check-index", "Key": "t/a", "Index": index_a}},
        {"KV": {"Verb": "delete-tree", "Key": "t/"}},
        {"KV": {"Verb": "check-not-exists", "Key": "t/b"}},
        {"KV": {"Verb": "cas", "Key": "t/c", "Value": b64("3"), "Index": 0}},
    ]);
    let answer = c.raw("PUT", &txn, &ops.to_string()).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let (_, _, keys) = read(&c, &node.at("/v1/kv/t/?keys")).await;
    assert_eq!(keys, json!(["t/c"]));
    // Bad transactions change nothing.
    let too_many: Vec<Value> = (0..65)
        .map(|i| json!({"KV": {"Verb": "set", "Key": format!("x{i}")}}))
        .collect();
    assert_eq!(
        c.raw("PUT", &txn, &Value::Array(too_many).to_string()).await.status,
        413
    );
    for bad in [
        json!({"KV": {}}),
        json!([{"Node": {}}]),
        json!([{"KV": {"Verb": "lock", "Key": "k"}}]),
        json!([{"KV": {"Verb": "set", "Key": "k", "Value": "%%%"}}]),
    ] {
        assert_eq!(c.raw("PUT", &txn, &bad.to_string()).await.status, 400, "{bad}");
    }
    assert_eq!(read(&c, &node.at("/v1/kv/k")).await.0, 404);
    node.stop().await;
}

#[tokio::test]
async fn one_instance_is_seen_through_consul_nacos_eureka_and_the_seed_api() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let body = json!({"Name": "shop", "ID": "shop-1", "Address": "127.0.0.1", "Port": 9001, "Meta": {"zone": "a"},
        "Check": {"TTL": "60s", "Status": "passing"}});
    assert_eq!(
        put(&c, &node.at("/v1/agent/service/register"), &body.to_string())
            .await
            .0,
        200
    );
    let seed = c.ok("GET", &node.at("/findAll?service=shop"), "").await;
    assert_eq!(seed[0]["port"], 9001);
    assert_eq!(seed[0]["parameters"]["zone"], "a");
    let nacos = c
        .ok("GET", &node.at("/nacos/v1/ns/instance/list?serviceName=shop"), "")
        .await;
    assert_eq!(nacos["hosts"][0]["port"], 9001);
    assert_eq!(nacos["hosts"][0]["healthy"], true);
    let eureka = c
        .send(
            "GET",
            &node.at("/eureka/apps/SHOP"),
            "",
            &[("accept", "application/json")],
        )
        .await;
    assert!(String::from_utf8_lossy(&eureka.body).contains("9001"));
    // The other way: a seed registration read through Consul, with one passing check.
    c.ok(
        "POST",
        &node.at("/reg?service=orders"),
        &test_support::instance("127.0.0.1", 7001),
    )
    .await;
    let (_, _, entries) = read(&c, &node.at("/v1/health/service/orders?passing=1")).await;
    assert_eq!(entries[0]["Service"]["ID"], "127.0.0.1:7001");
    assert_eq!(entries[0]["Service"]["Port"], 7001);
    // An instance Nacos calls unhealthy is critical to Consul.
    let sick = node.at("/nacos/v1/ns/instance?serviceName=orders&ip=127.0.0.2&port=7002&healthy=false");
    assert_eq!(c.raw("POST", &sick, "").await.status, 200);
    let (_, _, passing) = read(&c, &node.at("/v1/health/service/orders?passing")).await;
    assert_eq!(passing.as_array().map(Vec::len), Some(1), "{passing}");
    let (_, _, all) = read(&c, &node.at("/v1/health/service/orders")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    // A failing Consul check is Nacos's unhealthy.
    assert_eq!(
        put(&c, &node.at("/v1/agent/check/fail/service:shop-1"), "").await.0,
        200
    );
    let nacos = c
        .ok("GET", &node.at("/nacos/v1/ns/instance/list?serviceName=shop"), "")
        .await;
    assert_eq!(nacos["hosts"][0]["healthy"], false);
    node.stop().await;
}

#[tokio::test]
async fn bad_input_gets_consuls_400s_and_changes_nothing() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let register = node.at("/v1/agent/service/register");
    for (body, says) in [
        (json!({"Port": 1}), "Missing service name"),
        (
            json!({"Name": "a", "Address": "0.0.0.0", "Port": 1}),
            "Invalid service address",
        ),
        (json!({"Name": "a", "Port": 0}), "Invalid service port"),
        (
            json!({"Name": "a", "Port": 1, "Check": {"TTL": "ten"}}),
            "invalid duration",
        ),
        (
            json!({"Name": "a", "Port": 1, "Check": {"TTL": "1s", "Status": "up"}}),
            "Status for checks",
        ),
        (
            json!({"Name": "a", "Port": 1, "Meta": {"x.y": "1"}}),
            "Invalid Service Meta",
        ),
        (
            json!({"Name": "a", "Address": "127.0.0.1", "Port": 1,
                "Check": {"HTTP": "http://10.1.1.1/", "Interval": "1s"}}),
            "must be the service's address",
        ),
    ] {
        let (status, text) = put(&c, &register, &body.to_string()).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    assert_eq!(put(&c, &register, "{not json").await.0, 400);
    // Unknown fields are ignored, as Consul's decoder does.
    let fine = json!({"Name": "a", "Port": 1, "Address": "127.0.0.1", "Whatever": {"x": 1}});
    assert_eq!(put(&c, &register, &fine.to_string()).await.0, 200);
    for (url, status, says) in [
        ("/v1/health/service/a?index=x", 400, "Invalid index"),
        ("/v1/health/service/a?index=1&wait=soon", 400, "Invalid wait time"),
        ("/v1/health/service/a?passing=maybe", 400, "Invalid value for ?passing"),
        ("/v1/health/service/a?dc=dc9", 500, "No path to datacenter"),
        ("/v1/session/list", 501, "sessions"),
        ("/v1/nothing", 404, ""),
    ] {
        let answer = c.raw("GET", &node.at(url), "").await;
        let text = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status, status, "{url}: {text}");
        assert!(
            text.contains(says) || says == "sessions" && text.contains("session"),
            "{url}: {text}"
        );
    }
    let (_, _, services) = read(&c, &node.at("/v1/catalog/services")).await;
    assert_eq!(services, json!({"a": []}), "only the good registration is stored");
    node.stop().await;
}
