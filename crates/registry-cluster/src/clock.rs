use std::time::{SystemTime, UNIX_EPOCH};

use registry_core::Clock;
use tokio::time::Instant;

/// Milliseconds since the Unix epoch, read as the wall clock at creation plus the
/// monotonic time elapsed since. It never jumps when the system clock is set, and under
/// `tokio::time::pause()` it moves only as the test advances time, so TTLs and intervals
/// are tested without sleeping.
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    epoch_ms: u64,
    start: Instant,
}

impl MonotonicClock {
    /// A clock anchored at the current wall time.
    pub fn new() -> Self {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        MonotonicClock {
            epoch_ms,
            start: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.epoch_ms.saturating_add(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn follows_the_paused_tokio_clock() {
        let clock = MonotonicClock::new();
        let t0 = clock.now_ms();
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(clock.now_ms() - t0, 20_000);
    }
}
