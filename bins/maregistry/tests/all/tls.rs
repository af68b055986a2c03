//! TLS (docs/spec.md §3, docs/operations.md): the API over HTTPS, client certificates,
//! clusters of both modes over mutual TLS, reloads without a restart, and the refusal of
//! unusable files. Certificates are made here (rcgen).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use maregistry::config::Cli;
use maregistry::{Config, Mode};
use registry_http::tls::{PeerTls, ServerTls};
use test_support::{
    all_hold, cluster_config, eventually, free_ports, instance, listeners, raft_mode, start_grpc, Client, Issued, Node,
    Pki, Proc, Scenario, LIMIT,
};

/// The listener's and the peers' TLS of node `name`: a certificate of `pki`, clients and
/// peers checked against `pki`'s CA.
fn node_tls(pki: &Pki, name: &str) -> NodeTls {
    let issued = pki.issue(name);
    (Pki::server(&issued, Some(&pki.ca)), pki.peers(Some(&issued)))
}

#[tokio::test]
async fn a_tls_node_serves_the_api_over_https_and_answers_plain_http_with_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let node = Node::start(Config {
        tls: Some(Pki::server(&pki.issue("node"), None)),
        ..Config::default()
    })
    .await;
    assert!(node.url.starts_with("https://"), "{}", node.url);
    let c = Client::with_tls(pki.peers(None));

    // The seed's API.
    c.ok("POST", &node.at("/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;
    let first = c.raw("GET", &node.at("/findAll?service=svc"), "").await;
    assert_eq!(first.status, 200);
    let version: u64 = first.header("x-maregistry-version").unwrap().parse().unwrap();
    // A blocking query answers on the next change.
    let waiting = {
        let (c, url) = (
            Client::with_tls(pki.peers(None)),
            node.at(&format!("/findAll?service=svc&since={version}&wait=30s")),
        );
        tokio::spawn(async move { c.get(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.ok("POST", &node.at("/reg?service=svc"), &instance("10.0.0.1", 2))
        .await;
    let (status, list) = tokio::time::timeout(LIMIT, waiting).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The operators' endpoints.
    let metrics = c.raw("GET", &node.at("/metrics"), "").await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("\nmaregistry_instances 2\n"), "{text}");
    assert!(text.contains("\nmaregistry_tls 1\n") && text.contains("\nmaregistry_tokens_in_plaintext 0\n"));
    let console = c.raw("GET", &node.at("/ui"), "").await;
    assert_eq!(console.status, 200);
    assert!(String::from_utf8_lossy(&console.body).contains("<html"));

    // Plain HTTP to the TLS port: a clear 400, then the connection closes.
    let plain = Client::new()
        .raw("GET", &format!("http://{}/info", node.addr), "")
        .await;
    assert_eq!(plain.status, 400);
    let refusal: serde_json::Value = serde_json::from_slice(&plain.body).expect("the JSON error shape");
    assert_eq!(
        (
            refusal["status"].as_u64(),
            refusal["error"].as_str(),
            refusal["path"].as_str()
        ),
        (Some(400), Some("Bad Request"), Some("/info")),
        "{refusal}"
    );
    assert!(
        refusal["message"].as_str().is_some_and(|m| m.contains("speaks HTTPS")),
        "{refusal}"
    );
    // A client that does not trust the node's CA does not get through.
    let stranger = Client::with_tls(Pki::new(dir.path(), "b").peers(None));
    assert!(stranger.try_raw("GET", &node.at("/info"), "").await.is_err());
    // Nothing the refused calls did changed anything.
    let (_, list) = c.get(&node.at("/findAll?service=svc")).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    node.stop().await;
}

#[tokio::test]
async fn with_a_client_ca_every_client_needs_a_certificate_of_that_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, other) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let node = Node::start(Config {
        tls: Some(Pki::server(&pki.issue("node"), Some(&pki.ca))),
        ..Config::default()
    })
    .await;
    let none = Client::with_tls(pki.peers(None));
    assert!(
        none.try_raw("GET", &node.at("/info"), "").await.is_err(),
        "no certificate"
    );
    let foreign = other.issue("client");
    let wrong = Client::with_tls(Pki::peers_of(&pki.ca, Some(&foreign)));
    assert!(
        wrong.try_raw("GET", &node.at("/info"), "").await.is_err(),
        "another CA's certificate"
    );
    let good = Client::with_tls(pki.peers(Some(&pki.issue("client"))));
    assert_eq!(good.raw("GET", &node.at("/info"), "").await.status, 200);
    node.stop().await;
}

/// A node's listener and peer TLS.
type NodeTls = (Arc<ServerTls>, Arc<PeerTls>);

/// `n` free listeners and their https:// urls.
fn https_listeners(n: usize) -> (Vec<tokio::net::TcpListener>, Vec<String>) {
    let (listeners, urls) = listeners(n);
    let urls = urls.iter().map(|u| u.replacen("http://", "https://", 1)).collect();
    (listeners, urls)
}

/// `config` for the node at `url` serving and calling its peers with `tls`.
fn secured(mut config: Config, url: &str, tls: &NodeTls) -> Config {
    config.my_url = Some(url.to_owned());
    config.tls = Some(tls.0.clone());
    config.peer_tls = Some(tls.1.clone());
    config
}

/// Nodes over https with mutual TLS, one per `tls` (raft with data dirs under `data`, else
/// the snapshot mode): each presents its certificate to the others and requires theirs.
fn tls_cluster(data: Option<&std::path::Path>, tls: &[NodeTls]) -> (Vec<Node>, Vec<String>) {
    let (listeners, urls) = https_listeners(tls.len());
    let nodes = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let mut config = cluster_config(&urls);
            if let Some(data) = data {
                // A join the cluster cannot complete gives up after this.
                let mut mode = raft_mode(data.join(i.to_string()));
                mode.install_timeout = Duration::from_secs(5);
                config.mode = Mode::Raft(mode);
                config.ttl = Duration::from_secs(3600);
            }
            Node::start_on(listener, secured(config, &urls[i], &tls[i]))
        })
        .collect();
    (nodes, urls)
}

