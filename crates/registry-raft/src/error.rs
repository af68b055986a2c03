use std::path::PathBuf;

/// What can go wrong in the raft mode.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// The data dir cannot be used: unreadable, corrupt, another node's or another
    /// cluster's, or initialised once but missing its log. The node must not start.
    #[error("data dir: {path}: {reason}")]
    DataDir {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong and, where it helps, how to recover.
        reason: String,
    },
    /// The raft engine failed to start or stopped.
    #[error("raft: {0}")]
    Engine(String),
    /// A url could not be used.
    #[error(transparent)]
    Url(#[from] registry_cluster::coordinator::UrlError),
}

impl RaftError {
    pub(crate) fn data_dir(path: impl Into<PathBuf>, reason: impl Into<String>) -> RaftError {
        RaftError::DataDir {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
