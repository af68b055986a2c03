//! The cost curve of the registry core: per-operation time with 1k, 10k and 100k
//! instances registered (100 instances per service), and snapshot encode / parse+restore
//! of the whole registry.
//!
//! `cargo bench -p registry-core --bench registry`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use registry_core::{InstanceMeta, Registry, Snapshot};

const PER_SERVICE: u64 = 100;
const SIZES: [u64; 3] = [1_000, 10_000, 100_000];

fn instance(i: u64) -> InstanceMeta {
    let mut meta = InstanceMeta::new(
        "http",
        format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        8080,
        "c",
    )
    .expect("valid instance");
    meta.parameters.insert("env".into(), "bench".into());
    meta.parameters.insert("weight".into(), "100".into());
    meta
}

fn service(i: u64) -> String {
    format!("bench.Service{}", i / PER_SERVICE)
}

fn filled(n: u64) -> (Registry, Vec<(String, InstanceMeta)>) {
    let registry = Registry::new();
    let all: Vec<(String, InstanceMeta)> = (0..n).map(|i| (service(i), instance(i))).collect();
    for (s, m) in &all {
        registry.register(s, m, 1).expect("register");
    }
    (registry, all)
}

fn per_operation(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_op");
    for n in SIZES {
        let (registry, all) = filled(n);
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::new("renew", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 7919) % all.len();
                let (s, m) = &all[i];
                black_box(registry.renew(s, m, 2).expect("renew"));
            })
        });
        // A new instance in an existing service, then its removal, so that the registry
        // stays at n.
        let fresh = instance(n + 1);
        let fresh_service = service(n / 2);
        group.bench_with_input(BenchmarkId::new("register+unregister", n), &n, |b, _| {
            b.iter(|| {
                registry.register(&fresh_service, &fresh, 3).expect("register");
                registry.unregister(&fresh_service, &fresh).expect("unregister");
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
        let (registry, _) = filled(n);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("encode", n), &n, |b, _| {
            b.iter(|| black_box(serde_json::to_vec(&registry.snapshot()).expect("encode")))
        });
        let json = serde_json::to_vec(&registry.snapshot()).expect("encode");
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
