//! The checks a Consul agent runs, run by the cluster's leader (docs/spec.md §10.5). Every
//! `check_every` the leader:
//! - marks a TTL check critical (`TTL expired`) once its service went without an update for
//!   the TTL (the TTL clock is the instance's renewal: a pass renews it);
//! - probes the HTTP and TCP checks that are due (each at its interval, within its timeout;
//!   HTTP 2xx passing, 429 warning, anything else critical);
//! - deregisters a service one of whose checks has been critical longer than its
//!   `DeregisterCriticalServiceAfter` (at least `deregister_min`).
//!
//! It looks only at the instances with checks ([`crate::directory::Directory::checked`]): a
//! service none of whose instances has one costs a search of its encoded list when it
//! changes, and nothing otherwise.
//!
//! A status that changes is a write through the gateway, so every node answers the same
//! health; a probe whose result is the same writes nothing. When leadership moves, the new
//! leader probes every check at once and gives TTLs one TTL of grace (its renewals start at
//! its election), so checks go on within one interval.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use registry_api::{App, Op, Origin, Shutdown};
use registry_cluster::Role;
use tokio::net::TcpStream;

use crate::service::{set_checks, Check, Entry, CRITICAL, PASSING, WARNING};
use crate::Consul;

/// How much of an HTTP check's answer its output keeps.
const MAX_OUTPUT: usize = 4096;

/// A check, by service, instance and check id.
type CheckKey = (String, String, String);

/// A probe's result: the check, its status and output.
type ProbeResult = (CheckKey, &'static str, String);

/// The probes of this leader: when each is due, and the results not yet looked at.
#[derive(Default)]
struct Probes {
    /// The registry version at which the last look found no check: until it moves, a look
    /// has nothing to do (an idle registry, or one without checks, costs one read).
    idle_at: Option<u64>,
    due: HashMap<CheckKey, u64>,
    running: HashSet<CheckKey>,
    results: Arc<Mutex<Vec<ProbeResult>>>,
}

/// Runs the checks whenever this node leads, until `shutdown`.
pub(crate) async fn run(consul: Arc<Consul>, app: Arc<App>, mut shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(consul.settings.check_every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = Probes::default();
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let version = app.registry().registry_version();
        if probes.idle_at == Some(version) {
            continue;
        }
        if app.cluster().role() != Role::Leader {
            // Another leader probes; this one starts afresh when it leads again.
            probes.due.clear();
            continue;
        }
        let found = sweep(&consul, &app, &mut probes).await;
        probes.idle_at = (found == 0).then_some(version);
    }
}

/// One look at every check; answers how many instances have checks.
async fn sweep(consul: &Consul, app: &Arc<App>, probes: &mut Probes) -> usize {
    let now = app.now_ms();
    let registry = app.registry();
    let results: Vec<_> = std::mem::take(&mut *probes.results.lock().unwrap_or_else(PoisonError::into_inner));
    let mut results: HashMap<CheckKey, (&'static str, String)> = results
        .into_iter()
        .map(|(key, status, output)| (key, (status, output)))
        .collect();
    for key in results.keys() {
        probes.running.remove(key);
    }
    let mut renewed: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut writes = Vec::new();
    let mut seen = HashSet::new();
    let entries = consul.checked.all(registry);
    let found = entries.len();
    for entry in entries {
        let url = entry.instance.url();
        let has_ttl = entry.checks.iter().any(|c| c.kind == "ttl");
        let renewal = match has_ttl {
            true => *renewed
                .entry(entry.service.clone())
                .or_insert_with(|| {
                    registry
                        .instances_renewed(&entry.service)
                        .1
                        .into_iter()
                        .map(|(i, at)| (i.url(), at))
                        .collect()
                })
                .get(&url)
                .unwrap_or(&now),
            false => now,
        };
        let mut checks = entry.checks.clone();
        let mut changed = false;
        for check in &mut checks {
            let key = (entry.service.clone(), url.clone(), check.id.clone());
            seen.insert(key.clone());
            let next = match check.kind.as_str() {
                "ttl" if check.status != CRITICAL && now.saturating_sub(renewal) > check.ttl_ms => {
                    Some((CRITICAL, format!("TTL expired (last update {} ms ago)", now - renewal)))
                }
                "http" | "tcp" => {
                    schedule(probes, &key, check, now);
                    results.remove(&key)
                }
                _ => None,
            };
            if let Some((status, output)) = next {
                if check.status != status || check.output != output {
                    if check.status != status {
                        check.since_ms = now;
                    }
                    check.status = status.to_owned();
                    check.output = output;
                    changed = true;
                }
            }
        }
        if let Some(why) = overdue(consul, &checks, now) {
            tracing::info!(service = %entry.service, id = %entry.id, %why, "deregistering a critical Consul service");
            writes.push(Op::Unreg(entry.service.clone(), Arc::new(entry.instance)));
            continue;
        }
        if changed {
            writes.push(reregistration(entry, &checks));
        }
    }
    // The schedule of checks that no longer exist is forgotten.
    probes.due.retain(|key, _| seen.contains(key));
    let origin = Origin::node(app);
    for op in writes {
        if let Err(e) = app.write(&origin, op).await {
            tracing::warn!(error = %e, "a Consul check's status could not be written; retried next sweep");
        }
    }
    found
}

/// Starts `check`'s probe when it is due and none runs.
fn schedule(probes: &mut Probes, key: &CheckKey, check: &Check, now: u64) {
    let due = *probes.due.entry(key.clone()).or_insert(now);
    if due > now || probes.running.contains(key) {
        return;
    }
    probes.due.insert(key.clone(), now + check.interval_ms.max(1));
    probes.running.insert(key.clone());
    let (key, check, results) = (key.clone(), check.clone(), probes.results.clone());
    tokio::spawn(async move {
        let timeout = Duration::from_millis(check.timeout_ms.max(1));
        let (status, output) = match check.kind.as_str() {
            "http" => http_probe(&check, timeout).await,
            _ => tcp_probe(&check.tcp, timeout).await,
        };
        results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key, status, output));
    });
}

