//! Elections on five voters (docs/spec.md §7, "Elections"): whatever subset the leader is
//! cut off with, the majority elects a new leader within the failover time, several times
//! over. The cuts drop what is sent over them, as a real partition does: a call to the
//! other side hangs until its timeout, so the survivors' pre-vote rounds overlap.

use std::time::Duration;

use test_support::{agreed_leader, eventually, Client, LIMIT};
use tokio::time::Instant;

use crate::partitions::start_dropping;

/// Elections here take 1–1.25 s of silence plus a pre-vote and a vote; on a loaded 2-core
/// machine, a few seconds more. A majority that cannot agree takes rounds of ~1.1 s each,
/// for as long as the partition lasts.
const ELECTED_WITHIN: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_voters_elect_a_leader_whatever_the_leader_is_cut_off_with() {
    let cluster = start_dropping(5);
    let all: Vec<&str> = cluster.urls.iter().map(String::as_str).collect();
    let c = Client::new();
    let mut took = Vec::new();
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
    eprintln!("cut-off sizes and times to a new leader: {took:?}");
    for node in cluster.nodes {
        node.stop().await;
    }
}
