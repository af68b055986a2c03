//! Leader election rules. Each rule is a pure function of a view of the servers, so all
//! nodes that see the same view elect the same leader, and the rules are tested with
//! fixed views.

mod hash;
mod quorum;

use std::str::FromStr;
use std::sync::Arc;

pub use hash::{java_hash_code, HashElection};
pub use quorum::QuorumElection;

use crate::coordinator::Server;
use crate::snapshot::error::ClusterError;

/// Decides who leads, given every configured server (this node included) as last probed:
/// `status` is whether it is reachable, `leader` whether it says it leads (for this node:
/// whether it leads now).
///
/// Leadership is sticky: when exactly one reachable server leads, a rule keeps it.
pub trait Election: Send + Sync {
    /// The rule's name, for logs and `/info`-style reports.
    fn name(&self) -> &'static str;

    /// The index in `servers` of the leader, or `None` when there must be none.
    fn elect(&self, servers: &[Server]) -> Option<usize>;
}

/// Which rule a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionKind {
    /// `quorum` for three or more configured servers, `hash` for one or two.
    Auto,
    /// [`HashElection`].
    Hash,
    /// [`QuorumElection`].
    Quorum,
}

impl ElectionKind {
    /// The rule for a cluster of `configured` servers.
    pub fn build(self, configured: usize) -> Arc<dyn Election> {
        match self {
            ElectionKind::Hash => Arc::new(HashElection),
            ElectionKind::Quorum => Arc::new(QuorumElection),
            ElectionKind::Auto if configured >= 3 => Arc::new(QuorumElection),
            ElectionKind::Auto => Arc::new(HashElection),
        }
    }
}

impl FromStr for ElectionKind {
    type Err = ClusterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ElectionKind::Auto),
            "hash" => Ok(ElectionKind::Hash),
            "quorum" => Ok(ElectionKind::Quorum),
            other => Err(ClusterError::UnknownElection(other.to_owned())),
        }
    }
}

#[cfg(test)]
pub(crate) fn view(entries: &[(&str, bool, bool)]) -> Vec<Server> {
    entries
        .iter()
        .map(|(url, status, leader)| Server {
            url: (*url).to_owned(),
            status: *status,
            leader: *leader,
            version: 0,
            ..Server::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_by_size() {
        assert_eq!(ElectionKind::Auto.build(1).name(), "hash");
        assert_eq!(ElectionKind::Auto.build(2).name(), "hash");
        assert_eq!(ElectionKind::Auto.build(3).name(), "quorum");
        assert_eq!(ElectionKind::Hash.build(5).name(), "hash");
        assert_eq!(ElectionKind::Quorum.build(2).name(), "quorum");
        assert!("raft".parse::<ElectionKind>().is_err());
        assert_eq!("quorum".parse::<ElectionKind>().unwrap(), ElectionKind::Quorum);
    }
}
