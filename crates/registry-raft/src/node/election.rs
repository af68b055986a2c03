//! When a follower campaigns: our own election timer with a pre-vote (docs/spec.md §7),
//! in place of openraft 0.9's timer, which has neither.
//!
//! openraft 0.9 campaigns when a follower has heard nothing for its leader lease *plus*
//! an election timeout (with `--raft-election 1s`, 3–4 s), and a node cut off from the
//! others raises its term on every attempt, so that when it returns its higher term
//! deposes a healthy leader. Here openraft's own election is off (`enable_elect: false`)
//! and this timer decides:
//!
//! - A voter that has heard no leader for its election timeout (a random time between
//!   `--raft-election` and a quarter more) first asks the other voters whether they would
//!   vote for it (`/raft/prevote`). A voter says yes only when it has not heard a leader
//!   for half an election timeout itself, is not a leader confirmed by a quorum, and the
//!   candidate's log is at least as up to date as its own. Nothing is stored and no term
//!   changes.
//! - Only with a majority of yes (itself included) does it start a real election
//!   (`trigger().elect()`). A node that cannot reach a majority never raises its term, so
//!   coming back disrupts nothing.
//!
//! - Two voters whose timers fire together would both pass and split the real vote, which
//!   costs a whole round. So a voter promises its pre-vote to one candidate per half
//!   election timeout: meanwhile it refuses any candidate that does not outrank that one
//!   (a longer log, or the same log and a higher id) and does not campaign itself. A voter
//!   in its own round grants only a candidate that outranks it, and then gives its own
//!   round up. So of rounds that cross, the highest-ranked candidate collects every vote it
//!   asks for: with three voters left of five, both of the others must say yes, and a
//!   promise that held to a lower-ranked candidate (whose round may fail for want of the
//!   higher one's vote) could make round after round fail while a partition lasted.
//!
//! openraft's leader lease (the time a follower refuses real votes after a heartbeat) is
//! set to the same half election timeout, so an election that passed the pre-vote is not
//! refused by it. The leader side of the rule, a leader that stops calling itself leader
//! when no quorum has answered it for an election timeout, is in `view`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use openraft::storage::RaftLogStorage;
use openraft::ServerState;
use registry_http::{post_json, HttpInvoker};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::types::{LogId, NodeId};

use super::cluster::RaftCluster;

/// The path of the pre-vote RPC.
pub(super) const PREVOTE: &str = "/raft/prevote";

/// "Would you vote for me?"
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PreVote {
    /// The candidate's node id.
    pub(super) candidate: NodeId,
    /// The candidate's last log id.
    pub(super) last_log_id: Option<LogId>,
}

/// The answer to a [`PreVote`].
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PreVoteAnswer {
    pub(super) granted: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) reason: String,
}

/// A pre-vote this node granted (to itself, when it runs a round).
#[derive(Debug, Clone, Copy)]
pub(super) struct Promise {
    /// The candidate.
    pub(super) to: NodeId,
    /// The candidate's last log id when it asked.
    pub(super) log: Option<LogId>,
    /// When.
    pub(super) at: Instant,
}

impl Promise {
    /// Why this promise, still fresh, refuses `candidate` (its log at `theirs`) on node
    /// `me` (its log at `mine`). Candidates rank by log, then id. In its own round a node
    /// refuses a candidate it outranks; promised to another, it refuses a candidate that
    /// does not outrank that one. A candidate that outranks the promised one takes the
    /// promise over: of crossing rounds, the highest-ranked wins every vote it asks for.
    fn refuses(&self, me: NodeId, candidate: NodeId, theirs: Option<LogId>, mine: Option<LogId>) -> Result<(), String> {
        if self.to == candidate {
            return Ok(());
        }
        if self.to == me && (theirs, candidate) < (mine, me) {
            return Err("this node is campaigning and outranks the candidate".to_owned());
        }
        if self.to != me && (theirs, candidate) < (self.log, self.to) {
            return Err(format!(
                "this node promised its pre-vote to node {} {} ms ago, which outranks the candidate",
                self.to,
                self.at.elapsed().as_millis()
            ));
        }
        Ok(())
    }
}

impl RaftCluster {
    /// How long a follower waits without hearing a leader before it may grant a pre-vote,
    /// and openraft's leader lease: half the shortest election timeout.
    pub(super) fn lease(&self) -> Duration {
        self.settings.election.0 / 2
    }

    /// Records that a leader was heard (or that this node granted a vote): the election
    /// timer starts over, and pre-votes are refused for half an election timeout.
    pub(super) fn heard_leader(&self) {
        *self.contact.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// The id of the last entry this node's log holds (written or queued).
    async fn last_log_id(&self) -> Option<LogId> {
        let mut log = self.log.clone();
        match log.get_log_state().await {
            Ok(state) => state.last_log_id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the log's state");
                None
            }
        }
    }

    fn silent_for(&self) -> Duration {
        self.contact.lock().unwrap_or_else(PoisonError::into_inner).elapsed()
    }

