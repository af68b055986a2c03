//! What runs beside the gRPC calls: pushes of changed services to their subscribers,
//! liveness of idle connections, the renewal of what connections publish, and the end of a
//! connection (its instances unregistered).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::MissedTickBehavior;

use super::connections::{Connection, Liveness};
use super::service_info::{push, service_info};
use super::wire::server_request;
use crate::Node;
use registry_api::Op;

/// Pushes every change of a subscribed service to its subscribers, whatever made it: one
/// `ServiceInfo` per service and cluster list, one payload shared by all its subscribers,
/// put on each stream without waiting (a stream that is full loses this push and is
/// counted; the next change or the client's own query brings it up to date). Runs until the
/// runtime drops it.
pub(crate) async fn push_changes(app: Arc<Node>) {
    let nacos2 = app.grpc();
    loop {
        let services = nacos2.hub.changed().await;
        for service in services {
            let subscribers = nacos2.connections.subscribers_of(&service);
            if subscribers.is_empty() {
                continue;
            }
            let time = nacos2.ref_times.next(&service, app.now_ms());
            // One encoding per distinct way of asking (clusters, as the client's cache key).
            let mut encoded: HashMap<(String, String), Arc<super::proto::Payload>> = HashMap::new();
            let (mut pushed, mut failed) = (0, 0);
            for (connection, subscription) in subscribers {
                let key = (subscription.namespace.clone(), subscription.clusters.clone());
                let payload = encoded.entry(key).or_insert_with(|| {
                    let info = service_info(
                        app.registry(),
                        app.cache(),
                        &subscription.service,
                        &subscription.clusters,
                        false,
                        time,
                    );
                    Arc::new(push(
                        nacos2.next_request_id(),
                        &subscription.namespace,
                        &subscription.service,
                        &info,
                    ))
                });
                match connection.outbound() {
                    Some(outbound) if outbound.try_send(payload.clone()).is_ok() => pushed += 1,
                    _ => failed += 1,
                }
            }
            if failed > 0 {
                tracing::debug!(service, failed, "pushes that found a full or closed stream");
            }
            nacos2.hub.count(pushed, failed);
        }
    }
}

/// Every second: a connection silent for the detection time is sent a
/// `ClientDetectionRequest`; one that does not answer in time is ended.
pub(crate) async fn check_liveness(app: Arc<Node>) {
    let settings = app.grpc().settings;
    let idle = millis(settings.detect_idle);
    let timeout = millis(settings.detect_timeout);
    let tick = (settings.detect_timeout / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = app.now_ms();
        for connection in app.grpc().connections.all() {
            let next_id = || format!("detect-{}", app.grpc().next_request_id());
            match connection.liveness(now, idle, timeout, next_id) {
                Liveness::Fine => {}
                Liveness::Detect(id) => {
                    let request = server_request("ClientDetectionRequest", "internal", &id, Map::new());
                    let sent = connection
                        .outbound()
                        .is_some_and(|outbound| outbound.try_send(Arc::new(request)).is_ok());
                    if !sent {
                        end(&app, connection.info.id, "its stream is closed or full").await;
                    }
                }
                Liveness::Dead => end(&app, connection.info.id, "it did not answer a ClientDetectionRequest").await,
            }
        }
    }
}

/// Every third of the lease: renews every instance a connection of this node publishes,
/// as heartbeats do (one the registry lost is registered again).
pub(crate) async fn renew_published(app: Arc<Node>) {
    let every = (app.grpc().settings.lease / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let ops: Vec<Op> = app
            .grpc()
            .connections
            .all()
            .iter()
            .flat_map(|connection| connection.all_published())
            .map(|(service, instance)| Op::Renew(service, instance))
            .collect();
        if ops.is_empty() {
            continue;
        }
        let instances = ops.len();
        if let Err(e) = app.write_all(ops).await {
            tracing::warn!(error = %e, instances, "renewing the gRPC clients' instances failed; trying again");
        }
    }
}

/// Ends the connection `id` (its stream or transport closed, or it went silent): it is
/// forgotten, and the instances it published are unregistered (unless another connection
/// of this node publishes them too, or the node is shutting down: then the leases keep
/// them while the clients register them again elsewhere).
pub(crate) async fn end(app: &Node, id: u64, why: &str) {
    let connections = &app.grpc().connections;
    app.config_listeners().forget(id);
    let Some(connection) = connections.close(id) else {
        return;
    };
    tracing::info!(
        connection = %connection.info.label,
        client = %connection.client,
        why,
        "gRPC connection ended"
    );
    if connections.closing() {
        return;
    }
    unregister_published(app, &connection).await;
}

async fn unregister_published(app: &Node, connection: &Connection) {
    let ops: Vec<Op> = connection
        .all_published()
        .into_iter()
        // The connection, closed, is no longer counted among their publishers.
        .filter(|(service, instance)| app.grpc().connections.publishers_of(service, &instance.url()) == 0)
        .map(|(service, instance)| Op::Unreg(service, instance))
        .collect();
    if ops.is_empty() {
        return;
    }
    let instances = ops.len();
    if let Err(e) = app.write_all(ops).await {
        tracing::warn!(
            error = %e,
            instances,
            "could not unregister the instances of an ended gRPC connection; their lease will expire them"
        );
    }
}

/// Asks every connection to reconnect (`ConnectResetRequest`): the node is going away.
pub(crate) fn reset_all(app: &Node) {
    for connection in app.grpc().connections.all() {
        let id = app.grpc().next_request_id().to_string();
        let mut fields = Map::new();
        fields.insert("connectionId".to_owned(), Value::from(&*connection.info.label));
        let request = server_request("ConnectResetRequest", "internal", &id, fields);
        if let Some(outbound) = connection.outbound() {
            let _ = outbound.try_send(Arc::new(request));
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
