//! Replicated commands (docs/spec.md §7): applying a log is deterministic, versions move as in
//! docs/spec.md §2, and an eviction spares an instance registered again after the decision.

use registry_core::{Applied, Command, InstanceMeta, Registry, Snapshot, Victim};

use crate::writes::Writes;

fn inst(port: u16) -> InstanceMeta {
    InstanceMeta::new("http", "10.0.0.1", port, "ctx").unwrap()
}

fn register(service: &str, port: u16, now_ms: u64) -> Command {
    Command::Register {
        service: service.to_owned(),
        instance: inst(port),
        now_ms,
    }
}

fn unregister(service: &str, port: u16) -> Command {
    Command::Unregister {
        service: service.to_owned(),
        instance: inst(port),
    }
}

fn evict(victims: &[(&str, u16, u64)]) -> Command {
    Command::Evict {
        now_ms: 99,
        victims: victims
            .iter()
            .map(|(service, port, revision)| Victim {
                service: (*service).to_owned(),
                url: inst(*port).url(),
                revision: *revision,
            })
            .collect(),
    }
}

/// Applies `log` from index 1 on.
fn apply_all(registry: &Registry, log: &[Command]) -> Vec<Applied> {
    log.iter()
        .enumerate()
        .map(|(i, c)| registry.apply(c, i as u64 + 1))
        .collect()
}

#[test]
fn versions_move_as_with_the_direct_calls() {
    let r = Registry::new();
    let applied = apply_all(
        &r,
        &[
            register("a", 1, 10), // v1
            register("a", 1, 20), // same instance: no change
            register("b", 2, 30), // v2
            unregister("a", 1),   // v3
            unregister("a", 1),   // unknown: no change
        ],
    );
    let changes: Vec<u64> = applied.iter().map(|a| a.changes).collect();
    assert_eq!(changes, vec![1, 0, 1, 1, 0]);
    assert_eq!(applied.last().map(|a| a.version), Some(3));
    assert_eq!(r.version("a"), 3);
    assert_eq!(r.version("b"), 2);

    let direct = Registry::new();
    direct.register("a", &inst(1), 10).unwrap();
    direct.register("b", &inst(2), 30).unwrap();
    direct.unregister("a", &inst(1)).unwrap();
    assert_eq!(direct.versions(&["a", "b"]), r.versions(&["a", "b"]));
    assert_eq!(direct.find_all_json("b"), r.find_all_json("b"));
}

#[test]
fn two_nodes_applying_one_log_hold_the_same_state() {
    let log = vec![
        register("svc", 1, 10),
        register("svc", 2, 11),
        register("other", 3, 12),
        unregister("svc", 1),
        evict(&[("svc", 2, 2)]),
        register("svc", 4, 13),
    ];
    let (a, b) = (Registry::new(), Registry::new());
    apply_all(&a, &log);
    // A renewal on one node (leader soft state) must not change the replicated state.
    a.renew("svc", &inst(4), 1_000).unwrap();
    apply_all(&b, &log);
    let mut sa = a.snapshot();
    let mut sb = b.snapshot();
    sa.timestamps.clear();
    sb.timestamps.clear();
    assert_eq!(sa, sb);
    assert_eq!(a.registry_version(), 6);
    assert_eq!(sa.revisions["svc@http://10.0.0.1:4/ctx"], 6);
}

#[test]
fn an_eviction_spares_an_instance_registered_again() {
    let r = Registry::new();
    r.apply(&register("svc", 1, 10), 5);
    r.apply(&register("svc", 2, 10), 6);
    // The leader decides to evict both (revisions 5 and 6); then port 1 registers again.
    let decision = r.expired(10_000, 1_000);
    assert_eq!(decision.len(), 2);
    r.apply(&register("svc", 1, 9_000), 7);
    let applied = r.apply(
        &Command::Evict {
            now_ms: 10_000,
            victims: decision,
        },
        8,
    );
    assert_eq!(applied.changes, 1, "only port 2 goes");
    let ports: Vec<u16> = r.find_all("svc").iter().map(|i| i.port).collect();
    assert_eq!(ports, vec![1]);
    // Evicting what is gone already changes nothing.
    assert_eq!(r.apply(&evict(&[("svc", 2, 6), ("nope", 9, 1)]), 9).changes, 0);
}

#[test]
fn an_invalid_command_is_applied_as_nothing() {
    let r = Registry::new();
    let mut bad = inst(1);
    bad.port = 0;
    let applied = r.apply(
        &Command::Register {
            service: "svc".into(),
            instance: bad,
            now_ms: 1,
        },
        1,
    );
    assert!(applied.rejected);
    assert_eq!(applied.changes, 0);
    assert!(r.apply(&register("a b", 1, 1), 2).rejected);
    assert_eq!(r.registry_version(), 0);
}

