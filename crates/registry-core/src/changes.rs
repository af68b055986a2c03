//! What changed, for whoever follows the registry: a bounded log of the recent changes
//! (which services changed at which registry version), from which a leader answers a
//! follower's delta, and the [`Observer`] told after every change (blocking queries).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

/// Told after every change of the registry, once the change is visible to readers (the
/// lock is released), so that a reader woken by it sees the change.
pub trait Observer: Send + Sync {
    /// The registry moved to `version`; `changed` says which services may differ.
    fn changed(&self, version: u64, changed: Changed<'_>);
}

/// The observers of one registry, told in the order they were added: a list that only
/// grows, each link set once, so that telling them (on every change) takes no lock, only
/// an atomic load per observer.
#[derive(Default)]
pub(crate) struct Observers(OnceLock<Box<Link>>);

/// One observer, and the link to the next.
struct Link {
    observer: Arc<dyn Observer>,
    next: OnceLock<Box<Link>>,
}

impl Observers {
    pub(crate) fn add(&self, observer: Arc<dyn Observer>) {
        let mut slot = &self.0;
        let mut link = Box::new(Link {
            observer,
            next: OnceLock::new(),
        });
        // Another observer added meanwhile takes the slot first: go on after it.
        while let Err(refused) = slot.set(link) {
            link = refused;
            if let Some(taken) = slot.get() {
                slot = &taken.next;
            }
        }
    }

    pub(crate) fn tell(&self, version: u64, changed: Changed<'_>) {
        let mut next = self.0.get();
        while let Some(link) = next {
            link.observer.changed(version, changed);
            next = link.next.get();
        }
    }
}

/// Which services a change touched.
#[derive(Debug, Clone, Copy)]
pub enum Changed<'a> {
    /// These services (each changed at a version above the previous registry version).
    Services(&'a [Arc<str>]),
    /// Any service may have changed (a restore, an adoption, a takeover).
    All,
}

/// How much of the recent history a registry keeps for deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeLogLimits {
    /// At most this many changes.
    pub max_entries: usize,
    /// At most about this many bytes (each entry counts its service name and 32 bytes).
    pub max_bytes: usize,
}

impl Default for ChangeLogLimits {
    fn default() -> Self {
        ChangeLogLimits {
            max_entries: 1_000,
            max_bytes: 1024 * 1024,
        }
    }
}

/// The recent changes: `(registry version, service)` in version order. Deltas can be
/// answered for any `since` at or above `floor`: every change after `floor` is here.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    entries: VecDeque<(u64, Arc<str>)>,
    bytes: usize,
    floor: u64,
    limits: ChangeLogLimits,
}

const ENTRY_OVERHEAD: usize = 32;

impl ChangeLog {
    pub(crate) fn new(limits: ChangeLogLimits) -> Self {
        ChangeLog {
            limits,
            ..ChangeLog::default()
        }
    }

    /// Records that `service` changed at `version` (above every version recorded).
    pub(crate) fn push(&mut self, version: u64, service: Arc<str>) {
        if self.limits.max_entries == 0 {
            self.floor = version;
            return;
        }
        self.bytes += service.len() + ENTRY_OVERHEAD;
        self.entries.push_back((version, service));
        while self.entries.len() > self.limits.max_entries || self.bytes > self.limits.max_bytes {
            let Some((version, service)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= service.len() + ENTRY_OVERHEAD;
            self.floor = version;
        }
    }

    /// Forgets the history: the state was replaced at `version`, deltas start from there.
    pub(crate) fn reset(&mut self, version: u64) {
        self.entries.clear();
        self.bytes = 0;
        self.floor = version;
    }

    /// Whether every change after `since` is in the log.
    pub(crate) fn reaches(&self, since: u64) -> bool {
        since >= self.floor
    }

    /// The services changed after `since`, when the log reaches back that far (`None`:
    /// too old, a full snapshot is needed).
    pub(crate) fn since(&self, since: u64) -> Option<HashSet<Arc<str>>> {
        if since < self.floor {
            return None;
        }
        let start = self.entries.partition_point(|(version, _)| *version <= since);
        Some(self.entries.range(start..).map(|(_, s)| s.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: Option<HashSet<Arc<str>>>) -> Option<Vec<String>> {
        set.map(|s| {
            let mut v: Vec<String> = s.iter().map(|n| n.to_string()).collect();
            v.sort();
            v
        })
    }

    #[test]
    fn answers_changes_after_since_and_forgets_beyond_its_bounds() {
        let mut log = ChangeLog::new(ChangeLogLimits {
            max_entries: 3,
            max_bytes: 1 << 20,
        });
        for (v, s) in [(1, "a"), (2, "b"), (3, "a"), (4, "c")] {
            log.push(v, Arc::from(s));
        }
        assert_eq!(names(log.since(0)), None, "version 1 fell out");
        assert_eq!(names(log.since(1)), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(names(log.since(3)), Some(vec!["c".into()]));
        assert_eq!(names(log.since(4)), Some(vec![]));
        log.reset(9);
        assert_eq!(names(log.since(4)), None);
        assert_eq!(names(log.since(9)), Some(vec![]));
    }

    #[test]
    fn the_byte_bound_holds() {
        let mut log = ChangeLog::new(ChangeLogLimits {
            max_entries: 1000,
            max_bytes: 2 * (ENTRY_OVERHEAD + 1),
        });
        for v in 1..=5 {
            log.push(v, Arc::from("x"));
        }
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.floor, 3);
    }
}
