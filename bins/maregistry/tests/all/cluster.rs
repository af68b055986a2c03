//! Several real nodes over HTTP (docs/spec.md §4): election, sync, forwarding, failover, quorum,
//! and a corrupt snapshot from a fake leader.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use maregistry::{Config, Mode, SnapshotMode};
use registry_cluster::java_hash_code;
use serde_json::{json, Value};
use test_support::{
    cluster_config, eventually, free_listener, instance, listen, serve_fake, start_cluster, Client, Node,
};

const LIMIT: Duration = Duration::from_secs(60);

fn hash_winner(urls: &[&str]) -> String {
    urls.iter()
        .min_by_key(|u| (java_hash_code(u), u.to_string()))
        .map(|u| u.to_string())
        .unwrap()
}

async fn version_of(c: &Client, node: &Node, service: &str) -> u64 {
    c.ok("GET", &node.at(&format!("/version?service={service}")), "")
        .await
        .as_u64()
        .expect("a version")
}

#[tokio::test]
async fn two_nodes_elect_the_hash_leader_sync_and_forward() {
    let nodes = start_cluster(2, |c| c);
    let c = Client::new();
    let leader_url = test_support::agreed_leader(&c, &[nodes[0].url.as_str(), nodes[1].url.as_str()]).await;
    assert_eq!(
        leader_url,
        hash_winner(&[&nodes[0].url, &nodes[1].url]),
        "the seed's hash rule decides"
    );
    let (leader, follower) = if nodes[0].url == leader_url {
        (&nodes[0], &nodes[1])
    } else {
        (&nodes[1], &nodes[0])
    };
    let cluster = c.ok("GET", &follower.at("/cluster"), "").await;
    assert_eq!(cluster.as_array().map(Vec::len), Some(2));

    // A registration on the leader reaches the follower, and the versions converge.
    c.ok("POST", &leader.at("/reg?service=svc"), &instance("10.0.0.1", 8080))
        .await;
    let on_leader = c.ok("GET", &leader.at("/findAll?service=svc"), "").await;
    eventually("the follower lists the instance", LIMIT, || async {
        c.ok("GET", &follower.at("/findAll?service=svc"), "").await == on_leader
    })
    .await;
    eventually("the snapshot versions are equal", LIMIT, || async {
        let l = c.ok("GET", &leader.at("/snapshot"), "").await;
        let f = c.ok("GET", &follower.at("/snapshot"), "").await;
        l["version"] == f["version"] && l["VERSIONS"] == f["VERSIONS"]
    })
    .await;

    // A write sent to the follower is forwarded: it is on the leader when the answer comes.
    let answer = c
        .ok("POST", &follower.at("/reg?service=svc"), &instance("10.0.0.2", 8080))
        .await;
    assert_eq!(answer["status"], json!(true));
    let all = c.ok("GET", &leader.at("/findAll?service=svc"), "").await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    // The leader's errors are relayed unchanged, status and body.
    let (status, error) = c
        .post(&follower.at("/reg?service=svc"), r#"{"scheme":"http","port":1}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["message"], json!("invalid instance: 'host' is required"));
    // A renewal through the follower answers the leader's clock.
    let ts = c
        .ok("POST", &follower.at("/renew?service=svc"), &instance("10.0.0.2", 8080))
        .await;
    assert!(ts.as_u64().is_some());
    // A write that was already forwarded once is not forwarded again.
    let marked = c
        .raw_with_header(
            "POST",
            &follower.at("/reg?service=svc"),
            &instance("10.0.0.3", 1),
            registry_api::FORWARDED_HEADER,
        )
        .await;
    assert_eq!(marked.status, 503);
    eventually("the follower catches up with the forwarded writes", LIMIT, || async {
        c.ok("GET", &follower.at("/findAll?service=svc"), "")
            .await
            .as_array()
            .map(Vec::len)
            == Some(2)
    })
    .await;

    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn the_follower_takes_over_keeps_the_data_and_the_old_leader_follows_when_back() {
    let mut nodes = start_cluster(2, |c| c);
    let c = Client::new();
    let leader_url = test_support::agreed_leader(&c, &[nodes[0].url.as_str(), nodes[1].url.as_str()]).await;
    let leader_index = nodes.iter().position(|n| n.url == leader_url).unwrap();
    let follower_index = 1 - leader_index;
    let all_urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();

    for port in 1..=3 {
        c.ok(
            "POST",
            &nodes[leader_index].at("/reg?service=svc"),
            &instance("10.0.0.1", port),
        )
        .await;
    }
    let follower = &nodes[follower_index];
    eventually("the follower has the data", LIMIT, || async {
        c.ok("GET", &follower.at("/findAll?service=svc"), "")
            .await
            .as_array()
            .map(Vec::len)
            == Some(3)
    })
    .await;
    // A consumer remembers the version it saw.
    let seen = version_of(&c, follower, "svc").await;
    assert_eq!(
        seen,
        c.ok("GET", &nodes[leader_index].at("/version?service=svc"), "")
            .await
            .as_u64()
            .unwrap()
    );

    // The leader dies.
    let old_leader = nodes.remove(leader_index);
    let old_addr = old_leader.addr;
    old_leader.stop().await;
    let follower = &nodes[0];
    eventually("the follower takes over", LIMIT, || async {
        c.ok("GET", &follower.at("/info"), "").await["leader"] == json!(true)
    })
    .await;
    assert_eq!(
        c.ok("GET", &follower.at("/findAll?service=svc"), "")
            .await
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let after = version_of(&c, follower, "svc").await;
    assert!(
        after > seen,
        "versions keep growing across failover ({seen} -> {after})"
    );
    // Writes work on the new leader, and move the version further.
    c.ok("POST", &follower.at("/reg?service=svc"), &instance("10.0.0.1", 4))
        .await;
    assert!(version_of(&c, follower, "svc").await > after);

    // The old leader restarts on its address: it probes first and follows.
    let back = Node::start_on(listen(old_addr), cluster_config(&all_urls));
    eventually(
        "the returning node follows the new leader and has its data",
        LIMIT,
        || async {
            c.leader_of(&back).await.as_deref() == Some(follower.url.as_str())
                && c.ok("GET", &back.at("/findAll?service=svc"), "")
                    .await
                    .as_array()
                    .map(Vec::len)
                    == Some(4)
        },
    )
    .await;
    // Leadership is sticky: many rounds later the new leader still leads.
    let rounds = Duration::from_millis(100) * 10;
    tokio::time::sleep(rounds).await;
    assert_eq!(c.ok("GET", &follower.at("/info"), "").await["leader"], json!(true));
    assert_eq!(c.ok("GET", &back.at("/info"), "").await["leader"], json!(false));

    back.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_minority_refuses_writes_and_serves_reads_until_a_majority_returns() {
    let mut nodes = start_cluster(3, |c| c);
    let c = Client::new();
    let all_urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let leader_url = test_support::agreed_leader(
        &c,
        &[nodes[0].url.as_str(), nodes[1].url.as_str(), nodes[2].url.as_str()],
    )
    .await;
    let leader = nodes.iter().find(|n| n.url == leader_url).unwrap();
    c.ok("POST", &leader.at("/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;
    eventually("every node has the data", LIMIT, || async {
        let mut all = true;
        for n in &nodes {
            all &= c
                .ok("GET", &n.at("/findAll?service=svc"), "")
                .await
                .as_array()
                .map(Vec::len)
                == Some(1);
        }
        all
    })
    .await;

    // Stop two of the three; the survivor is alone, a minority.
    let second = nodes.pop().unwrap();
    let first = nodes.pop().unwrap();
    let first_addr = first.addr;
    first.stop().await;
    second.stop().await;
    let survivor = &nodes[0];
    eventually("the survivor has no leader", LIMIT, || async {
        c.ok("GET", &survivor.at("/leader"), "").await == Value::Null
    })
    .await;
    let (status, error) = c.post(&survivor.at("/reg?service=svc"), &instance("10.0.0.1", 2)).await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["status"], json!(503));
    assert!(
        error["message"].as_str().unwrap_or_default().contains("no leader"),
        "{error}"
    );
    let (status, _) = c
        .post(&survivor.at("/renew?service=svc"), &instance("10.0.0.1", 1))
        .await;
    assert_eq!(status, 503);
    // Reads still work from the local copy.
    assert_eq!(
        c.ok("GET", &survivor.at("/findAll?service=svc"), "")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(version_of(&c, survivor, "svc").await > 0);

    // One comes back: two of three is a majority again, and writes work.
    let back = Node::start_on(listen(first_addr), cluster_config(&all_urls));
    eventually("a write on the survivor succeeds again", LIMIT, || async {
        c.post(&survivor.at("/reg?service=svc"), &instance("10.0.0.1", 2))
            .await
            .0
            == 200
    })
    .await;
    back.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

/// A fake leader: answers `/info` as a leader at `version`, and `/snapshot` with `body`.
#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<(u64, String)>>,
}

impl Fake {
    fn set(&self, version: u64, snapshot: &str) {
        *self.state.lock().unwrap() = (version, snapshot.to_owned());
    }
}

/// Serves `fake` on `listener` as the leader at `url`.
fn start_fake(listener: tokio::net::TcpListener, url: String, fake: Fake) {
    serve_fake(listener, Duration::ZERO, move |path, _| {
        let (version, snapshot) = fake.state.lock().unwrap().clone();
        match path {
            "/info" => json!({"url": url, "status": true, "leader": true, "version": version}).to_string(),
            "/snapshot" => snapshot,
            _ => "{}".to_owned(),
        }
    });
}

fn snapshot_json(version: u64, port: u16) -> String {
    json!({
        "REGISTRY": {"svc": [{"scheme": "http", "host": "10.9.9.9", "port": port, "context": ""}]},
        "VERSIONS": {"svc": version},
        "TIMESTAMPS": {},
        "version": version
    })
    .to_string()
}

#[tokio::test]
async fn a_corrupt_snapshot_is_rejected_and_a_valid_one_adopted() {
    let fake_listener = free_listener();
    let fake_url = format!("http://{}", fake_listener.local_addr().unwrap());
    let fake = Fake {
        state: Arc::new(Mutex::new((5, snapshot_json(5, 1)))),
    };
    start_fake(fake_listener, fake_url.clone(), fake.clone());

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

    // The node follows the (only) leader in sight and adopts its snapshot.
    eventually("the follower adopts the first snapshot", LIMIT, || async {
        c.ok("GET", &node.at("/snapshot"), "").await["version"] == json!(5)
    })
    .await;
    assert_eq!(c.leader_of(&node).await.as_deref(), Some(fake_url.as_str()));
    let good = c.ok("GET", &node.at("/snapshot"), "").await;

    // Corrupt answers of several kinds; the follower keeps its data through all of them.
    let corrupt = [
        "{not json".to_owned(),
        r#"{"REGISTRY":{}}"#.to_owned(),
        snapshot_json(6, 0),
        json!({"REGISTRY": {"bad name": []}, "VERSIONS": {}, "TIMESTAMPS": {}, "version": 6}).to_string(),
    ];
    for body in &corrupt {
        fake.set(6, body);
        // Let several rounds try (and fail) to sync.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            c.ok("GET", &node.at("/snapshot"), "").await,
            good,
            "kept its data after {body}"
        );
    }

    // A valid snapshot again: adopted, with the leader's version.
    fake.set(7, &snapshot_json(7, 2));
    eventually("the follower adopts the valid snapshot", LIMIT, || async {
        c.ok("GET", &node.at("/snapshot"), "").await["version"] == json!(7)
    })
    .await;
    let all = c.ok("GET", &node.at("/findAll?service=svc"), "").await;
    assert_eq!(all[0]["port"], json!(2));
    assert_eq!(version_of(&c, &node, "svc").await, 7);
    node.stop().await;
}