/// Three nodes' TLS, each with a certificate of `pki`.
fn three(pki: &Pki) -> Vec<NodeTls> {
    (0..3).map(|i| node_tls(pki, &format!("node{i}"))).collect()
}

async fn leader_and_follower(c: &Client, urls: &[String]) -> (String, String) {
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let leader = test_support::agreed_leader(c, &refs).await;
    let follower = urls.iter().find(|u| **u != leader).unwrap().clone();
    (leader, follower)
}

/// Registers ports 1..=`count` of `svc` through a follower and waits until every node of
/// `urls` holds them; answers the leader.
async fn writes_through_a_follower_reach_every_node(c: &Client, urls: &[String], count: u16) -> String {
    let (leader, follower) = leader_and_follower(c, urls).await;
    let ports: Vec<u16> = (1..=count).collect();
    for port in &ports {
        c.ok(
            "POST",
            &format!("{follower}/reg?service=svc"),
            &instance("10.0.0.1", *port),
        )
        .await;
    }
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    all_hold(c, &refs, &ports).await;
    leader
}

#[tokio::test]
async fn a_raft_cluster_over_mutual_tls_takes_writes_and_shuts_out_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let (nodes, urls) = tls_cluster(Some(dir.path()), &three(&pki));
    let c = Client::with_tls(pki.peers(Some(&pki.issue("client"))));
    let leader = writes_through_a_follower_reach_every_node(&c, &urls, 5).await;

    // A node whose certificate another CA signed can neither join nor read.
    let other = Pki::new(dir.path(), "b");
    let (mut listener, mut url) = https_listeners(1);
    let (listener, url) = (listener.remove(0), url.remove(0));
    let mut mode = raft_mode(dir.path().join("rogue"));
    mode.join = true;
    mode.install_timeout = Duration::from_secs(3);
    let config = Config {
        server_list: urls.clone(),
        mode: Mode::Raft(mode),
        ..Config::default()
    };
    let rogue = Node::start_on(listener, secured(config, &url, &node_tls(&other, "rogue")));
    let joined = c.raw("POST", &format!("{leader}/cluster/join?url={url}"), "").await;
    assert_ne!(joined.status, 200, "{}", String::from_utf8_lossy(&joined.body));
    let rogue_client = Client::with_tls(other.peers(Some(&other.issue("client"))));
    let (_, info) = rogue_client.get(&format!("{url}/info")).await;
    assert_eq!(info["version"], 0, "the rogue node holds nothing: {info}");
    assert!(
        rogue_client
            .try_raw("GET", &format!("{leader}/info"), "")
            .await
            .is_err(),
        "the cluster refuses the other CA's certificate"
    );
    rogue.stop().await;
    Node::stop_all(nodes).await;
}

