/// What can go wrong in cluster configuration and sync.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A server url in the configuration is not usable.
    #[error(transparent)]
    InvalidUrl(#[from] crate::coordinator::UrlError),
    /// An election name that is not `auto`, `hash` or `quorum`.
    #[error("unknown election {0:?}: expected auto, hash or quorum")]
    UnknownElection(String),
    /// Another server's snapshot could not be fetched.
    #[error("fetching a snapshot failed: {0}")]
    Fetch(#[from] registry_http::HttpInvokeError),
    /// The task parsing or applying a snapshot did not finish (it panicked or was
    /// cancelled); the local data was kept.
    #[error("applying a snapshot did not finish: {0}")]
    Restore(String),
    /// Another server's snapshot did not parse or validate; the local data was kept.
    #[error("a snapshot was rejected: {0}")]
    Snapshot(#[from] registry_core::Error),
}
