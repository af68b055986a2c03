use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

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
