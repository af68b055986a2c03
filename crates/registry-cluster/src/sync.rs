use std::sync::Arc;

use registry_core::Snapshot;
use registry_http::{ErrorKind, HttpInvokeError, HttpInvoker, HttpRequest};

use crate::cluster::{Cluster, Restored};
use crate::error::ClusterError;
use crate::server::Server;

/// What one sync attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncOutcome {
    /// The follower already held the leader's version.
    UpToDate,
    /// The leader's snapshot replaced the local data.
    Restored {
        /// The version adopted.
        version: u64,
    },
    /// The leader holds a lower registry version than this follower: nothing is copied
    /// (data only flows from more to less) until the leader has adopted this node's data.
    LeaderBehind {
        /// The leader's version.
        leader: u64,
        /// This node's version.
        local: u64,
    },
    /// The role changed while the snapshot was in flight; nothing was applied.
    Abandoned,
}

/// Tracks which leader a follower last copied, so that a change of leader forces a
/// fetch even when the version numbers happen to match.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    last_leader: Option<String>,
}

impl SyncState {
    /// Brings the local registry to `leader`'s state (SPEC §4.5): fetch `/snapshot` when
    /// the leader's version is above the local one, or equal and the leader changed;
    /// validate, then restore all at once. A leader behind this node is not copied. On
    /// any failure the local data is kept.
    pub(crate) async fn sync(
        &mut self,
        cluster: &Arc<Cluster>,
        invoker: &dyn HttpInvoker,
        leader: &Server,
    ) -> Result<SyncOutcome, ClusterError> {
        let local = cluster.registry().registry_version();
        if leader.version < local {
            return Ok(SyncOutcome::LeaderBehind {
                leader: leader.version,
                local,
            });
        }
        let same_leader = self.last_leader.as_deref() == Some(leader.url.as_str());
        if same_leader && leader.version == local {
            return Ok(SyncOutcome::UpToDate);
        }
        let snapshot = fetch_snapshot(invoker, &leader.url).await?;
        if same_leader && !snapshot.should_sync(local) {
            return Ok(SyncOutcome::UpToDate);
        }
        let version = snapshot.version;
        // Restoring a large snapshot is CPU work: keep it off the async workers.
        let (cluster_ref, leader_url) = (cluster.clone(), leader.url.clone());
        let restored = tokio::task::spawn_blocking(move || cluster_ref.restore_from(&leader_url, snapshot))
            .await
            .map_err(|e| ClusterError::Restore(e.to_string()))??;
        match restored {
            Restored::Yes => {
                self.last_leader = Some(leader.url.clone());
                Ok(SyncOutcome::Restored { version })
            }
            Restored::Older => Ok(SyncOutcome::LeaderBehind {
                leader: version,
                local: cluster.registry().registry_version(),
            }),
            Restored::NotFollowing => Ok(SyncOutcome::Abandoned),
        }
    }

    /// Forgets the last leader (this node leads, or none does).
    pub(crate) fn reset(&mut self) {
        self.last_leader = None;
    }
}

/// Fetches the `/snapshot` of the server at `server_url`, then parses and validates it
/// on a blocking thread (about 0.2 s for 100k instances: not work for an async worker).
pub(crate) async fn fetch_snapshot(invoker: &dyn HttpInvoker, server_url: &str) -> Result<Snapshot, ClusterError> {
    let url = format!("{server_url}/snapshot");
    let response = invoker.send(HttpRequest::get(&url, &[])).await?;
    if !response.is_success() {
        return Err(ClusterError::Fetch(
            HttpInvokeError::new(ErrorKind::Status, "GET", &url).with_answer(response.status, &response.body),
        ));
    }
    let body = response.body;
    tokio::task::spawn_blocking(move || Snapshot::from_json(&body))
        .await
        .map_err(|e| ClusterError::Restore(e.to_string()))?
        .map_err(ClusterError::from)
}
