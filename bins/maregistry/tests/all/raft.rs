//! The raft mode (docs/spec.md §7) with real processes: durability across `kill -9`, a 3-node
//! cluster through failover, a quorum loss and a full restart, a follower far behind that
//! catches up by snapshot, membership changes at run time, eviction through the log, and
//! data dirs the node must refuse.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use test_support::{agreed_leader, all_hold, eventually, info, instance, ports_on, Client, LIMIT};
use test_support::{free_ports, server_list, Proc};

/// Raft timings for tests: fast enough to run in seconds, slow enough for a busy 2-core
/// machine (an election timeout of 1–1.25 s, heartbeats every 200 ms).
pub(crate) fn raft_args(data: &Path, port: u16, list: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--data-dir".into(),
        data.join(port.to_string()).display().to_string(),
        "--raft-heartbeat".into(),
        "200ms".into(),
        "--raft-election".into(),
        "1s".into(),
        "--http-timeout".into(),
        "1s".into(),
        "--write-timeout".into(),
        "3s".into(),
    ];
    if !extra.contains(&"--ttl") {
        args.extend(["--ttl".into(), "1h".into()]);
    }
    if !list.is_empty() {
        args.extend(["--server-list".into(), list.to_owned()]);
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Raft nodes as processes, each with its data dir under one temporary dir.
pub(crate) struct Cluster {
    data: TempDir,
    pub(crate) nodes: Vec<Proc>,
    pub(crate) urls: Vec<String>,
}

impl Cluster {
    pub(crate) fn start(n: usize, extra: &[&str]) -> Cluster {
        let data = tempfile::tempdir().expect("a temporary dir");
        let ports = free_ports(n);
        let list = server_list(&ports);
        let nodes: Vec<Proc> = ports
            .iter()
            .map(|&port| Proc::start(port, &raft_args(data.path(), port, &list, extra)))
            .collect();
        let urls = nodes.iter().map(|n| n.url.clone()).collect();
        Cluster { data, nodes, urls }
    }

    /// The parent of the data dirs (each node's is named after its port).
    fn data_root(&self) -> &Path {
        self.data.path()
    }

    pub(crate) fn index(&self, url: &str) -> usize {
        self.urls.iter().position(|u| u == url).expect("a member")
    }
}

/// Registers `svc` instances on ports `from..to` through `url`, one at a time; answers the
/// ports whose registration was answered 200.
pub(crate) async fn register(c: &Client, url: &str, ports: std::ops::Range<u16>) -> Vec<u16> {
    let mut acknowledged = Vec::new();
    for port in ports {
        let answer = c
            .try_raw("POST", &format!("{url}/reg?service=svc"), &instance("10.0.0.1", port))
            .await;
        if answer.is_ok_and(|a| a.status == 200) {
            acknowledged.push(port);
        }
    }
    acknowledged
}

async fn snapshot_of(c: &Client, url: &str) -> Value {
    c.ok("GET", &format!("{url}/snapshot"), "").await
}

#[tokio::test]
async fn one_durable_node_keeps_every_acknowledged_write_across_restarts_and_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let mut node = Proc::start(port, &raft_args(data.path(), port, "", &[]));
    let url = node.url.clone();
    let c = Client::new();
    agreed_leader(&c, &[&url]).await;

    let first = register(&c, &url, 1..51).await;
    assert_eq!(first.len(), 50);
    c.ok("POST", &format!("{url}/unreg?service=svc"), &instance("10.0.0.1", 7))
        .await;
    let before = snapshot_of(&c, &url).await;
    assert_eq!(before["version"], 51);

    // A clean restart: the same registry, the same versions.
    assert_eq!(node.terminate(), Some(0));
    node.restart();
    agreed_leader(&c, &[&url]).await;
    let after = snapshot_of(&c, &url).await;
    assert_eq!(after["REGISTRY"], before["REGISTRY"]);
    assert_eq!(after["VERSIONS"], before["VERSIONS"]);
    assert_eq!(after["version"], before["version"]);

    // kill -9 while writes are in flight: every write answered 200 survives.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (url, acknowledged) = (url.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let c = Client::new();
            for port in 100..2_000u16 {
                let body = instance("10.0.0.1", port);
                match c.try_raw("POST", &format!("{url}/reg?service=svc"), &body).await {
                    Ok(answer) if answer.status == 200 => acknowledged.lock().unwrap().push(port),
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        })
    };
    eventually("some writes are acknowledged", LIMIT, || async {
        acknowledged.lock().unwrap().len() >= 100
    })
    .await;
    node.kill9();
    let _ = writer.await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    node.restart();
    agreed_leader(&c, &[&url]).await;
    let held = ports_on(&c, &url).await;
    let lost: Vec<&u16> = acknowledged.iter().filter(|p| !held.contains(p)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let version = info(&c, &url).await.expect("answers")["version"].as_u64().unwrap();
    assert!(version >= 51 + acknowledged.len() as u64, "versions survive too");
    node.terminate();
}

