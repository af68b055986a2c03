//! [`RaftSettings`]: how a raft node runs.

use std::path::PathBuf;
use std::time::Duration;

use crate::log_store::LogFaults;

/// How a raft node runs.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    /// Where the log, the snapshot and the marker live.
    pub data_dir: PathBuf,
    /// This node's url as the others reach it.
    pub my_url: String,
    /// The founding members (this node is added when missing). Used only by a fresh data
    /// dir; an initialised one keeps its stored membership.
    pub server_list: Vec<String>,
    /// This node joins an existing cluster (`POST /cluster/join` on its leader) and never
    /// initialises one of its own.
    pub join: bool,
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in `election` campaigns (after a
    /// pre-vote); half the shortest is openraft's leader lease.
    pub election: (Duration, Duration),
    /// How long a write waits for a leader to commit it before it is answered 503.
    pub write_timeout: Duration,
    /// A snapshot is taken after this many log entries; older entries are purged.
    pub snapshot_every: u64,
    /// A snapshot is also taken once the entries since the last one carry this many
    /// commands, or a tenth of the registry's instances when that is more: batched
    /// entries carry many, and a restart re-applies every one after the snapshot.
    pub snapshot_commands: u64,
    /// How long a lagging follower may take to receive and install a snapshot.
    pub install_timeout: Duration,
    /// Instances not renewed for this long are evicted (by the leader, through the log):
    /// the window of the self-preservation guard.
    pub ttl: Duration,
    /// How often the members' `/info` is read for `/cluster`.
    pub probe_interval: Duration,
    /// The timeout of those probes.
    pub probe_timeout: Duration,
    /// Self-preservation: an eviction pass that would remove more than this fraction of
    /// all instances removes none (1.0: off).
    pub evict_max_fraction: f64,
    /// A switch for tests that makes the log's writes fail.
    pub log_faults: LogFaults,
}

impl RaftSettings {
    /// Defaults sized for HTTP on a busy machine: heartbeats every 250 ms, elections after
    /// 1–1.25 s of silence, a 5 s write timeout, a snapshot every 20,000 entries.
    pub fn new(data_dir: PathBuf, my_url: String, server_list: Vec<String>) -> RaftSettings {
        RaftSettings {
            data_dir,
            my_url,
            server_list,
            join: false,
            heartbeat: Duration::from_millis(250),
            election: (Duration::from_millis(1000), Duration::from_millis(1250)),
            write_timeout: Duration::from_secs(5),
            snapshot_every: 20_000,
            snapshot_commands: 50_000,
            install_timeout: Duration::from_secs(60),
            ttl: Duration::from_secs(20),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            evict_max_fraction: 1.0,
            log_faults: LogFaults::default(),
        }
    }
}

/// A duration in whole milliseconds, as openraft takes them.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
