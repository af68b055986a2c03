//! Faults with real processes (`kill -9`, SIGSTOP): an empty, just-restarted node must
//! never wipe the others' data, and no node's registry version may ever go down
//! (docs/spec.md §2, §4.4: data only flows from more to less).
//!
//! The three reproductions of issue 7, each with 300 instances: in every one, the old
//! code elected the empty node and every other node restored its empty snapshot.

use std::time::Duration;

use registry_cluster::java_hash_code;
use test_support::{agreed_leader, all_hold, info, instance, ports_on, Client};
use test_support::{free_ports, server_list, Proc, VersionWatch};

/// The ports of the 300 instances every scenario registers under `svc`.
const PORTS: std::ops::Range<u16> = 1000..1300;

/// Nodes that know each other, with short intervals; instances never expire during a
/// test.
fn start(n: usize) -> Vec<Proc> {
    let ports = free_ports(n);
    let list = server_list(&ports);
    let args: Vec<String> = [
        "--server-list",
        &list,
        "--cluster-interval",
        "200ms",
        "--http-timeout",
        "500ms",
        "--ttl",
        "1h",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    ports.into_iter().map(|port| Proc::start(port, &args)).collect()
}

async fn register_all(c: &Client, leader: &str) {
    for port in PORTS {
        c.ok(
            "POST",
            &format!("{leader}/reg?service=svc"),
            &instance("10.0.0.1", port),
        )
        .await;
    }
}

/// Waits until every node of `urls` lists all the instances at one registry version.
async fn all_hold_everything(c: &Client, urls: &[&str]) {
    let ports: Vec<u16> = PORTS.collect();
    all_hold(c, urls, &ports).await;
}

/// The opening of the 3-node scenarios: the hash winner A leads and every node holds
/// every instance; A is killed and B leads the other two, which hold everything too.
/// Answers the nodes, their urls, a version watch, and the indexes of A, B and the third
/// node C.
async fn first_failover(c: &Client) -> (Vec<Proc>, Vec<String>, VersionWatch, [usize; 3]) {
    let mut nodes = start(3);
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let watch = VersionWatch::start(urls.clone());

    let a = hash_winner_leads(c, &all).await;
    register_all(c, &urls[a]).await;
    all_hold_everything(c, &all).await;

    nodes[a].kill9();
    let rest: Vec<&str> = all.iter().copied().filter(|u| *u != urls[a]).collect();
    let b = index_of(&nodes, &agreed_leader(c, &rest).await);
    all_hold_everything(c, &rest).await;
    let c_index = 3 - a - b;
    (nodes, urls, watch, [a, b, c_index])
}

/// Puts the node with the smallest Java hash in office (the first leader is whoever was
/// reachable first, and leadership is sticky), so that it wins again by hash whenever it
/// meets another node with no leader or a second leader: the case where an empty restarted
/// node used to win. Answers its index.
async fn hash_winner_leads(c: &Client, urls: &[&str]) -> usize {
    let winner = (0..urls.len())
        .min_by_key(|&i| (java_hash_code(urls[i]), urls[i]))
        .expect("nodes");
    while agreed_leader(c, urls).await != urls[winner] {
        // /sl answers 503 while it cannot adopt the leader's data yet; then try again.
        let _ = c.try_raw("POST", &format!("{}/sl", urls[winner]), "").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    winner
}

fn index_of(nodes: &[Proc], url: &str) -> usize {
    nodes.iter().position(|n| n.url == url).expect("a node of the cluster")
}

fn restart(node: &mut Proc, watch: &VersionWatch) {
    node.kill9();
    watch.restarted(&node.url);
    node.restart();
}

fn assert_never_decreased(watch: &VersionWatch) {
    let decreases = watch.decreases();
    assert!(decreases.is_empty(), "registry versions went down: {decreases:?}");
}

/// 3 nodes, quorum: kill -9 the leader A; when B leads, kill -9 B and restart A at the
/// same moment. A (empty) and C (all data) form a majority and A wins by hash: A must
/// adopt C's data before it leads.
#[tokio::test]
async fn an_empty_restarted_node_elected_with_a_full_one_adopts_its_data() {
    let c = Client::new();
    let (mut nodes, urls, watch, [a, b, x]) = first_failover(&c).await;
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();

    nodes[b].kill9();
    restart(&mut nodes[a], &watch);
    let pair = [all[a], all[x]];
    assert_eq!(agreed_leader(&c, &pair).await, urls[a], "A has the smallest hash");
    all_hold_everything(&c, &pair).await;

    restart(&mut nodes[b], &watch);
    all_hold_everything(&c, &all).await;
    assert_never_decreased(&watch);
}

/// 3 nodes, quorum: kill -9 A; when B leads, pause B while A restarts; resume B once A
/// leads with C. A must adopt C's data; B, back, must not undo anything.
#[tokio::test]
async fn an_empty_node_restarted_while_the_leader_is_paused_adopts_the_data() {
    let c = Client::new();
    let (mut nodes, urls, watch, [a, b, x]) = first_failover(&c).await;
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();

    nodes[b].pause();
    restart(&mut nodes[a], &watch);
    let pair = [all[a], all[x]];
    assert_eq!(agreed_leader(&c, &pair).await, urls[a]);
    all_hold_everything(&c, &pair).await;
    nodes[b].resume();

    assert_eq!(agreed_leader(&c, &all).await, urls[a]);
    all_hold_everything(&c, &all).await;
    assert_never_decreased(&watch);
}

/// 2 nodes, hash: kill -9 A; when B leads, pause B while A restarts; A leads alone,
/// empty. Resume B: the two leaders meet, A wins by hash and B steps down at once. A must
/// adopt B's data (B is reachable and higher), and B must never restore A's empty
/// snapshot: the registry version never falls.
#[tokio::test]
async fn two_leaders_meeting_keep_the_data_of_the_fuller_one() {
    let mut nodes = start(2);
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let watch = VersionWatch::start(urls.clone());
    let c = Client::new();

    let a = hash_winner_leads(&c, &all).await;
    let b = 1 - a;
    register_all(&c, &urls[a]).await;
    all_hold_everything(&c, &all).await;

    nodes[a].kill9();
    assert_eq!(agreed_leader(&c, &[all[b]]).await, urls[b]);
    let before = info(&c, &urls[b]).await.expect("B answers")["version"]
        .as_u64()
        .expect("a version");

    nodes[b].pause();
    restart(&mut nodes[a], &watch);
    assert_eq!(agreed_leader(&c, &[all[a]]).await, urls[a], "A leads alone");
    assert!(ports_on(&c, &urls[a]).await.is_empty(), "A restarted empty");
    nodes[b].resume();

    assert_eq!(agreed_leader(&c, &all).await, urls[a], "A wins by hash");
    all_hold_everything(&c, &all).await;
    let after = info(&c, &urls[a]).await.expect("A answers")["version"]
        .as_u64()
        .expect("a version");
    assert!(
        after > before,
        "versions keep growing across the meeting: {before} → {after}"
    );
    assert_never_decreased(&watch);
}
