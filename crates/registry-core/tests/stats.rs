//! What the registry counts for metrics, and its overviews for the console.

use registry_core::{Command, InstanceMeta, Registry, ServiceSummary, Victim};

fn inst(port: u16) -> InstanceMeta {
    InstanceMeta::new("http", "10.0.0.1", port, "ctx").unwrap()
}

#[test]
fn totals_count_changes_not_calls() {
    let r = Registry::new();
    r.register("a", &inst(1), 1_000).unwrap();
    r.register("a", &inst(1), 1_001).unwrap(); // the same again: not a change
    r.register("a", &inst(2), 1_000).unwrap();
    r.unregister("a", &inst(3)).unwrap(); // unknown: not a change
    r.unregister("a", &inst(2)).unwrap();
    r.renew("a", &inst(1), 2_000).unwrap();
    r.renews(&["a", "b"], &inst(1), 2_000).unwrap(); // registers under b
    assert!(
        r.renews(&["a", "bad name"], &inst(1), 2_000).is_err(),
        "refused: not counted"
    );
    let evicted = r.evict_expired(30_000, 20_000);
    assert_eq!(evicted.len(), 2);
    let stats = r.stats();
    assert_eq!(stats.registrations, 3, "1, 2 and the heartbeat's registration under b");
    assert_eq!(stats.unregistrations, 1);
    assert_eq!(stats.renewals, 3);
    assert_eq!(stats.evictions, 2);
    assert_eq!(
        (stats.instances, stats.services),
        (0, 0),
        "services without instances are not counted"
    );
    assert_eq!(stats.version, r.registry_version());
}

#[test]
fn commands_count_the_same_way() {
    let r = Registry::new();
    let register = |port| Command::Register {
        service: "a".to_owned(),
        instance: inst(port),
        now_ms: 1_000,
    };
    r.apply(
        &Command::Batch {
            commands: vec![register(1), register(2), register(3)],
        },
        1,
    );
    r.apply(
        &Command::Unregister {
            service: "a".to_owned(),
            instance: inst(3),
        },
        2,
    );
    let victim = |port, revision| Victim {
        service: "a".to_owned(),
        url: inst(port).url(),
        revision,
    };
    // h:1 is evicted; h:2's revision does not match (registered again since): it stays.
    r.apply(
        &Command::Evict {
            now_ms: 30_000,
            victims: vec![victim(1, 1), victim(2, 0)],
        },
        3,
    );
    let stats = r.stats();
    assert_eq!((stats.registrations, stats.unregistrations, stats.evictions), (3, 1, 1));
    assert_eq!((stats.instances, stats.services), (1, 1));
}

#[test]
fn services_and_instances_overviews() {
    let r = Registry::new();
    r.register("b", &inst(1), 1_000).unwrap();
    r.register("a", &inst(1), 1_000).unwrap();
    r.register("a", &inst(2), 1_500).unwrap();
    r.renew("a", &inst(1), 4_000).unwrap();
    let (version, services) = r.services();
    assert_eq!(version, 3);
    assert_eq!(
        services,
        vec![
            ServiceSummary {
                name: "a".to_owned(),
                version: 3,
                instances: 2
            },
            ServiceSummary {
                name: "b".to_owned(),
                version: 1,
                instances: 1
            },
        ]
    );
    let (version, instances) = r.instances_renewed("a");
    assert_eq!(version, 3);
    let seen: Vec<(String, bool, u64)> = instances.iter().map(|(i, at)| (i.url(), i.status, *at)).collect();
    assert_eq!(
        seen,
        vec![(inst(1).url(), true, 4_000), (inst(2).url(), true, 1_500)],
        "registration order, as stored, with the last renewal"
    );
    assert_eq!(r.instances_renewed("nope"), (0, Vec::new()));
}
