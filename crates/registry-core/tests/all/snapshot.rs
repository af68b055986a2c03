//! Snapshot, restore, merge and should_sync (docs/spec.md §4.5, §5).

use registry_core::{InstanceMeta, Registry, Snapshot};

use crate::writes::Writes;

fn inst(port: u16) -> InstanceMeta {
    InstanceMeta::new("http", "192.168.1.100", port, "hello").unwrap()
}

#[test]
fn snapshot_after_one_registration_matches_the_seed() {
    let r = Registry::new();
    r.register("com.test.HelloService", &inst(8080), 1_708_876_800_000)
        .unwrap();
    let json = serde_json::to_value(r.snapshot()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "REGISTRY": { "com.test.HelloService": [
                {"scheme":"http","host":"192.168.1.100","port":8080,"context":"hello","status":true,"parameters":{}}
            ]},
            "VERSIONS": { "com.test.HelloService": 1 },
            "TIMESTAMPS": { "com.test.HelloService@http://192.168.1.100:8080/hello": 1_708_876_800_000u64 },
            "version": 1
        })
    );
}

#[test]
fn restore_round_trips_and_is_idempotent() {
    let leader = Registry::new();
    leader.register("a", &inst(1), 10).unwrap();
    leader.register("a", &inst(2), 20).unwrap();
    leader.register("b", &inst(3), 30).unwrap();
    leader.unregister("b", &inst(3)).unwrap();
    let snap = leader.snapshot();

    let follower = Registry::new();
    follower.register("stale", &inst(9), 0).unwrap();
    let json = serde_json::to_vec(&snap).unwrap();
    follower.restore(Snapshot::from_json(&json).unwrap(), 99).unwrap();
    assert_eq!(follower.snapshot(), snap);
    assert_eq!(follower.registry_version(), 4);
    assert_eq!(follower.version("b"), 4, "an emptied service keeps its version");
    assert_eq!(follower.version("stale"), 0, "restore replaces, it does not merge");
    follower.restore(snap.clone(), 99).unwrap();
    assert_eq!(follower.snapshot(), snap);
}

#[test]
fn restore_fills_missing_timestamps_with_now() {
    let json = br#"{"REGISTRY":{"s":[{"scheme":"http","host":"h","port":1,"context":"c"}]},
                   "VERSIONS":{"s":1},"TIMESTAMPS":{},"version":1}"#;
    let r = Registry::new();
    r.restore(Snapshot::from_json(json).unwrap(), 777).unwrap();
    assert_eq!(r.snapshot().timestamps["s@http://h:1/c"], 777);
    assert!(r.find_all("s")[0].status);
}

#[test]
fn a_bad_snapshot_leaves_the_state_untouched() {
    let r = Registry::new();
    r.register("keep", &inst(1), 5).unwrap();
    let before = r.snapshot();
    let bad_documents: &[&[u8]] = &[
        b"",
        b"not json",
        b"{\"REGISTRY\":{},\"VERSIONS\":{},\"TIMESTAMPS\":{}}",
        b"{\"REGISTRY\":{},\"VERSIONS\":{},\"TIMESTAMPS\":{},\"version\":-1}",
        b"{\"REGISTRY\":{\"s\":[{\"scheme\":\"http\",\"host\":\"h\",\"port\":0}]},\"VERSIONS\":{},\"TIMESTAMPS\":{},\"version\":1}",
        b"{\"REGISTRY\":{\"bad name\":[]},\"VERSIONS\":{},\"TIMESTAMPS\":{},\"version\":1}",
        b"{\"REGISTRY\":{},\"VERSIONS\":{\"s\":9},\"TIMESTAMPS\":{},\"version\":1}",
        b"{\"REGISTRY\":{\"s\":[{\"scheme\":\"http\",\"host\":\"h\",\"port\":1},{\"scheme\":\"http\",\"host\":\"h\",\"port\":1}]},\"VERSIONS\":{},\"TIMESTAMPS\":{},\"version\":1}",
    ];
    for doc in bad_documents {
        let parsed = Snapshot::from_json(doc);
        // Rejected by parsing or by validation, whichever catches it first...
        assert!(
            parsed.clone().and_then(|s| s.validate()).is_err(),
            "{}",
            String::from_utf8_lossy(doc)
        );
        // ...and by restore, leaving the registry as it was.
        assert!(
            parsed.and_then(|s| r.restore(s, 0)).is_err(),
            "{}",
            String::from_utf8_lossy(doc)
        );
        assert_eq!(r.snapshot(), before);
    }
    // A snapshot built in code skips parsing; restore validates it anyway.
    let mut bad = before.clone();
    bad.versions.insert("keep".into(), 1_000);
    assert!(r.restore(bad, 0).is_err());
    assert_eq!(r.snapshot(), before);
}

