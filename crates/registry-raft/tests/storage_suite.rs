//! openraft's own conformance suite on our durable log store and state machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use registry_core::{Clock, Registry};
use registry_raft::{LogFaults, LogStore, StateMachine, StorageError, TypeConfig};
use tempfile::TempDir;

struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }
}

/// A fresh log and state machine in a new temporary data dir per test case.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let log = LogStore::open(&dir.path().join("raft.redb"), true, LogFaults::default()).expect("a new log");
        let sm = StateMachine::open(
            dir.path().join("snapshot"),
            Arc::new(Registry::new()),
            Arc::new(FixedClock),
        )
        .expect("a new state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("every case of the suite passes");
}
