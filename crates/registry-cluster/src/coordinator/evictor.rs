//! The leader's eviction pass, one shape for every cluster mode: the mode decides who
//! leads and how a [`Command::Evict`] is applied; the pass decides what expired.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use registry_core::{Clock, Command};
use tokio::time::MissedTickBehavior;

use super::seam::{Coordinator, Role};

/// The passive health check (docs/spec.md §3.5): every `interval`, on the node that leads,
/// the instances whose lease ran out (their own, else `ttl`) go in one
/// [`Command::Evict`] through [`Coordinator::submit`]: applied at once in the snapshot
/// mode, through the log in raft. Applying it removes only the instances not registered
/// again since the decision. The mode's [`crate::SelfPreservation`] may skip a pass.
/// Stops when `shutdown` completes.
pub async fn run_evictor(
    cluster: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        if cluster.role() != Role::Leader {
            continue;
        }
        let now = clock.now_ms();
        let registry = cluster.registry();
        let victims = registry.expired(now, ttl_ms);
        if victims.is_empty()
            || !cluster
                .preservation()
                .allows(victims.len(), || registry.stats().instances)
        {
            continue;
        }
        for victim in &victims {
            tracing::debug!(service = %victim.service, instance = %victim.url, "instance expired");
        }
        let count = victims.len();
        // A write that waits for a leader (raft) must not hold up a shutdown.
        let outcome = tokio::select! {
            _ = &mut shutdown => break,
            outcome = cluster.submit(Command::Evict { now_ms: now, victims }) => outcome,
        };
        match outcome {
            Ok(applied) => tracing::info!(
                expired = count,
                evicted = applied.changes,
                version = applied.version,
                "evicted instances that stopped renewing (unless registered again meanwhile)"
            ),
            Err(e) => tracing::warn!(error = %e, "eviction not applied; trying again next round"),
        }
    }
    tracing::debug!("eviction loop stopped");
}
