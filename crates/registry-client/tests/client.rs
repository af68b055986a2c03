//! The client against real nodes on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use maregistry::Config;
use registry_client::{ClientConfig, ClientError, RegistryClient, Watcher};
use registry_core::InstanceMeta;
use test_support::{free_listener, start_cluster, Node};

fn instance(host: &str, port: u16) -> InstanceMeta {
    InstanceMeta::new("http", host, port, "app").unwrap()
}

fn config(servers: &[&str]) -> ClientConfig {
    ClientConfig {
        heartbeat: Duration::from_millis(100),
        wait: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        retry: Duration::from_millis(100),
        ..ClientConfig::new(servers)
    }
}

/// The next list of the watcher that satisfies `check`, within a generous bound.
async fn until(watcher: &mut Watcher, what: &str, check: impl Fn(&[InstanceMeta]) -> bool) -> Arc<Vec<InstanceMeta>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, watcher.next())
            .await
            .unwrap_or_else(|_| panic!("the watcher never saw {what}"))
            .expect("the watcher is open");
        if check(&next) {
            return next;
        }
    }
}

fn ports(list: &[InstanceMeta]) -> Vec<u16> {
    list.iter().map(|i| i.port).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_heartbeat_find_watch_and_shut_down() {
    // Instances not renewed for 600 ms go: only the heartbeat keeps them.
    let node = Node::start_on(
        free_listener(),
        Config {
            ttl: Duration::from_millis(600),
            evict_interval: Duration::from_millis(100),
            ..Config::default()
        },
    );
    let provider = RegistryClient::new(config(&[&node.url])).unwrap();
    let consumer = RegistryClient::new(config(&[&node.url])).unwrap();
    let stored = provider.register("svc", &instance("10.0.0.1", 1)).await.unwrap();
    assert!(stored.status);
    provider.register("svc", &instance("10.0.0.1", 2)).await.unwrap();
    assert_eq!(ports(&consumer.find_all("svc").await.unwrap()), vec![1, 2]);
    let mut watcher = consumer.watch("svc").await.unwrap();
    assert_eq!(
        ports(&watcher.next().await.unwrap()),
        vec![1, 2],
        "the current list first"
    );

    // Well past the TTL, the heartbeats have kept both.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ports(&consumer.find_all("svc").await.unwrap()), vec![1, 2]);

    provider.unregister("svc", &instance("10.0.0.1", 1)).await.unwrap();
    until(&mut watcher, "one instance", |l| ports(l) == [2]).await;
    provider.shutdown().await;
    until(&mut watcher, "none", |l| l.is_empty()).await;
    assert!(matches!(
        provider.register("svc", &instance("h", 3)).await,
        Err(ClientError::Shutdown)
    ));

    // Bad input is refused before anything is sent; a refusal is typed.
    assert!(matches!(consumer.find_all("a b").await, Err(ClientError::Invalid(_))));
    assert!(RegistryClient::new(config(&[])).is_err());
    consumer.shutdown().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_goes_on_across_a_leader_failover() {
    let mut nodes = start_cluster(3, |config| Config {
        http_timeout: Duration::from_secs(1),
        ..config
    });
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    // The client lists the servers leader first (whoever the cluster elects).
    let http =
        registry_http::HyperInvoker::new(registry_http::HyperInvokerConfig::with_timeout(Duration::from_secs(2)));
    let leader = loop {
        let answer: Result<serde_json::Value, _> = registry_http::get_json(&http, &format!("{}/leader", urls[0])).await;
        if let Some(url) = answer.ok().and_then(|v| v["url"].as_str().map(str::to_owned)) {
            break url;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut ordered: Vec<&str> = vec![leader.as_str()];
    ordered.extend(urls.iter().map(String::as_str).filter(|u| *u != leader));
    let client = RegistryClient::new(config(&ordered)).unwrap();
    client.register("svc", &instance("10.0.0.1", 1)).await.unwrap();
    let mut watcher = client.watch("svc").await.unwrap();
    until(&mut watcher, "the first instance", |l| ports(l) == [1]).await;

    // The leader goes away in the middle of the watch.
    let index = urls.iter().position(|u| *u == leader).unwrap();
    nodes.remove(index).stop().await;
    // A write goes to the next server (relayed to the new leader once there is one).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match client.register("svc", &instance("10.0.0.2", 2)).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "no leader yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no write after the failover: {e}"),
        }
    }
    until(&mut watcher, "the instance registered after the failover", |l| {
        ports(l).contains(&2)
    })
    .await;
    client.shutdown().await;
    for node in nodes {
        node.stop().await;
    }
}

/// Over HTTPS with a client certificate: the client checks the node against its CA, and
/// the node (with a client CA) checks the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_registers_and_watches_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_support::Pki::new(dir.path(), "a");
    let node = Node::start(Config {
        tls: Some(test_support::Pki::server(&pki.issue("node"), Some(&pki.ca))),
        ..Config::default()
    })
    .await;
    assert!(node.url.starts_with("https://"));
    let tls = pki.peers(Some(&pki.issue("client")));
    let secure = |servers: &[&str]| ClientConfig {
        tls: Some(tls.clone()),
        ..config(servers)
    };
    let provider = RegistryClient::new(secure(&[&node.url])).unwrap();
    let consumer = RegistryClient::new(secure(&[&node.url])).unwrap();
    let mut watcher = consumer.watch("svc").await.unwrap();
    provider.register("svc", &instance("10.0.0.1", 1)).await.unwrap();
    until(&mut watcher, "the instance, over TLS", |l| ports(l) == [1]).await;
    // An https:// server without a CA is refused before anything is sent.
    assert!(matches!(
        RegistryClient::new(config(&[&node.url])),
        Err(ClientError::Invalid(_))
    ));
    // A client whose certificate the node does not accept gets nothing.
    let stranger = RegistryClient::new(ClientConfig {
        tls: Some(pki.peers(None)),
        ..config(&[&node.url])
    })
    .unwrap();
    assert!(stranger.find_all("svc").await.is_err());
    provider.shutdown().await;
    consumer.shutdown().await;
    node.stop().await;
}
