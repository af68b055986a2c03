//! The cost curve of the registry core: per-operation time with 1k, 10k and 100k
//! instances registered (100 instances per service), and snapshot encode / parse+restore
//! of the whole registry.
//!
//! `cargo bench -p registry-core --bench registry`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
mod common;

use common::{instance, register, unregister};
use registry_core::{Registry, Snapshot};

/// The allocator the server runs with (bins/maregistry/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PER_SERVICE: u64 = 100;
const SIZES: [u64; 3] = [1_000, 10_000, 100_000];

fn service(i: u64) -> String {
    format!("bench.Service{}", i / PER_SERVICE)
}

fn filled(n: u64) -> Registry {
    let registry = Registry::new();
    for i in 0..n {
        register(&registry, &service(i), &instance(i), 1);
    }
    registry
}

fn per_operation(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_op");
    for n in SIZES {
        let registry = filled(n);
        // A heartbeat of a random known instance. The input is built fresh for each call
        // outside the timed part, as a server parses it fresh from the request: the time
        // is the registry's, not that of fetching the input from a 100k-element table.
        let mut i = 0u64;
        group.bench_with_input(BenchmarkId::new("renew", n), &n, |b, _| {
            b.iter_batched(
                || {
                    i = (i + 7919) % n;
                    (service(i), instance(i))
                },
                |(s, m)| black_box(registry.renew_known_only(&[s.as_str()], &m, 2).expect("renew")),
                BatchSize::SmallInput,
            )
        });
        // A new instance in an existing service, then its removal, so that the registry
        // stays at n.
        let fresh = instance(n + 1);
        let fresh_service = service(n / 2);
        group.bench_with_input(BenchmarkId::new("register+unregister", n), &n, |b, _| {
            b.iter(|| {
                register(&registry, &fresh_service, &fresh, 3);
                unregister(&registry, &fresh_service, &fresh);
            })
        });
        group.bench_with_input(BenchmarkId::new("find_all_json", n), &n, |b, _| {
            b.iter(|| black_box(registry.find_all_json(&fresh_service)))
        });
        group.bench_with_input(BenchmarkId::new("find_all", n), &n, |b, _| {
            b.iter(|| black_box(registry.find_all(&fresh_service)))
        });
    }
    group.finish();
}

fn snapshots(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    for n in SIZES {
        let registry = filled(n);
        group.throughput(Throughput::Elements(n));
        // What `/snapshot` answers.
        group.bench_with_input(BenchmarkId::new("encode", n), &n, |b, _| {
            b.iter(|| black_box(registry.snapshot_json()))
        });
        let json = registry.snapshot_json();
        let target = Registry::new();
        group.bench_with_input(BenchmarkId::new("parse+restore", n), &n, |b, _| {
            b.iter(|| {
                let snapshot = Snapshot::from_json(&json).expect("parse");
                target.restore(snapshot, 5).expect("restore");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_operation, snapshots);
criterion_main!(benches);
