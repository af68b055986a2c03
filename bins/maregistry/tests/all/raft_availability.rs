//! Raft mode staying available, or getting out of the way (docs/spec.md §7): a relay to a
//! paused leader is answered as soon as another is elected, and never sent twice; a node
//! whose storage fails stops with the cause and loses nothing acknowledged. (What a
//! cut-off leader answers is in `partitions`.)

use std::time::Duration;

use maregistry::{Config, LogFaults, Mode, RaftMode};
use test_support::{agreed_leader, all_hold, eventually, free_listener, instance, listen, ports_on};
use test_support::{raft_mode, Client, Node, LIMIT};

use crate::raft::{register, Cluster};

#[tokio::test]
async fn a_write_relayed_to_a_paused_leader_is_answered_indeterminate_and_not_sent_again() {
    let cluster = Cluster::start(3, &[]);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let follower = all.iter().copied().find(|u| *u != leader).unwrap();
    assert_eq!(register(&c, follower, 1..4).await, [1, 2, 3]);

    // The leader stops answering with the relay on its way: when the others elect a new
    // leader, the follower answers at once, without waiting on the paused one, that the
    // write may or may not have been applied. It does not send it to the new leader: the
    // paused one may have it in its log (docs/spec.md §7, "At most once").
    let paused = &cluster.nodes[cluster.index(&leader)];
    paused.pause();
    let (status, body) = c
        .post(&format!("{follower}/reg?service=svc"), &instance("10.0.0.1", 4))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["outcome"], "indeterminate", "{body}");
    let rest: Vec<&str> = all.iter().copied().filter(|u| **u != leader).collect();
    let new = agreed_leader(&c, &rest).await;
    assert_ne!(new, leader);
    // The client's retry, through the same follower, reaches the new leader.
    let (status, body) = c
        .post(&format!("{follower}/reg?service=svc"), &instance("10.0.0.1", 4))
        .await;
    assert_eq!(status, 200, "{body}");
    paused.resume();
    all_hold(&c, &all, &[1, 2, 3, 4]).await;
}

#[tokio::test]
async fn a_node_whose_log_cannot_be_written_stops_with_the_cause_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let faults = LogFaults::default();
    let mode = RaftMode {
        log_faults: faults.clone(),
        ..raft_mode(data.path().join("node"))
    };
    let listener = free_listener();
    let address = listener.local_addr().unwrap();
    let config = |mode: RaftMode| Config {
        mode: Mode::Raft(mode),
        ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    let node = Node::start_on(listener, config(mode.clone()));
    let c = Client::new();
    eventually("the node is ready", LIMIT, || async {
        c.get(&node.at("/ready")).await.0 == 200
    })
    .await;
    for port in 1..=5 {
        c.ok("POST", &node.at("/reg?service=svc"), &instance("10.0.0.1", port))
            .await;
    }

    // The disk fails: the write is refused with the cause, and the node stops by itself
    // with it (a supervisor restarts it) instead of staying up unable to write.
    faults.fail_writes(true);
    let (status, body) = c.post(&node.at("/reg?service=svc"), &instance("10.0.0.1", 6)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no space left on device"),
        "{body}"
    );
    let ended = node.ended(LIMIT).await;
    let error = format!("{:#}", ended.expect_err("the node stops with an error"));
    assert!(error.contains("no space left on device"), "{error}");

    // Restarted on the same data dir with a working disk: every acknowledged write is back.
    let node = Node::start_on(
        listen(address),
        config(RaftMode {
            log_faults: LogFaults::default(),
            ..mode
        }),
    );
    eventually("the restarted node is ready", LIMIT, || async {
        c.get(&node.at("/ready")).await.0 == 200
    })
    .await;
    let mut held = ports_on(&c, &node.url).await;
    held.sort_unstable();
    assert!(held.starts_with(&[1, 2, 3, 4, 5]), "acknowledged writes lost: {held:?}");
    node.stop().await;
}