#[test]
fn should_sync_only_from_a_newer_snapshot() {
    let s = Snapshot {
        version: 7,
        ..Snapshot::default()
    };
    assert!(s.should_sync(6));
    assert!(!s.should_sync(8), "data only flows from more to less");
    assert!(!s.should_sync(7));
}

#[test]
fn restore_newer_never_goes_back() {
    let full = Registry::new();
    for port in 1..=3 {
        full.register("svc", &inst(port), 1).unwrap();
    }
    let empty = Registry::new();
    empty.register("other", &inst(9), 1).unwrap(); // v1
    assert!(!full.restore_newer(empty.snapshot(), 0).unwrap(), "v1 is older than v3");
    assert_eq!(full.registry_version(), 3);
    assert_eq!(full.find_all("svc").len(), 3);

    let copy = Registry::new();
    assert!(copy.restore_newer(full.snapshot(), 0).unwrap());
    assert_eq!(copy.snapshot(), full.snapshot());
    assert!(
        copy.restore_newer(full.snapshot(), 0).unwrap(),
        "the same version again is allowed"
    );
    assert_eq!(copy.snapshot(), full.snapshot());
}

/// Two registries that share a service: `a` holds `shared` at v1 and `only_a` (v2);
/// `b` holds `shared` at v2 and `only_b` (v3).
fn two_registries() -> (Registry, Registry) {
    let a = Registry::new();
    a.register("shared", &inst(1), 1).unwrap(); // v1
    a.register("only_a", &inst(2), 2).unwrap(); // v2
    let b = Registry::new();
    b.register("shared", &inst(3), 3).unwrap(); // v1
    b.register("shared", &inst(4), 4).unwrap(); // v2
    b.register("only_b", &inst(5), 5).unwrap(); // v3
    (a, b)
}

#[test]
fn adopt_is_merge_applied_to_a_live_registry() {
    let (a, b) = two_registries();
    b.register("gone", &inst(6), 6).unwrap(); // v4
    b.unregister("gone", &inst(6)).unwrap(); // v5

    let mut merged = a.snapshot();
    merged.merge(b.snapshot());
    let adopted = a.adopt(b.snapshot(), 0).unwrap();
    assert_eq!(adopted, vec!["gone", "only_b", "shared"]);
    assert_eq!(a.snapshot(), merged, "the same result as Snapshot::merge");
    assert_eq!(a.registry_version(), 5);

    // Adopting an older copy changes nothing, and never lowers a version.
    let before = a.snapshot();
    assert!(a.adopt(Registry::new().snapshot(), 0).unwrap().is_empty());
    assert_eq!(a.snapshot(), before);
    // A snapshot that breaks a rule is refused whole.
    let mut bad = b.snapshot();
    bad.versions.insert("x".into(), 99);
    assert!(a.adopt(bad, 0).is_err());
    assert_eq!(a.snapshot(), before);
}

