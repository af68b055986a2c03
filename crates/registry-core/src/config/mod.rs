//! Configs beside the instances (docs/spec.md §8): a store keyed by namespace, group and
//! data id, written by the same log as the registry (`Command::PublishConfig`,
//! `Command::RemoveConfig`), with a store-wide revision, compare-and-set on md5 or
//! revision, listing by prefix and a bounded history. Protocol-neutral: Nacos's config
//! service and a flat key-value API sit on it alike.

mod key;
mod store;
mod sync;

pub use key::{
    md5_hex, Cas, ConfigFields, ConfigKey, DEFAULT_NAMESPACE, MAX_DATA_ID_LEN, MAX_FIELD_LEN, MAX_GROUP_LEN,
    MAX_NAMESPACE_LEN,
};
pub use store::{Config, ConfigObserver, ConfigOutcome, Configs, ConfigsChanged, HistoryLimits, Revision, RevisionOp};
pub(crate) use store::{ConfigState, ConfigWrite};
pub use sync::{ConfigDelta, SyncedConfig};
