use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::time::Instant;

use registry_core::{Clock, Registry, Snapshot, Synced};

use crate::coordinator::{normalize_url, ModeStatus, Role, Server, Standing, Status, SyncLag};

use super::election::Election;
use super::error::ClusterError;

/// The configured servers, what the last probe saw of each, and who leads.
///
/// All state changes go through [`Cluster::update`] (after a probe round) and
/// `take_office` (when this node is elected or asked to lead by `/sl`); both apply the
/// takeover rules when this node becomes leader.
///
/// Data only flows from more to less (docs/spec.md §4.4). An elected node that sees a reachable
/// server with a higher registry version does not lead at once: it is a *candidate*, with
/// no leader and writes refused, until [`super::take_office`] has adopted that server's
/// data. The same holds at every round while it leads.
pub struct Cluster {
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    election: Arc<dyn Election>,
    me: usize,
    state: RwLock<State>,
    /// How many times the leader this node sees has changed.
    leader_changes: AtomicU64,
    /// The last sync that succeeded, and the leader's version it saw.
    last_sync: Mutex<Option<(Instant, u64)>>,
}

struct State {
    /// Every configured server in configuration order, this node included. For peers,
    /// `status`, `leader` and `version` are what the last probe saw; for this node,
    /// `status` is always true and `leader` says whether it leads.
    servers: Vec<Server>,
    /// Index of the leader in `servers`.
    leader: Option<usize>,
    /// Elected, but a reachable server holds a higher registry version: this node takes
    /// office once it has adopted that server's data.
    candidate: bool,
}

