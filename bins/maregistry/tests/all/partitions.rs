//! Network partitions in raft mode, without touching real networks: every node's raft
//! calls and relayed writes go through an `HttpInvoker` that drops the calls between
//! chosen pairs and holds the answers of relays whose way back is cut. Symmetric
//! and asymmetric cuts: a node cut off from the majority never acknowledges a write, and
//! no acknowledged write is lost when the cut heals.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use maregistry::{Config, Mode, RaftMode};
use registry_http::{
    ErrorKind, HttpInvokeError, HttpInvoker, HttpRequest, HttpResponse, HyperInvoker, HyperInvokerConfig,
};
use tempfile::TempDir;
use test_support::{agreed_leader, all_hold, eventually, info, instance, start_raft_with, Client, Node, LIMIT};

/// The links that are cut, as (from, to) urls, and how a call over one fails.
#[derive(Default, Clone)]
pub(crate) struct Cuts {
    links: Arc<Mutex<HashSet<(String, String)>>>,
    /// Calls over a cut link hang for [`DROPPED_FOR`] before they fail, as over a network
    /// that drops the packets; otherwise they are refused at once.
    dropping: bool,
}

/// Time for a majority to elect a new leader once the old one is cut off: 1–1.25 s of
/// silence plus a pre-vote and a vote; a loaded 2-core machine adds a few seconds. A
/// majority that cannot agree takes rounds of ~1.1 s each for as long as the cut lasts.
pub(crate) const ELECTED_WITHIN: Duration = Duration::from_secs(6);

/// How long a call over a cut link hangs when the cut drops packets: a connect timeout.
const DROPPED_FOR: Duration = Duration::from_secs(1);

impl Cuts {
    pub(crate) fn cut(&self, from: &str, to: &str) {
        self.links.lock().unwrap().insert((from.to_owned(), to.to_owned()));
    }

    pub(crate) fn isolate(&self, node: &str, others: &[&str]) {
        self.partition(&[node], others);
    }

    /// Cuts every link between the two sides, both ways.
    pub(crate) fn partition(&self, one: &[&str], other: &[&str]) {
        for a in one {
            for b in other {
                self.cut(a, b);
                self.cut(b, a);
            }
        }
    }

    pub(crate) fn heal(&self) {
        self.links.lock().unwrap().clear();
    }

    fn is_cut(&self, from: &str, to: &str) -> bool {
        self.links.lock().unwrap().contains(&(from.to_owned(), to.to_owned()))
    }
}

/// `scheme://host:port` of `url`.
fn origin(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    url[start..].find('/').map_or(url, |end| &url[..start + end])
}

/// One node's peer invoker, for raft's calls and relayed writes: refuses a call over a cut
/// link as a refused connection. A relay that went out holds its answer while the way
/// back is cut (as a TCP connection does whose answers are lost), until the link heals or
/// [`HELD_AT_MOST`] passes.
struct CutInvoker {
    from: String,
    cuts: Cuts,
    inner: HyperInvoker,
}

/// How long a relay's answer is held over a cut link before the relay times out.
const HELD_AT_MOST: Duration = Duration::from_secs(10);

