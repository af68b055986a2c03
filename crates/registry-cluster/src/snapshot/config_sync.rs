//! A follower's copy of the leader's configs (docs/spec.md §8.4): a loop beside the
//! registry's sync that long-polls the leader's `/cluster/configs?since=R&wait=D` and
//! applies each answer, so that a publish reaches a follower (and its listeners) as soon
//! as the leader has applied it.

use std::sync::Arc;
use std::time::Duration;

use registry_core::ConfigDelta;
use registry_http::{ErrorKind, HttpInvokeError, HttpInvoker, HttpRequest};

use super::cluster::Cluster;
use super::coordinator::CONFIGS_PATH;
use super::error::ClusterError;
use crate::coordinator::Role;

/// How often a follower waiting on a poll checks that it still follows that leader.
const ROLE_CHECK: Duration = Duration::from_millis(100);

/// Follows the leader's configs while this node follows, one poll after the other; a
/// poll is dropped when the leader changes. After a failure it waits `interval`, and after
/// a delta it could not apply it asks for the whole store.
pub(crate) async fn follow_configs(
    cluster: Arc<Cluster>,
    invoker: Arc<dyn HttpInvoker>,
    interval: Duration,
    wait: Duration,
) {
    let mut whole = true;
    loop {
        let Role::Follower { leader } = cluster.role() else {
            whole = true;
            tokio::time::sleep(interval.min(ROLE_CHECK * 5)).await;
            continue;
        };
        let since = if whole {
            0
        } else {
            cluster.registry().configs().revision()
        };
        let still_following = async {
            loop {
                tokio::time::sleep(ROLE_CHECK).await;
                if !matches!(cluster.role(), Role::Follower { leader: ref l } if *l == leader) {
                    break;
                }
            }
        };
        let polled = tokio::select! {
            polled = fetch(invoker.as_ref(), &leader, since, wait) => polled,
            () = still_following => {
                whole = true;
                continue;
            }
        };
        match polled.and_then(|delta| {
            let (revision, configs) = (delta.revision, delta.configs.len());
            cluster.registry().configs().apply_delta(delta)?;
            Ok((revision, configs))
        }) {
            Ok((revision, configs)) => {
                if whole || configs > 0 {
                    tracing::debug!(leader = %leader, revision, configs, "applied the leader's configs");
                }
                whole = false;
            }
            Err(e) => {
                tracing::warn!(leader = %leader, error = %e, "config sync failed; keeping the local configs");
                whole = true;
                tokio::time::sleep(interval).await;
            }
        }
    }
}

async fn fetch(
    invoker: &dyn HttpInvoker,
    leader: &str,
    since: u64,
    wait: Duration,
) -> Result<ConfigDelta, ClusterError> {
    let url = format!("{leader}{CONFIGS_PATH}?since={since}&wait={}ms", wait.as_millis());
    let mut request = HttpRequest::get(&url, &[]);
    request.timeout = Some(wait + Duration::from_secs(5));
    let response = invoker.send(request).await?;
    if !response.is_success() {
        return Err(ClusterError::Fetch(
            HttpInvokeError::new(ErrorKind::Status, "GET", &url).with_answer(response.status, &response.body),
        ));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| ClusterError::Restore(format!("the leader's configs do not parse: {e}")))
}