impl Cluster {
    /// A cluster of `server_list` plus `my_url` (added when missing). Urls are normalised
    /// and duplicates dropped. A cluster of one leads from the start; otherwise no node
    /// leads until the first probe round.
    pub fn new(
        my_url: &str,
        server_list: &[String],
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        election: Arc<dyn Election>,
    ) -> Result<Cluster, ClusterError> {
        let my_url = normalize_url(my_url)?;
        let mut urls: Vec<String> = Vec::with_capacity(server_list.len() + 1);
        for url in server_list {
            let url = normalize_url(url)?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        if !urls.contains(&my_url) {
            urls.push(my_url.clone());
        }
        let me = urls.iter().position(|u| *u == my_url).unwrap_or(0);
        let alone = urls.len() == 1;
        let servers = urls
            .into_iter()
            .map(|url| Server {
                status: url == my_url,
                leader: alone,
                url,
                version: 0,
                ..Server::default()
            })
            .collect();
        Ok(Cluster {
            registry,
            clock,
            election,
            me,
            state: RwLock::new(State {
                servers,
                leader: alone.then_some(me),
                candidate: false,
            }),
            leader_changes: AtomicU64::new(0),
            last_sync: Mutex::new(None),
        })
    }

    /// Records a sync from the leader that succeeded, which answered at `leader_version`.
    pub(crate) fn synced(&self, leader_version: u64) {
        *self.last_sync.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), leader_version));
    }

    /// This node's standing: role, leader, and as a follower its lag behind the leader;
    /// `evictions_skipped` is the eviction guard's count.
    pub fn status(&self, evictions_skipped: u64) -> Status {
        let state = self.read();
        let standing = match state.leader {
            Some(i) if i == self.me => Standing::Leader,
            Some(_) => Standing::Follower,
            None if state.candidate => Standing::Candidate,
            None => Standing::NoLeader,
        };
        let leader = state.leader.map(|i| state.servers[i].url.clone());
        let sync = match state.leader {
            Some(i) if i != self.me => {
                let last = *self.last_sync.lock().unwrap_or_else(PoisonError::into_inner);
                let leader_version = state.servers[i].version.max(last.map_or(0, |(_, v)| v));
                Some(SyncLag {
                    versions_behind: leader_version.saturating_sub(self.registry.registry_version()),
                    since_last_sync: last.map(|(at, _)| at.elapsed()),
                })
            }
            _ => None,
        };
        Status {
            standing,
            leader,
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
            evictions_skipped,
            mode: ModeStatus::Snapshot { sync },
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry this node serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The time by this node's clock, ms since the epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The election rule in use.
    pub fn election(&self) -> &dyn Election {
        self.election.as_ref()
    }

    /// This node's normalised url.
    pub fn my_url(&self) -> String {
        self.read().servers[self.me].url.clone()
    }

    /// The urls of the other configured servers.
    pub fn peer_urls(&self) -> Vec<String> {
        let state = self.read();
        state
            .servers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.me)
            .map(|(_, s)| s.url.clone())
            .collect()
    }

    /// How many servers are configured, this node included.
    pub fn size(&self) -> usize {
        self.read().servers.len()
    }

    fn describe(&self, state: &State, index: usize) -> Server {
        let mut server = state.servers[index].clone();
        server.leader = state.leader == Some(index);
        if index == self.me {
            server.status = true;
            server.version = self.registry.registry_version();
        }
        server
    }

    /// This node, as `/info` answers it.
    pub fn myself(&self) -> Server {
        self.describe(&self.read(), self.me)
    }

    /// Every configured server as this node sees it; only the leader it follows (or
    /// itself, when it leads) has `leader: true`.
    pub fn servers(&self) -> Vec<Server> {
        let state = self.read();
        (0..state.servers.len()).map(|i| self.describe(&state, i)).collect()
    }

    /// The leader, if there is one.
    pub fn leader(&self) -> Option<Server> {
        let state = self.read();
        state.leader.map(|i| self.describe(&state, i))
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        let state = self.read();
        match state.leader {
            Some(i) if i == self.me => Role::Leader,
            Some(i) => Role::Follower {
                leader: state.servers[i].url.clone(),
            },
            None => Role::NoLeader,
        }
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.read().leader == Some(self.me)
    }

    /// Records one probe round (for each peer url, the Server its `/info` answered, or
    /// `None` when it was unreachable), then elects and applies the outcome. Answers the
    /// role that results.
    pub fn update(&self, probes: &[(String, Option<Server>)]) -> Role {
        let mut state = self.write();
        for (url, probe) in probes {
            let Some(index) = state.servers.iter().position(|s| s.url == *url) else {
                continue;
            };
            if index == self.me {
                continue;
            }
            let server = &mut state.servers[index];
            match probe {
                Some(seen) => {
                    if normalize_url(&seen.url).ok().as_deref() != Some(url.as_str()) {
                        tracing::warn!(configured = %url, reported = %seen.url, "a peer reports another url than the one configured for it; check its --my-url");
                    }
                    server.status = true;
                    server.leader = seen.leader;
                    server.version = seen.version;
                    server.grpc_connections = seen.grpc_connections;
                }
                None => {
                    // Keep the last version seen: a new leader must rise above it.
                    server.status = false;
                    server.leader = false;
                    server.grpc_connections = None;
                }
            }
        }
        // This node's own entry says whether it leads; that is the one place it is set.
        let me_leads = state.leader == Some(self.me);
        state.servers[self.me].leader = me_leads;
        let decision = self.election.elect(&state.servers);
        state.candidate = false;
        match decision {
            Some(i) if i == self.me && self.holds_less(&state) => {
                if me_leads {
                    tracing::warn!("a reachable server holds a higher registry version: adopting its data before taking writes again");
                } else {
                    tracing::info!(
                        rule = self.election.name(),
                        "elected; adopting the data of servers with a higher registry version before taking office"
                    );
                }
                self.step_down(&mut state, None);
                state.candidate = true;
            }
            Some(i) if i == self.me => {
                if !me_leads {
                    self.take_over(&mut state, "elected");
                }
            }
            Some(i) => {
                if state.leader != Some(i) {
                    tracing::info!(leader = %state.servers[i].url, rule = self.election.name(), "following a new leader");
                }
                self.step_down(&mut state, Some(i));
            }
            None => {
                if state.leader.is_some() {
                    tracing::warn!(
                        rule = self.election.name(),
                        "no leader: writes are refused until one is elected"
                    );
                }
                self.step_down(&mut state, None);
            }
        }
        drop(state);
        self.role()
    }

    /// Whether this node was elected but waits to adopt the data of a server with a higher
    /// registry version before it takes office.
    pub fn is_candidate(&self) -> bool {
        self.read().candidate
    }

    /// The reachable peers whose registry version, at the last probe, is above this
    /// node's.
    fn higher<'a>(&self, state: &'a State) -> impl Iterator<Item = &'a Server> + 'a {
        let (own, me) = (self.registry.registry_version(), self.me);
        state
            .servers
            .iter()
            .enumerate()
            .filter(move |(i, s)| *i != me && s.status && s.version > own)
            .map(|(_, s)| s)
    }

    /// Whether a reachable peer reported a higher registry version than this node holds.
    fn holds_less(&self, state: &State) -> bool {
        self.higher(state).next().is_some()
    }

    /// The urls of the reachable peers whose registry version, at the last probe, is
    /// above this node's: the ones whose data this node must adopt before it leads.
    pub fn higher_peers(&self) -> Vec<String> {
        let state = self.read();
        self.higher(&state).map(|s| s.url.clone()).collect()
    }

    /// Takes office once the data of every higher peer has been adopted: as the elected
    /// candidate, or (`operator`) on `/sl`, applying the takeover rules unless this node
    /// already leads. Answers this node, or `None` when it may not lead now: the round's
    /// decision changed meanwhile, or a peer is still higher.
    pub(crate) fn take_office(&self, why: &str, operator: bool) -> Option<Server> {
        let mut state = self.write();
        if !(operator || state.candidate) || self.holds_less(&state) {
            return None;
        }
        state.candidate = false;
        if state.leader != Some(self.me) {
            self.take_over(&mut state, why);
        }
        Some(self.describe(&state, self.me))
    }

    /// Applies a leader's answer to `/snapshot?since=` (a delta or a whole snapshot,
    /// [`Registry::apply_sync`]) if this node still follows `leader_url`; holding the
    /// cluster state meanwhile keeps a concurrent takeover from being overwritten.
    /// `None`: this node no longer follows that leader, and nothing was applied.
    pub(crate) fn apply_from(
        &self,
        leader_url: &str,
        answer: Snapshot,
    ) -> Result<Option<Synced>, registry_core::Error> {
        let state = self.read();
        let follows = state
            .leader
            .is_some_and(|i| i != self.me && state.servers[i].url == leader_url);
        if !follows {
            return Ok(None);
        }
        Ok(Some(self.registry.apply_sync(answer, self.clock.now_ms())?))
    }

    fn step_down(&self, state: &mut State, leader: Option<usize>) {
        if state.leader == Some(self.me) {
            tracing::warn!("this node no longer leads");
        }
        self.set_leader(state, leader);
    }

    /// Records who leads, counting a change.
    fn set_leader(&self, state: &mut State, leader: Option<usize>) {
        if state.leader != leader && leader.is_some() {
            self.leader_changes.fetch_add(1, Ordering::Relaxed);
        }
        state.leader = leader;
    }

    /// The takeover rules: versions rise above every version seen in the cluster, and
    /// every instance gets a fresh grace period.
    fn take_over(&self, state: &mut State, why: &str) {
        let seen = state.servers.iter().map(|s| s.version).max().unwrap_or(0);
        let version = self.registry.take_over(seen, self.clock.now_ms());
        self.set_leader(state, Some(self.me));
        tracing::info!(
            version,
            highest_seen = seen,
            rule = self.election.name(),
            why,
            "this node is now the leader"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::election::{HashElection, QuorumElection};
    use crate::snapshot::register;
    use registry_core::InstanceMeta;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct FixedClock(AtomicU64);
    impl Clock for FixedClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    const A: &str = "http://127.0.0.1:8081";
    const B: &str = "http://127.0.0.1:8082";
    const C: &str = "http://127.0.0.1:8083";

    fn cluster(me: &str, list: &[&str], election: Arc<dyn Election>) -> (Cluster, Arc<Registry>) {
        let registry = Arc::new(Registry::new());
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        let clock = Arc::new(FixedClock(AtomicU64::new(1_000_000)));
        (
            Cluster::new(me, &list, registry.clone(), clock, election).unwrap(),
            registry,
        )
    }

    fn seen(url: &str, leader: bool, version: u64) -> (String, Option<Server>) {
        (
            url.to_owned(),
            Some(Server {
                url: url.to_owned(),
                status: true,
                leader,
                version,
                ..Server::default()
            }),
        )
    }

    fn gone(url: &str) -> (String, Option<Server>) {
        (url.to_owned(), None)
    }

    #[test]
    fn a_cluster_of_one_leads_from_the_start_at_version_zero() {
        let (c, r) = cluster("http://localhost:8484/", &[], Arc::new(HashElection));
        assert_eq!(c.role(), Role::Leader);
        assert_eq!(r.registry_version(), 0);
        assert_eq!(c.myself().url, "http://127.0.0.1:8484");
        assert_eq!(c.servers().len(), 1);
    }

    #[test]
    fn my_url_joins_the_list_once() {
        let (c, _) = cluster(
            "http://localhost:8082",
            &[A, "http://127.0.0.1:8082/"],
            Arc::new(HashElection),
        );
        assert_eq!(c.size(), 2);
        assert_eq!(c.peer_urls(), vec![A.to_owned()]);
        assert_eq!(c.role(), Role::NoLeader, "no leader before the first probe");
    }

    #[test]
    fn takeover_raises_the_version_above_everything_seen_and_renews() {
        let (c, r) = cluster(A, &[A, B], Arc::new(HashElection));
        r.restore(full_snapshot(40), 0).unwrap();
        register(&r, &InstanceMeta::new("http", "h", 1000, "").unwrap(), 0);
        // B is gone, but it was last seen at version 45 (holding more than A then).
        c.update(&[seen(B, false, 45)]);
        assert!(c.is_candidate());
        c.update(&[gone(B)]);
        assert_eq!(c.role(), Role::Leader, "A has the smaller hash");
        assert_eq!(r.registry_version(), 46);
        assert_eq!(r.version("svc"), 46, "consumers refetch from the new leader");
        assert!(
            r.evict_expired(1_000_000 + 20_000, 20_000).is_empty(),
            "grace period from the takeover"
        );
    }

    #[test]
    fn the_follower_follows_and_a_returning_node_does_not_take_back_leadership() {
        let (b, rb) = cluster(B, &[A, B], Arc::new(HashElection));
        assert_eq!(b.update(&[gone(A)]), Role::Leader, "alone, B leads");
        let v = rb.registry_version();
        // A comes back, not leading, with a smaller hash: leadership is sticky.
        assert_eq!(b.update(&[seen(A, false, 0)]), Role::Leader);
        assert_eq!(rb.registry_version(), v, "no second takeover");

        let (a, _) = cluster(A, &[A, B], Arc::new(HashElection));
        // Restarted A probes first and joins the current leader.
        assert_eq!(a.update(&[seen(B, true, v)]), Role::Follower { leader: B.to_owned() });
        assert!(!a.is_leader());
        assert_eq!(a.leader().unwrap().url, B);
    }

    #[test]
    fn two_leaders_in_sight_resolve_by_hash_and_the_loser_steps_down() {
        let (b, _) = cluster(B, &[A, B], Arc::new(HashElection));
        b.update(&[gone(A)]);
        assert!(b.is_leader());
        assert_eq!(b.update(&[seen(A, true, 3)]), Role::Follower { leader: A.to_owned() });
        let leaders: Vec<_> = b.servers().into_iter().filter(|s| s.leader).map(|s| s.url).collect();
        assert_eq!(leaders, vec![A.to_owned()]);
    }

    #[test]
    fn quorum_loses_and_regains_a_leader() {
        let (c, _) = cluster(C, &[A, B, C], Arc::new(QuorumElection));
        // B and C differ in their last character only, so B's hash is C's minus one.
        assert_eq!(
            c.update(&[gone(A), seen(B, false, 0)]),
            Role::Follower { leader: B.to_owned() }
        );
        assert_eq!(c.update(&[gone(A), gone(B)]), Role::NoLeader);
        assert!(c.leader().is_none());
        assert_eq!(
            c.update(&[gone(A), seen(B, true, 9)]),
            Role::Follower { leader: B.to_owned() }
        );
    }

    #[test]
    fn the_operator_takes_office_once() {
        let (b, rb) = cluster(B, &[A, B], Arc::new(HashElection));
        b.update(&[seen(A, true, 7)]);
        assert_eq!(
            b.take_office("set leader by operator", true),
            None,
            "not before B holds what A holds"
        );
        rb.restore(full_snapshot(7), 0).unwrap();
        let me = b.take_office("set leader by operator", true).unwrap();
        assert!(me.leader);
        assert_eq!(me.version, 8);
        assert_eq!(
            b.take_office("set leader by operator", true).unwrap().version,
            8,
            "already leading: nothing changes"
        );
        assert_eq!(rb.registry_version(), 8);
    }

    /// A registry of `n` instances at version `n`, as a peer's snapshot.
    fn full_snapshot(n: u16) -> Snapshot {
        let r = Registry::new();
        for port in 1..=n {
            register(&r, &InstanceMeta::new("http", "h", port, "").unwrap(), 0);
        }
        r.snapshot()
    }

    #[test]
    fn an_elected_node_holding_less_takes_office_only_after_adopting() {
        // A restarted empty; C kept 300 instances; B is gone.
        let (a, ra) = cluster(A, &[A, B, C], Arc::new(QuorumElection));
        assert_eq!(a.update(&[gone(B), seen(C, false, 300)]), Role::NoLeader);
        assert!(a.is_candidate(), "elected, but C holds more");
        assert_eq!(a.higher_peers(), vec![C.to_owned()]);
        assert!(a.leader().is_none());
        assert_eq!(a.take_office("elected", false), None, "nothing adopted yet");

        ra.adopt(full_snapshot(300), 0).unwrap();
        assert!(a.higher_peers().is_empty());
        let me = a.take_office("elected", false).expect("takes office");
        assert!(me.leader);
        assert_eq!(me.version, 301, "above everything seen");
        assert_eq!(ra.find_all("svc").len(), 300);
        assert!(!a.is_candidate());
        assert_eq!(
            a.take_office("elected", false).map(|s| s.version),
            None,
            "no longer a candidate"
        );
    }

    #[test]
    fn a_leader_that_sees_a_higher_server_steps_down_to_adopt_its_data() {
        let (a, ra) = cluster(A, &[A, B], Arc::new(HashElection));
        assert_eq!(a.update(&[gone(B)]), Role::Leader);
        assert_eq!(ra.registry_version(), 1);
        // B led alone meanwhile and took 300 registrations; the two leaders meet, A wins
        // by hash, but B holds more.
        assert_eq!(a.update(&[seen(B, true, 303)]), Role::NoLeader);
        assert!(a.is_candidate());
        ra.adopt(full_snapshot(303), 0).unwrap();
        let me = a.take_office("elected", false).expect("takes office");
        assert_eq!(me.version, 304);
        assert_eq!(ra.find_all("svc").len(), 303);

        // Had the election moved on before the data came (B seen as the one leader, since
        // a candidate does not claim to lead), there would be no office.
        let (a, ra) = cluster(A, &[A, B], Arc::new(HashElection));
        a.update(&[seen(B, true, 303)]);
        assert_eq!(a.update(&[seen(B, true, 303)]), Role::Follower { leader: B.to_owned() });
        ra.adopt(full_snapshot(303), 0).unwrap();
        assert_eq!(a.take_office("elected", false), None);
    }

    #[test]
    fn a_follower_never_restores_an_older_snapshot() {
        let (b, rb) = cluster(B, &[A, B], Arc::new(HashElection));
        rb.restore(full_snapshot(300), 0).unwrap();
        assert_eq!(b.update(&[seen(A, true, 1)]), Role::Follower { leader: A.to_owned() });
        assert_eq!(b.apply_from(A, Snapshot::default()).unwrap(), Some(Synced::Older));
        assert_eq!(rb.find_all("svc").len(), 300);
        assert_eq!(rb.registry_version(), 300);
        assert_eq!(b.apply_from("http://127.0.0.1:9", full_snapshot(301)).unwrap(), None);
        assert_eq!(b.apply_from(A, full_snapshot(301)).unwrap(), Some(Synced::Applied));
        assert_eq!(rb.registry_version(), 301);
    }
}
