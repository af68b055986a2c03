//! The config store (docs/spec.md §8): publishes and removals through the one
//! interpreter, compare-and-set, revisions, history and its bounds, prefix listing, and the
//! observers told of each change.

use std::sync::{Arc, Mutex};

use registry_core::{
    md5_hex, Applied, Cas, Command, ConfigFields, ConfigKey, ConfigObserver, ConfigOutcome, ConfigsChanged,
    HistoryLimits, Registry, RevisionOp,
};

pub fn key(namespace: &str, data_id: &str) -> ConfigKey {
    ConfigKey::new(namespace, "DEFAULT_GROUP", data_id)
}

pub fn publish(namespace: &str, data_id: &str, content: &str, now_ms: u64) -> Command {
    Command::PublishConfig {
        key: key(namespace, data_id),
        fields: ConfigFields::content(content),
        cas: None,
        now_ms,
    }
}

pub fn remove(namespace: &str, data_id: &str, now_ms: u64) -> Command {
    Command::RemoveConfig {
        key: key(namespace, data_id),
        cas: None,
        now_ms,
    }
}

fn with_cas(command: Command, condition: Cas) -> Command {
    match command {
        Command::PublishConfig {
            key, fields, now_ms, ..
        } => Command::PublishConfig {
            key,
            fields,
            cas: Some(condition),
            now_ms,
        },
        Command::RemoveConfig { key, now_ms, .. } => Command::RemoveConfig {
            key,
            cas: Some(condition),
            now_ms,
        },
        other => other,
    }
}

fn outcome(applied: Applied) -> ConfigOutcome {
    assert_eq!(applied.configs.len(), 1, "{applied:?}");
    applied.configs[0]
}

#[test]
fn a_publish_stores_the_content_its_md5_and_the_leaders_times() {
    let r = Registry::new();
    assert_eq!(
        outcome(r.apply(&publish("", "app", "a=1", 100), 1)),
        ConfigOutcome::Written { revision: 1 }
    );
    let config = r.configs().get(&key("public", "app")).expect("stored under public");
    assert_eq!(config.fields.content, "a=1");
    assert_eq!(config.md5(), md5_hex("a=1"));
    assert_eq!(config.kind(), "text");
    assert_eq!((config.created_ms, config.modified_ms), (100, 100));
    assert_eq!((config.created_revision, config.revision), (1, 1));

    assert_eq!(
        outcome(r.apply(&publish("", "app", "a=2", 200), 2)),
        ConfigOutcome::Written { revision: 2 }
    );
    let config = r.configs().get(&key("", "app")).expect("still there");
    assert_eq!((config.created_ms, config.modified_ms), (100, 200));
    assert_eq!((config.created_revision, config.revision), (1, 2));
    assert_eq!(r.registry_version(), 0, "configs do not move the registry version");
    assert_eq!(r.configs().size().0, 1);
}

#[test]
fn compare_and_set_on_md5_and_on_revision() {
    let r = Registry::new();
    let md5 = |c: &str| Cas::Md5(md5_hex(c));
    assert_eq!(
        outcome(r.apply(&with_cas(publish("", "k", "v1", 1), md5("")), 1)),
        ConfigOutcome::CasFailed,
        "an md5 condition on a missing config is refused"
    );
    assert_eq!(
        outcome(r.apply(&with_cas(publish("", "k", "v1", 1), Cas::Revision(0)), 1)),
        ConfigOutcome::Written { revision: 1 },
        "revision 0: only if absent"
    );
    assert_eq!(
        outcome(r.apply(&with_cas(publish("", "k", "v2", 1), Cas::Revision(0)), 2)),
        ConfigOutcome::CasFailed
    );
    assert_eq!(
        outcome(r.apply(&with_cas(publish("", "k", "v2", 1), md5("other")), 2)),
        ConfigOutcome::CasFailed
    );
    assert_eq!(
        outcome(r.apply(&with_cas(publish("", "k", "v2", 1), md5("v1")), 2)),
        ConfigOutcome::Written { revision: 2 }
    );
    assert_eq!(
        outcome(r.apply(&with_cas(remove("", "k", 1), Cas::Revision(1)), 3)),
        ConfigOutcome::CasFailed
    );
    assert_eq!(
        r.configs()
            .get(&key("", "k"))
            .map(|c| c.fields.content.clone())
            .as_deref(),
        Some("v2")
    );
    assert_eq!(
        outcome(r.apply(&with_cas(remove("", "k", 1), Cas::Revision(2)), 3)),
        ConfigOutcome::Written { revision: 3 }
    );
    assert_eq!(outcome(r.apply(&remove("", "k", 1), 4)), ConfigOutcome::Absent);
    assert_eq!(r.configs().revision(), 3, "refusals and absent removals change nothing");
}

