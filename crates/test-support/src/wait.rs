//! Waiting for a condition, bounded and polled: what replaces sleeps in the tests. The
//! bounds are generous (only a broken node takes that long) and the polls short.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::client::Client;

/// Polls `check` every 25 ms until it holds; panics after `limit`. Limits are generous:
/// only a broken node takes that long.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How long a test waits for a cluster to settle; only a broken node takes that long.
pub const LIMIT: Duration = Duration::from_secs(60);

// Helpers for nodes known by url only (processes, or nodes that may be down).

/// A node's `/info`, or `None` when it does not answer.
pub async fn info(c: &Client, url: &str) -> Option<Value> {
    let answer = c.try_raw("GET", &format!("{url}/info"), "").await.ok()?;
    (answer.status == 200).then(|| serde_json::from_slice(&answer.body).ok())?
}

/// Waits until every node of `urls` answers and names the same leader, which is one of
/// them and says it leads; answers its url.
pub async fn agreed_leader(c: &Client, urls: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(leader) = agreement(c, urls).await {
            return leader;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{urls:?} agree on no leader after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn agreement(c: &Client, urls: &[&str]) -> Option<String> {
    let mut leaders = Vec::new();
    for url in urls {
        let answer = c.try_raw("GET", &format!("{url}/leader"), "").await.ok()?;
        let leader: Value = serde_json::from_slice(&answer.body).ok()?;
        leaders.push(leader["url"].as_str()?.to_owned());
    }
    let first = leaders[0].clone();
    if leaders.iter().any(|l| *l != first) || !urls.contains(&first.as_str()) {
        return None;
    }
    let leads = info(c, &first).await?["leader"] == Value::Bool(true);
    leads.then_some(first)
}

/// The ports of the instances of service `svc` that `url` lists; empty when it does not
/// answer.
pub async fn ports_on(c: &Client, url: &str) -> Vec<u16> {
    let Ok(answer) = c.try_raw("GET", &format!("{url}/findAll?service=svc"), "").await else {
        return Vec::new();
    };
    let list: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    list.as_array()
        .map(|l| l.iter().filter_map(|i| i["port"].as_u64()).map(|p| p as u16).collect())
        .unwrap_or_default()
}

/// Waits until every node of `urls` lists (at least) every port of `ports` under `svc`,
/// and all report one registry version.
pub async fn all_hold(c: &Client, urls: &[&str], ports: &[u16]) {
    eventually("every node holds every instance at one version", LIMIT, || async {
        let mut versions = Vec::new();
        for url in urls {
            let held = ports_on(c, url).await;
            if !ports.iter().all(|p| held.contains(p)) {
                return false;
            }
            match info(c, url).await {
                Some(info) => versions.push(info["version"].as_u64()),
                None => return false,
            }
        }
        versions.windows(2).all(|w| w[0] == w[1])
    })
    .await;
}

/// Tests that load the machine on purpose (a connection flood, busy cores) and tests that
/// time what a browser shows do not run at the same time, whatever the test harness
/// schedules: the first hold this exclusively, the second shared.
fn machine() -> &'static tokio::sync::RwLock<()> {
    static MACHINE: std::sync::OnceLock<tokio::sync::RwLock<()>> = std::sync::OnceLock::new();
    MACHINE.get_or_init(|| tokio::sync::RwLock::new(()))
}

/// Held by a test that loads the machine on purpose, for as long as it does.
pub async fn loading_the_machine() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    machine().write().await
}

/// Held by a test that times what a browser shows.
pub async fn timing_a_browser() -> tokio::sync::RwLockReadGuard<'static, ()> {
    machine().read().await
}
