//! The real Nacos clients configured with a username and password against a node with
//! `--auth-enabled` (docs/spec.md §9): `nacos-sdk-python` 3.2.0 and the Rust `nacos-sdk`
//! 0.8.3 (its `auth-by-http` login), naming and config over gRPC. A writer of namespace
//! `dev` registers and publishes; a reader of `dev` lists and reads there and is refused
//! writes there and everything in `prod`; a wrong password is refused.

use std::time::Duration;

use maregistry::Config;
use nacos_sdk::api::config::ConfigServiceBuilder;
use nacos_sdk::api::naming::{NamingServiceBuilder, ServiceInstance};
use nacos_sdk::api::props::ClientProps;
use test_support::{eventually, start_grpc, Client, Node, Scenario, LIMIT};

use crate::auth::{grant, login, token, with_auth, ADMIN_PASSWORD};
use crate::nacos2::server;

/// A node with auth on, its admin made, and "writer" (rw on dev) and "reader" (r on dev).
async fn node_with_users(c: &Client) -> Node {
    let node = start_grpc(with_auth(Config::default(), Duration::from_secs(600)));
    eventually("the first admin logs in", LIMIT, || async {
        login(c, &node.url, "nacos", ADMIN_PASSWORD).await.0 == 200
    })
    .await;
    let admin = token(c, &node.url, "nacos", ADMIN_PASSWORD).await;
    grant(c, &node.url, &admin, "writer", "dev-writers", ("dev:*:*", "rw")).await;
    grant(c, &node.url, &admin, "reader", "dev-readers", ("dev:*:*", "r")).await;
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacos_sdk_python_3_logs_in_and_is_held_to_its_permissions() {
    let c = Client::new();
    let node = node_with_users(&c).await;
    Scenario::python_nacos3("nacos3_auth.py", &[server(&node)])
        .expect("ok")
        .await
        .finish()
        .await;
    node.stop().await;
}

fn props(node: &Node, namespace: &str, user: &str, password: &str, n: usize) -> ClientProps {
    let cache = std::env::temp_dir().join(format!("nacos-rs-auth-{}-{user}-{n}", std::process::id()));
    ClientProps::new()
        .server_addr(server(node))
        .namespace(namespace)
        .auth_username(user)
        .auth_password(password)
        .naming_load_cache_at_start(false)
        .config_load_cache_at_start(false)
        .cache_dir(cache.display().to_string())
}

fn instance(ip: &str) -> ServiceInstance {
    ServiceInstance {
        ip: ip.to_owned(),
        port: 9090,
        ..ServiceInstance::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_nacos_sdk_logs_in_and_is_held_to_its_permissions() {
    let c = Client::new();
    let node = node_with_users(&c).await;
    let naming = |namespace: &str, user: &str, password: &str, n: usize| {
        NamingServiceBuilder::new(props(&node, namespace, user, password, n))
            .enable_auth_plugin_http()
            .build()
    };
    let configs = |namespace: &str, user: &str, password: &str, n: usize| {
        ConfigServiceBuilder::new(props(&node, namespace, user, password, n))
            .enable_auth_plugin_http()
            .build()
    };
    let (service, data_id, group) = (
        "rs-auth".to_owned(),
        "rs-auth.toml".to_owned(),
        "DEFAULT_GROUP".to_owned(),
    );
    let writer = naming("dev", "writer", "writer-pass", 0).await.expect("a client");
    let writer_configs = configs("dev", "writer", "writer-pass", 1).await.expect("a client");
    writer
        .register_instance(service.clone(), None, instance("10.0.8.1"))
        .await
        .expect("the writer registers in dev");
    assert!(writer_configs
        .publish_config(data_id.clone(), group.clone(), "a = 1".to_owned(), None)
        .await
        .expect("the writer publishes in dev"));

    let reader = naming("dev", "reader", "reader-pass", 2).await.expect("a client");
    let reader_configs = configs("dev", "reader", "reader-pass", 3).await.expect("a client");
    eventually("the reader lists the writer's instance", LIMIT, || async {
        reader
            .get_all_instances(service.clone(), None, Vec::new(), false)
            .await
            .is_ok_and(|found| found.iter().map(|i| i.ip.as_str()).eq(["10.0.8.1"]))
    })
    .await;
    let read = reader_configs
        .get_config(data_id.clone(), group.clone())
        .await
        .expect("read");
    assert_eq!(read.content(), "a = 1");
    let publish = reader_configs
        .publish_config(data_id.clone(), group.clone(), "b".to_owned(), None)
        .await;
    assert!(!matches!(publish, Ok(true)), "a publish by the reader: {publish:?}");
    let register = reader
        .register_instance(service.clone(), None, instance("10.0.8.2"))
        .await;
    assert!(register.is_err(), "a registration by the reader: {register:?}");

    let elsewhere = naming("prod", "reader", "reader-pass", 4).await.expect("a client");
    let elsewhere_configs = configs("prod", "reader", "reader-pass", 5).await.expect("a client");
    let listed = elsewhere
        .get_all_instances(service.clone(), None, Vec::new(), false)
        .await;
    assert!(listed.is_err(), "a list by the reader in prod: {listed:?}");
    let read = elsewhere_configs.get_config(data_id.clone(), group.clone()).await;
    assert!(read.is_err(), "a read by the reader in prod: {read:?}");

    let wrong = configs("dev", "reader", "not-the-password", 6).await.expect("a client");
    let read = wrong.get_config(data_id.clone(), group.clone()).await;
    assert!(read.is_err(), "a read with a wrong password: {read:?}");
    node.stop().await;
}

/// The instances of `service` through the seed API, read as the admin.
async fn registered(c: &Client, node: &Node, service: &str, admin: &str) -> Vec<String> {
    let (status, list) = c
        .get(&node.at(&format!("/findAll?service={service}&accessToken={admin}")))
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .map(|list| {
            list.iter()
                .filter_map(|i| i["host"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_registers_with_credentials_in_its_url_and_not_without() {
    let c = Client::new();
    let node = node_with_users(&c).await;
    let admin = token(&c, &node.url, "nacos", ADMIN_PASSWORD).await;
    let address = node.url.trim_start_matches("http://");
    grant(&c, &node.url, &admin, "eureka", "eureka-apps", ("public:*:*", "rw")).await;

    let mut without = Scenario::python(
        "eureka_auth.py",
        &[format!("http://{address}/eureka"), "anon-app".to_owned()],
    )
    .expect("REFUSED")
    .await;
    assert!(registered(&c, &node, "ANON-APP", &admin).await.is_empty());
    without.go_on();
    without.finish().await;

    let mut with = Scenario::python(
        "eureka_auth.py",
        &[
            format!("http://eureka:eureka-pass@{address}/eureka"),
            "auth-app".to_owned(),
        ],
    )
    .expect("UP")
    .await;
    assert_eq!(registered(&c, &node, "AUTH-APP", &admin).await, vec!["10.0.7.1"]);
    with.go_on();
    with.finish().await;
    let metrics = String::from_utf8_lossy(&c.raw("GET", &node.at("/metrics"), "").await.body).into_owned();
    assert!(
        metrics.contains(r#"maregistry_access_denials_total{protocol="eureka",reason="no_identity"}"#),
        "{metrics}"
    );
    node.stop().await;
}
