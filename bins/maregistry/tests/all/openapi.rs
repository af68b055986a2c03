//! `docs/openapi.yaml` is kept true: it names every endpoint the node serves, and
//! schemathesis (pinned in `tests/deps/requirements.lock`, installed by
//! `scripts/test-deps.sh`) runs generated requests from it
//! against a live node and must find no 5xx, no dropped connection and no answer that
//! breaks the schema.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use maregistry::{Config, GrpcSettings, Mode};
use registry_api::Facade;
use registry_consul::{Consul, ConsulSettings};
use registry_eureka::Eureka;
use registry_nacos::Nacos;
use test_support::{deps, free_listener, instance, Client, Node};

fn spec() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.yaml")
}

/// The paths the spec documents: its `  /path:` lines.
fn documented_paths() -> Vec<String> {
    let text = std::fs::read_to_string(spec()).expect("docs/openapi.yaml");
    text.lines()
        .filter_map(|line| line.strip_prefix("  /"))
        .filter_map(|rest| rest.strip_suffix(':'))
        .map(|path| format!("/{path}"))
        .collect()
}

#[tokio::test]
async fn the_spec_names_every_endpoint_and_only_those() {
    let documented = documented_paths();
    // The shared API, each facade's routes, and each cluster mode's own routes.
    let modes = registry_cluster::snapshot::ROUTES.iter().chain(registry_raft::ROUTES);
    let consul = Consul::new(ConsulSettings::default());
    let facades: [&dyn Facade; 3] = [&Nacos::new(GrpcSettings::default()), &Eureka::default(), &consul];
    let endpoints: Vec<&str> = registry_api::ENDPOINTS
        .iter()
        .copied()
        .chain(facades.iter().flat_map(|f| f.routes().iter().map(|route| route.label)))
        .chain(modes.map(|route| route.path))
        .collect();
    for endpoint in endpoints.iter().filter(|e| **e != "other") {
        // A family of paths (`/nacos/v1/ns`) is counted under its prefix.
        assert!(
            documented
                .iter()
                .any(|p| p == endpoint || p.starts_with(&format!("{endpoint}/"))),
            "docs/openapi.yaml does not describe {endpoint}"
        );
    }
    // A node of each mode: a documented path is served by one of them.
    let data = tempfile::tempdir().expect("a data dir");
    let nodes = [
        Node::start_on(free_listener(), Config::default()),
        Node::start_on(
            free_listener(),
            Config {
                mode: Mode::raft(data.path().join("raft")),
                ..Config::default()
            },
        ),
    ];
    let c = Client::new();
    for path in &documented {
        // A path parameter gets a value; a served path may answer 404 for what it does
        // not find, never the router's "no endpoint".
        let path = path
            .replace("{app}", "x")
            .replace("{id}", "x")
            .replace("{state}", "any");
        let mut served = false;
        for node in &nodes {
            let answer = c.raw("GET", &node.at(&path), "").await;
            let body = String::from_utf8_lossy(&answer.body);
            served |= !(answer.status == 404 && body.contains("no endpoint at this path"));
        }
        assert!(served, "{path} is documented but not served");
    }
    for node in nodes {
        node.stop().await;
    }
}

/// A command that runs schemathesis from the tests' venv (`tests/deps/requirements.lock`).
fn schemathesis() -> Command {
    let mut command = Command::new(deps::python());
    command.args(["-m", "schemathesis.cli"]);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_spec() {
    let mut command = schemathesis();
    // Blocking queries wait at most 100 ms here, so generated `since` values cost little.
    let node = Node::start_on(
        free_listener(),
        Config {
            max_wait: Duration::from_millis(100),
            ..Config::default()
        },
    );
    let c = Client::new();
    for port in [8080, 8081] {
        c.ok(
            "POST",
            &node.at("/reg?service=com.demo.Orders"),
            &instance("10.0.0.1", port),
        )
        .await;
    }
    let report = tempfile::tempdir().expect("a dir for the report");
    command
        .current_dir(report.path())
        .args(["--no-color", "run"])
        .arg(spec())
        .args(["--url", &node.url])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "25", "--workers", "1"])
        .env("SCHEMATHESIS_TELEMETRY", "false");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the run")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    assert!(
        stdout.contains(" passed"),
        "schemathesis ran no test case:\n{stdout}\n{stderr}"
    );
    // The node is still well after it.
    let health = c.ok("GET", &node.at("/health"), "").await;
    assert_eq!(health["status"], "up");
    node.stop().await;
}
