//! Elections on five voters (docs/spec.md §7, "Elections"): whatever subset the leader is
//! cut off with, the majority elects a new leader within the failover time, several times
//! over. The cuts drop what is sent over them, as a real partition does: a call to the
//! other side hangs until its timeout, so the survivors' pre-vote rounds overlap. Writers
//! keep the log growing through every node, so that the survivors' logs differ when the
//! cut comes (the candidate that times out first is often not the one with the longest
//! log).

use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;

use test_support::{agreed_leader, eventually, instance, Client, LIMIT};
use tokio::time::Instant;

use crate::partitions::{start_dropping, ELECTED_WITHIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_voters_elect_a_leader_whatever_the_leader_is_cut_off_with() {
    let cluster = start_dropping(5);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let mut took = Vec::new();
    let done = Arc::new(AtomicBool::new(false));
    let port = Arc::new(AtomicU16::new(1));
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (url, done, port) = (cluster.urls[i % 5].clone(), done.clone(), port.clone());
            tokio::spawn(async move {
                let c = Client::new();
                while !done.load(Ordering::Relaxed) {
                    let p = port.fetch_add(1, Ordering::Relaxed).max(1);
                    let _ = c
                        .try_raw("POST", &format!("{url}/reg?service=svc"), &instance("10.0.0.1", p))
                        .await;
                    // Enough to keep the log moving, without taking the machine from the
                    // tests that run beside this one (a browser's among them).
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();
    for round in 0..6 {
        let leader = agreed_leader(&c, &all).await;
        // Alone, then with one follower (the next one along), in turn.
        let mut cut_off = vec![leader.as_str()];
        if round % 2 == 1 {
            let at = all.iter().position(|u| *u == leader).unwrap_or(0);
            cut_off.push(all[(at + 1) % all.len()]);
        }
        let rest: Vec<&str> = all.iter().copied().filter(|u| !cut_off.contains(u)).collect();
        cluster.cuts.partition(&cut_off, &rest);
        let cut_at = Instant::now();
        let new = agreed_leader(&c, &rest).await;
        let elapsed = cut_at.elapsed();
        took.push((cut_off.len(), elapsed));
        assert!(
            elapsed < ELECTED_WITHIN,
            "round {round}: the majority {rest:?} took {elapsed:?} to elect a leader with {cut_off:?} cut off \
             (rounds so far: {took:?})"
        );
        assert!(!cut_off.contains(&new.as_str()));
        cluster.cuts.heal();
        eventually("the cluster agrees on one leader again", LIMIT, || async {
            agreed_leader(&c, &all).await == new
        })
        .await;
    }
    done.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    eprintln!("cut-off sizes and times to a new leader: {took:?}");
    for node in cluster.nodes {
        node.stop().await;
    }
}
