//! Blocking queries: a request that waits for a change instead of polling for one.
//!
//! [`Watch`] is one of the registry's [`Observer`]s. A waiting request costs one entry in a
//! per-service waiter list (a [`Notify`] shared by every waiter of that service) and one
//! timer; no task or thread runs for it. A change wakes the waiters of the services it
//! touched, and only those; a waiter for the whole registry (a follower's long poll of
//! `/snapshot`) is woken by any change.
//!
//! A wait never misses a change: the waiter registers with the [`Notify`] first, then
//! reads the version, and sleeps only if the version is not yet above `since`. The
//! registry tells the observer after the change is visible, so a change that lands
//! between the read and the sleep finds the waiter registered.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use registry_core::{Changed, ConfigObserver, ConfigsChanged, Observer};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// The waiters of every service being watched, and of the registry as a whole.
#[derive(Default)]
pub struct Watch {
    /// Service → the notifier its waiters share; an entry lives while it has waiters.
    services: Mutex<HashMap<Arc<str>, Arc<Notify>>>,
    /// How many requests wait on a service right now (skips the map when none do).
    waiting: AtomicUsize,
    /// Woken by every change: followers' long polls of the registry version.
    any: Notify,
    /// Woken once, at shutdown.
    closing: Notify,
    closed: AtomicBool,
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The version moved above `since`.
    Changed,
    /// The wait ran out.
    TimedOut,
    /// The node is shutting down.
    Closing,
}

impl Observer for Watch {
    fn changed(&self, _version: u64, changed: Changed<'_>) {
        self.any.notify_waiters();
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        match changed {
            Changed::Services(names) => {
                for name in names {
                    if let Some(notify) = services.get(name) {
                        notify.notify_waiters();
                    }
                }
            }
            Changed::All => services.values().for_each(|n| n.notify_waiters()),
        }
    }
}

/// A config change wakes the waiters on any change (a facade's blocking read of the
/// config store waits there).
impl ConfigObserver for Watch {
    fn configs_changed(&self, _revision: u64, _changed: ConfigsChanged<'_>) {
        self.any.notify_waiters();
    }
}

impl Watch {
    /// A watch with no waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Releases every waiter (each answers what it holds now) and makes later waits
    /// answer at once: the node is shutting down.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_waiters();
    }

    /// How many requests wait on services right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Waits until `version()` (the version of the watched services, read afresh after
    /// each wake) is above `since`, at most `wait`. `services` empty: waits on any change
    /// of the registry.
    pub(crate) async fn wait(&self, services: &[&str], since: u64, wait: Duration, version: impl Fn() -> u64) -> Woken {
        let deadline = tokio::time::Instant::now() + wait;
        let watched = Registration::new(self, services);
        loop {
            let mut notified: Vec<Pin<Box<Notified<'_>>>> = if watched.notifies.is_empty() {
                vec![Box::pin(self.any.notified())]
            } else {
                watched.notifies.iter().map(|n| Box::pin(n.notified())).collect()
            };
            for n in &mut notified {
                n.as_mut().enable();
            }
            let closing = self.closing.notified();
            tokio::pin!(closing);
            closing.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return Woken::Closing;
            }
            if version() > since {
                return Woken::Changed;
            }
            let any_woken = std::future::poll_fn(|cx| {
                if notified.iter_mut().any(|n| n.as_mut().poll(cx).is_ready()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            tokio::select! {
                _ = any_woken => {}
                _ = &mut closing => return Woken::Closing,
                _ = tokio::time::sleep_until(deadline) => {
                    return if version() > since { Woken::Changed } else { Woken::TimedOut };
                }
            }
        }
    }
}

/// The notifiers of the services one request waits on; on drop, the entries no other
/// request shares are removed, so the map holds only services someone waits for.
struct Registration<'a> {
    watch: &'a Watch,
    names: Vec<Arc<str>>,
    notifies: Vec<Arc<Notify>>,
}

impl<'a> Registration<'a> {
    fn new(watch: &'a Watch, services: &[&str]) -> Self {
        if services.is_empty() {
            return Registration {
                watch,
                names: Vec::new(),
                notifies: Vec::new(),
            };
        }
        let mut map = watch.services.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names = Vec::with_capacity(services.len());
        let mut notifies = Vec::with_capacity(services.len());
        for service in services {
            let (name, notify) = match map.get_key_value(*service) {
                Some((name, notify)) => (name.clone(), notify.clone()),
                None => {
                    let name: Arc<str> = Arc::from(*service);
                    let notify = Arc::new(Notify::new());
                    map.insert(name.clone(), notify.clone());
                    (name, notify)
                }
            };
            names.push(name);
            notifies.push(notify);
        }
        watch.waiting.fetch_add(1, Ordering::AcqRel);
        Registration { watch, names, notifies }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let mut map = self.watch.services.lock().unwrap_or_else(PoisonError::into_inner);
        self.watch.waiting.fetch_sub(1, Ordering::AcqRel);
        for (name, notify) in self.names.iter().zip(self.notifies.drain(..)) {
            // The map's reference and ours: nobody else waits on this service.
            if Arc::strong_count(&notify) == 2 {
                map.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[tokio::test(start_paused = true)]
    async fn a_change_of_the_service_wakes_its_waiter_and_no_other() {
        let watch = Arc::new(Watch::new());
        let a = Arc::new(AtomicU64::new(5));
        let (w, v) = (watch.clone(), a.clone());
        let waiter_a = tokio::spawn(async move {
            w.wait(&["a"], 5, Duration::from_secs(60), || v.load(Ordering::SeqCst))
                .await
        });
        // b counts its reads of the version: a waiter woken reads it again.
        let reads_b = Arc::new(AtomicU64::new(0));
        let (w, reads) = (watch.clone(), reads_b.clone());
        let waiter_b = tokio::spawn(async move {
            w.wait(&["b"], 5, Duration::from_secs(60), || {
                reads.fetch_add(1, Ordering::SeqCst);
                5
            })
            .await
        });
        tokio::task::yield_now().await;
        assert_eq!(watch.waiting(), 2);
        assert_eq!(reads_b.load(Ordering::SeqCst), 1);
        a.store(6, Ordering::SeqCst);
        watch.changed(6, Changed::Services(&[Arc::from("a")]));
        assert_eq!(waiter_a.await.unwrap(), Woken::Changed);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter_b.is_finished());
        assert_eq!(reads_b.load(Ordering::SeqCst), 1, "b was not woken by a's change");
        assert_eq!(watch.services.lock().unwrap().len(), 1, "a's entry is gone");
        watch.close();
        assert_eq!(waiter_b.await.unwrap(), Woken::Closing);
        assert_eq!(watch.waiting(), 0);
        assert!(watch.services.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_runs_out_and_an_old_since_answers_at_once() {
        let watch = Watch::new();
        assert_eq!(
            watch.wait(&["a"], 3, Duration::from_secs(30), || 3).await,
            Woken::TimedOut
        );
        assert_eq!(
            watch.wait(&["a"], 2, Duration::from_secs(30), || 3).await,
            Woken::Changed
        );
        assert_eq!(watch.wait(&[], 2, Duration::from_secs(30), || 3).await, Woken::Changed);
    }
}
