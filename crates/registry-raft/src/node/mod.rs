//! [`RaftCluster`], split by job: `settings` ([`RaftSettings`]), `cluster` (what a node
//! holds), `bootstrap` (start, initialise or rejoin, stop), `view` (openraft's metrics into
//! the view, taking office, probing members), `election` (when a follower campaigns: the
//! timer and the pre-vote), `batching` (writes into log entries), `compaction` (snapshots
//! by the commands since the last one),
//! `membership` (join and leave) and `seam` (the [`registry_cluster::coordinator::Coordinator`]
//! implementation and raft's own endpoints).

mod batching;
mod bootstrap;
mod cluster;
mod compaction;
mod election;
mod membership;
mod seam;
mod settings;
mod view;

pub use cluster::RaftCluster;
pub use seam::ROUTES;
pub use settings::RaftSettings;