/// Why a service is to be deregistered: one of its checks has been critical for longer
/// than its `DeregisterCriticalServiceAfter` (at least the node's minimum).
fn overdue(consul: &Consul, checks: &[Check], now: u64) -> Option<String> {
    let floor = u64::try_from(consul.settings.deregister_min.as_millis()).unwrap_or(u64::MAX);
    checks
        .iter()
        .filter(|c| c.status == CRITICAL && c.dcsa_ms > 0)
        .find(|c| now.saturating_sub(c.since_ms) >= c.dcsa_ms.max(floor))
        .map(|c| format!("check {} critical for {} ms", c.id, now.saturating_sub(c.since_ms)))
}

/// The registration of `entry` with `checks`.
fn reregistration(entry: Entry, checks: &[Check]) -> Op {
    let mut instance = entry.instance;
    set_checks(&mut instance, checks);
    Op::Reg(entry.service, Arc::new(instance))
}

/// An HTTP check: 2xx passing, 429 warning, anything else (or no answer in time) critical.
async fn http_probe(check: &Check, timeout: Duration) -> (&'static str, String) {
    let method = if check.method.is_empty() {
        "GET"
    } else {
        check.method.as_str()
    };
    let answered = tokio::time::timeout(timeout, http_call(check, method)).await;
    let what = format!("HTTP {method} {}", check.http);
    match answered {
        Err(_) => (CRITICAL, format!("{what}: timed out after {timeout:?}")),
        Ok(Err(e)) => (CRITICAL, format!("{what}: {e}")),
        Ok(Ok((code, body))) => {
            let status = match code {
                200..=299 => PASSING,
                429 => WARNING,
                _ => CRITICAL,
            };
            (status, format!("{what}: {code} Output: {body}"))
        }
    }
}

async fn http_call(check: &Check, method: &str) -> Result<(u16, String), String> {
    let rest = check.http.strip_prefix("http://").unwrap_or(&check.http);
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let target = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let stream = TcpStream::connect(&target).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("user-agent", "Consul Health Check")
        .header("accept", "text/plain, text/*, */*");
    for (name, values) in &check.header {
        for value in values {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    let request = request
        .body(Full::new(Bytes::from(check.body.clone())))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_OUTPUT)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// A TCP check: passing when a connection opens within the timeout.
async fn tcp_probe(target: &str, timeout: Duration) -> (&'static str, String) {
    match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Ok(Ok(_)) => (PASSING, format!("TCP connect {target}: Success")),
        Ok(Err(e)) => (CRITICAL, format!("dial tcp {target}: {e}")),
        Err(_) => (CRITICAL, format!("dial tcp {target}: i/o timeout")),
    }
}
