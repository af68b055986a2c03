use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
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

/// The raft log, vote and committed index in one redb file. Every write is one redb
/// transaction committed with `Durability::Immediate` (fsync) before it is acknowledged:
/// an append is reported flushed to openraft only after that. The redb calls are
/// blocking, so they run on tokio's blocking pool, never on an async worker.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
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

impl LogStore {
    /// Opens (or, with `create`, creates) the log file at `path`. A file that is not a
    /// redb database, or not ours, is an error naming it.
    pub fn open(path: &Path, create: bool) -> Result<LogStore, RaftError> {
        let db = if create {
            Database::create(path)
        } else {
            Database::open(path)
        }
        .map_err(|e| RaftError::data_dir(path, format!("cannot open the raft log: {e}")))?;
        let store = LogStore { db: Arc::new(db) };
        // Create both tables, so that readers never meet a missing one.
        let init = || -> Result<(), redb::Error> {
            let txn = store.db.begin_write()?;
            txn.open_table(LOGS)?;
            txn.open_table(META)?;
            txn.commit()?;
            Ok(())
        };
        init().map_err(|e| RaftError::data_dir(path, format!("the raft log is not usable: {e}")))?;
        Ok(store)
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))?
    }

    async fn get_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError> {
        self.blocking(move |db| read_meta(db, key)).await
    }

    async fn put_meta<T: Serialize>(&self, key: &'static str, value: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(write_logs_error)?;
        self.blocking(move |db| {
            let write = || -> Result<(), redb::Error> {
                let txn = db.begin_write()?;
                txn.open_table(META)?.insert(key, bytes.as_slice())?;
                txn.commit()?;
                Ok(())
            };
            write().map_err(write_logs_error)
        })
        .await
    }

    /// The index of the last entry in the log, if any (for start-up checks).
    pub fn last_index(&self) -> Result<Option<u64>, RaftError> {
        let read = || -> Result<Option<u64>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOGS)?;
            let last = table.last()?.map(|(k, _)| k.value());
            Ok(last)
        };
        read().map_err(|e| RaftError::Engine(format!("reading the raft log: {e}")))
    }

    /// Whether this log ever held anything: an entry, a vote or a purge.
    pub fn is_pristine(&self) -> Result<bool, RaftError> {
        let vote: Option<Vote<NodeId>> =
            read_meta(&self.db, VOTE).map_err(|e| RaftError::Engine(format!("reading the raft log: {e}")))?;
        let purged: Option<LogId> =
            read_meta(&self.db, LAST_PURGED).map_err(|e| RaftError::Engine(format!("reading the raft log: {e}")))?;
        Ok(self.last_index()?.is_none() && vote.is_none() && purged.is_none())
    }
}

fn read_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, StorageError> {
    let read = || -> Result<Option<Vec<u8>>, redb::Error> {
        let txn = db.begin_read()?;
        let table = txn.open_table(META)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
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

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let range = bounds(&range);
        self.blocking(move |db| {
            let read = || -> Result<Vec<Vec<u8>>, redb::Error> {
                let txn = db.begin_read()?;
                let table = txn.open_table(LOGS)?;
                let mut out = Vec::new();
                for item in table.range::<u64>(range)? {
                    let (_, value) = item?;
                    out.push(value.value().to_vec());
                }
                Ok(out)
            };
            read().map_err(read_logs_error)?.iter().map(|b| decode(b)).collect()
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.get_meta(LAST_PURGED).await?;
        let last = self
            .blocking(|db| {
                let read = || -> Result<Option<Vec<u8>>, redb::Error> {
                    let txn = db.begin_read()?;
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

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta(COMMITTED, &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED).await?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| serde_json::to_vec(&e).map(|bytes| (e.log_id.index, bytes)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(write_logs_error)?;
        let written = self
            .blocking(move |db| {
                let write = || -> Result<(), redb::Error> {
                    let txn = db.begin_write()?;
                    {
                        let mut table = txn.open_table(LOGS)?;
                        for (index, bytes) in &encoded {
                            table.insert(*index, bytes.as_slice())?;
                        }
                    }
                    txn.commit()?;
                    Ok(())
                };
                write().map_err(write_logs_error)
            })
            .await;
        let outcome = written
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(outcome);
        written
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove(log_id.index..).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.put_meta(LAST_PURGED, &log_id).await?;
        self.remove(..=log_id.index).await
    }
}

impl LogStore {
    /// Removes the entries in `range`, in one transaction.
    async fn remove(&self, range: impl RangeBounds<u64>) -> Result<(), StorageError> {
        let range = bounds(&range);
        self.blocking(move |db| {
            let write = || -> Result<(), redb::Error> {
                let txn = db.begin_write()?;
                txn.open_table(LOGS)?.retain_in::<u64, _>(range, |_, _| false)?;
                txn.commit()?;
                Ok(())
            };
            write().map_err(write_logs_error)
        })
        .await
    }
}
