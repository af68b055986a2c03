//! The seed's single-node procedure and every error case of docs/spec.md §3, over HTTP against a
//! real node.

use std::time::Duration;

use maregistry::Config;
use serde_json::{json, Value};
use test_support::{eventually, instance, Client, Node};

const SVC: &str = "com.test.HelloService";
const HELLO: &str = r#"{"scheme":"http","host":"192.168.1.100","port":8080,"context":"hello"}"#;

#[tokio::test]
async fn the_seed_procedure_on_one_node() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();

    // A new registry answers 0 and empty lists.
    assert_eq!(
        c.ok("GET", &node.at(&format!("/version?service={SVC}")), "").await,
        json!(0)
    );
    assert_eq!(
        c.ok("GET", &node.at(&format!("/findAll?service={SVC}")), "").await,
        json!([])
    );

    // Register.
    let registered = c.ok("POST", &node.at(&format!("/reg?service={SVC}")), HELLO).await;
    let expected =
        json!({"scheme":"http","host":"192.168.1.100","port":8080,"context":"hello","status":true,"parameters":{}});
    assert_eq!(registered, expected);

    // findAll, and its lower-case alias, on GET and POST.
    for path in ["/findAll", "/findall"] {
        for method in ["GET", "POST"] {
            let all = c.ok(method, &node.at(&format!("{path}?service={SVC}")), "").await;
            assert_eq!(all, json!([expected.clone()]), "{method} {path}");
        }
    }

    // The snapshot after one registration, as the seed's test expects.
    let snapshot = c.ok("GET", &node.at("/snapshot"), "").await;
    assert_eq!(snapshot["VERSIONS"], json!({ SVC: 1 }));
    assert_eq!(snapshot["version"], json!(1));
    assert_eq!(snapshot["REGISTRY"][SVC], json!([expected.clone()]));
    let key = format!("{SVC}@http://192.168.1.100:8080/hello");
    let registered_at = snapshot["TIMESTAMPS"][&key]
        .as_u64()
        .expect("timestamp of the instance");

    // Versions.
    assert_eq!(
        c.ok("GET", &node.at(&format!("/version?service={SVC}")), "").await,
        json!(1)
    );
    let versions = c
        .ok("GET", &node.at(&format!("/versions?services={SVC},com.test.Other")), "")
        .await;
    assert_eq!(versions, json!({ SVC: 1, "com.test.Other": 0 }));

    // Renew: a timestamp, not a change.
    let renewed = c.ok("POST", &node.at(&format!("/renew?service={SVC}")), HELLO).await;
    let renewed = renewed.as_u64().expect("renew answers a number");
    assert!(renewed >= registered_at);
    assert_eq!(
        c.ok("GET", &node.at(&format!("/version?service={SVC}")), "").await,
        json!(1)
    );
    let snapshot = c.ok("GET", &node.at("/snapshot"), "").await;
    assert_eq!(snapshot["TIMESTAMPS"][&key].as_u64(), Some(renewed));
    assert_eq!(snapshot["version"], json!(1));

    // Renews over two services, one of them new: the heartbeat registers it.
    let renews = c
        .ok(
            "POST",
            &node.at(&format!("/renews?services={SVC},com.test.Second")),
            HELLO,
        )
        .await;
    assert!(renews.as_u64().expect("renews answers a number") >= renewed);
    let versions = c
        .ok(
            "GET",
            &node.at(&format!("/versions?services={SVC},com.test.Second")),
            "",
        )
        .await;
    assert_eq!(versions, json!({ SVC: 1, "com.test.Second": 2 }));

    // Unregister: status false, gone from findAll, a change.
    let gone = c.ok("POST", &node.at(&format!("/unreg?service={SVC}")), HELLO).await;
    assert_eq!(gone["status"], json!(false));
    assert_eq!(
        c.ok("GET", &node.at(&format!("/findAll?service={SVC}")), "").await,
        json!([])
    );
    assert_eq!(
        c.ok("GET", &node.at(&format!("/version?service={SVC}")), "").await,
        json!(3)
    );
    // Again: same answer, nothing changes.
    let again = c.ok("POST", &node.at(&format!("/unreg?service={SVC}")), HELLO).await;
    assert_eq!(again, gone);
    assert_eq!(c.ok("GET", &node.at("/snapshot"), "").await["version"], json!(3));

    node.stop().await;
}

