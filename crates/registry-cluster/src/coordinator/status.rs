//! How this node stands in its cluster, whichever mode runs: what `/metrics` reports and
//! what `/ready` decides by.

use std::time::Duration;

/// This node's part in the cluster right now, with the figures an operator watches.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// What this node does now.
    pub standing: Standing,
    /// The leader's url, when one is known.
    pub leader: Option<String>,
    /// How many times the leader this node sees has changed since it started.
    pub leader_changes: u64,
    /// Eviction passes skipped by self-preservation (`--evict-max-fraction`).
    pub evictions_skipped: u64,
    /// What only the running cluster mode knows.
    pub mode: ModeStatus,
}

/// The part of a [`Status`] that belongs to one cluster mode.
#[derive(Debug, Clone, PartialEq)]
pub enum ModeStatus {
    /// The snapshot cluster.
    Snapshot {
        /// On a follower: how far behind the leader it is.
        sync: Option<SyncLag>,
    },
    /// The raft cluster: the log and the replication.
    Raft(RaftStatus),
}

impl ModeStatus {
    /// Every mode's name, for metrics that list them all.
    pub const NAMES: [&'static str; 2] = ["snapshot", "raft"];

    /// The mode's name: `snapshot` or `raft`.
    pub fn name(&self) -> &'static str {
        match self {
            ModeStatus::Snapshot { .. } => "snapshot",
            ModeStatus::Raft(_) => "raft",
        }
    }
}

/// A node's standing, as `/ready` and the `maregistry_role` metric name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Standing {
    /// It takes the writes.
    Leader,
    /// It follows a leader it knows.
    Follower,
    /// Snapshot mode: elected, adopting a richer peer's data before it takes office.
    Candidate,
    /// No leader is known.
    #[default]
    NoLeader,
}

impl Standing {
    /// Every standing, for metrics that list them all.
    pub const ALL: [Standing; 4] = [
        Standing::Leader,
        Standing::Follower,
        Standing::Candidate,
        Standing::NoLeader,
    ];

    /// Its name: `leader`, `follower`, `candidate` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Standing::Leader => "leader",
            Standing::Follower => "follower",
            Standing::Candidate => "candidate",
            Standing::NoLeader => "none",
        }
    }
}

/// A snapshot-mode follower's lag behind its leader.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncLag {
    /// The leader's registry version (the highest seen by a probe or a sync) minus this
    /// node's; 0 when level.
    pub versions_behind: u64,
    /// Time since the last sync that succeeded (the leader answered and this node holds
    /// its data); `None` before the first.
    pub since_last_sync: Option<Duration>,
}

/// A raft node's log and, on the leader, each follower's replication.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaftStatus {
    /// This node's id.
    pub node_id: u64,
    /// The current term.
    pub term: u64,
    /// The last log index this node holds.
    pub last_log_index: Option<u64>,
    /// The highest log index this node knows to be committed.
    pub committed: Option<u64>,
    /// The last log index applied to this node's registry.
    pub applied: Option<u64>,
    /// On the leader: every other member's replication.
    pub replication: Vec<Replica>,
    /// Why the consensus engine stopped, once it has (a storage error): the node cannot
    /// take part in the cluster any more.
    pub stopped: Option<String>,
}

/// One member as the leader replicates to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replica {
    /// The member's id.
    pub node_id: u64,
    /// Its url.
    pub url: String,
    /// The last log index known to be on it.
    pub matched: Option<u64>,
    /// Entries it lacks: the leader's last log index minus `matched`.
    pub lag: u64,
}

impl Status {
    /// Why this node cannot do its job now, or `None` when it can (`/ready`): a leader
    /// must be known, and in raft mode this node must have applied the committed log.
    pub fn not_ready(&self) -> Option<String> {
        if let ModeStatus::Raft(RaftStatus { stopped: Some(why), .. }) = &self.mode {
            return Some(format!("{why}; this node exits so that it can be restarted"));
        }
        if self.leader.is_none() {
            return Some(match self.standing {
                Standing::Candidate => {
                    "no leader yet: this node was elected and is adopting a peer's newer data".to_owned()
                }
                _ => "no leader is known: writes are refused until one is elected".to_owned(),
            });
        }
        let ModeStatus::Raft(raft) = &self.mode else {
            return None;
        };
        let (committed, applied) = (raft.committed.unwrap_or(0), raft.applied.unwrap_or(0));
        (applied < committed).then(|| {
            format!("this node has applied the log up to index {applied}, but it is committed up to {committed}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_a_leader_and_in_raft_the_committed_log_applied() {
        let mut status = Status {
            standing: Standing::NoLeader,
            leader: None,
            leader_changes: 0,
            evictions_skipped: 0,
            mode: ModeStatus::Snapshot { sync: None },
        };
        assert!(status.not_ready().unwrap().contains("no leader"));
        status.standing = Standing::Candidate;
        assert!(status.not_ready().unwrap().contains("adopting"));
        status.standing = Standing::Follower;
        status.leader = Some("http://127.0.0.1:1".to_owned());
        assert_eq!(status.not_ready(), None);
        status.mode = ModeStatus::Raft(RaftStatus {
            committed: Some(10),
            applied: Some(9),
            ..RaftStatus::default()
        });
        assert!(status.not_ready().unwrap().contains("up to index 9"));
        status.mode = ModeStatus::Raft(RaftStatus {
            committed: Some(10),
            applied: Some(10),
            ..RaftStatus::default()
        });
        assert_eq!(status.not_ready(), None);
        status.mode = ModeStatus::Raft(RaftStatus {
            stopped: Some("raft stopped: no space left on device".to_owned()),
            ..RaftStatus::default()
        });
        assert!(status.not_ready().unwrap().contains("no space left on device"));
    }
}
