//! The maregistry data model, embeddable in any Rust service.
//!
//! This crate holds everything a registry *is*, and nothing about how it is reached:
//! no async runtime, no HTTP, no wall clock. Time comes in as an argument (`now`, in
//! milliseconds since the Unix epoch) so that expiry and grace periods are tested without
//! sleeping, and so that the caller decides which clock is authoritative.
//!
//! Modules:
//! - `instance` — [`InstanceMeta`], one registered endpoint, with its validation rules,
//!   identity (`scheme`, `host`, `port`, `context`) and url.
//! - `lease` — per-instance leases ([`LEASE_PARAMETER`], [`LeaseBounds`]) and the
//!   duration syntax every setting uses ([`parse_duration`]).
//! - `service` — service-name validation ([`validate_service_name`]).
//! - `registry` — [`Registry`]: the concurrent store with the version rules of the
//!   behaviour contract (every change bumps one registry-wide counter; heartbeats of known
//!   instances do not). Reads share a lock and never block each other; each service keeps
//!   its encoded instance list until its next change. One folder, a file per job: the
//!   store, writes (with the one command interpreter, [`Registry::apply`]), reads, expiry,
//!   sync (checksums, deltas, restore, merge) and the hand-written snapshot JSON.
//! - `changes` — the change log a leader answers followers' deltas from
//!   ([`ChangeLogLimits`]), and the [`Observer`] told of every change (blocking queries).
//! - `snapshot` — [`Snapshot`], the seed's wire format for leader → follower sync, with
//!   `should_sync`, `merge` and `validate`.
//! - `command` — [`Command`], a change as a log carries it (register, unregister, batch,
//!   evict), its validation, and [`Applied`], what applying it did; applied by
//!   [`Registry::apply`], deterministically, in both cluster modes.
//! - `config` — [`Configs`], the config store beside the instances: configs by
//!   [`ConfigKey`], a store-wide revision, compare-and-set ([`Cas`]), prefix listing and a
//!   bounded history ([`HistoryLimits`]); written by the same log.
//! - `identity` — [`Identities`]: users (a password hash each), role bindings and
//!   permissions on `namespace:group:name` resources, written by the same log
//!   ([`IdentityChange`]), and the one decision ([`IdentityState::allows`]).
//! - `error` — the one error type of the crate, [`Error`].
//! - `clock` — the [`Clock`] trait that callers implement; the crate itself never reads it.
#![deny(missing_docs)]

mod changes;
mod clock;
mod command;
mod config;
mod error;
mod identity;
mod instance;
mod lease;
mod registry;
mod service;
mod snapshot;

pub use changes::{ChangeLogLimits, Changed, Observer};
pub use clock::Clock;
pub use command::{validate_new_registration, Applied, Command, Victim};
pub use config::{
    md5_hex, Cas, Config, ConfigDelta, ConfigFields, ConfigKey, ConfigObserver, ConfigOutcome, Configs, ConfigsChanged,
    HistoryLimits, Revision, RevisionOp, SyncedConfig, DEFAULT_NAMESPACE, MAX_DATA_ID_LEN, MAX_FIELD_LEN,
    MAX_GROUP_LEN, MAX_NAMESPACE_LEN,
};
pub use error::Error;
pub use identity::{
    check_resource, glob, Action, Identities, IdentityChange, IdentityState, Kind, Need, Resource, ADMIN_ROLE,
    MAX_IDENTITY_LEN,
};
pub use instance::InstanceMeta;
pub use lease::{
    parse_duration, parse_duration_or_seconds, LeaseBounds, CHECKS_PARAMETER, LEASE_NEVER, LEASE_PARAMETER,
};
pub use registry::{Decoded, Evicted, Frozen, Registry, ServiceSummary, Stats, Synced, BINARY_FORMAT};
pub use service::{validate_service_name, MAX_SERVICE_NAME_LEN};
pub use snapshot::Snapshot;
