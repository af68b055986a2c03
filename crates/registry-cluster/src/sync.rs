use std::sync::Arc;

use registry_core::Snapshot;
use registry_http::{HttpInvoker, HttpRequest};

use crate::cluster::Cluster;
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
    /// the leader's version differs from the local one or the leader changed, validate,
    /// then restore all at once. On any failure the local data is kept.
    pub(crate) async fn sync(
        &mut self,
        cluster: &Arc<Cluster>,
        invoker: &dyn HttpInvoker,
        leader: &Server,
    ) -> Result<SyncOutcome, ClusterError> {
        let local = cluster.registry().registry_version();
        let same_leader = self.last_leader.as_deref() == Some(leader.url.as_str());
        if same_leader && leader.version == local {
            return Ok(SyncOutcome::UpToDate);
        }
        let url = format!("{}/snapshot", leader.url);
        let response = invoker.send(HttpRequest::get(&url, &[])).await?;
        if !response.is_success() {
            return Err(ClusterError::Fetch(
                registry_http::HttpInvokeError::new(registry_http::ErrorKind::Status, "GET", &url)
                    .with_answer(response.status, &response.body),
            ));
        }
        // Parsing and restoring a large snapshot is CPU work (about 0.2 s for 100k
        // instances): keep it off the async workers that serve requests.
        let (cluster_ref, leader_url, body) = (cluster.clone(), leader.url.clone(), response.body);
        let outcome = tokio::task::spawn_blocking(move || -> Result<SyncOutcome, ClusterError> {
            let snapshot = Snapshot::from_json(&body)?;
            if same_leader && !snapshot.should_sync(local) {
                return Ok(SyncOutcome::UpToDate);
            }
            let version = snapshot.version;
            if !cluster_ref.restore_from(&leader_url, snapshot)? {
                return Ok(SyncOutcome::Abandoned);
            }
            Ok(SyncOutcome::Restored { version })
        })
        .await
        .map_err(|e| ClusterError::Restore(e.to_string()))??;
        if let SyncOutcome::Restored { .. } = outcome {
            self.last_leader = Some(leader.url.clone());
        }
        Ok(outcome)
    }

    /// Forgets the last leader (this node leads, or none does).
    pub(crate) fn reset(&mut self) {
        self.last_leader = None;
    }
}