#[tokio::test]
async fn a_snapshot_cluster_over_mutual_tls_syncs_its_followers() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let (nodes, urls) = tls_cluster(None, &three(&pki));
    let c = Client::with_tls(pki.peers(Some(&pki.issue("client"))));
    writes_through_a_follower_reach_every_node(&c, &urls, 3).await;
    Node::stop_all(nodes).await;
}

/// Moves a raft cluster from CA `a` to CA `b` while writes go on, by reloads: trust both,
/// then certificates of `b`, then trust `b` alone. Every acknowledged write is kept, and at
/// the end only `b`'s clients get in.
#[tokio::test]
async fn certificates_rotate_to_a_new_ca_by_reloads_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    // Each node's files are its own: a bundle of trusted CAs, a certificate and key.
    let files: Vec<(std::path::PathBuf, Issued)> = (0..3)
        .map(|i| {
            let bundle = dir.path().join(format!("trust{i}.pem"));
            std::fs::copy(&a.ca, &bundle).unwrap();
            (bundle, a.issue(&format!("node{i}")))
        })
        .collect();
    let tls: Vec<NodeTls> = files
        .iter()
        .map(|(bundle, issued)| (Pki::server(issued, Some(bundle)), Pki::peers_of(bundle, Some(issued))))
        .collect();
    let (nodes, urls) = tls_cluster(Some(dir.path()), &tls);

    // A client of each CA, trusting both, so that it can write throughout.
    let both = dir.path().join("both.pem");
    let both_text = std::fs::read_to_string(&a.ca).unwrap() + &std::fs::read_to_string(&b.ca).unwrap();
    std::fs::write(&both, &both_text).unwrap();
    let writer_cert = a.issue("writer");
    let writer_tls = Pki::peers_of(&both, Some(&writer_cert));
    let c = Client::with_tls(writer_tls.clone());
    let (leader, _) = leader_and_follower(&c, &urls).await;
    let done = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = {
        let (done, acknowledged, urls) = (done.clone(), acknowledged.clone(), urls.clone());
        let c = Client::with_tls(writer_tls.clone());
        tokio::spawn(async move {
            let mut port = 0u16;
            while !done.load(Ordering::Relaxed) {
                port += 1;
                let url = format!("{}/reg?service=svc", urls[usize::from(port) % urls.len()]);
                if let Ok(answer) = c.try_raw("POST", &url, &instance("10.0.0.1", port)).await {
                    if answer.status == 200 {
                        acknowledged.lock().unwrap().push(port);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let reload_all = || {
        for (server, peers) in &tls {
            server.reload().unwrap();
            peers.reload().unwrap();
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 1. Trust both CAs.
    for (bundle, _) in &files {
        std::fs::write(bundle, &both_text).unwrap();
    }
    reload_all();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 2. Certificates of the new CA.
    for (i, (_, issued)) in files.iter().enumerate() {
        let new = b.issue(&format!("node{i}"));
        std::fs::copy(&new.cert, &issued.cert).unwrap();
        std::fs::copy(&new.key, &issued.key).unwrap();
    }
    // The writer's certificate moves too, before the nodes stop trusting the old CA.
    let new_writer = b.issue("writer");
    std::fs::copy(&new_writer.cert, &writer_cert.cert).unwrap();
    std::fs::copy(&new_writer.key, &writer_cert.key).unwrap();
    writer_tls.reload().unwrap();
    reload_all();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 3. Trust the new CA alone.
    for (bundle, _) in &files {
        std::fs::copy(&b.ca, bundle).unwrap();
    }
    reload_all();
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let ports = acknowledged.lock().unwrap().clone();
    assert!(ports.len() > 10, "writes went on during the rotation: {}", ports.len());
    let b_client = Client::with_tls(b.peers(Some(&b.issue("reader"))));
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    all_hold(&b_client, &refs, &ports).await;
    // The old CA's clients are shut out, on new connections.
    let a_client = Client::with_tls(a.peers(Some(&a.issue("late"))));
    assert!(a_client.try_raw("GET", &format!("{leader}/info"), "").await.is_err());
    Node::stop_all(nodes).await;
}

/// The binary: SIGHUP reloads the files (the change would also be noticed within a few
/// seconds; the log says which); a bad file is refused with a log line and the node keeps
/// serving with the files it has.
#[tokio::test]
async fn sighup_reloads_the_certificate_and_a_bad_file_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let issued = a.issue("node");
    let port = free_ports(1)[0];
    let args: Vec<String> = [
        "--tls-cert",
        issued.cert.to_str().unwrap(),
        "--tls-key",
        issued.key.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let mut node = Proc::start(port, &args);
    let (a_client, b_client) = (Client::with_tls(a.peers(None)), Client::with_tls(b.peers(None)));
    let url = node.url.clone();
    eventually("the node serves HTTPS", LIMIT, || async {
        a_client.try_raw("GET", &format!("{url}/info"), "").await.is_ok()
    })
    .await;

    // A key that is not a key: refused, the old files stay in use.
    std::fs::write(&issued.key, "not a key").unwrap();
    node.hangup();
    eventually("the signal and the refusal are logged", LIMIT, || async {
        let log = node.log_text();
        log.contains("SIGHUP: reloading the TLS files") && log.contains("kept the listener's TLS files in use")
    })
    .await;
    assert_eq!(a_client.raw("GET", &format!("{url}/info"), "").await.status, 200);

    // The new CA's certificate: new connections get it.
    let new = b.issue("node");
    std::fs::copy(&new.cert, &issued.cert).unwrap();
    std::fs::copy(&new.key, &issued.key).unwrap();
    node.hangup();
    eventually("new connections use the new certificate", LIMIT, || async {
        b_client.try_raw("GET", &format!("{url}/info"), "").await.is_ok()
    })
    .await;
    let fresh = Client::with_tls(a.peers(None));
    assert!(fresh.try_raw("GET", &format!("{url}/info"), "").await.is_err());
    assert_eq!(node.terminate(), Some(0));
}

/// Files that cannot be used stop the node at start (exit 2), the message naming the flag,
/// the file and the problem.
#[test]
fn unusable_tls_settings_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let good = pki.issue("node");
    let expired = pki.issue_with("old", |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let other = pki.issue("other");
    let missing = dir.path().join("missing.pem");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let pair = |cert: &std::path::Path, key: &std::path::Path| {
        vec!["--tls-cert".to_owned(), path(cert), "--tls-key".to_owned(), path(key)]
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (pair(&missing, &good.key), "--tls-cert"),
        (pair(&good.cert, &other.key), "does not match"),
        (pair(&expired.cert, &expired.key), "expired"),
        (vec!["--tls-cert".into(), path(&good.cert)], "go together"),
        (
            vec![
                "--server-list".into(),
                "https://127.0.0.1:9001,https://127.0.0.1:9002".into(),
            ],
            "--peer-ca",
        ),
        // The same file for both: the message names the flag whose file failed.
        (pair(&good.cert, &good.cert), "--tls-key"),
        (vec!["--peer-ca".into(), path(&good.key)], "--peer-ca"),
    ];
    for (args, expected) in cases {
        let cli = Cli::load(std::iter::once("maregistry".to_owned()).chain(args.clone())).unwrap();
        let message = cli.validate(4096).unwrap_err();
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    // The binary exits 2 with that message.
    let output = std::process::Command::new(test_support::binary())
        .args(pair(&expired.cert, &expired.key))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("expired") && stderr.contains(&path(&expired.cert)),
        "{stderr}"
    );
}

/// A real client of the facades over HTTPS: py-eureka-client (httpx), trusting the node's
/// CA through `SSL_CERT_FILE`, registers, heartbeats and cancels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let node = Node::start(Config {
        tls: Some(Pki::server(&pki.issue("node"), None)),
        ..Config::default()
    })
    .await;
    let c = Client::with_tls(pki.peers(None));
    let ca = pki.ca.to_str().unwrap().to_owned();
    let scenario = Scenario::python_with(
        "eureka_py.py",
        &[format!("{}/eureka", node.url), "py-eureka-tls".to_owned()],
        &[("SSL_CERT_FILE", &ca)],
    );
    let mut scenario = scenario.expect("REGISTERED").await;
    let (_, seen) = c.get(&node.at("/findAll?service=PY-EUREKA-TLS")).await;
    assert_eq!(seen.as_array().map(Vec::len), Some(2), "{seen}");
    scenario.go_on();
    scenario.finish().await;
    let (_, seen) = c.get(&node.at("/findAll?service=PY-EUREKA-TLS")).await;
    assert_eq!(seen, serde_json::json!([]));
    node.stop().await;
}

/// The Nacos gRPC port of a node that serves HTTPS speaks TLS with the same certificate
/// (ALPN h2); a plain HTTP/2 client gets no answer there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_port_speaks_tls_too() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let node = start_grpc(Config {
        tls: Some(Pki::server(&pki.issue("node"), None)),
        ..Config::default()
    });
    let grpc = node.addr.port() + 1000;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()))
        .domain_name("localhost");
    let endpoint = Channel::from_shared(format!("https://127.0.0.1:{grpc}"))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let mut raw = crate::nacos2::Raw::connect_to(endpoint).await;
    let (kind, body) = raw.call("ServerCheckRequest", serde_json::json!({})).await;
    assert_eq!(
        (kind.as_str(), body["resultCode"].as_i64()),
        ("ServerCheckResponse", Some(200))
    );

    let plain = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    let refused = match plain.connect().await {
        Err(_) => true,
        Ok(channel) => registry_nacos::grpc::proto::request_client::RequestClient::new(channel)
            .request(registry_nacos::grpc::proto::Payload::default())
            .await
            .is_err(),
    };
    assert!(refused, "plain HTTP/2 on the TLS gRPC port gets no answer");
    node.stop().await;
}

