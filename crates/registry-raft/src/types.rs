use std::fmt;
use std::sync::{Arc, OnceLock};

use registry_core::{Applied, Command};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

openraft::declare_raft_types!(
    /// maregistry's raft types: the log carries [`Command`]s (as [`Logged`]), applying one answers
    /// [`Applied`]; node ids are `u64` derived from urls ([`node_id`]) and a node is its
    /// url (`BasicNode { addr }`).
    pub TypeConfig:
        D = Logged,
        R = Applied,
        SnapshotData = tokio::fs::File,
);

/// A command as the log carries it: the command, and its JSON made once. The leader writes
/// an entry to its log and sends it to each follower; without it each of those would
/// encode the command again (a config's whole content escaped every time), and a
/// follower would encode what it had just decoded. The JSON is the command's own, so the
/// log and the wire read as they always did.
#[derive(Clone)]
pub struct Logged(Arc<LoggedInner>);

struct LoggedInner {
    command: Command,
    json: OnceLock<Box<RawValue>>,
}

impl Logged {
    /// A command to append.
    pub fn new(command: Command) -> Logged {
        Logged(Arc::new(LoggedInner {
            command,
            json: OnceLock::new(),
        }))
    }

    /// The command.
    pub fn command(&self) -> &Command {
        &self.0.command
    }
}

impl Serialize for Logged {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(json) = self.0.json.get() {
            return json.serialize(serializer);
        }
        let json = serde_json::value::to_raw_value(&self.0.command).map_err(S::Error::custom)?;
        self.0.json.get_or_init(|| json).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Logged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Logged, D::Error> {
        let json = Box::<RawValue>::deserialize(deserializer)?;
        let command = serde_json::from_str(json.get()).map_err(D::Error::custom)?;
        Ok(Logged(Arc::new(LoggedInner {
            command,
            json: OnceLock::from(json),
        })))
    }
}

impl fmt::Debug for Logged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.command.fmt(f)
    }
}

/// A raft node id.
pub type NodeId = u64;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// Storage errors as openraft wants them.
pub type StorageError = openraft::StorageError<NodeId>;
/// A node as the membership records it: its url.
pub type Node = openraft::BasicNode;
/// The openraft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// A snapshot as openraft moves it: the snapshot file, sent and received in chunks.
pub(crate) type SnapshotData = tokio::fs::File;

/// The node id of a normalised url: FNV-1a, 64 bits. Deterministic across processes,
/// machines and Rust versions (unlike `DefaultHasher`), so every node computes the same
/// id for the same url; 0 is never answered (openraft treats no id specially, but a zero
/// id in logs reads like a missing one).
pub fn node_id(normalized_url: &str) -> NodeId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in normalized_url.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_fnv1a_of_the_url() {
        assert_eq!(node_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(node_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(node_id("http://127.0.0.1:8081"), node_id("http://127.0.0.1:8082"));
        assert_eq!(node_id("http://127.0.0.1:8081"), node_id("http://127.0.0.1:8081"));
    }

    #[test]
    fn a_logged_command_reads_and_writes_as_the_command_itself() {
        let command = Command::Unregister {
            service: "a.Service".to_owned(),
            instance: serde_json::from_str(r#"{"scheme":"http","host":"10.0.0.1","port":8080}"#).unwrap(),
        };
        let plain = serde_json::to_string(&command).unwrap();
        let logged = Logged::new(command.clone());
        assert_eq!(serde_json::to_string(&logged).unwrap(), plain);
        assert_eq!(serde_json::to_string(&logged).unwrap(), plain, "made once, the same");
        let read: Logged = serde_json::from_str(&plain).unwrap();
        assert_eq!(read.command(), &command);
        assert_eq!(serde_json::to_string(&read).unwrap(), plain);
        // Inside an entry, as the log and the wire hold it.
        let entry = Entry {
            log_id: LogId::default(),
            payload: openraft::EntryPayload::Normal(logged),
        };
        let text = serde_json::to_string(&entry).unwrap();
        assert!(text.contains(&plain), "{text}");
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert!(matches!(&back.payload, openraft::EntryPayload::Normal(c) if c.command() == &command));
        assert!(serde_json::from_str::<Logged>(r#"{"op":"no_such_op"}"#).is_err());
    }
}
