//! The node's view of the cluster, kept up to date: openraft's metrics followed into it
//! (taking office when this node becomes leader), and the members' `/info` probed for
//! `/cluster`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use openraft::error::{CheckIsLeaderError, RaftError as OpenRaftError};
use openraft::ServerState;
use registry_cluster::coordinator::Server;
use registry_http::{get_json, HttpInvoker};
use tokio::task::JoinHandle;

use crate::data_dir::DataDir;

use super::cluster::{RaftCluster, Seen};

/// Follows openraft's metrics into the view. When this node becomes leader it takes
/// office: it waits until it has applied the whole committed log (a read index round),
/// then gives every instance one TTL of grace, and only then answers as leader.
pub(super) async fn watch_metrics(node: Arc<RaftCluster>, mut dir: DataDir) {
    let mut metrics = node.raft.metrics();
    let mut office: Option<JoinHandle<()>> = None;
    // openraft updates its metrics several times per write: copy the few fields the view
    // needs, and rebuild the member maps only when the membership itself changed.
    let mut membership_at = None;
    loop {
        let (term, leader, leads, applied, has_log, membership) = {
            let m = metrics.borrow_and_update();
            if let Err(fatal) = &m.running_state {
                stopped(&node, format!("raft stopped: {fatal}"));
                return;
            }
            // A leader no quorum has answered lately (`quorum_fresh`) is not one any more
            // for the view (check-quorum): the others may have elected another.
            let leads = m.state == ServerState::Leader && m.current_leader == Some(node.id) && node.quorum_fresh(&m);
            let membership =
                (membership_at != Some(*m.membership_config.log_id())).then(|| m.membership_config.clone());
            (
                m.current_term,
                m.current_leader,
                leads,
                m.last_applied.map(|l| l.index),
                m.last_log_index.is_some(),
                membership,
            )
        };
        let (changed, in_office) = {
            let mut view = node.view.write().unwrap_or_else(PoisonError::into_inner);
            let mut changed = view.term != term || view.leader != leader;
            if view.leader != leader && leader.is_some() {
                node.leader_changes.fetch_add(1, Ordering::Relaxed);
            }
            if changed || !leads {
                changed |= view.in_office;
                view.in_office = false;
            }
            view.term = term;
            view.leader = leader;
            view.applied = applied;
            if let Some(membership) = membership {
                membership_at = Some(*membership.log_id());
                view.members = membership
                    .membership()
                    .nodes()
                    .map(|(id, n)| (*id, n.addr.clone()))
                    .collect();
                view.voters = membership.membership().voter_ids().collect();
                changed = true;
            }
            (changed, view.in_office)
        };
        if changed {
            node.changed.send_modify(|n| *n += 1);
            tracing::debug!(term, leader = ?leader, "raft view changed");
        }
        if has_log && !dir.is_initialised() {
            if let Err(e) = dir.mark_initialised() {
                tracing::error!(error = %e, "cannot record that this node holds raft state");
            }
        }
        if leads && !in_office && office.as_ref().is_none_or(|t| t.is_finished()) {
            office = Some(tokio::spawn(take_office(node.clone(), term)));
        }
        if metrics.changed().await.is_err() {
            stopped(&node, "raft's core stopped".to_owned());
            return;
        }
    }
}

/// openraft's core stopped on its own: the node says why everywhere it can and leads no
/// more; the binary exits on it ([`RaftCluster::failed`]).
fn stopped(node: &RaftCluster, why: String) {
    tracing::error!(cause = %why, "this node cannot take part in the cluster any more");
    {
        let mut view = node.view.write().unwrap_or_else(PoisonError::into_inner);
        view.in_office = false;
        view.leader = None;
    }
    node.failure.send_replace(Some(why));
    node.changed.send_modify(|n| *n += 1);
}

async fn take_office(node: Arc<RaftCluster>, term: u64) {
    loop {
        match node.raft.ensure_linearizable().await {
            Ok(_) => break,
            Err(OpenRaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => return,
            Err(OpenRaftError::Fatal(_)) => return,
            Err(e) => {
                tracing::debug!(error = %e, "taking office: the committed log is not confirmed yet");
                tokio::time::sleep(node.settings.heartbeat).await;
            }
        }
    }
    let now = node.clock.now_ms();
    node.registry.renew_all(now);
    let mut view = node.view.write().unwrap_or_else(PoisonError::into_inner);
    if view.term == term && view.leader == Some(node.id) {
        view.in_office = true;
        drop(view);
        node.changed.send_modify(|n| *n += 1);
        tracing::info!(
            term,
            version = node.registry.registry_version(),
            "this node leads: committed log applied, every instance renewed now"
        );
    }
}

/// Reads every other member's `/info` for `/cluster` (status, version, term, applied).
pub(super) async fn probe(node: Arc<RaftCluster>, invoker: Arc<dyn HttpInvoker>) {
    let mut ticker = tokio::time::interval(node.settings.probe_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let members = node.view().members;
        for (id, url) in members.into_iter().filter(|(id, _)| *id != node.id) {
            let info = format!("{url}/info");
            let answer =
                tokio::time::timeout(node.settings.probe_timeout, get_json::<Server>(invoker.as_ref(), &info)).await;
            let seen = match answer {
                Ok(Ok(server)) => Seen {
                    status: true,
                    version: server.version,
                    term: server.term,
                    applied: server.applied,
                    grpc_connections: server.grpc_connections,
                },
                _ => Seen::default(),
            };
            node.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, seen);
        }
    }
}
