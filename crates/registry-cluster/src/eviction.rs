use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use registry_core::Clock;
use tokio::time::{Instant, MissedTickBehavior};

use crate::cluster::Cluster;

/// The passive health check (docs/spec.md §3): every `interval`, the leader (and only the leader)
/// removes the instances not renewed for more than `ttl`. Stops when `shutdown`
/// completes.
pub async fn run_evictor(
    cluster: Arc<Cluster>,
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
        if !cluster.is_leader() {
            continue;
        }
        let now = clock.now_ms();
        // With the guard on, count first; evict_expired scans again under its own lock.
        let guard = cluster.preservation();
        if guard.is_on() {
            let expired = cluster.registry().expired(now, ttl_ms).len();
            if expired == 0 || !guard.allows(expired, || cluster.registry().stats().instances) {
                continue;
            }
        }
        for gone in cluster.registry().evict_expired(now, ttl_ms) {
            tracing::info!(
                service = %gone.service,
                instance = %gone.instance.url(),
                last_renewed = gone.renewed,
                "evicted an instance that stopped renewing"
            );
        }
    }
    tracing::debug!("eviction loop stopped");
}

/// Self-preservation, Eureka's idea made visible: when eviction would remove more than a
/// fraction of all instances at once, the likelier cause is that this node lost its
/// network, not that the instances died together. The pass evicts none, warns, and
/// counts; eviction resumes once heartbeats come back (fewer expire) or the operator
/// raises the fraction.
///
/// "At once" is one TTL: instances that stop renewing together expire over a heartbeat
/// interval, which two passes may split, so the evictions of the last TTL count along
/// with the pass's own (against all instances, those evicted in that TTL included).
/// Otherwise a first pass that caught a third of them would go through, and the next
/// would be judged against a registry already a third smaller.
#[derive(Debug)]
pub struct SelfPreservation {
    max_fraction: f64,
    window: Duration,
    /// When recent passes evicted, and how many.
    recent: Mutex<VecDeque<(Instant, u64)>>,
    skipped: AtomicU64,
}

impl SelfPreservation {
    /// A guard that skips a pass when, with the evictions of the last `window` (the
    /// TTL), more than `max_fraction` (0 to 1) of all instances would go; 1.0 never skips.
    pub fn new(max_fraction: f64, window: Duration) -> Self {
        SelfPreservation {
            max_fraction: max_fraction.clamp(0.0, 1.0),
            window,
            recent: Mutex::new(VecDeque::new()),
            skipped: AtomicU64::new(0),
        }
    }

    /// The guard that never skips (`--evict-max-fraction 1.0`, the default).
    pub fn off() -> Self {
        SelfPreservation::new(1.0, Duration::ZERO)
    }

    /// Whether the guard can ever skip a pass (a fraction below 1).
    pub fn is_on(&self) -> bool {
        self.max_fraction < 1.0
    }

    /// Whether a pass that would evict `expired` of the `total()` instances registered
    /// now may go ahead (the total is counted only when the guard is on); when it may,
    /// the pass is remembered for the window; when not, logs a warning and counts the
    /// skipped pass.
    pub fn allows(&self, expired: usize, total: impl FnOnce() -> u64) -> bool {
        if !self.is_on() {
            return true;
        }
        let total = total();
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        while recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > self.window)
        {
            recent.pop_front();
        }
        let evicted: u64 = recent.iter().map(|(_, n)| n).sum();
        let going = evicted + expired as u64;
        let fraction = going as f64 / (total + evicted).max(1) as f64;
        if fraction <= self.max_fraction {
            recent.push_back((now, expired as u64));
            return true;
        }
        drop(recent);
        self.skipped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            expired,
            evicted_within_ttl = evicted,
            total,
            max_fraction = self.max_fraction,
            "self-preservation: evicting these would remove more than --evict-max-fraction of all instances \
             within one TTL; evicting none (has this node lost its network?). Eviction resumes when heartbeats \
             return or the fraction is raised"
        );
        false
    }

    /// How many passes were skipped since start.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::HashElection;
    use crate::MonotonicClock;
    use registry_core::{InstanceMeta, Registry};

    #[tokio::test(start_paused = true)]
    async fn evicts_after_the_ttl_and_not_before() {
        let registry = Arc::new(Registry::new());
        let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
        let cluster = Arc::new(
            Cluster::new(
                "http://127.0.0.1:1",
                &[],
                registry.clone(),
                clock.clone(),
                Arc::new(HashElection),
            )
            .unwrap(),
        );
        let live = InstanceMeta::new("http", "h", 1, "").unwrap();
        let dead = InstanceMeta::new("http", "h", 2, "").unwrap();
        registry.register("svc", &live, clock.now_ms()).unwrap();
        registry.register("svc", &dead, clock.now_ms()).unwrap();

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_evictor(
            cluster,
            clock.clone(),
            Duration::from_secs(20),
            Duration::from_secs(10),
            async {
                let _ = stopped.await;
            },
        ));
        // Heartbeats for `live` every 5 s; `dead` never renews.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            registry.renew("svc", &live, clock.now_ms()).unwrap();
        }
        // t = 20 s: the sweep at 20 s sees `dead` exactly one TTL old, not older.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(registry.find_all("svc").len(), 2);
        // The sweep at 30 s evicts it; `live` stays.
        tokio::time::sleep(Duration::from_secs(5)).await;
        registry.renew("svc", &live, clock.now_ms()).unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let ports: Vec<u16> = registry.find_all("svc").iter().map(|i| i.port).collect();
        assert_eq!(ports, vec![1]);
        assert_eq!(registry.registry_version(), 3, "the eviction was a change");

        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn self_preservation_skips_a_pass_over_the_fraction_within_one_ttl() {
        let guard = SelfPreservation::new(0.5, Duration::from_secs(20));
        assert!(!guard.allows(6, || 10));
        assert!(guard.allows(5, || 10), "exactly the fraction is allowed");
        // 5 of 10 went; 1 of the 5 left is 6 of 10 within the TTL.
        assert!(!guard.allows(1, || 5));
        assert_eq!(guard.skipped(), 2);
        tokio::time::sleep(Duration::from_secs(21)).await;
        assert!(guard.allows(1, || 5), "the earlier pass is out of the window");
        let off = SelfPreservation::off();
        assert!(
            off.allows(10, || unreachable!("the guard is off: nothing to count")),
            "1.0 never skips"
        );
        assert_eq!(off.skipped(), 0);
    }
}
