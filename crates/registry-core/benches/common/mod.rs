//! What both benches register: instance `i` with two parameters, as the HTTP harness does.

use registry_core::{Command, InstanceMeta, Registry};

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

/// Registers `instance` under `service` as a leader does: one command, applied.
pub fn register(registry: &Registry, service: &str, instance: &InstanceMeta, now: u64) {
    let command = Command::Register {
        service: service.to_owned(),
        instance: instance.clone(),
        now_ms: now,
    };
    assert!(!registry.apply(&command, 0).rejected, "a valid registration");
}

/// Unregisters `instance` from `service` as a leader does.
pub fn unregister(registry: &Registry, service: &str, instance: &InstanceMeta) {
    let command = Command::Unregister {
        service: service.to_owned(),
        instance: instance.clone(),
    };
    assert!(!registry.apply(&command, 0).rejected, "a valid unregistration");
}
