//! Who listens to which config on this node, and waking them: the v1 long polls (each
//! waits on the keys it asked about) and the gRPC connections (each listens to keys until
//! it stops or ends). The config store tells [`ConfigListeners`] of every change it applies
//! (a publish made on any node reaches this one through the log or the sync, and is
//! applied here); it wakes the long polls of the changed keys at once and hands the keys
//! gRPC connections listen to to the push task. Nothing polls the store.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use registry_core::{ConfigKey, ConfigObserver, ConfigsChanged};
use tokio::sync::Notify;

/// One long poll: woken when one of its keys changes.
#[derive(Default)]
pub(crate) struct Poll {
    woken: Notify,
}

impl Poll {
    /// Waits until one of its keys changed since it was registered or last woken.
    pub(crate) async fn changed(&self) {
        self.woken.notified().await;
    }
}

/// The listeners of this node's configs.
#[derive(Default)]
pub(crate) struct ConfigListeners {
    /// Key → the long polls waiting on it.
    polls: Mutex<HashMap<ConfigKey, Vec<Arc<Poll>>>>,
    /// Long polls waiting now.
    open_polls: AtomicUsize,
    grpc: RwLock<GrpcListens>,
    /// The keys changed since the push task last looked, of those connections listen to.
    pending: Mutex<Pending>,
    wake_pushes: Notify,
    counts: Counts,
}

#[derive(Default)]
struct GrpcListens {
    /// Key → the connections listening to it, each with the tenant as it sent it.
    by_key: HashMap<ConfigKey, HashMap<u64, String>>,
    /// Connection → its keys.
    by_connection: HashMap<u64, HashSet<ConfigKey>>,
    listens: usize,
}

#[derive(Default)]
struct Pending {
    keys: Vec<Arc<ConfigKey>>,
    /// Every key may have changed (the store was replaced from a snapshot).
    all: bool,
}

/// Running totals, for metrics.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) publishes: AtomicU64,
    pub(crate) pushes: AtomicU64,
    pub(crate) push_failures: AtomicU64,
    pub(crate) polls_answered: AtomicU64,
}

/// What the push task is to do: push these keys to their listeners.
pub(crate) enum ToPush {
    Keys(Vec<Arc<ConfigKey>>),
    /// Push every key a connection listens to.
    All,
}

impl ConfigListeners {
    /// Registers a long poll on `keys`; [`ConfigListeners::unwatch`] it when done.
    pub(crate) fn watch(&self, keys: &[ConfigKey]) -> Arc<Poll> {
        let poll = Arc::new(Poll::default());
        let mut polls = self.polls();
        for key in keys {
            polls.entry(key.clone()).or_default().push(poll.clone());
        }
        self.open_polls.fetch_add(1, Ordering::Relaxed);
        poll
    }

    /// Forgets the long poll `poll` on `keys`.
    pub(crate) fn unwatch(&self, poll: &Arc<Poll>, keys: &[ConfigKey]) {
        let mut polls = self.polls();
        for key in keys {
            if let Some(waiting) = polls.get_mut(key) {
                waiting.retain(|other| !Arc::ptr_eq(other, poll));
                if waiting.is_empty() {
                    polls.remove(key);
                }
            }
        }
        self.open_polls.fetch_sub(1, Ordering::Relaxed);
    }

    /// The connection `connection` listens to `key`, having named its tenant `tenant`.
    /// Answers false when it is at its cap of `max` keys (and the key is new to it).
    pub(crate) fn listen(&self, connection: u64, key: &ConfigKey, tenant: &str, max: usize) -> bool {
        let mut grpc = self.grpc.write().unwrap_or_else(PoisonError::into_inner);
        let GrpcListens {
            by_key,
            by_connection,
            listens,
        } = &mut *grpc;
        let keys = by_connection.entry(connection).or_default();
        if !keys.contains(key) {
            if keys.len() >= max {
                return false;
            }
            keys.insert(key.clone());
            *listens += 1;
        }
        by_key
            .entry(key.clone())
            .or_default()
            .insert(connection, tenant.to_owned());
        true
    }

    /// The connection no longer listens to `key`.
    pub(crate) fn unlisten(&self, connection: u64, key: &ConfigKey) {
        let mut grpc = self.grpc.write().unwrap_or_else(PoisonError::into_inner);
        let removed = grpc
            .by_connection
            .get_mut(&connection)
            .is_some_and(|keys| keys.remove(key));
        if removed {
            grpc.listens -= 1;
            forget_listener(&mut grpc.by_key, key, connection);
        }
    }

    /// The connection ended: it listens to nothing.
    pub(crate) fn forget(&self, connection: u64) {
        let mut grpc = self.grpc.write().unwrap_or_else(PoisonError::into_inner);
        let Some(keys) = grpc.by_connection.remove(&connection) else {
            return;
        };
        grpc.listens -= keys.len();
        for key in &keys {
            forget_listener(&mut grpc.by_key, key, connection);
        }
    }

    /// The connections listening to `key`, each with the tenant it sent.
    pub(crate) fn listeners_of(&self, key: &ConfigKey) -> Vec<(u64, String)> {
        let grpc = self.grpc.read().unwrap_or_else(PoisonError::into_inner);
        grpc.by_key
            .get(key)
            .map(|listeners| listeners.iter().map(|(id, tenant)| (*id, tenant.clone())).collect())
            .unwrap_or_default()
    }

