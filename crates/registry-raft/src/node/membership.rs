//! Membership changes at run time: `/cluster/join` and `/cluster/leave`, answered by the
//! leader.

use std::collections::BTreeSet;

use openraft::{BasicNode, ChangeMembers};
use registry_cluster::coordinator::{normalize_url, Coordinator, CoordinatorError, Role, Server};

use crate::types::{node_id, NodeId};

use super::cluster::RaftCluster;

impl RaftCluster {
    /// The member `url` names, for a membership change on this node, which must lead.
    pub(super) fn member(&self, url: &str) -> Result<(String, NodeId), CoordinatorError> {
        let url = normalize_url(url).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        if self.role() != Role::Leader {
            let view = self.view();
            return Err(CoordinatorError::NotLeader {
                leader: self.leader_url(&view).filter(|u| *u != self.url),
            });
        }
        let id = node_id(&url);
        Ok((url, id))
    }

    /// `/cluster/join?url=U`: adds `U` as a learner, waits until it has caught up (up
    /// to the install timeout), then makes it a voter; answers the members.
    pub(super) async fn join(&self, url: &str) -> Result<Vec<Server>, CoordinatorError> {
        let (url, id) = self.member(url)?;
        tracing::info!(%url, id, "adding a member: as a learner until it has caught up, then as a voter");
        // openraft's own "blocking" add waits half a second and then answers success
        // whether or not the learner caught up; wait here for its replication to reach
        // the membership entry that added it, up to the install timeout.
        let added = self
            .raft
            .add_learner(id, BasicNode { addr: url.clone() }, false)
            .await
            .map_err(|e| self.write_error(e))?;
        let target = added.log_id.index;
        let mut metrics = self.raft.metrics();
        let caught_up = async {
            loop {
                let matched = metrics
                    .borrow()
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(&id).cloned().flatten())
                    .map(|log_id| log_id.index);
                if matched.is_some_and(|index| index >= target) {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        };
        let limit = self.settings.install_timeout;
        if !matches!(tokio::time::timeout(limit, caught_up).await, Ok(true)) {
            return Err(CoordinatorError::Unavailable(format!(
                "{url} did not catch up within {limit:?} (is it running and reachable, with this cluster's \
                 token?); it stays a learner, which receives the log but does not vote: retry the join, or \
                 remove it with /cluster/leave"
            )));
        }
        let voters = self.view().voters.len() + 1;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.write_error(e))?;
        tracing::info!(%url, voters, "member added");
        Ok(self.servers())
    }

    /// `/cluster/leave?url=U`: removes the member `U` (a voter as a voter, a learner as
    /// a node); answers the members.
    pub(super) async fn leave(&self, url: &str) -> Result<Vec<Server>, CoordinatorError> {
        let (url, id) = self.member(url)?;
        let view = self.view();
        if !view.members.contains_key(&id) {
            return Err(CoordinatorError::Invalid(format!(
                "{url} is not a member of this cluster"
            )));
        }
        if view.voters.contains(&id) && view.voters.len() == 1 {
            return Err(CoordinatorError::Invalid(format!(
                "{url} is the last voter; a cluster cannot remove it"
            )));
        }
        // A voter is removed as a voter (retain = false drops it from the nodes too); a
        // learner is removed as a node.
        let change = if view.voters.contains(&id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.write_error(e))?;
        tracing::info!(%url, "member removed");
        Ok(self.servers())
    }
}
