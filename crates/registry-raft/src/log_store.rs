use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::RaftError;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// Log entries by index, JSON-encoded.
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// The vote, the committed log id and the last purged log id, JSON-encoded.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// A switch that makes the log's writes fail as a full or broken disk would, for tests of
/// what a node does when its storage fails. Off unless a test turns it on; nothing in the
/// command line or config file reaches it.
#[derive(Debug, Clone, Default)]
pub struct LogFaults(Arc<AtomicBool>);

/// Two switches are equal when they are the same switch.
impl PartialEq for LogFaults {
    fn eq(&self, other: &LogFaults) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for LogFaults {}

impl LogFaults {
    /// From now on every write of the log fails (`true`), or none does (`false`).
    pub fn fail_writes(&self, fail: bool) {
        self.0.store(fail, Ordering::SeqCst);
    }

    fn failing(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The raft log, vote and committed index in one redb file.
///
/// Appends are written behind, with group commit: `append` only queues its entries in
/// memory (where readers see them at once) and hands openraft's flush callback to the
/// flusher thread. The flusher writes every queued entry, and the latest commit index, in
/// one redb transaction committed with `Durability::Immediate` (one fsync), and only then
/// reports each of those appends flushed. So an append is acknowledged only once it is on
/// disk, openraft's core never waits for the disk, and under load one fsync covers every
/// append that arrived while the previous one ran. Votes, truncations and purges are
/// durable before they return. Blocking redb calls run on tokio's blocking pool or the
/// flusher thread, never on an async worker.
#[derive(Clone)]
pub struct LogStore {
    handle: Arc<Handle>,
}

/// What the store handles and the flusher share.
struct Shared {
    db: Arc<Database>,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Held by whoever writes to redb, so that the flusher's batch and a truncation or
    /// purge never interleave.
    io: Mutex<()>,
    faults: LogFaults,
}

#[derive(Default)]
struct Queue {
    /// Entries appended but not yet in redb, by index: as appended (the flusher encodes
    /// them; a follower's replication reads them back without decoding).
    entries: BTreeMap<u64, Arc<Entry>>,
    /// Appends waiting for their entries to be durable.
    callbacks: Vec<LogFlushed<TypeConfig>>,
    /// The latest commit index openraft saved (kept, so that it reads back while the
    /// flusher writes it), and whether the next batch must write it.
    committed: Option<Option<LogId>>,
    committed_dirty: bool,
    closed: bool,
}

/// Closes the queue and waits for the flusher when the last store handle goes.
struct Handle {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.wake.notify_all();
        if let Some(flusher) = self.flusher.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = flusher.join();
        }
    }
}

impl Shared {
    /// The error of a write while a test makes writes fail ([`LogFaults`]).
    fn check_faults(&self) -> Result<(), StorageError> {
        if self.faults.failing() {
            return Err(write_logs_error(
                "I/O error: no space left on device (injected by a test)",
            ));
        }
        Ok(())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn io(&self) -> MutexGuard<'_, ()> {
        self.io.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn io_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::error(e.to_string())),
    }
}