#[tokio::test]
async fn three_nodes_replicate_fail_over_lose_quorum_and_restart_whole() {
    let mut cluster = Cluster::start(3, &[]);
    let urls = cluster.urls.clone();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let follower = all.iter().copied().find(|u| *u != leader).unwrap().to_owned();

    // A write through a follower is forwarded, committed, and visible everywhere.
    let mut acknowledged = register(&c, &follower, 1..21).await;
    assert_eq!(acknowledged.len(), 20);
    all_hold(&c, &all, &acknowledged).await;
    // A consistent read through a follower answers everything acknowledged.
    let answer = c
        .ok("GET", &format!("{follower}/findAll?service=svc&consistent=true"), "")
        .await;
    assert_eq!(answer.as_array().map(Vec::len), Some(20));
    let version_before = info(&c, &leader).await.unwrap()["version"].as_u64().unwrap();

    // Kill the leader: the two others elect a new one; nothing acknowledged is lost.
    let old = cluster.index(&leader);
    cluster.nodes[old].kill9();
    let rest: Vec<&str> = all.iter().copied().filter(|u| *u != leader).collect();
    let new_leader = agreed_leader(&c, &rest).await;
    assert_ne!(new_leader, leader);
    acknowledged.extend(register(&c, rest[0], 21..31).await);
    assert_eq!(acknowledged.len(), 30);
    all_hold(&c, &rest, &acknowledged).await;
    let version_after = info(&c, &new_leader).await.unwrap()["version"].as_u64().unwrap();
    assert!(
        version_after > version_before,
        "versions keep growing: {version_before} → {version_after}"
    );

    // The old leader returns and catches up.
    cluster.nodes[old].restart();
    all_hold(&c, &all, &acknowledged).await;

    // Two of three down: writes are refused within the write timeout, reads still served.
    let survivor = cluster.index(&new_leader);
    for i in 0..3 {
        if i != survivor {
            cluster.nodes[i].kill9();
        }
    }
    let started = tokio::time::Instant::now();
    let (status, error) = c
        .call(
            "POST",
            &format!("{new_leader}/reg?service=svc"),
            &instance("10.0.0.1", 999),
        )
        .await;
    assert_eq!(status, 503, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "refused within the write timeout"
    );
    assert_eq!(ports_on(&c, &new_leader).await.len(), 30, "reads are served");

    // All three killed and restarted: everything acknowledged is back.
    cluster.nodes[survivor].kill9();
    for node in &mut cluster.nodes {
        node.restart();
    }
    agreed_leader(&c, &all).await;
    all_hold(&c, &all, &acknowledged).await;
    // (The write answered 503 after the write timeout is indeterminate, as in any raft
    // system: it sits in the survivor's log and may be committed by a later leader.)
}

