//! [`RaftCluster`] behind the [`Coordinator`] seam: the role as openraft reports it, writes
//! through the batcher, read-index reads, and raft's own endpoints.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use openraft::error::{CheckIsLeaderError, RaftError as OpenRaftError};
use registry_cluster::coordinator::{
    Coordinator, CoordinatorError, ModeRoute, ModeStatus, RaftStatus, Replica, Role, RouteCall, SelfPreservation,
    Server, Standing, Status,
};
use registry_core::{Applied, Command, Registry};
use tokio::sync::oneshot;

use crate::network::serve_rpc;
use crate::types::NodeId;

use super::cluster::RaftCluster;
use super::election::PREVOTE;

const JOIN: &str = "/cluster/join";
const LEAVE: &str = "/cluster/leave";

/// Raft's own endpoints: membership changes (answered by the leader; a follower's caller
/// relays) and the node-to-node RPCs, whose bodies may hold a whole snapshot.
pub const ROUTES: &[ModeRoute] = &[
    ModeRoute {
        path: JOIN,
        params: &["url"],
        peer_body: false,
        long_poll: false,
    },
    ModeRoute {
        path: LEAVE,
        params: &["url"],
        peer_body: false,
        long_poll: false,
    },
    ModeRoute {
        path: "/raft/append",
        params: &[],
        peer_body: true,
        long_poll: false,
    },
    ModeRoute {
        path: "/raft/vote",
        params: &[],
        peer_body: true,
        long_poll: false,
    },
    ModeRoute {
        path: "/raft/snapshot",
        params: &[],
        peer_body: true,
        long_poll: false,
    },
    ModeRoute {
        path: PREVOTE,
        params: &[],
        peer_body: true,
        long_poll: false,
    },
];

#[async_trait]
impl Coordinator for RaftCluster {
    fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn my_url(&self) -> String {
        self.url.clone()
    }

    fn role(&self) -> Role {
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        match view.leader {
            Some(id) if id == self.id && view.in_office => Role::Leader,
            Some(id) if id != self.id => match view.members.get(&id) {
                Some(url) => Role::Follower { leader: url.clone() },
                None => Role::NoLeader,
            },
            _ => Role::NoLeader,
        }
    }

    fn myself(&self) -> Server {
        self.describe(&self.view(), self.id, &self.url)
    }

    async fn status(&self) -> Status {
        let (standing, leader) = match self.role() {
            Role::Leader => (Standing::Leader, Some(self.url.clone())),
            Role::Follower { leader } => (Standing::Follower, Some(leader)),
            Role::NoLeader => (Standing::NoLeader, None),
        };
        // The commit index is not in openraft's metrics: ask the core.
        let committed = self
            .raft
            .with_raft_state(|state| state.committed.map(|log| log.index))
            .await
            .ok()
            .flatten();
        let (term, last_log_index, applied, replication) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let replication: Vec<(NodeId, Option<u64>)> = m
                .replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != self.id)
                .map(|(id, matched)| (*id, matched.map(|log| log.index)))
                .collect();
            (
                m.current_term,
                m.last_log_index,
                m.last_applied.map(|l| l.index),
                replication,
            )
        };
        let view = self.view();
        let replication = replication
            .into_iter()
            .map(|(node_id, matched)| Replica {
                node_id,
                url: view.members.get(&node_id).cloned().unwrap_or_default(),
                matched,
                lag: last_log_index.unwrap_or(0).saturating_sub(matched.unwrap_or(0)),
            })
            .collect();
        Status {
            standing,
            leader,
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
            evictions_skipped: self.preservation.skipped(),
            mode: ModeStatus::Raft(RaftStatus {
                node_id: self.id,
                term,
                last_log_index,
                committed,
                applied,
                replication,
                stopped: self.failure(),
            }),
        }
    }

    fn servers(&self) -> Vec<Server> {
        let view = self.view();
        let mut members = view.members.clone();
        members.entry(self.id).or_insert_with(|| self.url.clone());
        members.iter().map(|(id, url)| self.describe(&view, *id, url)).collect()
    }

    fn leader(&self) -> Option<Server> {
        let view = self.view();
        let id = view.leader?;
        let url = view.members.get(&id)?;
        let server = self.describe(&view, id, url);
        server.leader.then_some(server)
    }

    async fn settle(&self) -> Role {
        let mut changed = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + self.settings.write_timeout;
        loop {
            let role = self.role();
            if role != Role::NoLeader || self.failure.borrow().is_some() {
                return role;
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                return Role::NoLeader;
            }
        }
    }

    async fn leader_moved(&self, leader: &str) {
        let mut changed = self.changed.subscribe();
        loop {
            match self.role() {
                Role::Follower { leader: now } if now == leader => {}
                _ => return,
            }
            if changed.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    async fn submit(&self, command: Command) -> Result<Applied, CoordinatorError> {
        if let Some(why) = self.failure() {
            return Err(CoordinatorError::Unavailable(why));
        }
        // What the log carries is applied as nothing on every node when it breaks a rule:
        // refuse it here, where the client hears why.
        command.validate()?;
        self.timed_write(async {
            let (answer, outcome) = oneshot::channel();
            self.proposals
                .send((command, answer))
                .await
                .map_err(|_| CoordinatorError::Unavailable("this node is shutting down".to_owned()))?;
            outcome.await.unwrap_or_else(|_| {
                Err(CoordinatorError::Indeterminate(
                    "the node shut down while the write was proposed: it may or may not have been applied".to_owned(),
                ))
            })
        })
        .await
    }

    async fn consistent_read(&self) -> Result<(), CoordinatorError> {
        self.timed_read(async {
            match self.raft.ensure_linearizable().await {
                Ok(_) => Ok(()),
                Err(OpenRaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    Err(self.forward_to(f.leader_node))
                }
                Err(e) => Err(CoordinatorError::Unavailable(format!(
                    "no quorum confirmed the read: {e}"
                ))),
            }
        })
        .await
    }

    async fn campaign(&self) -> Result<Server, CoordinatorError> {
        self.raft
            .trigger()
            .elect()
            .await
            .map_err(|e| CoordinatorError::Unavailable(format!("raft stopped: {e}")))?;
        Ok(self.myself())
    }

    fn routes(&self) -> &'static [ModeRoute] {
        ROUTES
    }

    async fn serve_route(&self, route: usize, call: RouteCall) -> Result<Bytes, CoordinatorError> {
        let members = match (ROUTES.get(route).map(|r| r.path), call.params.first()) {
            (Some(JOIN), Some(url)) => self.join(url).await?,
            (Some(LEAVE), Some(url)) => self.leave(url).await?,
            (Some(PREVOTE), _) => {
                return self.serve_prevote(&call.body).await.map_err(CoordinatorError::Invalid);
            }
            (Some(path), _) => {
                let name = path.trim_start_matches("/raft/");
                let served = serve_rpc(&self.raft, name, call.body)
                    .await
                    .map_err(CoordinatorError::Invalid)?;
                if served.heard_leader {
                    self.heard_leader();
                }
                return Ok(served.answer);
            }
            (None, _) => return Err(CoordinatorError::Invalid(format!("no raft route {route}"))),
        };
        serde_json::to_vec(&members)
            .map(Bytes::from)
            .map_err(|e| CoordinatorError::Unavailable(format!("encoding the members: {e}")))
    }

    fn preservation(&self) -> &SelfPreservation {
        &self.preservation
    }

    fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }
}