#[test]
fn commands_travel_as_tagged_json() {
    let json = serde_json::to_value(register("svc", 1, 7)).unwrap();
    assert_eq!(json["op"], "register");
    assert_eq!(json["now_ms"], 7);
    let back: Command = serde_json::from_value(json).unwrap();
    assert_eq!(back, register("svc", 1, 7));
    let evict = evict(&[("svc", 1, 3)]);
    let text = serde_json::to_string(&evict).unwrap();
    assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), evict);
}

#[test]
fn a_raft_snapshot_keeps_the_revisions() {
    let r = Registry::new();
    r.apply(&register("svc", 1, 10), 41);
    r.apply(&register("svc", 2, 10), 42);
    let json = r.snapshot_json_with_revisions();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value, serde_json::to_value(r.snapshot()).unwrap());
    assert!(
        !String::from_utf8_lossy(&r.snapshot_json()).contains("REVISIONS"),
        "the seed's form has none"
    );

    let copy = Registry::new();
    copy.restore(Snapshot::from_json(&json).unwrap(), 0).unwrap();
    // The guard works the same on the copy.
    assert_eq!(copy.apply(&evict(&[("svc", 1, 40), ("svc", 2, 42)]), 43).changes, 1);
    let ports: Vec<u16> = copy.find_all("svc").iter().map(|i| i.port).collect();
    assert_eq!(ports, vec![1]);
}

#[test]
fn a_batch_applies_its_commands_in_order_as_one_entry() {
    let (batched, single) = (Registry::new(), Registry::new());
    let commands = vec![register("svc", 1, 10), register("svc", 2, 10), unregister("svc", 1)];
    let applied = batched.apply(
        &Command::Batch {
            commands: commands.clone(),
        },
        7,
    );
    assert_eq!(applied.changes, 3);
    assert_eq!(applied.version, 3);
    for command in &commands {
        single.apply(command, 7);
    }
    assert_eq!(batched.snapshot(), single.snapshot());
    // One index for the whole batch: an eviction decided before it spares what it
    // registered again.
    let spared = batched.apply(&evict(&[("svc", 2, 6)]), 8);
    assert_eq!(spared.changes, 0);
}

#[test]
fn a_batch_with_one_invalid_command_is_applied_as_nothing() {
    let r = Registry::new();
    r.apply(&register("svc", 1, 10), 1);
    let batch = Command::Batch {
        commands: vec![register("svc", 2, 10), unregister("svc", 1), register("a b", 3, 10)],
    };
    assert!(
        batch.validate().is_err(),
        "the bad name is found before anything is applied"
    );
    let applied = r.apply(&batch, 2);
    assert!(applied.rejected);
    assert_eq!((applied.changes, applied.version), (0, 1));
    let ports: Vec<u16> = r.find_all("svc").iter().map(|i| i.port).collect();
    assert_eq!(
        ports,
        vec![1],
        "neither the registration nor the unregistration before it"
    );
}

#[test]
fn a_registration_again_with_the_same_parameters_records_its_entry() {
    let r = Registry::new();
    r.apply(&register("svc", 1, 10), 5);
    // The same instance again (nothing changes, the fast path) at entry 9: an eviction
    // decided at revision 5 spares it; one decided at 9 removes it.
    assert_eq!(r.apply(&register("svc", 1, 20), 9).changes, 0);
    assert_eq!(r.apply(&evict(&[("svc", 1, 5)]), 10).changes, 0);
    assert_eq!(r.apply(&evict(&[("svc", 1, 9)]), 11).changes, 1);
}

/// Records what it is told, in a log shared with other observers.
struct Recorder {
    name: &'static str,
    log: std::sync::Arc<std::sync::Mutex<Vec<(&'static str, u64)>>>,
}

impl registry_core::Observer for Recorder {
    fn changed(&self, version: u64, _changed: registry_core::Changed<'_>) {
        self.log.lock().unwrap().push((self.name, version));
    }
}

#[test]
fn every_observer_is_told_of_every_change_in_the_order_they_were_added() {
    let registry = Registry::new();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for name in ["watch", "pushes", "cache"] {
        registry.observe(std::sync::Arc::new(Recorder { name, log: log.clone() }));
    }
    let command = Command::Register {
        service: "svc".to_owned(),
        instance: InstanceMeta::new("http", "10.0.0.1", 80, "").unwrap(),
        now_ms: 1,
    };
    registry.apply(&command, 1);
    // The same registration again is no change: nobody is told.
    registry.apply(&command, 2);
    assert_eq!(*log.lock().unwrap(), [("watch", 1), ("pushes", 1), ("cache", 1)]);
}
