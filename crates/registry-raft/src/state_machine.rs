use std::fs::File;
use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use registry_core::{Applied, Clock, Registry};
use serde::{Deserialize, Serialize};

use crate::error::RaftError;
use crate::types::{Entry, LogId, Node, NodeId, SnapshotData, StorageError, TypeConfig};

/// The registry as openraft's state machine.
///
/// Applying is [`Registry::apply`] with the entry's log index; the last applied log id
/// and the membership are kept beside the registry, under one lock with it, so that a
/// snapshot captures all three at one point of the log. The last snapshot lives in one
/// file (`snapshot`: a JSON line of its meta, then the registry's JSON with revisions),
/// written to a temporary file, fsynced and renamed; on start it is loaded back and
/// openraft re-applies the committed log after it.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    path: PathBuf,
    applied: Mutex<AppliedState>,
    snapshots_built: AtomicU64,
}

#[derive(Default, Clone)]
struct AppliedState {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, Node>,
}

/// The first line of the snapshot file.
#[derive(Serialize, Deserialize)]
struct FileMeta {
    format: u32,
    meta: SnapshotMeta<NodeId, Node>,
}

const FORMAT: u32 = 1;

fn sm_error(verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::error(e.to_string())),
    }
}

fn snapshot_error(verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::Snapshot(None), verb, AnyError::error(e.to_string())),
    }
}

impl StateMachine {
    /// The state machine over `registry`, its snapshot file at `path`. When the file
    /// exists it is loaded into the registry (a file that does not parse is an error
    /// naming it: the node must not start over data it cannot read).
    pub fn open(path: PathBuf, registry: Arc<Registry>, clock: Arc<dyn Clock>) -> Result<StateMachine, RaftError> {
        let mut applied = AppliedState::default();
        if path.exists() {
            let bytes = std::fs::read(&path)
                .map_err(|e| RaftError::data_dir(&path, format!("cannot read the snapshot: {e}")))?;
            let (meta, data) = split(&bytes).map_err(|e| RaftError::data_dir(&path, e))?;
            let snapshot = registry_core::Snapshot::from_json(data)
                .map_err(|e| RaftError::data_dir(&path, format!("the snapshot is corrupt: {e}")))?;
            registry
                .restore(snapshot, clock.now_ms())
                .map_err(|e| RaftError::data_dir(&path, format!("the snapshot is corrupt: {e}")))?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership;
        }
        Ok(StateMachine {
            inner: Arc::new(Inner {
                registry,
                clock,
                path,
                applied: Mutex::new(applied),
                snapshots_built: AtomicU64::new(0),
            }),
        })
    }

    fn applied(&self) -> MutexGuard<'_, AppliedState> {
        self.inner.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `meta` and `data` as the current snapshot: a temporary file, fsynced, then
    /// renamed over the old one, and the directory fsynced.
    fn save(&self, meta: &SnapshotMeta<NodeId, Node>, data: &[u8]) -> Result<(), StorageError> {
        let head = serde_json::to_vec(&FileMeta {
            format: FORMAT,
            meta: meta.clone(),
        })
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        let tmp = self.inner.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&head)?;
            file.write_all(b"\n")?;
            file.write_all(data)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.inner.path)?;
            if let Some(dir) = self.inner.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| snapshot_error(ErrorVerb::Write, format!("{}: {e}", self.inner.path.display())))
    }
}

/// Splits a snapshot file into its meta and its registry JSON.
fn split(bytes: &[u8]) -> Result<(SnapshotMeta<NodeId, Node>, &[u8]), String> {
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("the snapshot file has no meta line")?;
    let head: FileMeta =
        serde_json::from_slice(&bytes[..newline]).map_err(|e| format!("the snapshot's meta line is corrupt: {e}"))?;
    if head.format != FORMAT {
        return Err(format!(
            "the snapshot has format {}, this build reads {FORMAT}",
            head.format
        ));
    }
    Ok((head.meta, &bytes[newline + 1..]))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            // The registry and the applied state are captured under one hold of the lock
            // that `apply` takes per entry.
            let (state, data) = {
                let applied = this.applied();
                (applied.clone(), this.inner.registry.snapshot_json_with_revisions())
            };
            let built = this.inner.snapshots_built.fetch_add(1, Ordering::Relaxed) + 1;
            let snapshot_id = match state.last_applied {
                Some(id) => format!("{}-{}-{built}", id.leader_id.term, id.index),
                None => format!("0-0-{built}"),
            };
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership,
                snapshot_id,
            };
            this.save(&meta, &data)?;
            tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "raft snapshot written");
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            })
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<NodeId, Node>), StorageError> {
        let applied = self.applied();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut answers = Vec::new();
        for entry in entries {
            let mut applied = self.applied();
            let answer = match &entry.payload {
                EntryPayload::Normal(command) => self.inner.registry.apply(command, entry.log_id.index),
                EntryPayload::Blank => Applied {
                    version: self.inner.registry.registry_version(),
                    ..Applied::default()
                },
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                    Applied {
                        version: self.inner.registry.registry_version(),
                        ..Applied::default()
                    }
                }
            };
            applied.last_applied = Some(entry.log_id);
            answers.push(answer);
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            let data = snapshot.into_inner();
            let parsed = registry_core::Snapshot::from_json(&data).map_err(|e| sm_error(ErrorVerb::Write, e))?;
            this.save(&meta, &data)?;
            let mut applied = this.applied();
            this.inner
                .registry
                .restore(parsed, this.inner.clock.now_ms())
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            tracing::info!(snapshot = %meta.snapshot_id, "installed a raft snapshot from the leader");
            Ok(())
        })
        .await
        .map_err(|e| sm_error(ErrorVerb::Write, e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            if !path.try_exists().map_err(|e| snapshot_error(ErrorVerb::Read, e))? {
                return Ok(None);
            }
            let bytes = std::fs::read(&path).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            let (meta, data) = split(&bytes).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data.to_vec())),
            }))
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Read, e))?
    }
}
