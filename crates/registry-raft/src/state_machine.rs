use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use registry_core::{Applied, Clock, Command, Decoded, Registry};
use serde::{Deserialize, Serialize};

use crate::descriptors::when_free;
use crate::error::RaftError;
use crate::types::{Entry, LogId, Node, NodeId, SnapshotData, StorageError, TypeConfig};

/// The registry as openraft's state machine.
///
/// Applying is [`Registry::apply`] with the entry's log index; the last applied log id
/// and the membership are kept beside the registry, under one lock with it, so that a
/// snapshot captures all three at one point of the log. The last snapshot lives in one
/// file (`snapshot`: a JSON line of its meta, then the registry in its binary form,
/// [`registry_core::Frozen::write_binary`]), written to a temporary file, fsynced and
/// renamed; on start it is loaded back and openraft re-applies the committed log after it.
///
/// The file is what travels to a follower that needs it, in chunks, and a follower
/// receives it into a file of its own (`snapshot.incoming`) before it reads it: no side
/// holds a whole snapshot in memory besides the registry itself (docs/spec.md §7). An older
/// file, whose registry is JSON (format 1), is still read.
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
    /// Commands applied since the registry was last frozen for a snapshot (or loaded).
    commands_since_snapshot: AtomicU64,
}

#[derive(Default, Clone)]
struct AppliedState {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, Node>,
}

/// A snapshot's meta: its last log id, membership and id.
type Meta = SnapshotMeta<NodeId, Node>;

/// The first line of the snapshot file.
#[derive(Serialize, Deserialize)]
struct FileMeta {
    format: u32,
    meta: Meta,
}

/// The snapshot file's layout: a meta line, then the registry in its binary form.
const FORMAT: u32 = 2;
/// The layout before it: a meta line, then the registry as JSON with revisions.
const FORMAT_JSON: u32 = 1;
/// The longest meta line read: the membership of a large cluster fits many times.
const MAX_META_LINE: u64 = 1 << 20;

/// A snapshot file read and checked, not yet in the registry.
enum Loaded {
    Binary(Decoded),
    Json(registry_core::Snapshot),
}

impl Loaded {
    /// Puts it in place of the registry's state.
    fn put_in(self, registry: &Registry, now: u64) -> Result<(), String> {
        match self {
            Loaded::Binary(decoded) => {
                registry.install(decoded);
                Ok(())
            }
            Loaded::Json(snapshot) => registry.restore(snapshot, now).map_err(|e| e.to_string()),
        }
    }
}

/// Reads the meta line of a snapshot file.
fn read_meta(input: &mut impl BufRead) -> Result<FileMeta, String> {
    let mut line = Vec::new();
    input
        .take(MAX_META_LINE)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read the snapshot: {e}"))?;
    if line.pop() != Some(b'\n') {
        return Err("the snapshot file has no meta line".to_owned());
    }
    serde_json::from_slice(&line).map_err(|e| format!("the snapshot's meta line is corrupt: {e}"))
}

/// Reads and checks the snapshot file at `path`, streaming: its meta and the registry it
/// holds, built but not in use.
fn load(path: &Path) -> Result<(Meta, Loaded), String> {
    let file = File::open(path).map_err(|e| format!("cannot read the snapshot: {e}"))?;
    load_from(&file)
}

/// [`load`] from an open file, from its start.
fn load_from(mut file: &File) -> Result<(Meta, Loaded), String> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read the snapshot: {e}"))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let head = read_meta(&mut input)?;
    let loaded = match head.format {
        FORMAT => {
            Loaded::Binary(Registry::decode_binary(&mut input).map_err(|e| format!("the snapshot is corrupt: {e}"))?)
        }
        FORMAT_JSON => {
            let mut json = Vec::new();
            input
                .read_to_end(&mut json)
                .map_err(|e| format!("cannot read the snapshot: {e}"))?;
            Loaded::Json(
                registry_core::Snapshot::from_json(&json).map_err(|e| format!("the snapshot is corrupt: {e}"))?,
            )
        }
        other => {
            return Err(format!(
                "the snapshot has format {other}, this build reads {FORMAT_JSON} and {FORMAT}"
            ))
        }
    };
    Ok((head.meta, loaded))
}

/// Whether `file` is the file at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        false
    }
}

