//! What both benches register: instance `i` with two parameters, as the HTTP harness does.

use registry_core::InstanceMeta;

/// A distinct instance for each `i` below 2^24.
pub fn instance(i: u64) -> InstanceMeta {
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
