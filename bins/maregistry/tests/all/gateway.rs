//! The gateway and the protocol facades over it (docs/architecture.md, "Adding a
//! protocol"): every protocol's writes on a follower reach the leader as the gateway's ops
//! (`/relay`), and `--protocols` serves a subset, the others' paths answering the JSON 404.

use std::time::Duration;

use maregistry::{Config, Protocol};
use serde_json::Value;
use test_support::{agreed_leader, eventually, free_listener, instance, start_cluster, Client, Node};

const LIMIT: Duration = Duration::from_secs(60);

/// A node's count of answered requests to `endpoint` with `code` (a class, `2xx`).
async fn counted(c: &Client, node: &Node, endpoint: &str, code: &str) -> u64 {
    let text = String::from_utf8_lossy(&c.raw("GET", &node.at("/metrics"), "").await.body).into_owned();
    let series = format!("maregistry_http_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The hosts of `service` on `node`, as the seed's API lists them.
async fn hosts(c: &Client, node: &Node, service: &str) -> Vec<String> {
    let found = c.ok("GET", &node.at(&format!("/findAll?service={service}")), "").await;
    let mut hosts: Vec<String> = found
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|i| i["host"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    hosts.sort();
    hosts
}

#[tokio::test]
async fn every_protocols_writes_on_a_follower_reach_the_leader_as_ops() {
    let nodes = start_cluster(2, |c| c);
    let c = Client::new();
    let leader_url = agreed_leader(&c, &[nodes[0].url.as_str(), nodes[1].url.as_str()]).await;
    let (leader, follower) = if nodes[0].url == leader_url {
        (&nodes[0], &nodes[1])
    } else {
        (&nodes[1], &nodes[0])
    };
    let relayed_before = counted(&c, leader, "/relay", "2xx").await;

    // The seed's API, Nacos v1 and Eureka, each on the follower.
    c.ok("POST", &follower.at("/reg?service=relayed"), &instance("10.9.0.1", 80))
        .await;
    let nacos = c
        .raw(
            "POST",
            &follower.at("/nacos/v1/ns/instance?serviceName=relayed&ip=10.9.0.2&port=80"),
            "",
        )
        .await;
    assert_eq!((nacos.status, &nacos.body[..]), (200, &b"ok"[..]));
    let eureka = r#"{"instance":{"instanceId":"e1","hostName":"10.9.0.3","app":"RELAYED_E","ipAddr":"10.9.0.3","status":"UP","port":{"$":80,"@enabled":"true"}}}"#;
    assert_eq!(
        c.raw("POST", &follower.at("/eureka/apps/RELAYED_E"), eureka)
            .await
            .status,
        204
    );
    // A heartbeat: renewed on the leader, answered with its clock.
    let renewed = c
        .ok(
            "POST",
            &follower.at("/renew?service=relayed"),
            &instance("10.9.0.1", 80),
        )
        .await;
    assert!(renewed.as_u64().is_some_and(|ms| ms > 0), "{renewed}");
    // A Nacos beat (no body) of an unknown instance is not found, and registers nothing.
    let beat = c
        .raw(
            "PUT",
            &follower.at("/nacos/v1/ns/instance/beat?serviceName=relayed&ip=10.9.0.9&port=80"),
            "",
        )
        .await;
    let beat: Value = serde_json::from_slice(&beat.body).expect("a beat answer");
    assert_eq!(beat["code"], 20404);

    assert_eq!(hosts(&c, leader, "relayed").await, ["10.9.0.1", "10.9.0.2"]);
    assert_eq!(hosts(&c, leader, "RELAYED_E").await, ["10.9.0.3"]);
    assert!(
        counted(&c, leader, "/relay", "2xx").await >= relayed_before + 5,
        "each write reached the leader's /relay"
    );
    eventually("the follower holds the writes", LIMIT, || async {
        hosts(&c, follower, "relayed").await.len() == 2
    })
    .await;
    // A batch on the follower: all of it, one relay, the answers in order.
    let batch = format!(
        r#"[{{"op":"unreg","service":"relayed","instance":{}}},{{"op":"renew","service":"relayed","instance":{}}}]"#,
        instance("10.9.0.1", 80),
        instance("10.9.0.4", 80)
    );
    let answers = c.ok("POST", &follower.at("/batch"), &batch).await;
    assert_eq!(answers[0]["status"], false);
    assert!(answers[1].as_u64().is_some(), "{answers}");
    assert_eq!(hosts(&c, leader, "relayed").await, ["10.9.0.2", "10.9.0.4"]);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_left_out_protocol_answers_the_json_404_and_the_rest_is_served() {
    let only_seed = Node::start_on(
        free_listener(),
        Config {
            protocols: vec![Protocol::Seed],
            ..Config::default()
        },
    );
    let no_seed = Node::start_on(
        free_listener(),
        Config {
            protocols: vec![Protocol::Nacos, Protocol::Eureka],
            ..Config::default()
        },
    );
    let c = Client::new();
    let not_served = |node: &Node, path: &str| {
        let url = node.at(path);
        let c = &c;
        async move {
            let answer = c.raw("GET", &url, "").await;
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            answer.status == 404 && body["message"] == "no endpoint at this path"
        }
    };
    for path in [
        "/nacos/v1/ns/instance/list?serviceName=x",
        "/eureka/apps",
        "/eureka/v2/apps/X",
    ] {
        assert!(
            not_served(&only_seed, path).await,
            "{path} is not served without its protocol"
        );
    }
    for path in ["/findAll?service=x", "/version?service=x", "/versions?services=x"] {
        assert!(
            not_served(&no_seed, path).await,
            "{path} is not served without the seed's API"
        );
    }
    assert_eq!(
        c.raw("POST", &no_seed.at("/reg?service=x"), &instance("10.9.1.1", 80))
            .await
            .status,
        404
    );
    // What each serves.
    c.ok("GET", &only_seed.at("/findAll?service=x"), "").await;
    let nacos = c
        .raw(
            "POST",
            &no_seed.at("/nacos/v1/ns/instance?serviceName=kept&ip=10.9.1.2&port=80"),
            "",
        )
        .await;
    assert_eq!(nacos.status, 200);
    assert_eq!(c.raw("GET", &no_seed.at("/eureka/apps"), "").await.status, 200);
    // The operators' endpoints and the console are always there.
    for node in [&only_seed, &no_seed] {
        for path in ["/health", "/info", "/metrics", "/services", "/ui"] {
            assert_eq!(c.raw("GET", &node.at(path), "").await.status, 200, "{path}");
        }
    }
    let services = c.ok("GET", &no_seed.at("/services"), "").await;
    assert!(services.to_string().contains("kept"), "{services}");
    only_seed.stop().await;
    no_seed.stop().await;
}
