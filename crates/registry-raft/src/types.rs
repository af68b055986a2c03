use registry_core::{Applied, Command};

openraft::declare_raft_types!(
    /// maregistry's raft types: the log carries [`Command`]s, applying one answers
    /// [`Applied`]; node ids are `u64` derived from urls ([`node_id`]) and a node is its
    /// url (`BasicNode { addr }`).
    pub TypeConfig:
        D = Command,
        R = Applied,
        SnapshotData = tokio::fs::File,
);

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
}
