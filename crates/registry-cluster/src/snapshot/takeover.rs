use std::sync::Arc;

use registry_http::HttpInvoker;
use tokio::task::JoinSet;

use super::cluster::Cluster;
use super::error::ClusterError;
use super::sync::fetch_snapshot;
use crate::coordinator::Server;

/// Makes this node the leader once it holds at least what every reachable server holds
/// (docs/spec.md §4.4): fetches the snapshot of each reachable server whose registry version, at
/// the last probe, is above this node's, adopts them into the registry (a service is
/// taken when the other side has it at a higher version: `Registry::adopt`, the rule of
/// `Snapshot::merge`), then applies the takeover rules (versions above every version
/// seen, every instance renewed now).
///
/// Used by the health loop for an elected candidate, and by `/sl` (`operator`), which
/// takes office even though no election chose this node. Answers this node as leader, or
/// `None` when it may not lead now (the election moved on meanwhile). Fails, leaving this
/// node out of office and its data as it was, when a snapshot cannot be fetched or is
/// invalid.
pub async fn take_office(
    cluster: &Arc<Cluster>,
    invoker: &Arc<dyn HttpInvoker>,
    why: &'static str,
    operator: bool,
) -> Result<Option<Server>, ClusterError> {
    let higher = cluster.higher_peers();
    if !higher.is_empty() {
        let mut fetches = JoinSet::new();
        for url in higher {
            let invoker = invoker.clone();
            fetches.spawn(async move {
                let snapshot = fetch_snapshot(invoker.as_ref(), &url).await;
                (url, snapshot)
            });
        }
        let mut snapshots = Vec::new();
        while let Some(joined) = fetches.join_next().await {
            let (url, snapshot) = joined.map_err(|e| ClusterError::Restore(e.to_string()))?;
            snapshots.push((url, snapshot?));
        }
        let (registry, now) = (cluster.registry().clone(), cluster.now_ms());
        tokio::task::spawn_blocking(move || -> Result<(), ClusterError> {
            for (url, snapshot) in snapshots {
                let version = snapshot.version;
                let adopted = registry.adopt(snapshot, now)?;
                tracing::info!(from = %url, version, services = adopted.len(), "adopted the data of a server with a higher registry version");
            }
            Ok(())
        })
        .await
        .map_err(|e| ClusterError::Restore(e.to_string()))??;
    }
    Ok(cluster.take_office(why, operator))
}