    /// Answers another voter's pre-vote.
    pub(super) async fn answer_prevote(&self, request: PreVote) -> PreVoteAnswer {
        let refuse = |reason: String| PreVoteAnswer { granted: false, reason };
        let (leads, quorum_fresh) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            (m.state == ServerState::Leader, self.quorum_fresh(&m))
        };
        if leads && quorum_fresh {
            return refuse("this node leads and a quorum confirms it".to_owned());
        }
        let silent = self.silent_for();
        if !leads && silent < self.lease() {
            return refuse(format!("this node heard a leader {} ms ago", silent.as_millis()));
        }
        let mine = self.last_log_id().await;
        if request.last_log_id < mine {
            return refuse(format!(
                "the candidate's log ({:?}) is behind this node's ({mine:?})",
                request.last_log_id
            ));
        }
        if let Err(reason) = self.promise(request.candidate, request.last_log_id, mine) {
            return refuse(reason);
        }
        tracing::debug!(candidate = request.candidate, "pre-vote granted");
        PreVoteAnswer {
            granted: true,
            reason: String::new(),
        }
    }

    /// Promises this node's pre-vote to `candidate` (itself, when it starts a round) with its
    /// log at `theirs`, unless [`Promise::refuses`] (then why not); `mine` is this node's
    /// last log id.
    fn promise(&self, candidate: NodeId, theirs: Option<LogId>, mine: Option<LogId>) -> Result<(), String> {
        let mut promised = self.promised.lock().unwrap_or_else(PoisonError::into_inner);
        let lease = self.lease();
        if let Some(held) = promised.as_ref().filter(|p| p.at.elapsed() < lease) {
            held.refuses(self.id, candidate, theirs, mine)?;
        }
        *promised = Some(Promise {
            to: candidate,
            log: theirs,
            at: Instant::now(),
        });
        Ok(())
    }

    /// The candidate this node promised its pre-vote to within half an election timeout,
    /// when that is another node.
    fn promised_another(&self) -> Option<NodeId> {
        let promised = self.promised.lock().unwrap_or_else(PoisonError::into_inner);
        promised
            .as_ref()
            .and_then(|p| (p.to != self.id && p.at.elapsed() < self.lease()).then_some(p.to))
    }

    /// Serves `/raft/prevote`.
    pub(super) async fn serve_prevote(&self, body: &[u8]) -> Result<Bytes, String> {
        let request: PreVote = serde_json::from_slice(body).map_err(|e| format!("not a pre-vote: {e}"))?;
        let answer = self.answer_prevote(request).await;
        serde_json::to_vec(&answer).map(Bytes::from).map_err(|e| e.to_string())
    }
}

/// The election timer: every tick, a voter that is not leading and has heard no leader for
/// its election timeout runs a pre-vote and, with a majority, an election.
pub(super) async fn campaign_when_silent(node: Arc<RaftCluster>, peers: Arc<dyn HttpInvoker>) {
    let (shortest, longest) = node.settings.election;
    // Fine enough that two voters whose timeouts differ rarely fire in the same tick
    // (that splits the vote and costs a round).
    let tick = (shortest / 100).clamp(Duration::from_millis(2), Duration::from_millis(20));
    let random = RandomState::new();
    let mut round: u64 = 0;
    let mut timeout = between(&random, round, shortest, longest);
    // This node's own last attempt (or its start, or its last day as leader). Kept apart
    // from when it last heard a leader, which its answers to others' pre-votes go by: a
    // failed attempt of its own must not make it refuse a candidate that can win.
    let mut attempted = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let (state, voter) = {
            let metrics = node.raft.metrics();
            let m = metrics.borrow();
            (
                m.state,
                m.membership_config.membership().voter_ids().any(|id| id == node.id),
            )
        };
        if state == ServerState::Leader || state == ServerState::Shutdown || !voter {
            attempted = Instant::now();
            continue;
        }
        if node.silent_for() < timeout || attempted.elapsed() < timeout {
            continue;
        }
        if let Some(candidate) = node.promised_another() {
            tracing::debug!(candidate, "no leader heard, but another voter is campaigning: waiting");
            continue;
        }
        let voters: Vec<NodeId> = node.view().voters.into_iter().collect();
        round += 1;
        timeout = between(&random, round, shortest, longest);
        attempted = Instant::now();
        let others: Vec<(NodeId, String)> = {
            let view = node.view();
            voters
                .iter()
                .filter(|id| **id != node.id)
                .filter_map(|id| view.members.get(id).map(|url| (*id, url.clone())))
                .collect()
        };
        let last_log_id = node.last_log_id().await;
        if let Err(reason) = node.promise(node.id, last_log_id, last_log_id) {
            tracing::debug!(reason, "not campaigning");
            continue;
        }
        let majority = voters.len() / 2 + 1;
        let granted = 1 + prevote(&node, &peers, &others, last_log_id, shortest / 2, majority - 1).await;
        if granted < majority {
            tracing::debug!(
                granted,
                majority,
                "no leader heard, but the pre-vote failed: not campaigning"
            );
            continue;
        }
        if let Some(candidate) = node.promised_another() {
            tracing::debug!(
                candidate,
                "the pre-vote passed, but a candidate that outranks this node asked meanwhile: not campaigning"
            );
            continue;
        }
        tracing::info!(
            granted,
            voters = voters.len(),
            "no leader heard for {:?}: the pre-vote passed, campaigning",
            timeout
        );
        if let Err(e) = node.raft.trigger().elect().await {
            tracing::warn!(error = %e, "could not start an election");
        }
    }
}