#[async_trait]
impl HttpInvoker for CutInvoker {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpInvokeError> {
        let to = origin(&request.url).to_owned();
        if self.cuts.is_cut(&self.from, &to) {
            if self.cuts.dropping {
                tokio::time::sleep(DROPPED_FOR).await;
            }
            return Err(HttpInvokeError::new(ErrorKind::Connect, "POST", &request.url));
        }
        let relay = !request.url.contains("/raft/");
        let url = request.url.clone();
        let answer = self.inner.send(request).await;
        if relay {
            let deadline = tokio::time::Instant::now() + HELD_AT_MOST;
            while self.cuts.is_cut(&to, &self.from) {
                if tokio::time::Instant::now() > deadline {
                    return Err(HttpInvokeError::new(ErrorKind::Timeout, "POST", &url));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        answer
    }
}

/// In-process raft nodes whose raft calls go through [`Cuts`] (writes time out after 2 s).
pub(crate) struct Cluster {
    _data: TempDir,
    pub(crate) nodes: Vec<Node>,
    pub(crate) urls: Vec<String>,
    pub(crate) cuts: Cuts,
}

pub(crate) fn start(n: usize) -> Cluster {
    start_cutting(n, 20_000, Cuts::default())
}

/// [`start`], the cut links dropping what is sent over them (calls hang, then fail).
pub(crate) fn start_dropping(n: usize) -> Cluster {
    start_cutting(
        n,
        20_000,
        Cuts {
            dropping: true,
            ..Cuts::default()
        },
    )
}

/// [`start`], the nodes taking a snapshot every `snapshot_every` entries.
fn start_snapshotting(n: usize, snapshot_every: u64) -> Cluster {
    start_cutting(n, snapshot_every, Cuts::default())
}

fn start_cutting(n: usize, snapshot_every: u64, cuts: Cuts) -> Cluster {
    let data = tempfile::tempdir().unwrap();
    let nodes = start_raft_with(
        data.path(),
        n,
        |config| Config {
            mode: match config.mode {
                Mode::Raft(raft) => Mode::Raft(RaftMode {
                    write_timeout: Duration::from_secs(2),
                    snapshot_every,
                    ..raft
                }),
                snapshot => snapshot,
            },
            ..config
        },
        |i, urls| {
            let invoker: Arc<dyn HttpInvoker> = Arc::new(CutInvoker {
                from: urls[i].clone(),
                cuts: cuts.clone(),
                inner: HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_secs(10))),
            });
            Some(invoker)
        },
    );
    let urls = nodes.iter().map(|node| node.url.clone()).collect();
    Cluster {
        _data: data,
        nodes,
        urls,
        cuts,
    }
}

/// Registers port `port` through `url`; answers whether it was acknowledged (200).
async fn write(c: &Client, url: &str, port: u16) -> bool {
    let answer = c
        .try_raw("POST", &format!("{url}/reg?service=svc"), &instance("10.0.0.1", port))
        .await;
    answer.is_ok_and(|a| a.status == 200)
}

#[tokio::test]
async fn a_leader_cut_off_from_the_majority_acknowledges_nothing_and_loses_nothing() {
    let cluster = start(3);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let old = agreed_leader(&c, &all).await;
    let mut acknowledged = Vec::new();
    for port in 1..6 {
        assert!(write(&c, &old, port).await);
        acknowledged.push(port);
    }

    let rest: Vec<&str> = all.iter().copied().filter(|u| **u != old).collect();
    cluster.cuts.isolate(&old, &rest);
    let new = agreed_leader(&c, &rest).await;
    assert_ne!(new, old);
    // Check-quorum: no majority answers it, so it stops saying it leads.
    eventually(
        "the cut-off old leader stops calling itself leader",
        Duration::from_secs(10),
        || async { info(&c, &old).await.is_some_and(|i| i["leader"] == false) },
    )
    .await;
    // Both sides are asked to write: only the majority's leader acknowledges.
    for port in 100..105 {
        assert!(
            !write(&c, &old, port).await,
            "the cut-off old leader acknowledged a write"
        );
        assert!(
            write(&c, &new, 200 + port).await,
            "the majority's leader refused a write"
        );
        acknowledged.push(200 + port);
    }

    cluster.cuts.heal();
    agreed_leader(&c, &all).await;
    all_hold(&c, &all, &acknowledged).await;
    for node in cluster.nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn an_asymmetric_cut_loses_no_acknowledged_write() {
    let cluster = start(3);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let follower = all.iter().copied().find(|u| *u != leader).unwrap();

    // The leader cannot reach one follower; that follower still reaches the leader.
    cluster.cuts.cut(&leader, follower);
    let mut acknowledged = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut port = 1;
    while tokio::time::Instant::now() < deadline {
        for url in &all {
            if write(&c, url, port).await {
                acknowledged.push(port);
            }
            port += 1;
        }
    }
    assert!(!acknowledged.is_empty(), "the majority kept taking writes");

    cluster.cuts.heal();
    agreed_leader(&c, &all).await;
    all_hold(&c, &all, &acknowledged).await;
    for node in cluster.nodes {
        node.stop().await;
    }
}

/// The term `url`'s `/info` reports.
async fn term(c: &Client, url: &str) -> u64 {
    let info = info(c, url).await.expect("the node answers /info");
    info["term"].as_u64().expect("a term in /info")
}

#[tokio::test]
async fn a_node_cut_off_and_back_neither_raises_the_term_nor_deposes_the_leader() {
    let cluster = start(3);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let before = term(&c, &leader).await;
    let away = all.iter().copied().find(|u| *u != leader).unwrap();
    let rest: Vec<&str> = all.iter().copied().filter(|u| *u != away).collect();

    // Cut off for several of its election timeouts (1–1.25 s here): it finds no majority
    // in its pre-votes, so it never campaigns.
    cluster.cuts.isolate(away, &rest);
    for port in 1..4 {
        assert!(write(&c, &leader, port).await, "the majority's leader refused a write");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(term(&c, away).await, before, "the cut-off node raised its term");

    cluster.cuts.heal();
    all_hold(&c, &all, &[1, 2, 3]).await;
    assert!(write(&c, away, 4).await, "a write through the returned node");
    all_hold(&c, &all, &[1, 2, 3, 4]).await;
    assert_eq!(
        agreed_leader(&c, &all).await,
        leader,
        "the returned node deposed the leader"
    );
    for url in &all {
        assert_eq!(term(&c, url).await, before, "{url} moved to another term");
    }
    for node in cluster.nodes {
        node.stop().await;
    }
}

/// The JSON error of a write refused with 503, which must carry `Retry-After`.
async fn refused(c: &Client, url: &str, port: u16) -> serde_json::Value {
    let answer = c
        .raw("POST", &format!("{url}/reg?service=svc"), &instance("10.0.0.1", port))
        .await;
    assert_eq!(answer.status, 503, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("retry-after"), Some("1"));
    serde_json::from_slice(&answer.body).expect("a JSON error")
}

#[tokio::test]
async fn a_refused_write_says_whether_it_may_have_happened() {
    let cluster = start(3);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let rest: Vec<&str> = all.iter().copied().filter(|u| **u != leader).collect();
    cluster.cuts.isolate(&leader, &rest);

    // Proposed at once, never committed: a later leader may still commit it.
    let body = refused(&c, &leader, 1).await;
    assert_eq!(body["outcome"], "indeterminate", "{body}");
    // Once it stops calling itself leader, a write never reaches a log.
    eventually("the cut-off leader steps down", Duration::from_secs(10), || async {
        info(&c, &leader).await.is_some_and(|i| i["leader"] == false)
    })
    .await;
    let body = refused(&c, &leader, 2).await;
    assert_eq!(body["outcome"], "not_applied", "{body}");
    // A consistent read there speaks of the read, and has no outcome.
    let (status, body) = c.get(&format!("{leader}/findAll?service=svc&consistent=true")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.get("outcome").is_none(), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("read"), "{body}");
    for node in cluster.nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_leader_cut_off_with_writes_in_flight_takes_writes_when_it_leads_again() {
    // Snapshots often, so that the majority's log is compacted past the entries the cut-off
    // leader proposed. openraft answers the writers of such entries only when a conflicting
    // entry truncates them; when the node comes back through a snapshot instead, which
    // removes them silently, nothing ever answers them. Without the batcher's own timeout
    // their batch slots stayed taken and this node, leading again, proposed nothing (in two
    // of four runs of this test; the rest came back through a conflict).
    let cluster = start_snapshotting(3, 10);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let first = agreed_leader(&c, &all).await;
    let rest: Vec<&str> = all.iter().copied().filter(|u| **u != first).collect();

    // Cut off while it leads, with writes proposed in more entries than it has batches in
    // flight: none can commit, and its term is lost.
    cluster.cuts.isolate(&first, &rest);
    let mut in_flight = Vec::new();
    for port in 1..5 {
        let url = first.clone();
        in_flight.push(tokio::spawn(async move { write(&Client::new(), &url, port).await }));
        // Apart, so that each is proposed as an entry of its own.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = agreed_leader(&c, &rest).await;
    for write in in_flight {
        assert!(
            !write.await.unwrap(),
            "a leader cut off from the majority acknowledged a write"
        );
    }
    let written: Vec<u16> = (1000..1050).collect();
    for port in &written {
        assert!(write(&c, &second, *port).await, "the majority's leader refused a write");
    }
    cluster.cuts.heal();
    assert_eq!(agreed_leader(&c, &all).await, second);

    // Depose whoever leads until the first leader is elected again.
    let mut leader = second;
    for _ in 0..20 {
        if leader == first {
            break;
        }
        let others: Vec<&str> = all.iter().copied().filter(|u| **u != leader).collect();
        cluster.cuts.isolate(&leader, &others);
        let next = agreed_leader(&c, &others).await;
        cluster.cuts.heal();
        eventually("the cluster agrees on one leader", Duration::from_secs(10), || async {
            agreed_leader(&c, &all).await == next
        })
        .await;
        leader = next;
    }
    assert_eq!(leader, first, "the first leader was not elected again in 20 rounds");
    // Its writes of the lost term hold nothing up: a write through it is acknowledged.
    assert!(write(&c, &first, 100).await, "the re-elected leader refused a write");
    all_hold(&c, &all, &[100]).await;
    all_hold(&c, &all, &written).await;
    for node in cluster.nodes {
        node.stop().await;
    }
}

/// Whether a consistent read on `url` lists port `port` under `svc` (`None`: not served).
async fn holds(c: &Client, url: &str, port: u16) -> Option<bool> {
    let (status, list) = c.get(&format!("{url}/findAll?service=svc&consistent=true")).await;
    (status == 200).then(|| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|i| i["port"].as_u64() == Some(u64::from(port))))
    })
}

#[tokio::test]
async fn a_relayed_write_whose_answer_is_lost_is_not_applied_twice() {
    let cluster = start(3);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let leader = agreed_leader(&c, &all).await;
    let rest: Vec<&str> = all.iter().copied().filter(|u| **u != leader).collect();
    let (follower, other) = (rest[0].to_owned(), rest[1]);
    assert!(write(&c, &leader, 7).await);

    // The leader's answers to the follower are lost on their way (and so are its raft
    // calls to it; the third node keeps its majority). An unregistration relayed by the
    // follower is committed, but its answer does not come back.
    cluster.cuts.cut(&leader, &follower);
    let relayed = {
        let follower = follower.clone();
        tokio::spawn(async move {
            Client::new()
                .raw(
                    "POST",
                    &format!("{follower}/unreg?service=svc"),
                    &instance("10.0.0.1", 7),
                )
                .await
        })
    };
    eventually("the leader applies the relayed unregistration", LIMIT, || async {
        holds(&c, &leader, 7).await == Some(false)
    })
    .await;
    // Then the same instance is registered again, straight through the leader.
    assert!(write(&c, &leader, 7).await, "the leader refused the registration");
    assert_eq!(holds(&c, &leader, 7).await, Some(true));

    // The leader is cut off: the others elect a new one, and the follower sees leadership
    // move with its relay still out. Sending the unregistration again would undo the
    // acknowledged registration.
    cluster.cuts.isolate(&leader, &rest);
    let new = agreed_leader(&c, &rest).await;
    assert_ne!(new, leader);
    let answer = relayed.await.expect("the relay's client");
    for url in [follower.as_str(), other] {
        assert_eq!(
            holds(&c, url, 7).await,
            Some(true),
            "{url} lost a registration acknowledged after the unregistration took effect"
        );
    }
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    assert_eq!(answer.status, 503, "{body}");
    assert_eq!(body["outcome"], "indeterminate", "{body}");
    cluster.cuts.heal();
    all_hold(&c, &all, &[7]).await;
    for node in cluster.nodes {
        node.stop().await;
    }
}
