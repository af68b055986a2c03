//! [`Registry`], split by job: `state` (the store and its lock), `writes` (register,
//! unregister, renew, and the one [`crate::Command`] interpreter), `reads` (lists, versions,
//! overviews), `expiry` (leases running out, the grace of a new leader), `sync` (checksums,
//! deltas, restore and merge of snapshots), `wire` (the snapshot document as JSON) and
//! `binary` (the compact form raft snapshots are stored and sent in).

mod binary;
mod expiry;
mod hashing;
mod reads;
mod state;
mod sync;
mod wire;
mod writes;

pub use binary::{Decoded, Frozen, BINARY_FORMAT};
pub use expiry::Evicted;
pub use state::{Registry, ServiceSummary, Stats};
pub use sync::Synced;
