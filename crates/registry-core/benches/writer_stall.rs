//! How long can a snapshot hold up a writer? With 100,000 instances registered, one
//! thread takes `snapshot_json` in a loop while another registers and unregisters an
//! instance, timing every write. Prints the write latency percentiles and the worst case,
//! with and without the snapshot thread.
//!
//! `cargo bench -p registry-core --bench writer_stall`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{instance, register, unregister};
use registry_core::Registry;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn writes(registry: &Registry, for_how_long: Duration) -> Vec<Duration> {
    let fresh = instance(1 << 23);
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < for_how_long {
        let t = Instant::now();
        register(registry, "bench.Service7", &fresh, 2);
        unregister(registry, "bench.Service7", &fresh);
        latencies.push(t.elapsed());
    }
    latencies.sort_unstable();
    latencies
}

fn report(label: &str, latencies: &[Duration]) {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{label}: {} register+unregister pairs, p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        latencies[latencies.len() - 1]
    );
}

fn main() {
    let registry = Arc::new(Registry::new());
    for i in 0..100_000u64 {
        register(&registry, &format!("bench.Service{}", i % 1_000), &instance(i), 1);
    }
    report("alone", &writes(&registry, Duration::from_secs(2)));

    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(AtomicU64::new(0));
    let snapshotter = {
        let (registry, stop, taken) = (registry.clone(), stop.clone(), taken.clone());
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let json = registry.snapshot_json();
                slowest = slowest.max(t.elapsed());
                assert!(json.len() > 1_000_000);
                taken.fetch_add(1, Ordering::Relaxed);
            }
            slowest
        })
    };
    let latencies = writes(&registry, Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let slowest = snapshotter.join().expect("snapshot thread");
    report("while snapshotting", &latencies);
    println!(
        "{} snapshots of 100,000 instances taken meanwhile, slowest {slowest:?}",
        taken.load(Ordering::Relaxed)
    );
}