    /// Every key some connection listens to.
    pub(crate) fn listened_keys(&self) -> Vec<Arc<ConfigKey>> {
        let grpc = self.grpc.read().unwrap_or_else(PoisonError::into_inner);
        grpc.by_key.keys().map(|key| Arc::new(key.clone())).collect()
    }

    /// Waits until a key some connection listens to changed; answers what to push.
    pub(crate) async fn to_push(&self) -> ToPush {
        loop {
            let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
            if pending.all {
                return ToPush::All;
            }
            if !pending.keys.is_empty() {
                return ToPush::Keys(pending.keys);
            }
            self.wake_pushes.notified().await;
        }
    }

    /// Long polls waiting, gRPC listens (a connection and a key each).
    pub(crate) fn listening(&self) -> (usize, usize) {
        let listens = self.grpc.read().unwrap_or_else(PoisonError::into_inner).listens;
        (self.open_polls.load(Ordering::Relaxed), listens)
    }

    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    fn polls(&self) -> MutexGuard<'_, HashMap<ConfigKey, Vec<Arc<Poll>>>> {
        self.polls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the long polls of `keys` (all of them for `None`).
    fn wake_polls(&self, keys: Option<&[Arc<ConfigKey>]>) {
        if self.open_polls.load(Ordering::Relaxed) == 0 {
            return;
        }
        let woken: Vec<Arc<Poll>> = {
            let polls = self.polls();
            match keys {
                None => polls.values().flatten().cloned().collect(),
                Some(keys) => keys
                    .iter()
                    .filter_map(|key| polls.get(&**key))
                    .flatten()
                    .cloned()
                    .collect(),
            }
        };
        for poll in woken {
            poll.woken.notify_one();
        }
    }
}

fn forget_listener(by_key: &mut HashMap<ConfigKey, HashMap<u64, String>>, key: &ConfigKey, connection: u64) {
    if let Some(listeners) = by_key.get_mut(key) {
        listeners.remove(&connection);
        if listeners.is_empty() {
            by_key.remove(key);
        }
    }
}

impl ConfigObserver for ConfigListeners {
    fn configs_changed(&self, _revision: u64, changed: ConfigsChanged<'_>) {
        let keys = match changed {
            ConfigsChanged::Keys(keys) => Some(keys),
            ConfigsChanged::All => None,
        };
        self.wake_polls(keys);
        let listened: Vec<Arc<ConfigKey>> = {
            let grpc = self.grpc.read().unwrap_or_else(PoisonError::into_inner);
            if grpc.listens == 0 {
                return;
            }
            match keys {
                None => Vec::new(),
                Some(keys) => keys
                    .iter()
                    .filter(|key| grpc.by_key.contains_key(&***key))
                    .cloned()
                    .collect(),
            }
        };
        if keys.is_some() && listened.is_empty() {
            return;
        }
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            match keys {
                None => pending.all = true,
                Some(_) => pending.keys.extend(listened),
            }
        }
        self.wake_pushes.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(data_id: &str) -> ConfigKey {
        ConfigKey::new("public", "DEFAULT_GROUP", data_id)
    }

    #[tokio::test]
    async fn a_change_wakes_the_polls_of_its_key_only() {
        let listeners = ConfigListeners::default();
        let a = listeners.watch(&[key("a"), key("b")]);
        let c = listeners.watch(&[key("c")]);
        assert_eq!(listeners.listening().0, 2);
        listeners.configs_changed(1, ConfigsChanged::Keys(&[Arc::new(key("b"))]));
        tokio::time::timeout(Duration::from_secs(5), a.changed())
            .await
            .expect("woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), c.changed())
                .await
                .is_err(),
            "not its key"
        );
        listeners.unwatch(&a, &[key("a"), key("b")]);
        listeners.unwatch(&c, &[key("c")]);
        assert_eq!(listeners.listening().0, 0);
        assert!(listeners.polls().is_empty());
    }

    #[tokio::test]
    async fn connections_listen_until_they_stop_or_end_and_their_keys_are_pushed() {
        let listeners = ConfigListeners::default();
        assert!(listeners.listen(1, &key("a"), "", 10));
        assert!(listeners.listen(2, &key("a"), "public", 10));
        assert!(listeners.listen(2, &key("b"), "public", 10));
        assert!(!listeners.listen(2, &key("c"), "public", 2), "over its cap");
        assert_eq!(listeners.listening().1, 3);
        let mut of_a = listeners.listeners_of(&key("a"));
        of_a.sort();
        assert_eq!(of_a, vec![(1, String::new()), (2, "public".to_owned())]);
        listeners.configs_changed(1, ConfigsChanged::Keys(&[Arc::new(key("a")), Arc::new(key("z"))]));
        match listeners.to_push().await {
            ToPush::Keys(keys) => assert_eq!(keys, vec![Arc::new(key("a"))], "only what is listened to"),
            ToPush::All => panic!("keys expected"),
        }
        listeners.unlisten(1, &key("a"));
        listeners.forget(2);
        assert_eq!(listeners.listening().1, 0);
        assert!(listeners.listeners_of(&key("a")).is_empty());
        assert!(listeners.listened_keys().is_empty());
    }
}