#[tokio::test]
async fn a_follower_far_behind_catches_up_by_snapshot_install() {
    let mut cluster = Cluster::start(3, &["--raft-snapshot-every", "20"]);
    let urls = cluster.urls.clone();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let behind = all.iter().copied().find(|u| *u != leader).unwrap().to_owned();
    let index = cluster.index(&behind);
    cluster.nodes[index].kill9();

    let acknowledged = register(&c, &leader, 1..121).await;
    assert_eq!(acknowledged.len(), 120);
    cluster.nodes[index].restart();
    all_hold(&c, &all, &acknowledged).await;
    assert!(
        cluster.nodes[index]
            .log_text()
            .contains("installed a raft snapshot from the leader"),
        "the log was compacted past the follower: it must have received a snapshot"
    );
    let a = snapshot_of(&c, &leader).await;
    let b = snapshot_of(&c, &behind).await;
    assert_eq!(a["REGISTRY"], b["REGISTRY"]);
    assert_eq!(a["VERSIONS"], b["VERSIONS"]);
}

#[tokio::test]
async fn a_node_joins_and_leaves_at_run_time() {
    let cluster = Cluster::start(3, &[]);
    let urls = cluster.urls.clone();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let acknowledged = register(&c, &leader, 1..11).await;

    // A fourth node started with --join never forms a cluster of its own.
    let port = free_ports(1)[0];
    let data = tempfile::tempdir().unwrap();
    let mut fourth = Proc::start(port, &raft_args(data.path(), port, "", &["--join"]));
    let url = fourth.url.clone();
    eventually("the new node answers", LIMIT, || async {
        info(&c, &url).await.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        c.ok("GET", &format!("{url}/leader"), "").await,
        Value::Null,
        "alone, it has no leader"
    );

    // Join through a follower: forwarded to the leader.
    let follower = all.iter().copied().find(|u| *u != leader).unwrap();
    let members = c.ok("POST", &format!("{follower}/cluster/join?url={url}"), "").await;
    assert_eq!(members.as_array().map(Vec::len), Some(4), "{members}");
    let mut four: Vec<&str> = all.clone();
    four.push(&url);
    all_hold(&c, &four, &acknowledged).await;
    assert_eq!(agreed_leader(&c, &four).await, leader);

    // Leave: back to three members; the removed node no longer receives writes.
    let members = c.ok("POST", &format!("{leader}/cluster/leave?url={url}"), "").await;
    assert_eq!(members.as_array().map(Vec::len), Some(3), "{members}");
    let more = register(&c, &leader, 11..16).await;
    assert_eq!(more.len(), 5);
    let mut everything = acknowledged.clone();
    everything.extend(more);
    all_hold(&c, &all, &everything).await;
    // Refused changes answer 400 with the JSON error.
    let (status, error) = c
        .post(&format!("{leader}/cluster/leave?url=http://127.0.0.1:1"), "")
        .await;
    assert_eq!(status, 400, "{error}");
    let (status, error) = c.post(&format!("{leader}/cluster/join?url=ftp://x"), "").await;
    assert_eq!(status, 400, "{error}");
    fourth.terminate();
}

#[tokio::test]
async fn an_instance_that_stops_renewing_is_evicted_once_and_a_renewing_one_never() {
    let mut cluster = Cluster::start(3, &["--ttl", "2s", "--evict-interval", "200ms"]);
    let urls = cluster.urls.clone();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    c.ok("POST", &format!("{leader}/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;
    c.ok("POST", &format!("{leader}/reg?service=svc"), &instance("10.0.0.1", 2))
        .await;

    // Port 1 renews every 300 ms through any node, across a leader change; port 2 is
    // silent.
    let renewing = {
        let urls: Vec<String> = cluster.urls.clone();
        tokio::spawn(async move {
            let c = Client::new();
            for round in 0.. {
                let url = &urls[round % urls.len()];
                let _ = c
                    .try_raw("POST", &format!("{url}/renew?service=svc"), &instance("10.0.0.1", 1))
                    .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    eventually("the silent instance is evicted on every node", LIMIT, || async {
        for url in &all {
            if ports_on(&c, url).await != vec![1] {
                return false;
            }
        }
        true
    })
    .await;
    let version = c.ok("GET", &format!("{leader}/version?service=svc"), "").await;
    assert_eq!(version, 3, "two registrations and one eviction");

    // The leader dies; the renewing instance stays through the takeover and after.
    let old = cluster.index(&leader);
    cluster.nodes[old].kill9();
    let rest: Vec<&str> = all.iter().copied().filter(|u| *u != leader).collect();
    let new_leader = agreed_leader(&c, &rest).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ports_on(&c, &new_leader).await, vec![1], "never evicted while renewing");
    renewing.abort();
}

#[tokio::test]
async fn a_data_dir_the_node_must_not_use_stops_it_with_exit_code_2() {
    let data = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let mut node = Proc::start(ports[0], &raft_args(data.path(), ports[0], "", &[]));
    let c = Client::new();
    agreed_leader(&c, &[&node.url]).await;
    register(&c, &node.url, 1..3).await;
    node.terminate();
    let dir = data.path().join(ports[0].to_string());

    // Another node's data dir.
    let mut args = raft_args(data.path(), ports[1], "", &[]);
    args[1] = dir.display().to_string();
    let mut other = Proc::start(ports[1], &args);
    assert_eq!(other.wait_exit(), Some(2));
    assert!(
        other.log_text().contains("node.json: belongs to the node"),
        "{}",
        other.log_text()
    );

    // The log removed under an initialised marker.
    let log = dir.join("raft.redb");
    let saved = std::fs::read(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    node.restart();
    assert_eq!(node.wait_exit(), Some(2));
    assert!(node.log_text().contains("raft.redb: is missing"), "{}", node.log_text());

    // A corrupt log.
    std::fs::write(&log, b"garbage, not a database").unwrap();
    node.restart();
    assert_eq!(node.wait_exit(), Some(2));
    assert!(
        node.log_text().contains("cannot open the raft log"),
        "{}",
        node.log_text()
    );

    // Put back, it starts with its data.
    std::fs::write(&log, saved).unwrap();
    node.restart();
    agreed_leader(&c, &[&node.url]).await;
    assert_eq!(ports_on(&c, &node.url).await.len(), 2);
    node.terminate();
}

#[tokio::test]
async fn another_clusters_data_dir_stops_the_node_with_exit_code_2() {
    let mut cluster = Cluster::start(2, &[]);
    let urls = cluster.urls.clone();
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    agreed_leader(&c, &all).await;
    assert_eq!(cluster.nodes[0].terminate(), Some(0));

    // The same node, its data dir, but the members of some other cluster.
    let port: u16 = urls[0].rsplit(':').next().unwrap().parse().unwrap();
    let strangers = server_list(&[port, free_ports(1)[0]]);
    let mut node = Proc::start(port, &raft_args(cluster.data_root(), port, &strangers, &[]));
    assert_eq!(node.wait_exit(), Some(2));
    assert!(
        node.log_text().contains("holds the state of another cluster"),
        "{}",
        node.log_text()
    );

    // With its own list it rejoins.
    cluster.nodes[0].restart();
    agreed_leader(&c, &all).await;
}

#[tokio::test]
async fn many_commands_in_few_entries_take_a_snapshot() {
    use maregistry::{Config, Mode, RaftMode};
    let data = tempfile::tempdir().unwrap();
    let nodes = test_support::start_raft_with(
        data.path(),
        1,
        |config| Config {
            mode: match config.mode {
                // Never by entries: only the commands they carry can trigger it.
                Mode::Raft(raft) => Mode::Raft(RaftMode {
                    snapshot_every: 1_000_000,
                    snapshot_commands: 300,
                    ..raft
                }),
                other => other,
            },
            ..config
        },
        |_, _| None,
    );
    let c = Client::new();
    let url = nodes[0].url.clone();
    agreed_leader(&c, &[&url]).await;
    let snapshot = data.path().join("0").join("snapshot");
    assert!(!snapshot.exists(), "no snapshot before any write");
    // 400 registrations in 4 log entries.
    for chunk in 0..4u16 {
        let batch: Vec<Value> = (1..=100u16)
            .map(|port| test_support::batch_op("reg", "svc", "10.0.0.1", chunk * 100 + port))
            .collect();
        c.ok("POST", &format!("{url}/batch"), &serde_json::json!(batch).to_string())
            .await;
    }
    eventually("a snapshot is taken", LIMIT, || async { snapshot.exists() }).await;
    for node in nodes {
        node.stop().await;
    }
}
