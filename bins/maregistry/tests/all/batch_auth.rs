//! `POST /batch` and the cluster and client tokens, against real nodes over HTTP.

use std::time::Duration;

use maregistry::{Config, Mode, RaftMode};
use registry_api::Auth;
use registry_http::Token;
use serde_json::{json, Value};
use test_support::{
    agreed_leader, all_hold, batch_op, eventually, instance, raft_mode, start_cluster, start_raft, Client, Node, LIMIT,
};

fn ports(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["port"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_batch_applies_in_order_and_an_invalid_one_changes_nothing() {
    let node = Node::start(Config {
        max_batch: 6,
        ..Config::default()
    })
    .await;
    let c = Client::new();
    let batch = json!([
        batch_op("reg", "a", "10.0.0.1", 1),
        batch_op("reg", "a", "10.0.0.1", 2),
        batch_op("unreg", "a", "10.0.0.1", 1),
        batch_op("renew", "b", "10.0.0.1", 3),
        batch_op("renew", "a", "10.0.0.1", 2),
        batch_op("renew", "a", "10.0.0.1", 1),
    ]);
    let answers = c.ok("POST", &node.at("/batch"), &batch.to_string()).await;
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 6, "one answer per operation");
    assert_eq!(
        (answers[0]["port"].clone(), answers[0]["status"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(
        (answers[2]["port"].clone(), answers[2]["status"].clone()),
        (json!(1), json!(false))
    );
    assert!(
        answers[3].is_u64() && answers[4] == answers[3],
        "a renew answers the renewal time"
    );
    // The renew of 1 after its unregister registers it again, as /renew would.
    assert_eq!(ports(&c.ok("GET", &node.at("/findAll?service=a"), "").await), [2, 1]);
    assert_eq!(ports(&c.ok("GET", &node.at("/findAll?service=b"), "").await), [3]);
    let before = c.ok("GET", &node.at("/snapshot"), "").await;

    let mut invalid = vec![
        batch_op("reg", "a", "10.0.0.1", 7),
        batch_op("unreg", "a", "10.0.0.1", 2),
    ];
    invalid.push(json!({"op": "reg", "service": "a", "instance": {"scheme": "http", "port": 1}}));
    for (body, says) in [
        (json!(invalid).to_string(), "operation 2"),
        (json!([batch_op("delete", "a", "h", 1)]).to_string(), "operation 0"),
        (json!([batch_op("reg", "bad name", "h", 1)]).to_string(), "operation 0"),
        (
            json!([{"op": "reg", "service": "a", "instance": {}, "extra": 1}]).to_string(),
            "operation 0",
        ),
        (
            json!((1..=7).map(|p| batch_op("reg", "a", "h", p)).collect::<Vec<_>>()).to_string(),
            "at most 6",
        ),
        ("[]".to_owned(), "at least one"),
        ("{}".to_owned(), "JSON array"),
        (String::new(), "required"),
    ] {
        let (status, error) = c.post(&node.at("/batch"), &body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert!(error["message"].as_str().unwrap().contains(says), "{body}: {error}");
    }
    assert_eq!(c.ok("GET", &node.at("/snapshot"), "").await, before, "nothing changed");

    // A renew that registers takes its place in the order, after the batch's earlier writes.
    let batch = json!([
        batch_op("reg", "c", "10.0.0.1", 4),
        batch_op("renew", "c", "10.0.0.1", 5)
    ]);
    c.ok("POST", &node.at("/batch"), &batch.to_string()).await;
    assert_eq!(ports(&c.ok("GET", &node.at("/findAll?service=c"), "").await), [4, 5]);
    node.stop().await;
}

#[tokio::test]
async fn in_raft_mode_a_batch_is_one_log_entry_and_works_through_a_follower() {
    let data = tempfile::tempdir().unwrap();
    let nodes = start_raft(data.path(), 3, |c| c);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let follower = urls.iter().find(|u| **u != leader).unwrap();
    let applied = |info: Value| info["applied"].as_u64().expect("an applied index");

    let batch: Vec<Value> = (1..=5).map(|p| batch_op("reg", "svc", "10.0.0.1", p)).collect();
    let before = applied(c.ok("GET", &format!("{leader}/info"), "").await);
    c.ok("POST", &format!("{leader}/batch"), &json!(batch).to_string())
        .await;
    let after = applied(c.ok("GET", &format!("{leader}/info"), "").await);
    assert_eq!(after - before, 1, "five registrations, one log entry");

    let batch: Vec<Value> = (6..=8).map(|p| batch_op("reg", "svc", "10.0.0.1", p)).collect();
    c.ok("POST", &format!("{follower}/batch"), &json!(batch).to_string())
        .await;
    all_hold(&c, &urls, &[1, 2, 3, 4, 5, 6, 7, 8]).await;
    for node in nodes {
        node.stop().await;
    }
}

fn tokens(cluster: &str, client: Option<&str>, reads: bool) -> Auth {
    Auth {
        cluster: Token::new(cluster),
        client: client.and_then(Token::new),
        client_reads: reads,
        guard: None,
    }
}

/// Status and `WWW-Authenticate` of a request with `authorization` (if any).
async fn status_with(c: &Client, method: &str, url: &str, body: &str, authorization: Option<&str>) -> u16 {
    let mut headers = vec![];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    let answer = c.send(method, url, body, &headers).await;
    if answer.status == 401 {
        assert_eq!(answer.header("www-authenticate"), Some("Bearer realm=\"maregistry\""));
        let error: Value = serde_json::from_slice(&answer.body).expect("a JSON error");
        assert_eq!(error["status"], json!(401));
    }
    answer.status
}

/// Every request of `calls` is refused (401) without the cluster token or with another
/// one, and not refused with it.
async fn needs_the_cluster_token(c: &Client, calls: &[(&str, String, String)]) {
    for (method, url, body) in calls {
        assert_eq!(
            status_with(c, method, url, body, None).await,
            401,
            "{url} without a token"
        );
        for wrong in [
            "Bearer wrong",
            "Bearer client-secret",
            "cluster-secret",
            "Basic cluster-secret",
        ] {
            assert_eq!(
                status_with(c, method, url, body, Some(wrong)).await,
                401,
                "{url} with {wrong}"
            );
        }
        let right = status_with(c, method, url, body, Some("Bearer cluster-secret")).await;
        assert_ne!(right, 401, "{url} with the cluster token");
    }
}

#[tokio::test]
async fn every_protected_endpoint_needs_its_token() {
    let node = Node::start(Config {
        auth: tokens("cluster-secret", Some("client-secret"), false),
        ..Config::default()
    })
    .await;
    let c = Client::new();
    let body = instance("10.0.0.1", 1);
    let node_only: Vec<(&str, String, String)> = vec![
        ("GET", node.at("/snapshot?since=0&wait=0s"), String::new()),
        ("POST", node.at("/sl"), String::new()),
        ("POST", node.at("/cluster/join?url=http://127.0.0.1:9"), String::new()),
        ("POST", node.at("/cluster/leave?url=http://127.0.0.1:9"), String::new()),
    ];
    needs_the_cluster_token(&c, &node_only).await;
    // Raft's own calls are the raft mode's routes: a snapshot node has none of them.
    let (status, _) = c.post(&node.at("/raft/append"), "x").await;
    assert_eq!(status, 404);
    let data = tempfile::tempdir().unwrap();
    let raft = Node::start(Config {
        auth: tokens("cluster-secret", Some("client-secret"), false),
        mode: Mode::raft(data.path().join("raft")),
        ..Config::default()
    })
    .await;
    let raft_calls: Vec<(&str, String, String)> = vec![
        ("POST", raft.at("/raft/append"), "x".to_owned()),
        ("POST", raft.at("/raft/vote"), "x".to_owned()),
        ("POST", raft.at("/raft/snapshot"), "x".to_owned()),
    ];
    needs_the_cluster_token(&c, &raft_calls).await;
    raft.stop().await;
    // A forwarded write is node-only too: the forwarding header opens nothing.
    let forwarded = c
        .raw_with_header("POST", &node.at("/reg?service=svc"), &body, "x-maregistry-forwarded")
        .await;
    assert_eq!(forwarded.status, 401);

    // Client writes need the client token (the cluster token also does); reads stay open.
    for path in [
        "/reg?service=svc",
        "/renew?service=svc",
        "/renews?services=svc",
        "/unreg?service=svc",
    ] {
        assert_eq!(
            status_with(&c, "POST", &node.at(path), &body, None).await,
            401,
            "{path}"
        );
        assert_eq!(
            status_with(&c, "POST", &node.at(path), &body, Some("Bearer nope")).await,
            401
        );
        assert_eq!(
            status_with(&c, "POST", &node.at(path), &body, Some("Bearer client-secret")).await,
            200
        );
        assert_eq!(
            status_with(&c, "POST", &node.at(path), &body, Some("Bearer cluster-secret")).await,
            200
        );
    }
    let batch = json!([batch_op("reg", "svc", "10.0.0.1", 1)]).to_string();
    assert_eq!(status_with(&c, "POST", &node.at("/batch"), &batch, None).await, 401);
    for path in [
        "/findAll?service=svc",
        "/version?service=svc",
        "/versions?services=svc",
        "/snapshot",
        "/info",
    ] {
        assert_eq!(
            status_with(&c, "GET", &node.at(path), "", None).await,
            200,
            "{path} is open"
        );
    }
    node.stop().await;

    let node = Node::start(Config {
        auth: tokens("cluster-secret", Some("client-secret"), true),
        ..Config::default()
    })
    .await;
    for path in ["/findAll?service=svc", "/versions?services=svc", "/snapshot", "/info"] {
        assert_eq!(status_with(&c, "GET", &node.at(path), "", None).await, 401, "{path}");
        assert_eq!(
            status_with(&c, "GET", &node.at(path), "", Some("Bearer client-secret")).await,
            200
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn a_snapshot_cluster_with_a_token_works_and_a_node_with_the_wrong_token_cannot_sync_or_forward() {
    let nodes = start_cluster(3, |c| Config {
        auth: tokens("right", None, false),
        ..c
    });
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let follower = *urls.iter().find(|u| **u != leader).unwrap();
    c.ok("POST", &format!("{leader}/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;
    c.ok("POST", &format!("{follower}/reg?service=svc"), &instance("10.0.0.1", 2))
        .await;
    all_hold(&c, &urls, &[1, 2]).await;

    // A node whose token is wrong sees the leader (/info is a read) but gets nothing.
    let mut list: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    let listener = test_support::free_listener();
    let stranger_url = format!("http://{}", listener.local_addr().unwrap());
    list.push(stranger_url.clone());
    let stranger = Node::start_on(
        listener,
        Config {
            auth: tokens("wrong", None, false),
            ..test_support::cluster_config(&list)
        },
    );
    eventually("the stranger sees the leader", LIMIT, || async {
        c.leader_of(&stranger).await.as_deref() == Some(leader.as_str())
    })
    .await;
    let (status, error) = c.post(&stranger.at("/reg?service=svc"), &instance("10.0.0.1", 3)).await;
    assert_eq!(status, 401, "its forwarded write is refused: {error}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        c.ok("GET", &stranger.at("/findAll?service=svc"), "").await,
        json!([]),
        "it synced nothing"
    );
    assert_eq!(
        ports(&c.ok("GET", &format!("{leader}/findAll?service=svc"), "").await),
        [1, 2]
    );
    stranger.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_raft_cluster_with_a_token_works_end_to_end() {
    let data = tempfile::tempdir().unwrap();
    let nodes = start_raft(data.path(), 3, |c| Config {
        auth: tokens("raft-secret", None, false),
        ..c
    });
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    let follower = *urls.iter().find(|u| **u != leader).unwrap();
    c.ok("POST", &format!("{follower}/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;
    c.ok("POST", &format!("{leader}/reg?service=svc"), &instance("10.0.0.1", 2))
        .await;
    all_hold(&c, &urls, &[1, 2]).await;
    let consistent = c
        .ok("GET", &format!("{follower}/findAll?service=svc&consistent=true"), "")
        .await;
    assert_eq!(ports(&consistent), [1, 2], "a consistent read relayed with the token");
    assert_eq!(
        status_with(
            &c,
            "POST",
            &format!("{leader}/cluster/join?url=http://127.0.0.1:9"),
            "",
            Some("Bearer nope")
        )
        .await,
        401,
        "a join with the wrong token is refused"
    );
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_raft_node_with_the_wrong_token_cannot_join() {
    let data = tempfile::tempdir().unwrap();
    let secured = |c: Config| Config {
        auth: tokens("raft-secret", None, false),
        mode: match c.mode {
            Mode::Raft(raft) => Mode::Raft(RaftMode {
                install_timeout: Duration::from_secs(3),
                ..raft
            }),
            snapshot => snapshot,
        },
        ..c
    };
    let nodes = start_raft(data.path(), 3, secured);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = agreed_leader(&c, &urls).await;
    c.ok("POST", &format!("{leader}/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;

    // An empty node waiting to be added, with another token: the leader's log never
    // reaches it, so the join gives up after the install timeout.
    let listener = test_support::free_listener();
    let stranger_url = format!("http://{}", listener.local_addr().unwrap());
    let stranger = Node::start_on(
        listener,
        Config {
            mode: Mode::Raft(RaftMode {
                join: true,
                ..raft_mode(data.path().join("stranger"))
            }),
            http_timeout: Duration::from_secs(1),
            auth: tokens("wrong", None, false),
            ..Config::default()
        },
    );
    let right = [("authorization", "Bearer raft-secret")];
    let join = c
        .send("POST", &format!("{leader}/cluster/join?url={stranger_url}"), "", &right)
        .await;
    assert_eq!(join.status, 503, "{}", String::from_utf8_lossy(&join.body));
    assert_eq!(c.ok("GET", &stranger.at("/findAll?service=svc"), "").await, json!([]));

    // The operator removes the learner; the cluster goes on.
    let leave = c
        .send(
            "POST",
            &format!("{leader}/cluster/leave?url={stranger_url}"),
            "",
            &right,
        )
        .await;
    assert_eq!(leave.status, 200, "{}", String::from_utf8_lossy(&leave.body));
    c.ok("POST", &format!("{leader}/reg?service=svc"), &instance("10.0.0.1", 2))
        .await;
    all_hold(&c, &urls, &[1, 2]).await;
    stranger.stop().await;
    for node in nodes {
        node.stop().await;
    }
}
