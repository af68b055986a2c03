//! `/metrics`: what this node counts, in the Prometheus (OpenMetrics) text format, through
//! the official client crate.
//!
//! The hot paths pay one atomic increment and one histogram observation per request: the
//! counters of every endpoint and status class are created at start and kept in a table,
//! so recording never looks a label set up. Everything else (registry size, totals, the
//! cluster's standing) is read when `/metrics` is scraped.

use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use registry_cluster::{ModeStatus, RaftStatus, Standing, Status};

use registry_core::Stats;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Latency buckets, in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type Labels = [(&'static str, &'static str); 2];
type Label = [(&'static str, &'static str); 1];
type TextLabel = [(&'static str, String); 1];

/// The counters and histograms requests record into, and the encoder of the rest.
pub(crate) struct Metrics {
    registry: Registry,
    /// Per endpoint, per status class.
    requests: Vec<[Counter; 5]>,
    /// Per endpoint.
    latency: Vec<Histogram>,
    forwarded: Counter,
    forward_failures: Counter,
    /// 1 when the listener serves HTTPS.
    tls: Gauge,
    /// 1 when a token is set and the node listens in plain HTTP beyond loopback.
    plaintext_tokens: Gauge,
    /// The row of `other`, the paths that are no endpoint.
    other: usize,
}

impl Metrics {
    /// The metrics of a node whose routes are named `labels` (one row each, in the
    /// router's order), then `other`.
    pub(crate) fn new(labels: Vec<&'static str>) -> Self {
        let mut endpoints = labels;
        endpoints.push("other");
        let mut registry = Registry::default();
        let requests_family = Family::<Labels, Counter>::default();
        let latency_family = Family::<Label, Histogram, fn() -> Histogram>::new_with_constructor(|| {
            Histogram::new(BUCKETS.iter().copied())
        });
        let requests = endpoints
            .iter()
            .map(|endpoint| {
                CLASSES.map(|class| requests_family.get_or_create_owned(&[("endpoint", *endpoint), ("code", class)]))
            })
            .collect();
        let latency = endpoints
            .iter()
            .map(|endpoint| latency_family.get_or_create_owned(&[("endpoint", *endpoint)]))
            .collect();
        registry.register(
            "maregistry_http_requests",
            "HTTP requests answered, by endpoint and status class",
            requests_family,
        );
        registry.register(
            "maregistry_http_request_duration_seconds",
            "Time from a request's head to its answer, by endpoint (blocking queries, which wait on purpose, are \
             left out)",
            latency_family,
        );
        let forwarded = Counter::default();
        let forward_failures = Counter::default();
        registry.register(
            "maregistry_forwarded",
            "Requests a follower relayed to the leader",
            forwarded.clone(),
        );
        registry.register(
            "maregistry_forward_failures",
            "Relayed requests the leader could not answer (unreachable, or a 5xx)",
            forward_failures.clone(),
        );
        let (tls, plaintext_tokens) = (Gauge::default(), Gauge::default());
        registry.register("maregistry_tls", "1 when the HTTP listener serves HTTPS", tls.clone());
        registry.register(
            "maregistry_tokens_in_plaintext",
            "1 when a cluster or client token is set and the node listens in plain HTTP beyond loopback: anyone \
             who can read the network can take the tokens",
            plaintext_tokens.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            forwarded,
            forward_failures,
            tls,
            plaintext_tokens,
            other: endpoints.len() - 1,
        }
    }

    /// How the listener is exposed: over TLS or not, and whether tokens cross the network
    /// in plain text.
    pub(crate) fn listening(&self, tls: bool, plaintext_tokens: bool) {
        self.tls.set(i64::from(tls));
        self.plaintext_tokens.set(i64::from(plaintext_tokens));
    }

    /// The row of the paths that are no endpoint.
    pub(crate) fn other(&self) -> usize {
        self.other
    }

    /// Counts one answered request to the endpoint of row `endpoint`, and its latency when
    /// given.
    pub(crate) fn record(&self, endpoint: usize, status: u16, elapsed: Option<Duration>) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        if let Some(row) = self.requests.get(endpoint) {
            row[class].inc();
        }
        if let (Some(elapsed), Some(histogram)) = (elapsed, self.latency.get(endpoint)) {
            histogram.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts one relay to the leader, and whether it failed.
    pub(crate) fn forwarded(&self, failed: bool) {
        self.forwarded.inc();
        if failed {
            self.forward_failures.inc();
        }
    }

    /// The text of `/metrics`: the request metrics, then the registry's `stats`, the
    /// blocking queries `waiting`, what `protocols` adds (the facades' own series) and the
    /// cluster's `status`, read now.
    pub(crate) fn encode(
        &self,
        stats: &Stats,
        status: &Status,
        waiting: usize,
        protocols: impl FnOnce(&mut Registry),
    ) -> String {
        let mut now = Registry::default();
        registry_series(&mut now, stats, status, waiting);
        protocols(&mut now);
        cluster_series(&mut now, status);
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &now);
        let _ = encode_eof(&mut out);
        out
    }
}

/// A gauge of `v`, read at scrape time (also for a facade's own series).
pub fn gauge(v: u64) -> ConstGauge {
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX))
}

