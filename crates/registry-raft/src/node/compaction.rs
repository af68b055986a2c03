//! When a snapshot is taken besides openraft's own policy (every `--raft-snapshot-every`
//! entries): once the entries since the last one carry many commands.
//!
//! Under load the batcher puts up to 512 writes in one entry, so 20,000 entries can hold
//! most of a million registrations. A restart re-applies every command after the snapshot,
//! at a few microseconds each, and that dominated the cold start of a large registry.
//! Bounding the commands since the snapshot to a tenth of the registry (at least
//! `snapshot_commands`) bounds the re-apply to a fraction of loading the snapshot itself.

use std::sync::Arc;
use std::time::Duration;

use super::cluster::RaftCluster;

/// How often the count is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Asks openraft for a snapshot whenever the commands applied since the last one pass
/// the bound.
pub(super) async fn snapshot_when_heavy(node: Arc<RaftCluster>) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let since = node.state_machine.commands_since_snapshot();
        let bound = node
            .settings
            .snapshot_commands
            .max(node.registry.stats().instances / 10);
        if since < bound {
            continue;
        }
        tracing::info!(
            commands = since,
            bound,
            "many commands since the last snapshot: taking one"
        );
        if let Err(e) = node.raft.trigger().snapshot().await {
            tracing::warn!(error = %e, "could not ask for a snapshot");
        }
        // The count starts over when the snapshot freezes the registry; give it time to.
        tokio::time::sleep(CHECK_EVERY).await;
    }
}
