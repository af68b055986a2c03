//! The binary form's config section: formats 3 and 2 written and read back.
use super::*;
use crate::Command;

/// Configs with histories: one published twice, one removed, one published once.
fn with_configs() -> Registry {
    let r = Registry::new();
    let publish = |data_id: &str, content: &str, now_ms| Command::PublishConfig {
        key: ConfigKey::new("ns", "G", data_id),
        fields: ConfigFields {
            content: content.to_owned(),
            ..ConfigFields::default()
        },
        cas: None,
        now_ms,
    };
    let commands = [
        publish("twice", "a: 1", 10),
        publish("twice", "a: 2", 20),
        publish("gone", "x", 30),
        Command::RemoveConfig {
            key: ConfigKey::new("ns", "G", "gone"),
            cas: None,
            now_ms: 40,
        },
        publish("once", "配置", 50),
    ];
    for (index, command) in commands.iter().enumerate() {
        r.apply(command, index as u64 + 1);
    }
    r
}

fn state(r: &Registry) -> impl PartialEq + std::fmt::Debug {
    let configs = r.configs();
    let keys = ["twice", "gone", "once"].map(|id| ConfigKey::new("ns", "G", id));
    (
        configs.revision(),
        configs.list(None, |_, _| true),
        keys.map(|key| configs.history(&key)),
    )
}

fn read_back(bytes: &[u8]) -> Registry {
    let r = Registry::new();
    r.install(Registry::decode_binary(bytes).expect("decodes"));
    r
}

#[test]
fn the_config_as_it_stands_is_written_once() {
    let r = with_configs();
    let (mut marked, mut copied) = (Vec::new(), Vec::new());
    r.frozen().write_layout(BINARY_FORMAT, &mut marked).unwrap();
    r.frozen().write_layout(FORMAT_COPIED_HISTORY, &mut copied).unwrap();
    let count = |bytes: &[u8], text: &str| bytes.windows(text.len()).filter(|w| *w == text.as_bytes()).count();
    assert_eq!(count(&marked, "配置"), 1);
    assert_eq!(count(&copied, "配置"), 2);
    assert_eq!(count(&marked, "a: 2"), 1);
    assert_eq!(count(&marked, "a: 1"), 1, "an older revision is still a copy");
    // Both read back to the same state, the same Arc shared by config and history.
    assert_eq!(state(&read_back(&marked)), state(&r));
    assert_eq!(state(&read_back(&copied)), state(&r));
    let back = read_back(&marked);
    let key = ConfigKey::new("ns", "G", "once");
    let current = back.configs().get(&key).unwrap();
    assert!(Arc::ptr_eq(&back.configs().history(&key)[0].config, &current));
}

#[test]
fn a_mark_without_its_config_is_refused() {
    let r = with_configs();
    let frozen = r.frozen();
    let mut bytes = Vec::new();
    let mut out = Hashing::new(&mut bytes);
    out.write_all(&[BINARY_FORMAT]).unwrap();
    let mut frame = Vec::new();
    write_frame(
        &mut out,
        &mut frame,
        &Head {
            version: 0,
            services: 0,
        },
    )
    .unwrap();
    let head = ConfigsHead {
        revision: frozen.configs.revision,
        configs: 0,
        histories: 1,
    };
    write_frame(&mut out, &mut frame, &head).unwrap();
    let key = ConfigKey::new("ns", "G", "once");
    let history = HistoryWritten {
        key: &key,
        entries: vec![(5, 50, RevisionOp::Created, None)],
    };
    write_frame(&mut out, &mut frame, &history).unwrap();
    let digest = out.digest();
    bytes.extend_from_slice(&digest.to_le_bytes());
    match Registry::decode_binary(bytes.as_slice()) {
        Err(Error::InvalidSnapshot(message)) => assert!(message.contains("not listed"), "{message}"),
        other => panic!("accepted: {:?}", other.map(|d| d.version())),
    }
}

#[test]
fn flags_are_kept_from_format_5_and_format_4_reads_without_them() {
    let r = with_configs();
    let key = ConfigKey::new("ns", "G", "flagged");
    let fields = ConfigFields {
        content: "v".to_owned(),
        flags: 42,
        ..ConfigFields::default()
    };
    r.apply(
        &Command::PublishConfig {
            key: key.clone(),
            fields,
            cas: None,
            now_ms: 60,
        },
        9,
    );
    let (mut now, mut before) = (Vec::new(), Vec::new());
    r.frozen().write_layout(BINARY_FORMAT, &mut now).unwrap();
    r.frozen().write_layout(FORMAT_WITHOUT_FLAGS, &mut before).unwrap();
    assert_eq!(read_back(&now).configs().get(&key).unwrap().fields.flags, 42);
    assert_eq!(state(&read_back(&now)), state(&r));
    assert_eq!(read_back(&before).configs().get(&key).unwrap().fields.flags, 0);
}