#[test]
fn merge_takes_the_newer_version_per_service() {
    let (a, b) = two_registries();

    let mut merged = a.snapshot();
    merged.merge(b.snapshot());
    assert_eq!(merged.version, 3);
    assert_eq!(
        merged.registry["shared"].iter().map(|i| i.port).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(merged.versions["shared"], 2);
    assert_eq!(merged.registry["only_a"][0].port, 2);
    assert_eq!(merged.registry["only_b"][0].port, 5);
    assert!(!merged.timestamps.contains_key("shared@http://192.168.1.100:1/hello"));
    assert_eq!(merged.timestamps["shared@http://192.168.1.100:4/hello"], 4);
    merged.validate().unwrap();

    // The older side loses: merging a's snapshot into the result changes nothing but
    // keeps only_a.
    let before = merged.clone();
    merged.merge(a.snapshot());
    assert_eq!(merged, before);
}

#[test]
fn snapshot_json_is_the_encoded_snapshot() {
    let r = Registry::new();
    let mut tagged = inst(2);
    tagged.parameters.insert("quote\"d".into(), "back\\slash".into());
    r.register("b.Service", &inst(1), 10).unwrap();
    r.register("a.Service", &tagged, 20).unwrap();
    r.register("a.Service", &inst(3), 30).unwrap();
    r.register("empty", &inst(4), 40).unwrap();
    r.unregister("empty", &inst(4)).unwrap();
    let direct: serde_json::Value = serde_json::from_slice(&r.snapshot_json()).unwrap();
    let encoded = serde_json::to_value(r.snapshot()).unwrap();
    assert_eq!(direct, encoded);
    // And it parses back into a valid snapshot that restores to the same state.
    let copy = Registry::new();
    copy.restore(Snapshot::from_json(&r.snapshot_json()).unwrap(), 0)
        .unwrap();
    assert_eq!(copy.snapshot(), r.snapshot());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&Registry::new().snapshot_json()).unwrap(),
        serde_json::json!({"REGISTRY":{},"VERSIONS":{},"TIMESTAMPS":{},"version":0})
    );
}

/// A registry with revisions (applied as a log would), a lease, a removed service that
/// keeps its version, and metadata.
fn raft_registry() -> Registry {
    let r = Registry::new();
    let mut with_lease = inst(7);
    with_lease
        .parameters
        .insert(registry_core::LEASE_PARAMETER.to_owned(), "30s".to_owned());
    with_lease.parameters.insert("zone".to_owned(), "eu-1".to_owned());
    let register = |service: &str, instance, now_ms| registry_core::Command::Register {
        service: service.to_owned(),
        instance,
        now_ms,
    };
    let commands = [
        register("a", inst(1), 10),
        register("a", with_lease, 20),
        register("gone", inst(3), 30),
        registry_core::Command::Unregister {
            service: "gone".to_owned(),
            instance: inst(3),
        },
        crate::configs::publish("ns", "app.yaml", "a: 1", 40),
        crate::configs::publish("ns", "app.yaml", "a: 2", 50),
        crate::configs::publish("", "other", "配置 ✓", 60),
        crate::configs::publish("", "gone", "x", 70),
        crate::configs::remove("", "gone", 80),
    ];
    for (index, command) in commands.iter().enumerate() {
        r.apply(command, index as u64 + 1);
    }
    r
}

fn binary(r: &Registry) -> Vec<u8> {
    let mut out = Vec::new();
    r.frozen().write_binary(&mut out).unwrap();
    out
}

