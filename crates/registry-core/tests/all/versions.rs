//! The version rules of the behaviour contract (docs/spec.md §2), one test per rule.

use registry_core::{InstanceMeta, Registry};

use crate::writes::Writes;

const SVC: &str = "app1_public_dev_cn.kimmking.kkrpc.demo.api.UserService";

fn inst(port: u16) -> InstanceMeta {
    InstanceMeta::new("http", "192.168.1.100", port, "user").unwrap()
}

fn with_param(port: u16, key: &str, value: &str) -> InstanceMeta {
    let mut i = inst(port);
    i.parameters.insert(key.into(), value.into());
    i
}

#[test]
fn a_new_registry_answers_zero() {
    let r = Registry::new();
    assert_eq!(r.registry_version(), 0);
    assert_eq!(r.version(SVC), 0);
    assert_eq!(r.versions(&[SVC, "other"]), vec![0, 0]);
    assert!(r.find_all(SVC).is_empty());
    assert_eq!(&r.find_all_json(SVC)[..], b"[]");
}

#[test]
fn a_new_registration_is_a_change() {
    let r = Registry::new();
    let answer = r.register(SVC, &inst(8080), 1_000).unwrap();
    assert!(answer.status);
    assert_eq!(r.registry_version(), 1);
    assert_eq!(r.version(SVC), 1);
    r.register("other", &inst(8080), 1_000).unwrap();
    assert_eq!(r.registry_version(), 2);
    assert_eq!(r.version(SVC), 1, "another service's change does not move this one");
    assert_eq!(r.version("other"), 2);
}

#[test]
fn a_duplicate_registration_is_not_a_change_but_renews() {
    let r = Registry::new();
    r.register(SVC, &inst(8080), 1_000).unwrap();
    r.register(SVC, &inst(8080), 5_000).unwrap();
    assert_eq!(r.registry_version(), 1);
    assert_eq!(r.find_all(SVC).len(), 1);
    assert_eq!(
        r.snapshot().timestamps[&format!("{SVC}@http://192.168.1.100:8080/user")],
        5_000
    );
}

#[test]
fn new_parameters_are_a_change_and_keep_the_position() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 0).unwrap();
    r.register(SVC, &inst(2), 0).unwrap();
    r.register(SVC, &with_param(1, "env", "dev"), 0).unwrap();
    assert_eq!(r.registry_version(), 3);
    assert_eq!(r.version(SVC), 3);
    let all = r.find_all(SVC);
    assert_eq!(all.iter().map(|i| i.port).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(all[0].parameters["env"], "dev");
    // The same parameters again: no change.
    r.register(SVC, &with_param(1, "env", "dev"), 0).unwrap();
    assert_eq!(r.registry_version(), 3);
}

#[test]
fn registration_order_is_kept() {
    let r = Registry::new();
    for port in [5, 3, 9, 1] {
        r.register(SVC, &inst(port), 0).unwrap();
    }
    r.unregister(SVC, &inst(3)).unwrap();
    r.register(SVC, &inst(3), 0).unwrap();
    let ports: Vec<u16> = r.find_all(SVC).iter().map(|i| i.port).collect();
    assert_eq!(ports, vec![5, 9, 1, 3]);
    assert!(r.find_all(SVC).iter().all(|i| i.status));
}

#[test]
fn an_unregistration_that_removes_is_a_change_and_one_that_does_not_is_not() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 0).unwrap();
    let answer = r.unregister(SVC, &inst(1)).unwrap();
    assert!(!answer.status);
    assert_eq!(r.registry_version(), 2);
    assert_eq!(r.version(SVC), 2);
    // Again, and for an unknown service: same answer, nothing changes.
    assert!(!r.unregister(SVC, &inst(1)).unwrap().status);
    assert!(!r.unregister("nobody", &inst(1)).unwrap().status);
    assert_eq!(r.registry_version(), 2);
    assert_eq!(r.version("nobody"), 0);
    // The emptied service keeps its version and lists nothing.
    assert!(r.find_all(SVC).is_empty());
    assert_eq!(r.version(SVC), 2);
}

#[test]
fn a_heartbeat_of_a_known_instance_is_not_a_change() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 1_000).unwrap();
    assert!(!r.renew(SVC, &inst(1), 2_000).unwrap());
    // A heartbeat carrying other parameters still only renews.
    assert!(!r.renew(SVC, &with_param(1, "x", "y"), 3_000).unwrap());
    assert_eq!(r.registry_version(), 1);
    assert!(r.find_all(SVC)[0].parameters.is_empty());
    let ts = r.snapshot().timestamps;
    assert_eq!(ts.values().copied().collect::<Vec<_>>(), vec![3_000]);
}

#[test]
fn a_heartbeat_never_moves_the_renewal_time_back() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 5_000).unwrap();
    r.renew(SVC, &inst(1), 4_000).unwrap();
    assert_eq!(r.snapshot().timestamps.values().copied().next(), Some(5_000));
}

#[test]
fn a_heartbeat_of_an_unknown_instance_registers_it() {
    let r = Registry::new();
    assert!(r.renew(SVC, &with_param(1, "env", "dev"), 1_000).unwrap());
    assert_eq!(r.registry_version(), 1);
    assert_eq!(r.find_all(SVC)[0].parameters["env"], "dev");
}

#[test]
fn renews_touches_every_listed_service_and_checks_all_names_first() {
    let r = Registry::new();
    r.register("a", &inst(1), 0).unwrap();
    assert!(r.renews(&["a", "b"], &inst(1), 10).unwrap());
    assert_eq!(r.registry_version(), 2, "b was registered by its heartbeat");
    assert!(!r.renews(&["a", "b"], &inst(1), 20).unwrap());
    assert_eq!(r.registry_version(), 2);
    // One bad name rejects the whole call before anything is touched.
    assert!(r.renews(&["c", "bad name"], &inst(1), 30).is_err());
    assert_eq!(r.version("c"), 0);
    assert!(r.snapshot().timestamps.values().all(|t| *t == 20));
}

