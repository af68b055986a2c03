//! What an adversarial probe found (issue 32), each held here: gRPC connections that never
//! set up or go idle, a connection flood under a small open-file limit, gRPC clean-up
//! that stays linear, gRPC requests held to the HTTP limits, cross-site writes, the first
//! push to a subscriber, and lenient parsing refused.

use std::time::{Duration, Instant};

use maregistry::Config;
use serde_json::{json, Value};
use test_support::{eventually, start_grpc, Client, Node, LIMIT};

use crate::nacos2::{grpc_port, Raw};

/// How many instances the service named `service` holds, per `/services`.
async fn instances_of(c: &Client, node: &Node, service: &str) -> u64 {
    let services = c.ok("GET", &node.at("/services"), "").await;
    services["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == service))
        .and_then(|s| s["instances"].as_u64())
        .unwrap_or(0)
}

/// A `BatchInstanceRequest` publishing `count` instances from `10.<net>.x.y` in `service`.
fn batch_of(service: &str, net: u8, count: u16) -> Value {
    let instances: Vec<Value> = (0..count)
        .map(|i| {
            json!({"ip": format!("10.{net}.{}.{}", i / 250, i % 250 + 1), "port": 8080, "weight": 1.0,
                "healthy": true, "enabled": true, "ephemeral": true, "metadata": {"zone": "a"}})
        })
        .collect();
    json!({"namespace": "public", "groupName": "DEFAULT_GROUP", "serviceName": service,
        "type": "batchRegisterInstance", "instances": instances})
}

/// Two connections publish 16,000 instances each in one service; when one goes, its
/// 16,000 are withdrawn within a second (each looked up in one map, not in the other
/// connection's list: this took 10 s before), and `/health` answers within half a second
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_owning_16000_instances_is_cleaned_up_within_a_second() {
    const EACH: u16 = 16_000;
    let node = start_grpc(Config {
        max_body: 256 * 1024,
        max_batch: usize::from(EACH),
        ..Config::default()
    });
    let c = Client::new();
    let mut leaving = Raw::connect(grpc_port(&node)).await;
    leaving.setup().await;
    let mut staying = Raw::connect(grpc_port(&node)).await;
    staying.setup().await;
    for (raw, net) in [(&mut leaving, 1), (&mut staying, 2)] {
        eventually("the connection is set up", LIMIT, || raw.is_registered()).await;
        let (kind, body) = raw.call("BatchInstanceRequest", batch_of("crowded", net, EACH)).await;
        assert_eq!(kind, "BatchInstanceResponse", "{body}");
    }
    assert_eq!(instances_of(&c, &node, "crowded").await, 2 * u64::from(EACH));

    let health = node.at("/health");
    let probe = tokio::spawn(async move {
        let c = Client::new();
        let mut slowest = Duration::ZERO;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let asked = Instant::now();
            let answer = c.raw("GET", &health, "").await;
            assert_eq!(answer.status, 200);
            slowest = slowest.max(asked.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slowest
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dropped = Instant::now();
    drop(leaving);
    eventually("the leaving connection's instances are withdrawn", LIMIT, || async {
        instances_of(&c, &node, "crowded").await == u64::from(EACH)
    })
    .await;
    let took = dropped.elapsed();
    let slowest = probe.await.expect("the probe ran");
    assert!(took <= Duration::from_secs(1), "the clean-up took {took:?}");
    assert!(
        slowest <= Duration::from_millis(500),
        "/health took {slowest:?} during the clean-up"
    );
    assert_eq!(
        instances_of(&c, &node, "crowded").await,
        u64::from(EACH),
        "the other connection's stay"
    );
    drop(staying);
    node.stop().await;
}