fn read_logs_error(e: impl ToString) -> StorageError {
    io_error(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_logs_error(e: impl ToString) -> StorageError {
    io_error(ErrorSubject::Logs, ErrorVerb::Write, e)
}

/// redb's page cache for the raft log. 4 MiB rather than 16: a durable node loaded with
/// 100,000 instances held 55 MiB 13 s after the load instead of 76 (51 instead of 65 once
/// restarted; two runs each, the same figures), and three nodes took registrations as fast
/// (wrk on the leader, two rounds: 9,943 and 11,904 req/s against 9,814 and 11,148).
const LOG_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl LogStore {
    /// Opens (or, with `create`, creates) the log file at `path`. A file that is not a
    /// redb database, or not ours, is an error naming it.
    pub fn open(path: &Path, create: bool, faults: LogFaults) -> Result<LogStore, RaftError> {
        // The log is written once and read back mostly while it is recent (replication,
        // a follower catching up): a small cache serves that, and keeps the node's memory
        // from growing with the log between snapshots (redb's default is 1 GiB).
        let mut builder = Database::builder();
        builder.set_cache_size(LOG_CACHE_BYTES);
        let db = if create {
            builder.create(path)
        } else {
            builder.open(path)
        }
        .map_err(|e| RaftError::data_dir(path, format!("cannot open the raft log: {e}")))?;
        // Create both tables, so that readers never meet a missing one.
        let init = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(LOGS)?;
            txn.open_table(META)?;
            txn.commit()?;
            Ok(())
        };
        init().map_err(|e| RaftError::data_dir(path, format!("the raft log is not usable: {e}")))?;
        let shared = Arc::new(Shared {
            db: Arc::new(db),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            io: Mutex::new(()),
            faults,
        });
        let for_flusher = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("raft-log-flush".to_owned())
            .spawn(move || flush(&for_flusher))
            .map_err(|e| RaftError::Engine(format!("cannot start the log flusher: {e}")))?;
        Ok(LogStore {
            handle: Arc::new(Handle {
                shared,
                flusher: Mutex::new(Some(flusher)),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, StorageError> + Send + 'static,
    {
        let shared = self.shared().clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))?
    }

    async fn get_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError> {
        self.blocking(move |shared| read_meta(&shared.db, key)).await
    }

    /// Writes `key` durably (after any queued entries, which that commit makes durable
    /// too).
    async fn put_meta<T: Serialize>(&self, key: &'static str, value: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(write_logs_error)?;
        self.blocking(move |shared| {
            let _io = shared.io();
            shared.check_faults()?;
            let write = || -> Result<(), redb::Error> {
                let txn = shared.db.begin_write()?;
                txn.open_table(META)?.insert(key, bytes.as_slice())?;
                txn.commit()?;
                Ok(())
            };
            write().map_err(write_logs_error)
        })
        .await
    }

    /// The index of the last entry in the log, if any.
    fn last_index(&self) -> Result<Option<u64>, RaftError> {
        let read = || -> Result<Option<u64>, redb::Error> {
            let txn = self.shared().db.begin_read()?;
            let table = txn.open_table(LOGS)?;
            let last = table.last()?.map(|(k, _)| k.value());
            Ok(last)
        };
        let stored = read().map_err(|e| RaftError::Engine(format!("reading the raft log: {e}")))?;
        let queued = self.shared().queue().entries.keys().next_back().copied();
        Ok(stored.max(queued))
    }

    /// Whether this log ever held anything: an entry, a vote or a purge.
    pub fn is_pristine(&self) -> Result<bool, RaftError> {
        let db = &self.shared().db;
        let vote: Option<Vote<NodeId>> =
            read_meta(db, VOTE).map_err(|e| RaftError::Engine(format!("reading the raft log: {e}")))?;
        let purged: Option<LogId> =
            read_meta(db, LAST_PURGED).map_err(|e| RaftError::Engine(format!("reading the raft log: {e}")))?;
        Ok(self.last_index()?.is_none() && vote.is_none() && purged.is_none())
    }
}

fn read_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, StorageError> {
    let read = || -> Result<Option<Vec<u8>>, redb::Error> {
        let txn = db.begin_read()?;
        let table = txn.open_table(META)?;
        let value = table.get(key)?.map(|v| v.value().to_vec());
        Ok(value)
    };
    match read().map_err(read_logs_error)? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(read_logs_error),
        None => Ok(None),
    }
}

fn decode(bytes: &[u8]) -> Result<Entry, StorageError> {
    serde_json::from_slice(bytes).map_err(read_logs_error)
}

fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

/// Every entry of `range` when the queue holds them all (a range with an end); else none.
fn queued_only(queue: &Queue, range: (Bound<u64>, Bound<u64>)) -> Option<Vec<Entry>> {
    let first = match range.0 {
        Bound::Included(first) => first,
        Bound::Excluded(before) => before.checked_add(1)?,
        Bound::Unbounded => return None,
    };
    let end = match range.1 {
        Bound::Included(last) => last.checked_add(1)?,
        Bound::Excluded(end) => end,
        Bound::Unbounded => return None,
    };
    let wanted = usize::try_from(end.checked_sub(first)?).ok()?;
    let entries: Vec<Entry> = queue.entries.range(first..end).map(|(_, e)| Entry::clone(e)).collect();
    (entries.len() == wanted).then_some(entries)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let range = bounds(&range);
        // Replication mostly reads what was just appended: when the queue holds the whole
        // range, no thread hop and no redb read.
        if let Some(entries) = queued_only(&self.shared().queue(), range) {
            return Ok(entries);
        }
        self.blocking(move |shared| {
            // The queue first: the flusher removes an entry from it only after redb holds
            // it, so reading redb second cannot miss one.
            let queued: Vec<(u64, Arc<Entry>)> = shared
                .queue()
                .entries
                .range(range)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            let mut all: BTreeMap<u64, Entry> = BTreeMap::new();
            let txn = shared.db.begin_read().map_err(read_logs_error)?;
            let table = txn.open_table(LOGS).map_err(read_logs_error)?;
            for item in table.range::<u64>(range).map_err(read_logs_error)? {
                let (key, value) = item.map_err(read_logs_error)?;
                all.insert(key.value(), decode(value.value())?);
            }
            for (index, entry) in queued {
                all.insert(index, Entry::clone(&entry));
            }
            Ok(all.into_values().collect())
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.get_meta(LAST_PURGED).await?;
        let last = self
            .blocking(|shared| {
                if let Some(entry) = shared.queue().entries.values().next_back() {
                    return Ok(Some(entry.log_id));
                }
                let read = || -> Result<Option<Vec<u8>>, redb::Error> {
                    let txn = shared.db.begin_read()?;
                    let table = txn.open_table(LOGS)?;
                    let last = table.last()?.map(|(_, v)| v.value().to_vec());
                    Ok(last)
                };
                match read().map_err(read_logs_error)? {
                    Some(bytes) => Ok(Some(decode(&bytes)?.log_id)),
                    None => Ok(None),
                }
            })
            .await?;
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_meta(VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(VOTE).await
    }

    /// Written with the next batch: the commit index may lag on disk (a restart then
    /// re-applies less at once, and the rest once a leader commits it again).
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        {
            let mut queue = self.shared().queue();
            queue.committed = Some(committed);
            queue.committed_dirty = true;
        }
        self.shared().wake.notify_one();
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        if let Some(queued) = self.shared().queue().committed {
            return Ok(queued);
        }
        Ok(self.get_meta::<Option<LogId>>(COMMITTED).await?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut queue = self.shared().queue();
        if queue.closed {
            return Err(write_logs_error("the raft log is closed"));
        }
        queue
            .entries
            .extend(entries.into_iter().map(|e| (e.log_id.index, Arc::new(e))));
        queue.callbacks.push(callback);
        drop(queue);
        self.shared().wake.notify_one();
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove(log_id.index..).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.put_meta(LAST_PURGED, &log_id).await?;
        self.remove(..=log_id.index).await
    }
}

/// The flusher thread: waits for queued work, writes every queued entry and the latest
/// commit index in one durable transaction, then reports the waiting appends flushed, in
/// order. Ends, after a last batch, when the store is closed.
fn flush(shared: &Shared) {
    loop {
        {
            let mut queue = shared.queue();
            while queue.callbacks.is_empty() && !queue.committed_dirty && !queue.closed {
                queue = shared.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
            if queue.closed && queue.callbacks.is_empty() && !queue.committed_dirty {
                return;
            }
        }
        let io = shared.io();
        let (entries, callbacks, committed) = {
            let mut queue = shared.queue();
            let committed = if std::mem::take(&mut queue.committed_dirty) {
                queue.committed
            } else {
                None
            };
            (queue.entries.clone(), std::mem::take(&mut queue.callbacks), committed)
        };
        let write = || -> Result<(), String> {
            shared.check_faults().map_err(|e| e.to_string())?;
            let committed = committed
                .map(|c| serde_json::to_vec(&c))
                .transpose()
                .map_err(|e| e.to_string())?;
            let encoded = entries
                .iter()
                .map(|(index, entry)| serde_json::to_vec(&**entry).map(|bytes| (*index, bytes)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let commit = || -> Result<(), redb::Error> {
                let mut txn = shared.db.begin_write()?;
                txn.set_durability(Durability::Immediate)?;
                {
                    let mut logs = txn.open_table(LOGS)?;
                    for (index, bytes) in &encoded {
                        logs.insert(*index, &bytes[..])?;
                    }
                    if let Some(committed) = &committed {
                        txn.open_table(META)?.insert(COMMITTED, committed.as_slice())?;
                    }
                }
                txn.commit()?;
                Ok(())
            };
            commit().map_err(|e| e.to_string())
        };
        let outcome = write();
        match &outcome {
            Ok(()) => {
                // Entries appended again meanwhile (after a truncation) stay queued.
                let mut queue = shared.queue();
                for (index, entry) in &entries {
                    if queue
                        .entries
                        .get(index)
                        .is_some_and(|queued| Arc::ptr_eq(queued, entry))
                    {
                        queue.entries.remove(index);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "the raft log could not be made durable"),
        }
        drop(io);
        for callback in callbacks {
            callback.log_io_completed(outcome.clone().map_err(std::io::Error::other));
        }
    }
}

impl LogStore {
    /// Removes the entries in `range`, queued or stored, durably.
    async fn remove(&self, range: impl RangeBounds<u64>) -> Result<(), StorageError> {
        let range = bounds(&range);
        self.blocking(move |shared| {
            let _io = shared.io();
            shared.check_faults()?;
            shared.queue().entries.retain(|index, _| !range.contains(index));
            let write = || -> Result<(), redb::Error> {
                let txn = shared.db.begin_write()?;
                txn.open_table(LOGS)?.retain_in::<u64, _>(range, |_, _| false)?;
                txn.commit()?;
                Ok(())
            };
            write().map_err(write_logs_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_of(indexes: &[u64]) -> Queue {
        let mut queue = Queue::default();
        for &index in indexes {
            let entry = Entry {
                log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
                payload: openraft::EntryPayload::Blank,
            };
            queue.entries.insert(index, Arc::new(entry));
        }
        queue
    }

    fn indexes(entries: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        entries.map(|entries| entries.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn a_range_the_queue_holds_whole_is_read_from_it_alone() {
        let queue = queue_of(&[5, 6, 7, 9]);
        let read = |start, end| indexes(queued_only(&queue, (start, end)));
        assert_eq!(read(Bound::Included(5), Bound::Excluded(8)), Some(vec![5, 6, 7]));
        assert_eq!(read(Bound::Excluded(5), Bound::Included(7)), Some(vec![6, 7]));
        assert_eq!(read(Bound::Included(6), Bound::Excluded(6)), Some(vec![]));
        // A gap, a part already in redb, or no end: the full read.
        assert_eq!(read(Bound::Included(5), Bound::Excluded(10)), None);
        assert_eq!(read(Bound::Included(4), Bound::Excluded(7)), None);
        assert_eq!(read(Bound::Included(5), Bound::Unbounded), None);
        assert_eq!(read(Bound::Unbounded, Bound::Excluded(7)), None);
        assert_eq!(read(Bound::Included(u64::MAX), Bound::Included(u64::MAX)), None);
    }
}