/// Makes the rename of a file in `path`'s directory durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => when_free("the data dir", || File::open(dir))?.sync_all(),
        None => Ok(()),
    }
}

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
            let (meta, loaded) = load(&path).map_err(|e| RaftError::data_dir(&path, e))?;
            loaded
                .put_in(&registry, clock.now_ms())
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
                commands_since_snapshot: AtomicU64::new(0),
            }),
        })
    }

    /// Commands applied since the last snapshot was taken (or the node started): what a
    /// restart now would re-apply from the log.
    pub fn commands_since_snapshot(&self) -> u64 {
        self.inner.commands_since_snapshot.load(Ordering::Relaxed)
    }

    fn applied(&self) -> MutexGuard<'_, AppliedState> {
        self.inner.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where a snapshot from the leader is received.
    fn incoming_path(&self) -> PathBuf {
        self.inner.path.with_extension("incoming")
    }

    /// Writes `meta` and `frozen` as the current snapshot. Answers its size.
    fn save(&self, meta: &Meta, frozen: &registry_core::Frozen) -> Result<u64, StorageError> {
        let head = serde_json::to_vec(&FileMeta {
            format: FORMAT,
            meta: meta.clone(),
        })
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        self.replace(|file| {
            let mut out = BufWriter::with_capacity(1 << 20, file);
            out.write_all(&head)?;
            out.write_all(b"\n")?;
            frozen.write_binary(&mut out)?;
            out.flush()
        })
        .map_err(|e| snapshot_error(ErrorVerb::Write, format!("{}: {e}", self.inner.path.display())))
    }

    /// Makes `received` (read and checked) the current snapshot file: renamed into place
    /// when it is the file this node received into, as it always is in a cluster;
    /// otherwise copied.
    fn keep(&self, mut received: File) -> std::io::Result<()> {
        let incoming = self.incoming_path();
        if same_file(&received, &incoming) {
            drop(received);
            std::fs::rename(&incoming, &self.inner.path)?;
            return sync_dir(&self.inner.path);
        }
        received.seek(SeekFrom::Start(0))?;
        self.replace(|out| std::io::copy(&mut received, out).map(drop))?;
        Ok(())
    }

    /// Replaces the snapshot file with what `fill` writes: into a temporary file, fsynced,
    /// renamed over the old one, and the directory fsynced. Answers the new file's size.
    fn replace(&self, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> std::io::Result<u64> {
        let tmp = self.inner.path.with_extension("tmp");
        let mut file = when_free("a new snapshot file", || File::create(&tmp))?;
        fill(&mut file)?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        std::fs::rename(&tmp, &self.inner.path)?;
        sync_dir(&self.inner.path)?;
        Ok(size)
    }

    /// The current snapshot file, opened for sending.
    fn open_current(&self) -> Result<Option<(Meta, File)>, StorageError> {
        let path = &self.inner.path;
        if !path.try_exists().map_err(|e| snapshot_error(ErrorVerb::Read, e))? {
            return Ok(None);
        }
        let file =
            when_free("the snapshot file", || File::open(path)).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        let head = read_meta(&mut BufReader::new(&file)).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        Ok(Some((head.meta, file)))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            // The registry and the applied state are captured under one hold of the lock
            // that `apply` takes per entry.
            let (state, frozen) = {
                let applied = this.applied();
                this.inner.commands_since_snapshot.store(0, Ordering::Relaxed);
                (applied.clone(), this.inner.registry.frozen())
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
            let bytes = this.save(&meta, &frozen)?;
            drop(frozen);
            tracing::info!(snapshot = %meta.snapshot_id, bytes, "raft snapshot written");
            let file = when_free("the snapshot file", || File::open(&this.inner.path))
                .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            Ok(Snapshot {
                meta,
                snapshot: Box::new(tokio::fs::File::from_std(file)),
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
                EntryPayload::Normal(logged) => {
                    let command = logged.command();
                    let commands = match command {
                        Command::Batch { commands } => commands.len() as u64,
                        _ => 1,
                    };
                    self.inner
                        .commands_since_snapshot
                        .fetch_add(commands, Ordering::Relaxed);
                    self.inner.registry.apply(command, entry.log_id.index)
                }
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
        let path = self.incoming_path();
        // Written by the receiver, then read back to install.
        let opened = tokio::task::spawn_blocking(move || {
            let open = || {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
            };
            when_free("a received snapshot file", open).map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        let file = opened.map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<SnapshotData>) -> Result<(), StorageError> {
        snapshot
            .sync_all()
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        let file = snapshot.into_std().await;
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            // Read and checked whole before anything is replaced: a damaged transfer
            // leaves the registry and the last snapshot as they were.
            let (theirs, loaded) = load_from(&file).map_err(|e| sm_error(ErrorVerb::Write, e))?;
            if theirs != meta {
                return Err(sm_error(
                    ErrorVerb::Write,
                    format!(
                        "the received snapshot file is {}, not the {} that was sent",
                        theirs.snapshot_id, meta.snapshot_id
                    ),
                ));
            }
            this.keep(file)
                .map_err(|e| snapshot_error(ErrorVerb::Write, format!("{}: {e}", this.inner.path.display())))?;
            let mut applied = this.applied();
            loaded
                .put_in(&this.inner.registry, this.inner.clock.now_ms())
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            this.inner.commands_since_snapshot.store(0, Ordering::Relaxed);
            tracing::info!(snapshot = %meta.snapshot_id, "installed a raft snapshot from the leader");
            Ok(())
        })
        .await
        .map_err(|e| sm_error(ErrorVerb::Write, e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let this = self.clone();
        let current = tokio::task::spawn_blocking(move || this.open_current())
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Read, e))??;
        Ok(current.map(|(meta, file)| Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_core::InstanceMeta;

    struct FixedClock;

    impl Clock for FixedClock {
        fn now_ms(&self) -> u64 {
            1_700_000_000_000
        }
    }

    fn registry_with(ports: std::ops::Range<u16>) -> Arc<Registry> {
        let registry = Arc::new(Registry::new());
        for port in ports {
            let command = Command::Register {
                service: format!("svc-{}", port % 3),
                instance: InstanceMeta::new("http", "10.0.0.1", port, "").unwrap(),
                now_ms: 1_000 + u64::from(port),
            };
            registry.apply(&command, u64::from(port));
        }
        registry
    }

    fn open(path: &Path) -> Result<(Arc<Registry>, StateMachine), RaftError> {
        let registry = Arc::new(Registry::new());
        let sm = StateMachine::open(path.to_owned(), registry.clone(), Arc::new(FixedClock))?;
        Ok((registry, sm))
    }

    #[tokio::test]
    async fn a_built_snapshot_is_what_a_restart_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let registry = registry_with(1..50);
        let mut sm = StateMachine::open(path.clone(), registry.clone(), Arc::new(FixedClock)).unwrap();
        let built = sm.build_snapshot().await.unwrap();

        let (again, mut reopened) = open(&path).unwrap();
        assert_eq!(again.snapshot(), registry.snapshot());
        assert_eq!(
            again.snapshot_json_with_revisions(),
            registry.snapshot_json_with_revisions()
        );
        let current = reopened.get_current_snapshot().await.unwrap().expect("a snapshot");
        assert_eq!(current.meta, built.meta);
    }

    #[test]
    fn a_snapshot_of_the_json_format_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let registry = registry_with(1..20);
        let head = serde_json::to_vec(&FileMeta {
            format: FORMAT_JSON,
            meta: SnapshotMeta::default(),
        })
        .unwrap();
        let mut file = head;
        file.push(b'\n');
        file.extend_from_slice(&registry.snapshot_json_with_revisions());
        std::fs::write(&path, file).unwrap();

        let (loaded, _) = open(&path).unwrap();
        assert_eq!(loaded.snapshot(), registry.snapshot());
    }

    #[tokio::test]
    async fn a_damaged_snapshot_stops_the_node_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let mut sm = StateMachine::open(path.clone(), registry_with(1..50), Arc::new(FixedClock)).unwrap();
        sm.build_snapshot().await.unwrap();
        let good = std::fs::read(&path).unwrap();
        let body = good.iter().position(|b| *b == b'\n').unwrap() + 1;

        let mut flipped = good.clone();
        flipped[body + (good.len() - body) / 2] ^= 0x10;
        let mut cut = good.clone();
        cut.truncate(good.len() - 3);
        let mut future = good.clone();
        future[body] = BINARY_NEXT;
        for (what, bytes) in [
            ("a changed byte", flipped),
            ("cut short", cut),
            ("an unknown layout", future),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let Err(e) = open(&path) else {
                panic!("{what}: the damaged snapshot was loaded");
            };
            let message = e.to_string();
            assert!(message.contains(&path.display().to_string()), "{what}: {message}");
            assert!(message.contains("the snapshot is corrupt"), "{what}: {message}");
        }
    }

    /// A binary layout this build does not know.
    const BINARY_NEXT: u8 = registry_core::BINARY_FORMAT + 1;
}