#[test]
fn a_bad_key_is_refused_and_applied_as_nothing() {
    let r = Registry::new();
    for bad in [
        publish("", "", "x", 1),
        publish("", "a\u{0}b", "x", 1),
        publish(&"n".repeat(200), "d", "x", 1),
        Command::Batch {
            commands: vec![publish("", "ok", "x", 1), remove("", "", 1)],
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        let applied = r.apply(&bad, 1);
        assert!(applied.rejected);
        assert!(applied.configs.is_empty());
    }
    assert_eq!(r.configs().revision(), 0);
    assert!(r.configs().get(&key("", "ok")).is_none(), "a batch is all or nothing");
}

#[test]
fn a_batch_answers_each_config_write_and_a_writer_its_part() {
    let r = Registry::new();
    let batch = Command::Batch {
        commands: vec![
            publish("", "a", "1", 1),
            Command::Register {
                service: "svc".to_owned(),
                instance: registry_core::InstanceMeta::new("http", "h", 80, "").expect("an instance"),
                now_ms: 1,
            },
            with_cas(publish("", "b", "2", 1), Cas::Revision(9)),
            remove("", "a", 1),
        ],
    };
    assert_eq!(batch.config_writes(), 3);
    let applied = r.apply(&batch, 1);
    assert_eq!(
        applied.configs,
        vec![
            ConfigOutcome::Written { revision: 1 },
            ConfigOutcome::CasFailed,
            ConfigOutcome::Written { revision: 2 },
        ]
    );
    assert_eq!(applied.changes, 1, "the registration");
    assert_eq!(applied.part(1, 1).configs, vec![ConfigOutcome::CasFailed]);
    assert_eq!(applied.part(3, 0).configs, vec![]);
}

#[test]
fn history_keeps_each_change_within_its_bounds() {
    let r = Registry::new().with_config_history(HistoryLimits {
        per_config: 3,
        max_bytes: 1 << 20,
    });
    for (i, content) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        r.apply(&publish("", "k", content, 10 * (i as u64 + 1)), i as u64 + 1);
    }
    r.apply(&remove("", "k", 50), 5);
    let history = r.configs().history(&key("", "k"));
    let seen: Vec<(u64, RevisionOp, &str)> = history
        .iter()
        .map(|e| (e.revision, e.op, e.config.fields.content.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (5, RevisionOp::Removed, "v4"),
            (4, RevisionOp::Updated, "v4"),
            (3, RevisionOp::Updated, "v3"),
        ],
        "newest first, three kept, the removal keeps what it removed"
    );
    let entry = r.configs().history_entry(&key("", "k"), 3).expect("kept");
    assert_eq!(entry.config.md5(), md5_hex("v3"));
    assert!(r.configs().history_entry(&key("", "k"), 1).is_none());

    // The byte budget drops the oldest entries of every config.
    let r = Registry::new().with_config_history(HistoryLimits {
        per_config: 100,
        max_bytes: 3 * (64 + 1000 + "DEFAULT_GROUPpublicx".len()),
    });
    for i in 0..10u64 {
        let data_id = if i % 2 == 0 { "x" } else { "y" };
        r.apply(&publish("", data_id, &"c".repeat(1000), i), i + 1);
    }
    let kept = r.configs().history(&key("", "x")).len() + r.configs().history(&key("", "y")).len();
    assert!(kept <= 3, "{kept} entries kept");
    assert!(kept >= 2, "{kept} entries kept");
    assert_eq!(r.configs().history(&key("", "x"))[0].revision, 9, "the newest stays");
}

#[test]
fn a_prefix_lists_one_group_of_one_namespace_in_order() {
    let r = Registry::new();
    for (i, (namespace, data_id)) in [
        ("ns", "web/b"),
        ("ns", "web/a"),
        ("ns", "webx"),
        ("ns", "api/a"),
        ("other", "web/c"),
    ]
    .iter()
    .enumerate()
    {
        r.apply(&publish(namespace, data_id, "x", 1), i as u64 + 1);
    }
    let listed: Vec<String> = r
        .configs()
        .with_prefix("ns", "DEFAULT_GROUP", "web/")
        .into_iter()
        .map(|(key, _)| key.data_id.clone())
        .collect();
    assert_eq!(listed, vec!["web/a", "web/b"]);
    assert_eq!(r.configs().with_prefix("ns", "DEFAULT_GROUP", "").len(), 4);
    assert_eq!(r.configs().with_prefix("ns", "OTHER_GROUP", "").len(), 0);
    assert_eq!(r.configs().list(Some("other"), |_, _| true).len(), 1);
    assert_eq!(r.configs().list(None, |key, _| key.data_id.starts_with("web")).len(), 4);
}

#[derive(Default)]
struct Seen(Mutex<Vec<(u64, Option<Vec<String>>)>>);

