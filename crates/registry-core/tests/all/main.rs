//! registry-core's integration tests, one binary: each module is one part of the
//! behaviour contract (docs/spec.md), driven through the crate's public API only.

mod commands;
mod configs;
mod delta;
mod snapshot;
mod stats;
mod versions;
mod writes;
