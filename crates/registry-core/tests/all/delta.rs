//! Delta sync (docs/spec.md §4.5): a follower built from a leader's deltas, with occasional whole
//! snapshots, always equals the leader; a checksum mismatch is reported so that the
//! follower fetches the whole snapshot.

use proptest::prelude::*;
use registry_core::{ChangeLogLimits, InstanceMeta, Registry, Snapshot, Synced};

use crate::writes::Writes;

const TTL: u64 = 100;

#[derive(Debug, Clone)]
enum Action {
    Register {
        service: u8,
        host: u8,
        weight: u8,
    },
    Unregister {
        service: u8,
        host: u8,
    },
    Renew {
        service: u8,
        host: u8,
    },
    /// Time passes by this much, then the leader evicts what expired.
    Evict {
        advance: u8,
    },
    /// The follower syncs: a delta from its version, or (`full`) the whole snapshot.
    Sync {
        full: bool,
    },
}

fn op() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..4u8, 0..6u8, 0..3u8).prop_map(|(service, host, weight)| Action::Register { service, host, weight }),
        2 => (0..4u8, 0..6u8).prop_map(|(service, host)| Action::Unregister { service, host }),
        2 => (0..4u8, 0..6u8).prop_map(|(service, host)| Action::Renew { service, host }),
        1 => (0..120u8).prop_map(|advance| Action::Evict { advance }),
        3 => prop::bool::weighted(0.1).prop_map(|full| Action::Sync { full }),
    ]
}

fn service(n: u8) -> String {
    format!("svc.{n}")
}

fn instance(host: u8, weight: Option<u8>) -> InstanceMeta {
    let mut meta = InstanceMeta::new("http", format!("10.0.0.{host}"), 8080, "ctx").unwrap();
    if let Some(weight) = weight {
        meta.parameters.insert("weight".into(), weight.to_string());
    }
    meta
}

/// The leader's answer to `since`, as the follower parses it off the wire.
fn answer(leader: &Registry, since: u64) -> Snapshot {
    Snapshot::from_json(&leader.sync_json(since)).unwrap()
}

/// One sync from the follower's version (or, `full`, of the whole snapshot): answers
/// whether the leader answered a delta, and what applying it did.
fn sync(leader: &Registry, follower: &Registry, full: bool, now: u64) -> (bool, Synced) {
    let since = if full { 0 } else { follower.registry_version() };
    let answer = answer(leader, since);
    let was_delta = answer.since.is_some();
    (was_delta, follower.apply_sync(answer, now).unwrap())
}

/// Equal data: the same checksum, and the same snapshot but for renewal times (a delta
/// carries the renewal times of the services it lists only).
fn assert_same(leader: &Registry, follower: &Registry) {
    assert_eq!(leader.checksum(), follower.checksum());
    let (mut a, mut b) = (leader.snapshot(), follower.snapshot());
    a.timestamps.clear();
    b.timestamps.clear();
    assert_eq!(a, b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_follower_built_from_deltas_equals_the_leader(
        ops in prop::collection::vec(op(), 1..120),
        log_entries in 1usize..40,
    ) {
        let leader = Registry::with_change_log(ChangeLogLimits { max_entries: log_entries, max_bytes: 1 << 20 });
        let follower = Registry::new();
        let mut now = 1_000u64;
        for op in ops {
            match op {
                Action::Register { service: s, host, weight } => {
                    leader.register(&service(s), &instance(host, Some(weight)), now).unwrap();
                }
                Action::Unregister { service: s, host } => {
                    leader.unregister(&service(s), &instance(host, None)).unwrap();
                }
                Action::Renew { service: s, host } => {
                    leader.renew(&service(s), &instance(host, None), now).unwrap();
                }
                Action::Evict { advance } => {
                    now += u64::from(advance);
                    leader.evict_expired(now, TTL);
                }
                Action::Sync { full } => {
                    let (_, synced) = sync(&leader, &follower, full, now);
                    prop_assert_eq!(synced, Synced::Applied);
                    assert_same(&leader, &follower);
                }
            }
        }
        let (_, synced) = sync(&leader, &follower, false, now);
        prop_assert_eq!(synced, Synced::Applied);
        assert_same(&leader, &follower);
    }
}

#[test]
fn a_follower_ten_changes_behind_catches_up_with_a_delta() {
    let leader = Registry::new();
    let follower = Registry::new();
    for host in 0..50 {
        leader.register("big", &instance(host, None), 1).unwrap();
    }
    assert_eq!(sync(&leader, &follower, true, 1), (false, Synced::Applied));
    for host in 0..10 {
        leader.register("small", &instance(host, None), 2).unwrap();
    }
    let delta = answer(&leader, follower.registry_version());
    assert_eq!(delta.since, Some(50));
    assert_eq!(
        delta.registry.keys().collect::<Vec<_>>(),
        ["small"],
        "only what changed"
    );
    assert_eq!(sync(&leader, &follower, false, 2), (true, Synced::Applied));
    assert_same(&leader, &follower);
}

#[test]
fn a_follower_older_than_the_log_gets_the_whole_snapshot() {
    let leader = Registry::with_change_log(ChangeLogLimits {
        max_entries: 5,
        max_bytes: 1 << 20,
    });
    let follower = Registry::new();
    for host in 0..20 {
        leader.register("a", &instance(host, None), 1).unwrap();
    }
    let answer = answer(&leader, 3);
    assert_eq!(answer.since, None);
    assert_eq!(answer.registry["a"].len(), 20);
    assert_eq!(follower.apply_sync(answer, 1).unwrap(), Synced::Applied);
    assert_same(&leader, &follower);
}

#[test]
fn diverged_histories_are_caught_by_the_checksum() {
    let leader = Registry::new();
    let follower = Registry::new();
    leader.register("a", &instance(1, None), 1).unwrap();
    // The same version on the follower, other data (say, a write the leader lost).
    follower.register("a", &instance(2, None), 1).unwrap();
    leader.register("b", &instance(3, None), 1).unwrap();
    let delta = answer(&leader, 1);
    assert_eq!(delta.since, Some(1));
    assert_eq!(follower.apply_sync(delta, 1).unwrap(), Synced::Mismatch);
    assert_eq!(follower.apply_sync(answer(&leader, 0), 1).unwrap(), Synced::Applied);
    assert_same(&leader, &follower);
}

#[test]
fn a_delta_applies_only_at_its_starting_version_and_an_older_snapshot_not_at_all() {
    let leader = Registry::new();
    let follower = Registry::new();
    leader.register("a", &instance(1, None), 1).unwrap();
    leader.register("a", &instance(2, None), 1).unwrap();
    assert_eq!(follower.apply_sync(answer(&leader, 1), 1).unwrap(), Synced::NotFromHere);
    assert_eq!(follower.registry_version(), 0, "nothing applied");
    for host in 0..5 {
        follower.register("z", &instance(host, None), 1).unwrap();
    }
    assert_eq!(follower.apply_sync(answer(&leader, 0), 1).unwrap(), Synced::Older);
    assert_eq!(follower.registry_version(), 5);
}

#[test]
fn the_plain_snapshot_is_unchanged_and_an_ahead_follower_gets_an_empty_delta() {
    let leader = Registry::new();
    leader.register("a", &instance(1, None), 1).unwrap();
    let plain: serde_json::Value = serde_json::from_slice(&leader.snapshot_json()).unwrap();
    assert!(plain.get("CHECKSUM").is_none() && plain.get("SINCE").is_none());
    let ahead = answer(&leader, 9);
    assert_eq!((ahead.since, ahead.version, ahead.registry.len()), (Some(1), 1, 0));
}