/// A changed certificate is picked up without a signal: the files are looked at every few
/// seconds.
#[tokio::test]
async fn a_changed_certificate_file_is_reloaded_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let issued = a.issue("node");
    let node = Node::start(Config {
        tls: Some(Pki::server(&issued, None)),
        ..Config::default()
    })
    .await;
    let b_client = Client::with_tls(b.peers(None));
    assert!(b_client.try_raw("GET", &node.at("/info"), "").await.is_err());
    let new = b.issue("node");
    std::fs::copy(&new.cert, &issued.cert).unwrap();
    std::fs::copy(&new.key, &issued.key).unwrap();
    eventually("new connections get the new certificate", LIMIT, || async {
        b_client.try_raw("GET", &node.at("/info"), "").await.is_ok()
    })
    .await;
    node.stop().await;
}

/// A snapshot-mode node whose certificate another CA signed, listed with the cluster's
/// servers: the cluster refuses its calls, so it neither syncs the cluster's data nor
/// relays a client's write into it.
#[tokio::test]
async fn a_snapshot_node_of_another_ca_neither_syncs_nor_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, other) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let (nodes, urls) = tls_cluster(None, &three(&pki));
    let c = Client::with_tls(pki.peers(Some(&pki.issue("client"))));
    let (leader, _) = leader_and_follower(&c, &urls).await;
    c.ok("POST", &format!("{leader}/reg?service=svc"), &instance("10.0.0.1", 1))
        .await;

    let (mut listener, mut url) = https_listeners(1);
    let (listener, url) = (listener.remove(0), url.remove(0));
    let mut servers = urls.clone();
    servers.push(url.clone());
    let config = secured(cluster_config(&servers), &url, &node_tls(&other, "rogue"));
    let rogue = Node::start_on(listener, config);
    let rogue_client = Client::with_tls(other.peers(Some(&other.issue("client"))));
    // Several of its cluster rounds (100 ms each) go by.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, list) = rogue_client.get(&format!("{url}/findAll?service=svc")).await;
    assert_eq!(list, serde_json::json!([]), "it synced nothing");
    let write = rogue_client
        .raw("POST", &format!("{url}/reg?service=svc"), &instance("10.0.0.9", 9))
        .await;
    assert_ne!(write.status, 200, "{}", String::from_utf8_lossy(&write.body));
    let (_, list) = c.get(&format!("{leader}/findAll?service=svc")).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "nothing reached the cluster: {list}"
    );
    rogue.stop().await;
    Node::stop_all(nodes).await;
}

