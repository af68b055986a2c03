//! The Nacos config service over gRPC and across a cluster (docs/spec.md §8): the raw
//! protocol (query, publish with `casMd5`, remove, batch listen, the pushes), a publish
//! through a raft follower pushed to a listener on another node and waking a long poll
//! on a third, and every config kept across `kill -9` of every node.

use maregistry::Config;
use registry_core::md5_hex;
use serde_json::{json, Value};
use test_support::{agreed_leader, eventually, start_grpc, start_raft_grpc, Client, LIMIT};

use crate::nacos2::{grpc_port, Raw};
use crate::nacos_config::{get, header, long_poll, publish, text};
use crate::raft::Cluster;

async fn listening(raw: &mut Raw, contexts: Value) -> Value {
    let (kind, body) = raw
        .call(
            "ConfigBatchListenRequest",
            json!({"listen": true, "configListenContexts": contexts}),
        )
        .await;
    assert_eq!(kind, "ConfigChangeBatchListenResponse", "{body}");
    body
}

/// The next push on the stream, a `ConfigChangeNotifyRequest`, acknowledged as the Python
/// client does.
async fn notified(raw: &mut Raw) -> Value {
    loop {
        let (kind, body) = raw.next_pushed().await;
        if kind == "ConfigChangeNotifyRequest" {
            let id = body["requestId"].as_str().unwrap_or("").to_owned();
            raw.answer_on_stream("NotifySubscriberResponse", &id).await;
            return body;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_requests_and_pushes_as_clients_speak_them() {
    let node = start_grpc(Config::default());
    let c = Client::new();
    let mut raw = Raw::connect(grpc_port(&node)).await;
    raw.setup().await;
    eventually("the connection is set up", LIMIT, || raw.is_registered()).await;

    // A missing config: its own response type, code 300, lastModified and beta present.
    let (kind, body) = raw
        .call(
            "ConfigQueryRequest",
            json!({"dataId":"g.yaml","group":"G","tenant":"","requestId":"1"}),
        )
        .await;
    assert_eq!(kind, "ConfigQueryResponse");
    assert_eq!(
        (body["errorCode"].as_i64(), body["lastModified"].as_i64()),
        (Some(300), Some(0))
    );
    assert_eq!(body["beta"], false);
    assert!(body.get("content").is_none() && body.get("tag").is_none(), "{body}");

    // Publish as the Python client does: every addition key, blank ones meaning absent.
    let addition = json!({"type":"yaml","tag":"","appName":"","src_user":"","betaIps":"","encryptedDataKey":"",
        "config_tags":"","desc":"","use":"","effect":"","schema":""});
    let published =
        json!({"dataId":"g.yaml","group":"G","tenant":"","content":"g: 1 ✓","casMd5":"","additionMap":addition});
    let (kind, body) = raw.call("ConfigPublishRequest", published).await;
    assert_eq!(
        (kind.as_str(), body["resultCode"].as_i64()),
        ("ConfigPublishResponse", Some(200)),
        "{body}"
    );
    let (_, body) = raw
        .call("ConfigQueryRequest", json!({"dataId":"g.yaml","group":"G","tenant":""}))
        .await;
    assert_eq!(
        (body["content"].as_str(), body["contentType"].as_str()),
        (Some("g: 1 ✓"), Some("yaml"))
    );
    assert_eq!(body["md5"], md5_hex("g: 1 ✓"));
    assert!(body["lastModified"].as_u64().is_some_and(|t| t > 0), "{body}");
    assert!(body.get("tag").is_none(), "the Python client reads tag as a boolean");
    let v1 = get(&c, &node.url, &[("dataId", "g.yaml"), ("group", "G")]).await;
    assert_eq!(text(&v1), "g: 1 ✓", "gRPC and v1 share one store");

    // CAS refused and accepted.
    let cas = |md5: &str, content: &str| json!({"dataId":"g.yaml","group":"G","content":content,"casMd5":md5,"additionMap":{}});
    let (_, body) = raw.call("ConfigPublishRequest", cas(&md5_hex("stale"), "g: 2")).await;
    assert_eq!(
        (body["resultCode"].as_i64(), body["success"].as_bool()),
        (Some(500), Some(false)),
        "{body}"
    );
    let (_, body) = raw.call("ConfigPublishRequest", cas(&md5_hex("g: 1 ✓"), "g: 2")).await;
    assert_eq!(body["resultCode"], 200, "{body}");

    // Listen: a stale md5 is answered at once; a change made over HTTP is pushed.
    let body = listening(
        &mut raw,
        json!([{"dataId":"g.yaml","group":"G","tenant":"","md5":md5_hex("g: 1 ✓")},
               {"dataId":"n.yaml","group":"G","tenant":"ns-1","md5":""}]),
    )
    .await;
    assert_eq!(
        body["changedConfigs"],
        json!([{"dataId":"g.yaml","group":"G","tenant":""}])
    );
    assert_eq!(notified(&mut raw).await["dataId"], "g.yaml", "the change is pushed too");
    publish(
        &c,
        &node.url,
        &[
            ("dataId", "n.yaml"),
            ("group", "G"),
            ("tenant", "ns-1"),
            ("content", "n"),
        ],
        &[],
    )
    .await;
    let pushed = notified(&mut raw).await;
    assert_eq!(
        (
            pushed["dataId"].as_str(),
            pushed["group"].as_str(),
            pushed["tenant"].as_str()
        ),
        (Some("n.yaml"), Some("G"), Some("ns-1"))
    );
    assert_eq!(pushed["module"], "config");
    publish(
        &c,
        &node.url,
        &[("dataId", "g.yaml"), ("group", "G"), ("content", "g: 3")],
        &[],
    )
    .await;
    let pushed = notified(&mut raw).await;
    assert_eq!(pushed["dataId"], "g.yaml");
    assert!(
        pushed.get("tenant").is_none(),
        "listened with a blank tenant: none is pushed"
    );
    // A removal is pushed too, and the listen outlives it.
    let (kind, body) = raw
        .call(
            "ConfigRemoveRequest",
            json!({"dataId":"g.yaml","group":"G","tenant":""}),
        )
        .await;
    assert_eq!(
        (kind.as_str(), body["resultCode"].as_i64()),
        ("ConfigRemoveResponse", Some(200))
    );
    assert_eq!(notified(&mut raw).await["dataId"], "g.yaml");
    publish(
        &c,
        &node.url,
        &[("dataId", "g.yaml"), ("group", "G"), ("content", "back")],
        &[],
    )
    .await;
    assert_eq!(
        notified(&mut raw).await["dataId"],
        "g.yaml",
        "listening across a delete and re-create"
    );

    // Unlisten: no more pushes.
    let (_, body) = raw
        .call(
            "ConfigBatchListenRequest",
            json!({"listen": false, "configListenContexts":[{"dataId":"g.yaml","group":"G","tenant":"","md5":""}]}),
        )
        .await;
    assert_eq!(body["changedConfigs"], json!([]));
    publish(
        &c,
        &node.url,
        &[("dataId", "g.yaml"), ("group", "G"), ("content", "quiet")],
        &[],
    )
    .await;
    assert!(raw.nothing_pushed_within(std::time::Duration::from_millis(300)).await);

    // Refusals in the request's own type: bad names, beta, tag, blank content.
    for (kind, body) in [
        (
            "ConfigPublishRequest",
            json!({"dataId":"a b","group":"G","content":"x"}),
        ),
        (
            "ConfigPublishRequest",
            json!({"dataId":"a","group":"G","content":"x","additionMap":{"betaIps":"10.0.0.1"}}),
        ),
        ("ConfigPublishRequest", json!({"dataId":"a","group":"G","content":"  "})),
        ("ConfigQueryRequest", json!({"dataId":"a","group":"G","tag":"t"})),
        (
            "ConfigBatchListenRequest",
            json!({"listen":true,"configListenContexts":[{"dataId":"","group":"G"}]}),
        ),
    ] {
        let (answered, refused) = raw.call(kind, body.clone()).await;
        assert_eq!(
            answered,
            kind.replace("Request", "Response")
                .replace("ConfigBatchListenResponse", "ConfigChangeBatchListenResponse")
        );
        assert_eq!(refused["errorCode"], 400, "{body}: {refused}");
    }
    assert_eq!(get(&c, &node.url, &[("dataId", "a"), ("group", "G")]).await.status, 404);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_through_a_raft_follower_reaches_listeners_on_every_node() {
    let data = tempfile::tempdir().expect("a temporary dir");
    let nodes = start_raft_grpc(data.path(), 3, |config| config);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let followers: Vec<usize> = (0..3).filter(|&i| nodes[i].url != leader).collect();
    let (writer, listener) = (&nodes[followers[0]], &nodes[followers[1]]);
    let third = nodes.iter().find(|n| n.url == leader).expect("the leader");

    let mut raw = Raw::connect(grpc_port(listener)).await;
    raw.setup().await;
    eventually("the connection is set up", LIMIT, || raw.is_registered()).await;
    listening(&mut raw, json!([{"dataId":"shared","group":"G","tenant":"","md5":""}])).await;
    let poll = {
        let (c, url) = (c.clone(), third.url.clone());
        tokio::spawn(async move {
            long_poll(&c, &url, "shared\u{2}G\u{2}\u{1}", &[("Long-Pulling-Timeout", "60000")]).await
        })
    };
    eventually("the long poll waits", LIMIT, || async {
        text(&c.raw("GET", &third.at("/metrics"), "").await).contains("maregistry_config_long_polls 1")
    })
    .await;

    let published = publish(
        &c,
        &writer.url,
        &[("dataId", "shared"), ("group", "G"), ("content", "from a follower")],
        &[],
    )
    .await;
    assert_eq!(published.status, 200, "{}", text(&published));
    assert_eq!(
        notified(&mut raw).await["dataId"],
        "shared",
        "pushed by the node holding the listener"
    );
    let answer = tokio::time::timeout(LIMIT, poll)
        .await
        .expect("woken")
        .expect("no panic");
    assert_eq!(text(&answer), "shared%02G%01");
    for node in &nodes {
        let read = get(&c, &node.url, &[("dataId", "shared"), ("group", "G")]).await;
        assert_eq!(header(&read, "content-md5"), md5_hex("from a follower"), "{}", node.url);
    }
    // A gRPC publish on the listener's own node lands in the same store.
    let (_, body) = raw
        .call(
            "ConfigPublishRequest",
            json!({"dataId":"shared","group":"G","content":"over gRPC","additionMap":{}}),
        )
        .await;
    assert_eq!(body["resultCode"], 200, "{body}");
    assert_eq!(notified(&mut raw).await["dataId"], "shared");
    eventually("every node holds the gRPC publish", LIMIT, || async {
        let mut all = true;
        for node in &nodes {
            all &= text(&get(&c, &node.url, &[("dataId", "shared"), ("group", "G")]).await) == "over gRPC";
        }
        all
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_config_survives_kill_9_of_every_node() {
    let mut cluster = Cluster::start(3, &[]);
    let c = Client::new();
    let urls: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let leader = agreed_leader(&c, &urls).await;
    let follower = cluster.urls.iter().find(|u| **u != leader).expect("a follower").clone();
    let mut written = Vec::new();
    for i in 0..30 {
        let (data_id, content) = (format!("cfg-{i}"), format!("value {i} ✓ {}", "x".repeat(i * 37)));
        let via = if i % 2 == 0 { &leader } else { &follower };
        let answer = publish(
            &c,
            via,
            &[
                ("dataId", &data_id),
                ("group", "G"),
                ("tenant", "ns"),
                ("content", &content),
            ],
            &[],
        )
        .await;
        assert_eq!(answer.status, 200, "{}", text(&answer));
        written.push((data_id, md5_hex(&content)));
    }
    for node in &mut cluster.nodes {
        node.kill9();
    }
    for node in &mut cluster.nodes {
        node.restart();
    }
    let urls: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    agreed_leader(&c, &urls).await;
    for url in &cluster.urls {
        for (data_id, md5) in &written {
            let read = get(&c, url, &[("dataId", data_id), ("group", "G"), ("tenant", "ns")]).await;
            assert_eq!(
                (read.status, header(&read, "content-md5")),
                (200, md5.as_str()),
                "{url} {data_id}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_mode_followers_copy_the_leaders_configs_and_wake_their_listeners() {
    let nodes = test_support::start_cluster(3, |config| config);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let followers: Vec<&test_support::Node> = nodes.iter().filter(|n| n.url != leader).collect();
    publish(&c, &leader, &[("dataId", "early"), ("content", "before the poll")], &[]).await;
    let poll = {
        let (c, url) = (c.clone(), followers[1].url.clone());
        tokio::spawn(async move {
            long_poll(
                &c,
                &url,
                "later\u{2}DEFAULT_GROUP\u{2}\u{1}",
                &[("Long-Pulling-Timeout", "60000")],
            )
            .await
        })
    };
    eventually("the long poll waits", LIMIT, || async {
        text(&c.raw("GET", &followers[1].at("/metrics"), "").await).contains("maregistry_config_long_polls 1")
    })
    .await;
    // Through a follower, which relays it to the leader; the other follower's poll wakes.
    let published = publish(&c, &followers[0].url, &[("dataId", "later"), ("content", "v ✓")], &[]).await;
    assert_eq!(published.status, 200, "{}", text(&published));
    let answer = tokio::time::timeout(LIMIT, poll)
        .await
        .expect("woken")
        .expect("no panic");
    assert_eq!(text(&answer), "later%02DEFAULT_GROUP%01");
    for node in &nodes {
        for (data_id, content) in [("early", "before the poll"), ("later", "v ✓")] {
            eventually("every node holds every config", LIMIT, || async {
                header(&get(&c, &node.url, &[("dataId", data_id)]).await, "content-md5") == md5_hex(content)
            })
            .await;
        }
    }
    // A removal reaches them too.
    let removed = c
        .send("DELETE", &format!("{leader}/nacos/v1/cs/configs?dataId=early"), "", &[])
        .await;
    assert_eq!(removed.status, 200);
    for node in &nodes {
        eventually("the removal is copied", LIMIT, || async {
            get(&c, &node.url, &[("dataId", "early")]).await.status == 404
        })
        .await;
    }
    for node in nodes {
        node.stop().await;
    }
}
