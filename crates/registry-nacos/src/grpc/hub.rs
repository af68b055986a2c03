//! [`PushHub`]: the registry's changes, as the push task needs them. The registry tells it
//! of every change (it is an observer, beside the blocking queries); it keeps only the
//! subscribed services that changed and wakes the push task, so a write pays one atomic
//! load when nobody subscribes and a short lock when someone does.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use registry_core::{Changed, Observer};
use tokio::sync::Notify;

use super::connections::Connections;

/// The changed services waiting for their push, and the push counts.
pub(crate) struct PushHub {
    connections: Arc<Connections>,
    dirty: Mutex<Dirty>,
    wake: Notify,
    pushes: AtomicU64,
    failures: AtomicU64,
}

#[derive(Default)]
struct Dirty {
    services: HashSet<String>,
    /// Anything may have changed (a restore, an adoption, a takeover).
    all: bool,
}

impl PushHub {
    pub(crate) fn new(connections: Arc<Connections>) -> PushHub {
        PushHub {
            connections,
            dirty: Mutex::new(Dirty::default()),
            wake: Notify::new(),
            pushes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Waits until something changed, then answers the subscribed services to push.
    pub(crate) async fn changed(&self) -> Vec<String> {
        loop {
            let taken = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(PoisonError::into_inner));
            let services: Vec<String> = if taken.all {
                self.connections.subscribed_services()
            } else {
                taken
                    .services
                    .into_iter()
                    .filter(|s| self.connections.is_subscribed(s))
                    .collect()
            };
            if !services.is_empty() {
                return services;
            }
            self.wake.notified().await;
        }
    }

    /// Counts pushes handed to subscribers' streams, and those that could not be.
    pub(crate) fn count(&self, pushed: u64, failed: u64) {
        self.pushes.fetch_add(pushed, Ordering::Relaxed);
        self.failures.fetch_add(failed, Ordering::Relaxed);
    }

    /// Pushes sent so far, and pushes that failed.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.pushes.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

impl Observer for PushHub {
    fn changed(&self, _version: u64, changed: Changed<'_>) {
        if self.connections.subscriptions() == 0 {
            return;
        }
        {
            let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
            match changed {
                Changed::Services(names) => dirty.services.extend(names.iter().map(|n| n.to_string())),
                Changed::All => dirty.all = true,
            }
        }
        self.wake.notify_one();
    }
}
