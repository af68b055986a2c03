//! Short Jepsen-style runs, small enough for CI: clients register, unregister and read
//! (`consistent=true`) the same few instances through every node of a raft cluster (so
//! mostly through followers, which relay) while its links are cut and healed; the recorded
//! history must be linearizable per instance (`test_support::linearizable`, Wing and
//! Gong's search), which also means no acknowledged write is lost.
//!
//! - 3 nodes: the leader cut off, the leader unable to reach a follower, a follower cut
//!   off.
//! - 5 nodes, the cuts dropping what crosses them: the leader cut off alone, then with one
//!   follower; each time the majority must elect a leader within [`ELECTED_WITHIN`].
//!
//! `MAREGISTRY_LIN_SECS` lengthens each run (`scripts/linearizability.sh` runs them
//! longer and repeatedly).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_support::linearizable::{check, Action, Event};
use test_support::{agreed_leader, instance, Client};
use tokio::time::Instant;

use crate::partitions::{start, start_dropping, ELECTED_WITHIN};

const SERVICE: &str = "lin";
const KEYS: u32 = 3;
/// How long the clients run, unless `MAREGISTRY_LIN_SECS` says otherwise.
const RUN: Duration = Duration::from_secs(10);

fn run_for() -> Duration {
    std::env::var("MAREGISTRY_LIN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(RUN, Duration::from_secs)
}
/// Between a client's operations, so that each key's history stays short enough to search.
const PAUSE: Duration = Duration::from_millis(120);

/// A small deterministic generator (xorshift64*), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

/// What an answered write tells of its outcome: `Some(true)` done, `Some(false)` certainly
/// not done (left out of the history), `None` unknown.
fn write_outcome(answer: &Result<registry_http::HttpResponse, registry_http::HttpInvokeError>) -> Option<bool> {
    let answer = answer.as_ref().ok()?;
    if answer.status == 200 {
        return Some(true);
    }
    let body: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    assert_eq!(answer.status, 503, "{body}");
    match body["outcome"].as_str() {
        Some("not_applied") => Some(false),
        Some("indeterminate") => None,
        other => panic!("a write's 503 without an outcome ({other:?}): {body}"),
    }
}

async fn client(id: u64, urls: Arc<Vec<String>>, epoch: Instant, run: Duration, history: Arc<Mutex<Vec<Event>>>) {
    let c = Client::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id + 1));
    let micros = || u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    while epoch.elapsed() < run {
        let url = &urls[rng.next(urls.len() as u64) as usize];
        let key = 1 + rng.next(u64::from(KEYS)) as u32;
        let call = micros();
        match rng.next(3) {
            kind @ (0 | 1) => {
                let path = if kind == 0 { "reg" } else { "unreg" };
                let answer = c
                    .try_raw(
                        "POST",
                        &format!("{url}/{path}?service={SERVICE}"),
                        &instance("10.0.0.1", key as u16),
                    )
                    .await;
                let ret = micros();
                let op = Action::Write(kind == 0);
                match write_outcome(&answer) {
                    Some(true) => history.lock().unwrap().push(Event {
                        key,
                        op,
                        call,
                        ret: Some(ret),
                    }),
                    Some(false) => {}
                    None => history.lock().unwrap().push(Event {
                        key,
                        op,
                        call,
                        ret: None,
                    }),
                }
            }
            _ => {
                let answer = c
                    .try_raw("GET", &format!("{url}/findAll?service={SERVICE}&consistent=true"), "")
                    .await;
                let ret = micros();
                // A read that was not served tells nothing.
                if let Ok(answer) = answer.filter(|a| a.status == 200) {
                    let list: serde_json::Value = serde_json::from_slice(&answer.body).expect("a JSON list");
                    record_read(&history, &list, call, ret);
                }
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// One read of every key: what a `findAll` list, read between `call` and `ret`, held.
fn record_read(history: &Mutex<Vec<Event>>, list: &serde_json::Value, call: u64, ret: u64) {
    let ports: Vec<u64> = list
        .as_array()
        .map(|l| l.iter().filter_map(|i| i["port"].as_u64()).collect())
        .unwrap_or_default();
    let mut events = history.lock().unwrap();
    for key in 1..=KEYS {
        let op = Action::Read(ports.contains(&u64::from(key)));
        events.push(Event {
            key,
            op,
            call,
            ret: Some(ret),
        });
    }
}

/// `Result::filter` for a response: `Err` when it is not one `keep` accepts.
trait Filter<T> {
    fn filter(self, keep: impl FnOnce(&T) -> bool) -> Result<T, ()>;
}

impl<T, E> Filter<T> for Result<T, E> {
    fn filter(self, keep: impl FnOnce(&T) -> bool) -> Result<T, ()> {
        match self {
            Ok(value) if keep(&value) => Ok(value),
            _ => Err(()),
        }
    }
}

/// A fault the runs put the cluster in, for 2 s at a time.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// None: a healthy cluster.
    Healed,
    /// The leader cut off from every other node.
    LeaderAlone,
    /// The leader and one follower cut off from the rest.
    LeaderWithFollower,
    /// The leader unable to reach one follower (one way).
    LeaderToFollower,
    /// One follower cut off from every other node.
    FollowerAlone,
}

/// Runs `clients` clients against `nodes` nodes for the run's time, putting the cluster in
/// `faults` in turn, then checks the history.
async fn linearizable_under(nodes: usize, dropping: bool, clients: u64, faults: &[Fault]) {
    let cluster = if dropping { start_dropping(nodes) } else { start(nodes) };
    let urls = Arc::new(cluster.urls.clone());
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    agreed_leader(&c, &all).await;

    let run = run_for();
    let epoch = Instant::now();
    let history = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..clients)
        .map(|id| tokio::spawn(client(id, urls.clone(), epoch, run, history.clone())))
        .collect();
    let mut elections = Vec::new();
    let mut round = 0;
    while epoch.elapsed() < run {
        cluster.cuts.heal();
        let leader = agreed_leader(&c, &all).await;
        let at = all.iter().position(|u| *u == leader).unwrap_or(0);
        let follower = all[(at + 1) % all.len()];
        let fault = faults[round % faults.len()];
        round += 1;
        let cut_off: Vec<&str> = match fault {
            Fault::Healed => Vec::new(),
            Fault::LeaderAlone => vec![&leader],
            Fault::LeaderWithFollower => vec![&leader, follower],
            Fault::LeaderToFollower => {
                cluster.cuts.cut(&leader, follower);
                Vec::new()
            }
            Fault::FollowerAlone => vec![follower],
        };
        let rest: Vec<&str> = all.iter().copied().filter(|u| !cut_off.contains(u)).collect();
        cluster.cuts.partition(&cut_off, &rest);
        let cut_at = Instant::now();
        if cut_off.contains(&leader.as_str()) {
            agreed_leader(&c, &rest).await;
            let took = cut_at.elapsed();
            elections.push((fault, took));
            assert!(
                took < ELECTED_WITHIN,
                "{rest:?} took {took:?} to elect a leader with {cut_off:?} cut off ({fault:?})"
            );
        }
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(cut_at.elapsed())).await;
    }
    cluster.cuts.heal();
    for client in clients {
        client.await.expect("a client");
    }
    // Once healed, one last read of every key through every node.
    agreed_leader(&c, &all).await;
    for url in all.iter() {
        let call = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let list = c
            .ok("GET", &format!("{url}/findAll?service={SERVICE}&consistent=true"), "")
            .await;
        let ret = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        record_read(&history, &list, call, ret);
    }

    let history = history.lock().unwrap().clone();
    let writes = history.iter().filter(|e| matches!(e.op, Action::Write(_))).count();
    let unknown = history.iter().filter(|e| e.ret.is_none()).count();
    eprintln!(
        "{nodes} nodes: {} operations, {writes} writes, {unknown} of unknown outcome; elections: {elections:?}",
        history.len()
    );
    assert!(writes >= 20, "too few writes to say anything: {writes}");
    if let Err(why) = check(&history) {
        panic!("not linearizable: {why}");
    }
    for node in cluster.nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_under_partitions_are_linearizable() {
    use Fault::*;
    linearizable_under(
        3,
        false,
        3,
        &[LeaderAlone, Healed, LeaderToFollower, Healed, FollowerAlone],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_stay_linearizable_and_elect_whatever_the_leader_is_cut_off_with() {
    use Fault::*;
    linearizable_under(5, true, 5, &[LeaderAlone, Healed, LeaderWithFollower, Healed]).await;
}