/// The registry's size and totals, and the blocking queries waiting, read now.
fn registry_series(r: &mut Registry, stats: &Stats, status: &Status, waiting: usize) {
    r.register("maregistry_instances", "Instances registered", gauge(stats.instances));
    r.register(
        "maregistry_services",
        "Services with at least one instance",
        gauge(stats.services),
    );
    r.register(
        "maregistry_registry_version",
        "The registry version",
        gauge(stats.version),
    );
    r.register(
        "maregistry_registrations",
        "Registrations that were a change (a new instance or new parameters), applied on this node",
        ConstCounter::new(stats.registrations),
    );
    r.register(
        "maregistry_unregistrations",
        "Unregistrations that removed an instance, applied on this node",
        ConstCounter::new(stats.unregistrations),
    );
    r.register(
        "maregistry_evictions",
        "Instances evicted for not renewing, applied on this node",
        ConstCounter::new(stats.evictions),
    );
    r.register(
        "maregistry_renewals",
        "Heartbeats taken by this node, one per service renewed",
        ConstCounter::new(stats.renewals),
    );
    r.register(
        "maregistry_eviction_passes_skipped",
        "Eviction passes skipped by self-preservation (--evict-max-fraction)",
        ConstCounter::new(status.evictions_skipped),
    );
    r.register(
        "maregistry_blocking_queries_waiting",
        "Blocking queries (since=V&wait=D) waiting for a change now",
        gauge(waiting as u64),
    );
}

/// The cluster's standing: role, mode, leader changes, readiness, and the mode's own.
fn cluster_series(r: &mut Registry, status: &Status) {
    let roles = Family::<Label, Gauge>::default();
    for standing in Standing::ALL {
        roles
            .get_or_create(&[("role", standing.name())])
            .set(i64::from(status.standing == standing));
    }
    r.register(
        "maregistry_role",
        "This node's role: 1 for the current one (none: no leader known)",
        roles,
    );
    let modes = Family::<Label, Gauge>::default();
    modes.get_or_create(&[("mode", status.mode.name())]).set(1);
    r.register("maregistry_cluster_mode", "The cluster mode this node runs", modes);
    r.register(
        "maregistry_leader_changes",
        "Changes of the leader this node has seen",
        ConstCounter::new(status.leader_changes),
    );
    r.register(
        "maregistry_ready",
        "1 when /ready answers 200",
        gauge(u64::from(status.not_ready().is_none())),
    );
    if let ModeStatus::Snapshot { sync: Some(sync) } = &status.mode {
        r.register(
            "maregistry_sync_versions_behind",
            "Snapshot mode, follower: the leader's registry version minus this node's",
            gauge(sync.versions_behind),
        );
        if let Some(since) = sync.since_last_sync {
            r.register(
                "maregistry_sync_seconds_since_last",
                "Snapshot mode, follower: seconds since the last sync from the leader that succeeded",
                ConstGauge::new(since.as_secs_f64()),
            );
        }
    }
    if let ModeStatus::Raft(raft) = &status.mode {
        raft_series(r, raft);
    }
}

