use std::sync::Arc;
use std::time::Duration;

use registry_core::{Snapshot, Synced};
use registry_http::{ErrorKind, HttpInvokeError, HttpInvoker, HttpRequest};

use super::cluster::Cluster;
use super::error::ClusterError;

/// What one sync attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncOutcome {
    /// Nothing changed on the leader during the wait.
    UpToDate,
    /// The leader answered at once with a whole snapshot at this node's version: a
    /// leader that does not long-poll (an older node). The next poll waits a round.
    Unchanged,
    /// The leader's changes since this follower's version were applied.
    Delta {
        /// The version reached.
        version: u64,
        /// How many services the delta replaced.
        services: usize,
    },
    /// The leader's whole snapshot replaced the local data.
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
    /// The role changed while the answer was in flight; nothing was applied.
    Abandoned,
}

/// Tracks which leader a follower last copied, so that a change of leader forces a whole
/// snapshot even when the version numbers happen to match.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    last_leader: Option<String>,
    /// The size of the last answer, decoded: what the next poll's pacing goes by.
    pub(crate) last_answer_bytes: usize,
}

impl SyncState {
    /// Brings the local registry to `leader`'s state (docs/spec.md §4.5) with one long poll:
    /// `GET /snapshot?since=V&wait=D` (gzip accepted), which the leader answers once it
    /// holds a version above `V` (this node's), or when `wait` runs out. The answer is a
    /// delta when the leader's change log reaches back to `V`, else the whole snapshot;
    /// either is applied and this registry's checksum compared with the leader's. A delta
    /// that does not fit, or a checksum that differs, is followed at once by a whole
    /// snapshot (`since=0`). After a change of leader the first fetch is whole. A leader
    /// whose answer is behind this node is not copied. On any failure the local data is
    /// kept.
    pub(crate) async fn sync(
        &mut self,
        cluster: &Arc<Cluster>,
        invoker: &dyn HttpInvoker,
        leader: &str,
        wait: Duration,
    ) -> Result<SyncOutcome, ClusterError> {
        // The leader's own answer says whether it is behind: the version the last probe
        // saw trails it by up to a round.
        let local = cluster.registry().registry_version();
        let since = if self.follows(leader) { local } else { 0 };
        let (answer, bytes) = fetch_since(invoker, leader, since, wait).await?;
        self.last_answer_bytes = bytes;
        let outcome = self.apply(cluster, leader, answer, local).await?;
        let Some(why) = outcome.1 else {
            return Ok(outcome.0);
        };
        tracing::warn!(
            leader,
            why,
            "the leader's delta did not fit: fetching its whole snapshot"
        );
        let (answer, bytes) = fetch_since(invoker, leader, 0, Duration::ZERO).await?;
        self.last_answer_bytes += bytes;
        let (outcome, again) = self.apply(cluster, leader, answer, local).await?;
        if let Some(why) = again {
            tracing::error!(
                leader,
                why,
                "the whole snapshot did not fit either; retrying next round"
            );
        }
        Ok(outcome)
    }

    /// Applies one answer; the second value says why a whole snapshot is needed now.
    async fn apply(
        &mut self,
        cluster: &Arc<Cluster>,
        leader: &str,
        answer: Snapshot,
        local: u64,
    ) -> Result<(SyncOutcome, Option<&'static str>), ClusterError> {
        let (version, delta) = (answer.version, answer.since.is_some());
        let services = answer.registry.len().max(answer.versions.len());
        if version < local {
            return Ok((SyncOutcome::LeaderBehind { leader: version, local }, None));
        }
        if !delta && self.follows(leader) && version == local {
            let same = match &answer.checksum {
                Some(theirs) => *theirs == cluster.registry().checksum().1,
                None => true,
            };
            if same {
                return Ok((SyncOutcome::Unchanged, None));
            }
        }
        // Restoring a large snapshot is CPU work: keep it off the async workers.
        let applied = if delta && services <= INLINE_SERVICES {
            cluster.apply_from(leader, answer)?
        } else {
            let (cluster_ref, leader_url) = (cluster.clone(), leader.to_owned());
            tokio::task::spawn_blocking(move || cluster_ref.apply_from(&leader_url, answer))
                .await
                .map_err(|e| ClusterError::Restore(e.to_string()))??
        };
        Ok(match applied {
            None => (SyncOutcome::Abandoned, None),
            Some(Synced::Older) => (
                SyncOutcome::LeaderBehind {
                    leader: version,
                    local: cluster.registry().registry_version(),
                },
                None,
            ),
            Some(Synced::Applied) => {
                self.last_leader = Some(leader.to_owned());
                let outcome = if !delta {
                    SyncOutcome::Restored { version }
                } else if version == local {
                    SyncOutcome::UpToDate
                } else {
                    SyncOutcome::Delta { version, services }
                };
                (outcome, None)
            }
            Some(Synced::NotFromHere) => (SyncOutcome::Abandoned, Some("it starts at another version")),
            Some(Synced::Mismatch) => {
                self.last_leader = None;
                (
                    SyncOutcome::Abandoned,
                    Some("the registries' checksums differ after applying it"),
                )
            }
        })
    }

    /// Whether the last answer applied came from `leader`.
    fn follows(&self, leader: &str) -> bool {
        self.last_leader.as_deref() == Some(leader)
    }

    /// Forgets the last leader (this node leads, or none does).
    pub(crate) fn reset(&mut self) {
        self.last_leader = None;
    }
}

/// `GET {server_url}/snapshot?since=…&wait=…` with gzip accepted, parsed and validated
/// (a large answer on a blocking thread: about 0.2 s for 100k instances is not work for an
/// async worker). Answers the snapshot and its size in bytes, decoded.
pub(crate) async fn fetch_since(
    invoker: &dyn HttpInvoker,
    server_url: &str,
    since: u64,
    wait: Duration,
) -> Result<(Snapshot, usize), ClusterError> {
    let url = format!("{server_url}/snapshot?since={since}&wait={}ms", wait.as_millis());
    let mut request = HttpRequest::get(&url, &[]);
    request.headers.push(("accept-encoding", "gzip".to_owned()));
    // The leader holds the answer up to `wait`; the client's own timeout comes on top.
    request.timeout = Some(wait + Duration::from_secs(5));
    let response = invoker.send(request).await?;
    if !response.is_success() {
        return Err(ClusterError::Fetch(
            HttpInvokeError::new(ErrorKind::Status, "GET", &url).with_answer(response.status, &response.body),
        ));
    }
    tracing::trace!(url = %url, bytes = response.body.len(), wire = response.wire_len, "sync answer");
    let body = response.body;
    let bytes = body.len();
    if bytes <= INLINE_BYTES {
        return Ok((Snapshot::from_json(&body)?, bytes));
    }
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::from_json(&body))
        .await
        .map_err(|e| ClusterError::Restore(e.to_string()))??;
    Ok((snapshot, bytes))
}

/// Answers up to this size (a delta, usually) are parsed and applied on the async worker;
/// larger ones on a blocking thread.
const INLINE_BYTES: usize = 256 * 1024;

/// Deltas of up to this many services are applied on the async worker.
const INLINE_SERVICES: usize = 64;

/// The whole snapshot of the server at `server_url`, through the protected form
/// (`since=0`, no wait), as a node that takes office fetches it.
pub(crate) async fn fetch_snapshot(invoker: &dyn HttpInvoker, server_url: &str) -> Result<Snapshot, ClusterError> {
    Ok(fetch_since(invoker, server_url, 0, Duration::ZERO).await?.0)
}
