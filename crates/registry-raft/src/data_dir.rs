use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RaftError;
use crate::log_store::{LogFaults, LogStore};
use crate::types::NodeId;

/// The marker file: which node this data dir belongs to, and whether its raft state was
/// ever initialised (or received from a leader).
const MARKER: &str = "node.json";
/// The raft log, vote and commit index.
const LOG: &str = "raft.redb";
/// The last state-machine snapshot.
const SNAPSHOT: &str = "snapshot";

const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Marker {
    format: u32,
    node_id: NodeId,
    url: String,
    /// Set once the node held raft state (a founding node after `initialize`, a joining
    /// node after its first entry): from then on an empty log means lost data.
    initialised: bool,
}

/// The raft log's file in the data dir `dir`.
pub(crate) fn log_path(dir: &Path) -> PathBuf {
    dir.join(LOG)
}

/// A node's data dir, checked: it belongs to this node, and holds what its marker says.
pub struct DataDir {
    dir: PathBuf,
    marker: Marker,
    /// Whether this dir was just created (or never got past creation): a founding node
    /// initialises the cluster from it.
    pub fresh: bool,
    /// The opened log.
    pub log: LogStore,
}

impl DataDir {
    /// Opens `dir` for the node `node_id` at `url`, creating it when empty. Refuses, with
    /// an error naming the file, a dir that belongs to another node, a marker that does
    /// not parse, files of a raft node without a marker, and a dir whose marker says it
    /// held raft state while its log is gone or empty: the node must never start empty
    /// over data it lost.
    /// `faults` is the switch a test may use to make the log's writes fail.
    pub fn open(dir: &Path, node_id: NodeId, url: &str, faults: LogFaults) -> Result<DataDir, RaftError> {
        std::fs::create_dir_all(dir).map_err(|e| RaftError::data_dir(dir, format!("cannot create it: {e}")))?;
        let marker_path = dir.join(MARKER);
        let log_path = log_path(dir);
        let has_snapshot = exists(&dir.join(SNAPSHOT))?;
        if !exists(&marker_path)? {
            if has_snapshot || exists(&log_path)? {
                let log = LogStore::open(&log_path, false, LogFaults::default())?;
                if has_snapshot || !log.is_pristine()? {
                    return Err(RaftError::data_dir(
                        &marker_path,
                        "is missing, but the dir holds raft state: it was not written by this node, or the marker was \
                         deleted; restore the marker from a backup, or move the dir away to start this node afresh",
                    ));
                }
            }
            let log = LogStore::open(&log_path, true, faults)?;
            let marker = Marker {
                format: FORMAT,
                node_id,
                url: url.to_owned(),
                initialised: false,
            };
            write_marker(&marker_path, &marker)?;
            return Ok(DataDir {
                dir: dir.to_owned(),
                marker,
                fresh: true,
                log,
            });
        }
        let text = std::fs::read(&marker_path)
            .map_err(|e| RaftError::data_dir(&marker_path, format!("cannot read it: {e}")))?;
        let marker: Marker =
            serde_json::from_slice(&text).map_err(|e| RaftError::data_dir(&marker_path, format!("is corrupt: {e}")))?;
        if marker.format != FORMAT {
            return Err(RaftError::data_dir(
                &marker_path,
                format!("has format {}, this build reads {FORMAT}", marker.format),
            ));
        }
        if marker.url != url || marker.node_id != node_id {
            return Err(RaftError::data_dir(
                &marker_path,
                format!(
                    "belongs to the node {} (id {}), not to this node {url} (id {node_id}): start that node with it, or \
                     give this node a dir of its own",
                    marker.url, marker.node_id
                ),
            ));
        }
        if !exists(&log_path)? {
            return Err(lost_log(&log_path, "is missing"));
        }
        let log = LogStore::open(&log_path, false, faults)?;
        let empty = log.is_pristine()? && !has_snapshot;
        if marker.initialised && empty {
            return Err(lost_log(&log_path, "is empty"));
        }
        Ok(DataDir {
            dir: dir.to_owned(),
            fresh: empty,
            marker,
            log,
        })
    }

    /// The snapshot file's path.
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT)
    }

    /// Records that this node holds raft state from now on (idempotent).
    pub fn mark_initialised(&mut self) -> Result<(), RaftError> {
        if self.marker.initialised {
            return Ok(());
        }
        let mut marker = self.marker.clone();
        marker.initialised = true;
        write_marker(&self.dir.join(MARKER), &marker)?;
        self.marker = marker;
        Ok(())
    }

    /// Whether the marker says this node held raft state.
    pub fn is_initialised(&self) -> bool {
        self.marker.initialised
    }
}

fn lost_log(log_path: &Path, what: &str) -> RaftError {
    RaftError::data_dir(
        log_path,
        format!(
            "{what}, but the marker says this node held raft state: starting empty could undo acknowledged writes. \
             To recover, remove this node from the cluster (POST /cluster/leave?url=... on the leader), move the data \
             dir away, and add the node again (start it with --join, then POST /cluster/join?url=...); see \
             docs/operations.md"
        ),
    )
}

fn exists(path: &Path) -> Result<bool, RaftError> {
    path.try_exists()
        .map_err(|e| RaftError::data_dir(path, format!("cannot be read: {e}")))
}

/// Writes the marker to a temporary file, fsyncs it and renames it into place.
fn write_marker(path: &Path, marker: &Marker) -> Result<(), RaftError> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(marker).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| RaftError::data_dir(path, format!("cannot write it: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_dir_is_fresh_and_reopens_as_the_same_node() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default()).unwrap();
        assert!(opened.fresh);
        assert!(!opened.is_initialised());
        opened.mark_initialised().unwrap();
        drop(opened);
        // Initialised, but nothing in the log: data was lost.
        let err = DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("raft.redb"), "{err}");
        assert!(err.to_string().contains("raft.redb: is empty"), "{err}");
    }

    #[test]
    fn another_nodes_dir_and_a_corrupt_marker_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default()).unwrap());
        let err = DataDir::open(dir.path(), 8, "http://127.0.0.1:2", LogFaults::default())
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("belongs to the node http://127.0.0.1:1"),
            "{err}"
        );
        std::fs::write(dir.path().join(MARKER), b"{not json").unwrap();
        let err = DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("node.json: is corrupt"), "{err}");
    }

    #[test]
    fn a_missing_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default()).unwrap());
        std::fs::remove_file(dir.path().join(LOG)).unwrap();
        let err = DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("raft.redb: is missing"), "{err}");
    }

    #[test]
    fn a_foreign_file_as_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default()).unwrap());
        std::fs::write(dir.path().join(LOG), b"this is not a database").unwrap();
        let err = DataDir::open(dir.path(), 7, "http://127.0.0.1:1", LogFaults::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("raft.redb: cannot open the raft log"), "{err}");
    }
}