#[test]
fn eviction_is_a_change_per_instance_and_spares_renewed_ones() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 0).unwrap();
    r.register(SVC, &inst(2), 0).unwrap();
    r.register("other", &inst(3), 0).unwrap();
    r.renew(SVC, &inst(2), 15_000).unwrap();
    // Exactly at the TTL nothing is older than it yet.
    assert!(r.evict_expired(20_000, 20_000).is_empty());
    assert_eq!(r.registry_version(), 3);
    let evicted = r.evict_expired(20_001, 20_000);
    assert_eq!(evicted.len(), 2);
    assert_eq!(r.registry_version(), 5);
    assert_eq!(r.find_all(SVC).iter().map(|i| i.port).collect::<Vec<_>>(), vec![2]);
    assert!(r.find_all("other").is_empty());
    assert!(r.version(SVC) >= 4 && r.version("other") >= 4);
    assert_eq!(r.evict_expired(35_000, 20_000).len(), 0);
    assert_eq!(r.evict_expired(35_001, 20_000).len(), 1);
}

#[test]
fn a_lease_of_never_is_never_evicted_and_a_bad_lease_is_refused() {
    let r = Registry::new();
    r.register(SVC, &with_param(1, "maregistry.lease", "never"), 0).unwrap();
    r.register(SVC, &inst(2), 0).unwrap();
    assert_eq!(r.evict_expired(u64::MAX / 2, 20_000).len(), 1);
    assert_eq!(r.find_all(SVC).iter().map(|i| i.port).collect::<Vec<_>>(), vec![1]);
    assert!(r
        .register(SVC, &with_param(3, "maregistry.lease", "forever"), 0)
        .is_err());
}

#[test]
fn take_over_raises_versions_and_grants_a_grace_period() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 0).unwrap();
    r.register("other", &inst(1), 0).unwrap();
    let v = r.take_over(41, 100_000);
    assert_eq!(v, 42);
    assert_eq!(r.registry_version(), 42);
    assert_eq!(r.versions(&[SVC, "other"]), vec![42, 42]);
    // Every instance counts as renewed at the takeover: nothing expires one TTL later.
    assert!(r.evict_expired(120_000, 20_000).is_empty());
    // A takeover below the local version still moves forward.
    assert_eq!(r.take_over(3, 100_000), 43);
}

#[test]
fn find_all_json_is_cached_until_the_next_change() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 0).unwrap();
    let a = r.find_all_json(SVC);
    let b = r.find_all_json(SVC);
    assert_eq!(a.as_ptr(), b.as_ptr(), "an unchanged service answers the same bytes");
    let parsed: Vec<InstanceMeta> = serde_json::from_slice(&a).unwrap();
    assert_eq!(parsed, r.find_all(SVC));
    r.renew(SVC, &inst(1), 5).unwrap();
    assert_eq!(
        r.find_all_json(SVC).as_ptr(),
        a.as_ptr(),
        "a heartbeat keeps the encoding"
    );
    r.register(SVC, &inst(2), 0).unwrap();
    let c = r.find_all_json(SVC);
    assert_ne!(c, a);
    assert_eq!(serde_json::from_slice::<Vec<InstanceMeta>>(&c).unwrap().len(), 2);
}

#[test]
fn invalid_input_changes_nothing() {
    let r = Registry::new();
    r.register(SVC, &inst(1), 0).unwrap();
    let before = r.snapshot();
    let mut bad = inst(2);
    bad.host = "a/b".into();
    assert!(r.register(SVC, &bad, 0).is_err());
    assert!(r.register("", &inst(2), 0).is_err());
    assert!(r.register("a,b", &inst(2), 0).is_err());
    assert!(r.unregister(SVC, &bad).is_err());
    assert!(r.renew("a@b", &inst(2), 0).is_err());
    assert_eq!(r.snapshot(), before);
}

#[test]
fn concurrent_writers_and_readers_agree_on_the_count() {
    let r = std::sync::Arc::new(Registry::new());
    let threads: Vec<_> = (0..4u16)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..250u16 {
                    r.register(SVC, &inst(t * 1000 + i + 1), 0).unwrap();
                    r.renew(SVC, &inst(t * 1000 + i + 1), 1).unwrap();
                    let _ = r.find_all_json(SVC);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(r.find_all(SVC).len(), 1000);
    assert_eq!(r.registry_version(), 1000);
    assert_eq!(r.version(SVC), 1000);
}

#[test]
fn the_services_with_checked_instances_are_counted_as_they_change() {
    let r = Registry::new();
    let checked = |port| with_param(port, "maregistry.checks", "[]");
    r.register("a", &checked(1), 0).unwrap();
    r.register("a", &checked(2), 0).unwrap();
    r.register("b", &inst(1), 0).unwrap();
    let names = |r: &Registry| r.services_with_checks().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(&r), ["a"]);
    // Registered again without checks, removed, evicted: the count follows.
    r.register("a", &inst(1), 0).unwrap();
    assert_eq!(names(&r), ["a"]);
    r.unregister("a", &checked(2)).unwrap();
    assert!(names(&r).is_empty());
    r.register("b", &checked(9), 0).unwrap();
    assert_eq!(names(&r), ["b"]);
    assert_eq!(r.evict_expired(100_000, 20_000).len(), 3);
    assert!(names(&r).is_empty());
}