impl ConfigObserver for Seen {
    fn configs_changed(&self, revision: u64, changed: ConfigsChanged<'_>) {
        let keys = match changed {
            ConfigsChanged::Keys(keys) => Some(keys.iter().map(|k| k.data_id.clone()).collect()),
            ConfigsChanged::All => None,
        };
        self.0.lock().expect("not poisoned").push((revision, keys));
    }
}

#[test]
fn observers_hear_each_change_and_an_install_as_all() {
    let r = Registry::new();
    let seen = Arc::new(Seen::default());
    r.configs().observe(seen.clone());
    r.apply(&publish("", "a", "1", 1), 1);
    r.apply(&with_cas(publish("", "a", "2", 1), Cas::Revision(7)), 2);
    r.apply(&remove("", "missing", 1), 3);
    r.apply(
        &Command::Batch {
            commands: vec![publish("", "b", "1", 1), remove("", "a", 1)],
        },
        4,
    );
    let mut out = Vec::new();
    r.frozen().write_binary(&mut out).expect("written");
    r.install(Registry::decode_binary(out.as_slice()).expect("read back"));
    assert_eq!(
        *seen.0.lock().expect("not poisoned"),
        vec![
            (1, Some(vec!["a".to_owned()])),
            (3, Some(vec!["b".to_owned(), "a".to_owned()])),
            (3, None),
        ],
        "nothing for a refusal or an absent removal"
    );
}

#[test]
fn the_same_log_makes_the_same_store_on_every_node() {
    let log: Vec<Command> = (0..50u64)
        .map(|i| match i % 5 {
            0..=2 => publish(
                if i % 2 == 0 { "a" } else { "b" },
                &format!("k{}", i % 7),
                &i.to_string(),
                i,
            ),
            3 => with_cas(publish("a", &format!("k{}", i % 7), "cas", i), Cas::Revision(i / 2)),
            _ => remove("b", &format!("k{}", i % 7), i),
        })
        .collect();
    let nodes: Vec<Registry> = (0..2).map(|_| Registry::new()).collect();
    for node in &nodes {
        for (index, command) in log.iter().enumerate() {
            node.apply(command, index as u64 + 1);
        }
    }
    let state = |r: &Registry| {
        (
            r.configs().revision(),
            r.configs().list(None, |_, _| true),
            r.configs().history(&key("a", "k1")),
        )
    };
    assert_eq!(state(&nodes[0]), state(&nodes[1]));
}

#[test]
fn a_follower_catches_up_with_deltas_and_whole_copies() {
    let leader = Registry::new();
    let follower = Registry::new();
    let mut index = 0;
    let mut apply = |command: Command| {
        index += 1;
        leader.apply(&command, index);
    };
    apply(publish("", "a", "1", 1));
    apply(publish("ns", "b", "2", 2));
    let whole = leader.configs().delta_since(follower.configs().revision());
    assert_eq!(whole.since, 0, "from nothing: a whole copy");
    follower.configs().apply_delta(whole).expect("applied");
    let state = |r: &Registry| (r.configs().revision(), r.configs().list(None, |_, _| true));
    assert_eq!(state(&follower), state(&leader));

    apply(publish("", "a", "1b", 3));
    apply(remove("ns", "b", 4));
    apply(publish("", "c", "3", 5));
    apply(remove("", "c", 6));
    apply(publish("", "c", "3b", 7));
    let delta = leader.configs().delta_since(follower.configs().revision());
    assert_eq!(delta.since, 2);
    assert_eq!(delta.removed, vec![(key("ns", "b"), 4)], "c was published again");
    let seen = Arc::new(Seen::default());
    follower.configs().observe(seen.clone());
    follower.configs().apply_delta(delta.clone()).expect("applied");
    assert_eq!(state(&follower), state(&leader));
    assert_eq!(seen.0.lock().expect("not poisoned").len(), 1, "one change told");
    assert_eq!(
        follower.configs().history(&key("", "a"))[0].config.fields.content,
        "1b",
        "history records what arrived"
    );
    assert!(
        follower.configs().apply_delta(delta).is_err(),
        "a delta from another revision is refused"
    );
    // Ahead of the leader, or a bad config: refused or whole, never half applied.
    let ahead = Registry::new();
    for i in 0..20 {
        ahead.apply(&publish("", &format!("x{i}"), "x", 1), i + 1);
    }
    let copy = leader.configs().delta_since(ahead.configs().revision());
    assert_eq!(copy.since, 0, "a follower ahead gets a whole copy");
    ahead.configs().apply_delta(copy).expect("applied");
    assert_eq!(state(&ahead), state(&leader));
    let mut bad = leader.configs().delta_since(0);
    bad.configs[0].key.data_id = String::new();
    let before = state(&follower);
    assert!(follower.configs().apply_delta(bad).is_err());
    assert_eq!(state(&follower), before);
}
