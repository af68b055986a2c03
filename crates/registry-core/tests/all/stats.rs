//! What the registry counts for metrics, and its overviews for the console.

use registry_core::{Command, InstanceMeta, Registry, ServiceSummary, Victim};

use crate::writes::Writes;

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

fn leased(port: u16, lease: &str) -> InstanceMeta {
    let mut i = inst(port);
    i.parameters
        .insert(registry_core::LEASE_PARAMETER.to_owned(), lease.to_owned());
    i
}

#[test]
fn an_instance_expires_on_its_own_lease_within_the_bounds() {
    let r = Registry::new().with_lease_bounds(registry_core::LeaseBounds {
        min: std::time::Duration::from_secs(5),
        max: std::time::Duration::from_secs(120),
    });
    r.register("a", &inst(1), 0).unwrap(); // the global TTL: 20 s
    r.register("a", &leased(2, "90s"), 0).unwrap();
    r.register("a", &leased(3, "1"), 0).unwrap(); // 1 s: raised to 5 s
    r.register("a", &leased(4, "1h"), 0).unwrap(); // cut to 120 s
    let gone = |now| -> Vec<u16> {
        let mut ports: Vec<u16> = r
            .expired(now, 20_000)
            .iter()
            .map(|v| {
                v.url
                    .split(':')
                    .nth(2)
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        ports.sort();
        ports
    };
    assert_eq!(gone(5_000), Vec::<u16>::new());
    assert_eq!(gone(5_001), vec![3]);
    assert_eq!(gone(20_001), vec![1, 3]);
    assert_eq!(gone(90_001), vec![1, 2, 3]);
    assert_eq!(gone(120_001), vec![1, 2, 3, 4]);
    assert_eq!(r.evict_expired(90_001, 20_000).len(), 3);
    assert_eq!(r.find_all("a").len(), 1);

    // A snapshot carries the lease (it is a parameter): restored, the instance keeps it.
    let copy = Registry::new();
    copy.restore(r.snapshot(), 0).unwrap();
    assert!(copy.expired(119_000, 20_000).is_empty());
    // So does a register command.
    let applied = Registry::new();
    applied.apply(
        &Command::Register {
            service: "a".to_owned(),
            instance: leased(5, "60s"),
            now_ms: 0,
        },
        1,
    );
    assert!(applied.expired(59_000, 20_000).is_empty());
    assert_eq!(applied.expired(60_001, 20_000).len(), 1);
}

#[test]
fn registering_again_without_a_lease_goes_back_to_the_ttl() {
    let r = Registry::new();
    r.register("a", &leased(1, "90s"), 0).unwrap();
    assert!(r.expired(20_001, 20_000).is_empty());
    r.register("a", &inst(1), 0).unwrap(); // new parameters: no lease any more
    assert_eq!(r.expired(20_001, 20_000).len(), 1);
    r.register("a", &leased(1, "90s"), 0).unwrap();
    r.unregister("a", &inst(1)).unwrap();
    r.register("a", &inst(1), 0).unwrap(); // a removal forgets the lease too
    assert_eq!(r.expired(20_001, 20_000).len(), 1);
}

#[test]
fn a_bad_lease_is_refused() {
    let r = Registry::new();
    for bad in ["soon", "0", "0s", "-5", "1.5s"] {
        let err = r.register("a", &leased(1, bad), 0).unwrap_err().to_string();
        assert!(err.contains("maregistry.lease"), "{bad}: {err}");
    }
    assert_eq!(r.registry_version(), 0, "nothing changed");
}