#[tokio::test]
async fn writes_accept_get_and_parameters_are_metadata() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let with_env = r#"{"scheme":"http","host":"10.0.0.1","port":9000,"parameters":{"env":"dev"},"unknown":1}"#;
    let answer = c.ok("GET", &node.at("/reg?service=s"), with_env).await;
    assert_eq!(answer["parameters"], json!({"env": "dev"}));
    assert_eq!(answer["context"], json!(""));
    // Same identity, other parameters: replaced in place, a change.
    c.ok(
        "POST",
        &node.at("/reg?service=s"),
        r#"{"scheme":"http","host":"10.0.0.1","port":9000,"parameters":{"env":"prod"}}"#,
    )
    .await;
    let all = c.ok("GET", &node.at("/findAll?service=s"), "").await;
    assert_eq!(all.as_array().map(Vec::len), Some(1));
    assert_eq!(all[0]["parameters"]["env"], json!("prod"));
    assert_eq!(c.ok("GET", &node.at("/version?service=s"), "").await, json!(2));
    // Same parameters again: not a change.
    c.ok(
        "POST",
        &node.at("/reg?service=s"),
        r#"{"scheme":"http","host":"10.0.0.1","port":9000,"parameters":{"env":"prod"}}"#,
    )
    .await;
    assert_eq!(c.ok("GET", &node.at("/version?service=s"), "").await, json!(2));
    node.stop().await;
}

#[tokio::test]
async fn cluster_endpoints_describe_a_single_leader() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    let me = json!({"url": node.url, "status": true, "leader": true, "version": 0});
    assert_eq!(c.ok("GET", &node.at("/info"), "").await, me);
    assert_eq!(c.ok("GET", &node.at("/cluster"), "").await, json!([me.clone()]));
    assert_eq!(c.ok("GET", &node.at("/leader"), "").await, me);
    assert_eq!(
        c.ok("POST", &node.at("/sl"), "").await,
        me,
        "already the leader: nothing changes"
    );
    node.stop().await;
}

/// Each case: method, path and query, body, status, a piece of the message.
const ERRORS: &[(&str, &str, &str, u16, &str)] = &[
    ("POST", "/reg", HELLO, 400, "query parameter 'service' is required"),
    (
        "POST",
        "/reg?service=",
        HELLO,
        400,
        "query parameter 'service' is required",
    ),
    ("POST", "/unreg", HELLO, 400, "'service' is required"),
    ("POST", "/renew", HELLO, 400, "'service' is required"),
    ("GET", "/findAll", "", 400, "'service' is required"),
    ("GET", "/version", "", 400, "'service' is required"),
    ("POST", "/renews", HELLO, 400, "query parameter 'services' is required"),
    ("GET", "/versions", "", 400, "'services' is required"),
    ("POST", "/reg?service=a%20b", HELLO, 400, "must not contain whitespace"),
    ("POST", "/reg?service=a@b", HELLO, 400, "must not contain '@'"),
    ("GET", "/findAll?service=a%2Cb", "", 400, "must not contain ','"),
    ("POST", "/renews?services=s,,t", HELLO, 400, "must not be empty"),
    (
        "POST",
        "/renews?services=s,bad%20name",
        HELLO,
        400,
        "must not contain whitespace",
    ),
    ("GET", "/versions?services=s,a@b", "", 400, "must not contain '@'"),
    (
        "POST",
        "/reg?service=x%FF",
        HELLO,
        400,
        "query parameter 'service' is not valid UTF-8",
    ),
    (
        "POST",
        "/reg?service=x%FE",
        HELLO,
        400,
        "query parameter 'service' is not valid UTF-8",
    ),
    (
        "GET",
        "/findAll?service=caf%C3",
        "",
        400,
        "'service' is not valid UTF-8",
    ),
    (
        "POST",
        "/renews?services=s,x%FF",
        HELLO,
        400,
        "'services' is not valid UTF-8",
    ),
    (
        "GET",
        "/versions?services=%80",
        "",
        400,
        "'services' is not valid UTF-8",
    ),
    ("POST", "/reg?service=s", "", 400, "request body is required"),
    ("POST", "/reg?service=s", "   ", 400, "request body is required"),
    ("POST", "/reg?service=s", "{\"scheme\":", 400, "not valid JSON"),
    ("POST", "/reg?service=s", "[1,2]", 400, "must be a JSON object"),
    (
        "POST",
        "/reg?service=s",
        r#"{"scheme":"http","host":"h","port":70000}"#,
        400,
        "'port' must be an integer from 1 to 65535",
    ),
    (
        "POST",
        "/reg?service=s",
        r#"{"scheme":"http","host":"h","port":0}"#,
        400,
        "'port'",
    ),
    (
        "POST",
        "/reg?service=s",
        r#"{"scheme":"http","port":1}"#,
        400,
        "'host' is required",
    ),
    (
        "POST",
        "/reg?service=s",
        r#"{"scheme":"http","host":"a/b","port":1}"#,
        400,
        "'host'",
    ),
    (
        "POST",
        "/reg?service=s",
        r#"{"scheme":"9p","host":"h","port":1}"#,
        400,
        "'scheme' must start with a letter",
    ),
    (
        "POST",
        "/reg?service=s",
        r#"{"scheme":"http","host":"h","port":1,"context":"a b"}"#,
        400,
        "'context'",
    ),
    (
        "POST",
        "/reg?service=s",
        r#"{"scheme":"http","host":"h","port":1,"parameters":{"w":1}}"#,
        400,
        "'parameters.w' has the wrong type",
    ),
    (
        "POST",
        "/unreg?service=s",
        r#"{"scheme":"http","host":"h"}"#,
        400,
        "'port' is required",
    ),
    ("POST", "/renew?service=s", "nonsense", 400, "not valid JSON"),
    ("GET", "/nope", "", 404, "no endpoint"),
    ("GET", "/", "", 404, "no endpoint"),
    ("PUT", "/reg?service=s", HELLO, 405, "method PUT is not allowed"),
    ("DELETE", "/findAll?service=s", "", 405, "method DELETE is not allowed"),
];

