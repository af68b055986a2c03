//! Writes batched into log entries: the writes that arrive together become one entry, so
//! that one append (and one fsync on each node) carries them all.

use std::sync::Arc;

use registry_core::Command;
use tokio::sync::{mpsc, oneshot};

use crate::types::Logged;

use super::cluster::{Proposal, Proposed, RaftCluster, BATCHES_IN_FLIGHT, MAX_BATCH};

/// Groups the writes that arrive together into one log entry each (`Command::Batch`):
/// openraft appends, and fsyncs, one client write at a time, so under load the log would
/// otherwise be bound by the disk's sync latency. A batch is proposed as soon as a slot of
/// [`BATCHES_IN_FLIGHT`] is free, with whatever has queued meanwhile.
pub(super) async fn propose(node: Arc<RaftCluster>, mut queued: mpsc::Receiver<Proposal>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = queued.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let (mut commands, waiters): (Vec<Command>, Vec<oneshot::Sender<Proposed>>) = batch.into_iter().unzip();
        // Each writer hears what its own config writes did, not its batch-mates'.
        let mut first = 0;
        let parts: Vec<(usize, usize)> = commands
            .iter()
            .map(|command| {
                let count = command.config_writes();
                first += count;
                (first - count, count)
            })
            .collect();
        let command = match commands.len() {
            1 => commands.pop().unwrap_or(Command::Batch { commands: Vec::new() }),
            _ => Command::Batch { commands },
        };
        let node = node.clone();
        tokio::spawn(async move {
            // A proposal openraft never answers (made as leader of a term this node lost
            // while cut off, say) must not hold its slot for ever: every later write would
            // queue behind it. Its writers have been answered by the write timeout anyway.
            let outcome = node
                .timed_write(async {
                    node.raft
                        .client_write(Logged::new(command))
                        .await
                        .map(|response| response.data)
                        .map_err(|e| node.proposal_error(e))
                })
                .await;
            for (waiter, (first, count)) in waiters.into_iter().zip(parts) {
                let _ = waiter.send(match &outcome {
                    Ok(applied) => Ok(applied.part(first, count)),
                    Err(e) => Err(e.clone()),
                });
            }
            drop(slot);
        });
    }
}
