use super::{Election, HashElection};
use crate::coordinator::Server;

/// The hash rule, applied only while a strict majority of the configured servers
/// (this node included) is reachable. A node in a minority has no leader, so a cluster
/// cut in two never has two leaders taking writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuorumElection;

impl Election for QuorumElection {
    fn name(&self) -> &'static str {
        "quorum"
    }

    fn elect(&self, servers: &[Server]) -> Option<usize> {
        let reachable = servers.iter().filter(|s| s.status).count();
        if reachable * 2 <= servers.len() {
            return None;
        }
        HashElection.elect(servers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::election::view;

    const A: &str = "http://localhost:8081";
    const B: &str = "http://localhost:8082";
    const C: &str = "http://localhost:8083";

    #[test]
    fn a_majority_elects_like_the_hash_rule() {
        let servers = view(&[(C, true, false), (B, true, false), (A, false, false)]);
        assert_eq!(QuorumElection.elect(&servers), HashElection.elect(&servers));
        assert_eq!(QuorumElection.elect(&servers), Some(1));
    }

    #[test]
    fn a_minority_has_no_leader_even_if_it_led() {
        let servers = view(&[(A, true, true), (B, false, false), (C, false, false)]);
        assert_eq!(QuorumElection.elect(&servers), None);
        assert_eq!(HashElection.elect(&servers), Some(0));
    }

    #[test]
    fn half_is_not_a_majority() {
        let servers = view(&[(A, true, false), (B, false, false)]);
        assert_eq!(QuorumElection.elect(&servers), None);
        let four = view(&[
            (A, true, false),
            (B, true, false),
            (C, false, false),
            ("http://d:1", false, false),
        ]);
        assert_eq!(QuorumElection.elect(&four), None);
    }

    #[test]
    fn a_single_configured_server_is_its_own_majority() {
        assert_eq!(QuorumElection.elect(&view(&[(A, true, false)])), Some(0));
    }
}