/// Requiring client certificates while presenting none to https:// peers is said at start.
#[tokio::test]
async fn requiring_client_certificates_without_presenting_one_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let node = pki.issue("node");
    let ports = free_ports(2);
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let servers = format!("https://127.0.0.1:{},https://127.0.0.1:{}", ports[0], ports[1]);
    let args: Vec<String> = vec![
        "--tls-cert".into(),
        path(&node.cert),
        "--tls-key".into(),
        path(&node.key),
        "--tls-client-ca".into(),
        path(&pki.ca),
        "--peer-ca".into(),
        path(&pki.ca),
        "--server-list".into(),
        servers,
        "--my-url".into(),
        format!("https://127.0.0.1:{}", ports[0]),
    ];
    let mut proc = Proc::start(ports[0], &args);
    eventually("the warning", LIMIT, || async {
        proc.log_text().contains("presents none to its peers")
    })
    .await;
    proc.terminate();
}

/// A connection still in its TLS handshake holds a gRPC slot: with two slots, two silent
/// connections make a third be closed at once, before their handshake timeout; once that
/// timeout has closed them, a new connection is held again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_in_their_tls_handshake_count_against_the_grpc_slots() {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let handshake_timeout = Duration::from_secs(3);
    let node = start_grpc(Config {
        tls: Some(Pki::server(&pki.issue("node"), None)),
        handshake_timeout,
        grpc: maregistry::GrpcSettings {
            max_connections: 2,
            ..maregistry::GrpcSettings::default()
        },
        ..Config::default()
    });
    let grpc = node.addr.port() + 1000;
    let connect = || async move {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            match TcpStream::connect(("127.0.0.1", grpc)).await {
                Ok(stream) => return stream,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "the gRPC port does not listen: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    // Whether the node closes `stream` within `within`.
    let closed_within = |mut stream: TcpStream, within: Duration| async move {
        let mut sink = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut sink))
            .await
            .is_ok()
    };
    let silent = [connect().await, connect().await];
    // Accepted in order: the third finds both slots taken.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        closed_within(connect().await, Duration::from_secs(2)).await,
        "over the limit: closed at once, not at the handshake timeout"
    );
    for stream in silent {
        assert!(closed_within(stream, LIMIT).await, "closed at the handshake timeout");
    }
    assert!(
        !closed_within(connect().await, Duration::from_secs(1)).await,
        "a slot is free again"
    );
    node.stop().await;
}