#[tokio::test]
async fn every_error_is_a_json_answer_and_changes_nothing() {
    let node = Node::start(Config::default()).await;
    let c = Client::new();
    c.ok("POST", &node.at("/reg?service=s"), &instance("10.0.0.1", 1)).await;
    let before = c.ok("GET", &node.at("/snapshot"), "").await;

    for (method, path, body, status, message) in ERRORS {
        let (got, error) = c.call(method, &node.at(path), body).await;
        assert_eq!(got, *status, "{method} {path} {body}: {error}");
        assert_eq!(error["status"], json!(status), "{method} {path}");
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{error}");
        assert_eq!(error["path"], json!(path.split('?').next().unwrap()), "{method} {path}");
        let text = error["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "{method} {path} {body}: expected {message:?} in {text:?}"
        );
    }
    let allow = c.raw("PUT", &node.at("/reg?service=s"), HELLO).await;
    assert_eq!(allow.status, 405);

    assert_eq!(
        c.ok("GET", &node.at("/snapshot"), "").await,
        before,
        "no rejected request changed anything"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let node = Node::start(Config {
        max_body: 1024,
        ..Config::default()
    })
    .await;
    let c = Client::new();
    let big = format!(
        r#"{{"scheme":"http","host":"h","port":1,"parameters":{{"k":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let (status, error) = c.post(&node.at("/reg?service=s"), &big).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"], json!("Payload Too Large"));
    assert!(error["message"].as_str().unwrap_or_default().contains("1024 bytes"));

    // Without a Content-Length (chunked), the limit is enforced while reading.
    let answer = raw_chunked(node.addr, "/reg?service=s", big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A body just under the limit is fine; nothing of the refused ones was stored.
    assert_eq!(c.ok("GET", &node.at("/findAll?service=s"), "").await, json!([]));
    c.ok("POST", &node.at("/reg?service=s"), &instance("h", 1)).await;
    assert_eq!(c.ok("GET", &node.at("/version?service=s"), "").await, json!(1));
    node.stop().await;
}

async fn raw_chunked(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(256) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        // The server may answer and close before the whole body is sent.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_instance_that_stops_renewing_is_evicted() {
    let node = Node::start(Config {
        ttl: Duration::from_millis(300),
        evict_interval: Duration::from_millis(50),
        ..Config::default()
    })
    .await;
    let c = Client::new();
    c.ok("POST", &node.at("/reg?service=s"), &instance("10.0.0.1", 1)).await;
    eventually("the silent instance is evicted", Duration::from_secs(30), || async {
        c.ok("GET", &node.at("/findAll?service=s"), "").await == json!([])
    })
    .await;
    assert_eq!(
        c.ok("GET", &node.at("/version?service=s"), "").await,
        json!(2),
        "eviction is a change"
    );
    node.stop().await;
}

#[tokio::test]
async fn many_services_and_instances_stay_consistent_under_concurrent_clients() {
    let node = Node::start(Config::default()).await;
    let url = node.url.clone();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let url = url.clone();
            tokio::spawn(async move {
                let c = Client::new();
                for i in 0..25u16 {
                    c.ok(
                        "POST",
                        &format!("{url}/reg?service=svc{}", i % 5),
                        &instance(&format!("10.0.{w}.1"), 1000 + i),
                    )
                    .await;
                    c.ok(
                        "POST",
                        &format!("{url}/renew?service=svc{}", i % 5),
                        &instance(&format!("10.0.{w}.1"), 1000 + i),
                    )
                    .await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let c = Client::new();
    let snapshot: Value = c.ok("GET", &node.at("/snapshot"), "").await;
    assert_eq!(snapshot["version"], json!(200));
    let total: usize = (0..5)
        .map(|s| snapshot["REGISTRY"][format!("svc{s}")].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 200);
    node.stop().await;
}