#[test]
fn the_binary_form_round_trips_everything_a_raft_snapshot_holds() {
    let leader = raft_registry();
    let bytes = binary(&leader);
    assert_eq!(bytes[0], registry_core::BINARY_FORMAT);

    let follower = Registry::new();
    follower.register("stale", &inst(9), 0).unwrap();
    let decoded = Registry::decode_binary(bytes.as_slice()).unwrap();
    assert_eq!(decoded.version(), leader.registry_version());
    follower.install(decoded);
    // The same document, revisions and renewal times included, and the same checksum.
    assert_eq!(follower.snapshot(), leader.snapshot());
    assert_eq!(follower.checksum(), leader.checksum());
    assert_eq!(
        follower.snapshot_json_with_revisions(),
        leader.snapshot_json_with_revisions()
    );
    // The configs, their revisions and histories too.
    let configs = |r: &Registry| (r.configs().revision(), r.configs().list(None, |_, _| true));
    assert_eq!(configs(&follower), configs(&leader));
    let key = registry_core::ConfigKey::new("", "gone", "");
    let key = registry_core::ConfigKey {
        data_id: "gone".to_owned(),
        group: "DEFAULT_GROUP".to_owned(),
        ..key
    };
    assert_eq!(follower.configs().history(&key), leader.configs().history(&key));
    assert_eq!(follower.configs().history(&key).len(), 2, "published, removed");
    // And it writes the same bytes again.
    assert_eq!(binary(&follower), bytes);
}

#[test]
fn a_damaged_binary_form_is_refused_whole() {
    let bytes = binary(&raft_registry());
    let target = Registry::new();
    target.register("kept", &inst(1), 5).unwrap();
    let before = target.snapshot();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".to_owned(), Vec::new()),
        ("another format".to_owned(), {
            let mut b = bytes.clone();
            b[0] = 99;
            b
        }),
        ("no checksum".to_owned(), bytes[..bytes.len() - 8].to_vec()),
    ];
    // Cut at every length, and every byte flipped.
    for len in 1..bytes.len() - 8 {
        cases.push((format!("cut at {len}"), bytes[..len].to_vec()));
    }
    for at in 1..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        cases.push((format!("byte {at} changed"), b));
    }
    for (what, damaged) in cases {
        match Registry::decode_binary(damaged.as_slice()) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => assert!(matches!(e, registry_core::Error::InvalidSnapshot(_)), "{what}: {e}"),
        }
    }
    assert_eq!(target.snapshot(), before);
}

#[test]
fn the_binary_form_checks_the_rules_of_a_snapshot() {
    // A registry cannot hold a bad name, so write a valid one and rename a service in
    // the bytes, fixing the checksum up: the rules are checked, not only the checksum.
    let r = Registry::new();
    r.register("okay", &inst(1), 1).unwrap();
    let mut bytes = binary(&r);
    let at = bytes.windows(4).position(|w| w == b"okay").unwrap();
    bytes[at..at + 4].copy_from_slice(b"o y!");
    let body = bytes.len() - 8;
    let digest = xxhash_rust::xxh3::xxh3_64(&bytes[..body]);
    bytes[body..].copy_from_slice(&digest.to_le_bytes());
    let e = Registry::decode_binary(bytes.as_slice())
        .err()
        .expect("a bad service name refused");
    assert!(e.to_string().contains("o y!"), "{e}");
}

#[test]
fn the_streamed_documents_are_the_built_ones() {
    let r = Registry::new();
    // Enough services that the writer hands on several blocks.
    for port in 1..3000 {
        let mut i = inst(port);
        i.parameters.insert("padding".to_owned(), "x".repeat(64));
        r.register(&format!("svc-{}", port % 40), &i, u64::from(port)).unwrap();
    }
    let since = r.registry_version();
    r.register("svc-late", &inst(1), 1).unwrap();

    let mut streamed = Vec::new();
    r.write_snapshot_json_to(&mut streamed).unwrap();
    assert_eq!(streamed, r.snapshot_json());
    assert!(streamed.len() > 256 * 1024, "{} bytes", streamed.len());
    for since in [0, since, r.registry_version() + 5] {
        let mut streamed = Vec::new();
        r.write_sync_json(since, &mut streamed).unwrap();
        assert_eq!(streamed, r.sync_json(since), "since {since}");
    }
}