/// Asks every other voter at once; answers how many granted within `deadline`, as soon as
/// `enough` have (a voter that does not answer, paused or cut off, is not waited for).
async fn prevote(
    node: &RaftCluster,
    peers: &Arc<dyn HttpInvoker>,
    others: &[(NodeId, String)],
    last_log_id: Option<LogId>,
    deadline: Duration,
    enough: usize,
) -> usize {
    let request = Arc::new(PreVote {
        candidate: node.id,
        last_log_id,
    });
    let mut asks = tokio::task::JoinSet::new();
    for (id, url) in others {
        let (id, url, peers, request) = (*id, format!("{url}{PREVOTE}"), peers.clone(), request.clone());
        asks.spawn(async move {
            let asked = post_json::<_, PreVoteAnswer>(peers.as_ref(), &url, &[], request.as_ref());
            match tokio::time::timeout(deadline, asked).await {
                Ok(Ok(answer)) if answer.granted => true,
                Ok(Ok(answer)) => {
                    tracing::debug!(voter = id, reason = %answer.reason, "pre-vote refused");
                    false
                }
                Ok(Err(e)) => {
                    tracing::debug!(voter = id, error = %e, "pre-vote not answered");
                    false
                }
                Err(_) => false,
            }
        });
    }
    let mut granted = 0;
    while granted < enough {
        match asks.join_next().await {
            Some(answer) => granted += usize::from(answer.unwrap_or(false)),
            None => break,
        }
    }
    // Dropping the set aborts the asks still out.
    granted
}

/// A random duration in `[low, high]`, different in every round and on every node.
fn between(random: &RandomState, round: u64, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let spread = high.saturating_sub(low).as_millis().max(1);
    let pick = u128::from(random.hash_one(round)) % (spread + 1);
    low + Duration::from_millis(u64::try_from(pick).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(term, 0), index))
    }

    fn promised(to: NodeId, log: Option<LogId>) -> Promise {
        Promise {
            to,
            log,
            at: Instant::now(),
        }
    }

    #[test]
    fn a_promise_gives_way_to_a_candidate_that_outranks_the_promised_one() {
        // Three voters left of five: A (id 1) at index 10, B (id 2) at 12, C (id 3) at 9.
        // A asked first and C promised it; B, whose log is longest, asks C next. Refused,
        // A's round fails for want of B (whose log is ahead) and B's for want of C, every
        // time the two cross.
        let c_promised_a = promised(1, log(1, 10));
        assert!(c_promised_a.refuses(3, 2, log(1, 12), log(1, 9)).is_ok());
        // A candidate that does not outrank the promised one is refused: a lower log, or
        // the same log and a lower id.
        assert!(c_promised_a.refuses(3, 4, log(1, 9), log(1, 9)).is_err());
        assert!(promised(5, log(1, 10)).refuses(3, 4, log(1, 10), log(1, 9)).is_err());
        assert!(promised(4, log(1, 10)).refuses(3, 5, log(1, 10), log(1, 9)).is_ok());
        // The promised candidate asking again is granted.
        assert!(c_promised_a.refuses(3, 1, log(1, 10), log(1, 9)).is_ok());
    }

    #[test]
    fn a_voter_in_its_own_round_grants_only_a_candidate_that_outranks_it() {
        let own_round = promised(3, log(2, 5));
        assert!(own_round.refuses(3, 1, log(2, 4), log(2, 5)).is_err());
        assert!(own_round.refuses(3, 1, log(2, 5), log(2, 5)).is_err());
        assert!(own_round.refuses(3, 4, log(2, 5), log(2, 5)).is_ok());
        assert!(own_round.refuses(3, 1, log(3, 1), log(2, 5)).is_ok());
    }

    #[test]
    fn timeouts_fall_in_the_range_and_vary() {
        let random = RandomState::new();
        let (low, high) = (Duration::from_millis(1000), Duration::from_millis(1250));
        let picks: Vec<Duration> = (0..200).map(|round| between(&random, round, low, high)).collect();
        assert!(picks.iter().all(|d| *d >= low && *d <= high));
        let distinct: std::collections::BTreeSet<_> = picks.iter().collect();
        assert!(distinct.len() > 50, "only {} distinct timeouts", distinct.len());
        assert_eq!(between(&random, 1, low, low), low);
    }
}