/// Raft's log and replication.
fn raft_series(r: &mut Registry, raft: &RaftStatus) {
    r.register("maregistry_raft_term", "Raft: the current term", gauge(raft.term));
    let stopped = Family::<TextLabel, Gauge>::default();
    if let Some(why) = &raft.stopped {
        stopped.get_or_create(&[("cause", why.clone())]).set(1);
    }
    r.register(
        "maregistry_raft_stopped",
        "Raft: 1, with the cause, once the consensus engine has stopped (the node exits)",
        stopped,
    );
    let index = |v: Option<u64>| gauge(v.unwrap_or(0));
    r.register(
        "maregistry_raft_last_log_index",
        "Raft: the last log index this node holds",
        index(raft.last_log_index),
    );
    r.register(
        "maregistry_raft_commit_index",
        "Raft: the highest log index this node knows to be committed",
        index(raft.committed),
    );
    r.register(
        "maregistry_raft_applied_index",
        "Raft: the last log index applied to this node's registry",
        index(raft.applied),
    );
    let lag = Family::<TextLabel, Gauge>::default();
    let matched = Family::<TextLabel, Gauge>::default();
    for replica in &raft.replication {
        let peer = [("peer", replica.url.clone())];
        lag.get_or_create(&peer)
            .set(i64::try_from(replica.lag).unwrap_or(i64::MAX));
        matched
            .get_or_create(&peer)
            .set(i64::try_from(replica.matched.unwrap_or(0)).unwrap_or(i64::MAX));
    }
    r.register(
        "maregistry_raft_replication_lag",
        "Raft, on the leader: log entries each follower lacks",
        lag,
    );
    r.register(
        "maregistry_raft_replication_matched_index",
        "Raft, on the leader: the last log index known to be on each follower",
        matched,
    );
}

#[cfg(test)]
mod tests {
    use registry_cluster::{ModeStatus, Standing};

    use super::*;
    use crate::routes::tests::{MODE, TWO};
    use crate::routes::Routes;

    /// Every route counts under its own name: a request recorded at a route's row shows in
    /// `/metrics` with that route's label as its `endpoint` label.
    #[test]
    fn each_route_row_is_counted_under_its_own_path() {
        let status = Status {
            standing: Standing::Leader,
            leader: None,
            leader_changes: 0,
            evictions_skipped: 0,
            mode: ModeStatus::Snapshot { sync: None },
        };
        let routes = Routes::new(&[TWO], MODE);
        let labels = routes.labels();
        for (i, label) in labels.iter().enumerate() {
            let metrics = Metrics::new(routes.labels());
            // The route a path finds (a family by one of its paths) records at its row.
            let probe = match *label {
                "/two/v1" | "/two/apps" => format!("{label}/x"),
                other => other.to_owned(),
            };
            let (route, _) = routes.of(&probe).expect("every endpoint is routed");
            assert_eq!(routes.row(route), i, "{label}");
            metrics.record(routes.row(route), 200, None);
            let text = metrics.encode(&Stats::default(), &status, 0, |_| {});
            let counted = format!("maregistry_http_requests_total{{endpoint=\"{label}\",code=\"2xx\"}} 1");
            assert!(text.contains(&counted), "{label} is not counted under its name");
        }
        let metrics = Metrics::new(routes.labels());
        assert_eq!(metrics.other(), labels.len(), "`other` comes last");
        metrics.record(metrics.other(), 404, None);
        let text = metrics.encode(&Stats::default(), &status, 0, |_| {});
        assert!(text.contains("maregistry_http_requests_total{endpoint=\"other\",code=\"4xx\"} 1"));
    }
}
