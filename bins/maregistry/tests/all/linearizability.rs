//! A short Jepsen-style run, small enough for CI: three clients register, unregister and
//! read (`consistent=true`) three instances through every node of a 3-node raft cluster
//! while its links are cut and healed (the leader cut off, the leader unable to reach a
//! follower, a follower cut off); the recorded history must be linearizable per instance
//! (`test_support::linearizable`, Wing and Gong's search), which also means no
//! acknowledged write is lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_support::linearizable::{check, Event, Op};
use test_support::{agreed_leader, instance, Client};
use tokio::time::Instant;

use crate::partitions::start;

const SERVICE: &str = "lin";
const KEYS: u32 = 3;
const RUN: Duration = Duration::from_secs(10);
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

async fn client(id: u64, urls: Arc<Vec<String>>, epoch: Instant, history: Arc<Mutex<Vec<Event>>>) {
    let c = Client::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id + 1));
    let micros = || u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    while epoch.elapsed() < RUN {
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
                let op = Op::Write(kind == 0);
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
        let op = Op::Read(ports.contains(&u64::from(key)));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_under_partitions_are_linearizable() {
    let cluster = start(3);
    let urls = Arc::new(cluster.urls.clone());
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    let c = Client::new();
    agreed_leader(&c, &all).await;

    let epoch = Instant::now();
    let history = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..3)
        .map(|id| tokio::spawn(client(id, urls.clone(), epoch, history.clone())))
        .collect();
    // Faults, in turn, each for 2 s: the leader cut off, healed, the leader unable to reach
    // one follower (one way), healed, a follower cut off.
    let mut round = 0;
    while epoch.elapsed() < RUN {
        cluster.cuts.heal();
        let leader = agreed_leader(&c, &all).await;
        let follower = all.iter().copied().find(|u| *u != leader).unwrap_or(&leader).to_owned();
        match round % 5 {
            0 => {
                let others: Vec<&str> = all.iter().copied().filter(|u| *u != leader).collect();
                cluster.cuts.isolate(&leader, &others);
            }
            2 => cluster.cuts.cut(&leader, &follower),
            4 => {
                let others: Vec<&str> = all.iter().copied().filter(|u| *u != follower).collect();
                cluster.cuts.isolate(&follower, &others);
            }
            _ => {}
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
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
    let writes = history.iter().filter(|e| matches!(e.op, Op::Write(_))).count();
    let unknown = history.iter().filter(|e| e.ret.is_none()).count();
    eprintln!(
        "{} operations, {writes} writes, {unknown} of unknown outcome",
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
