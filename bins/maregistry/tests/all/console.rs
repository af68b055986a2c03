//! The web console (`/ui`) in a real browser: headless Chromium driven through its
//! WebDriver (Debian's `chromium` and `chromium-driver`, installed by `scripts/test-deps.sh`),
//! against a real node. Saves screenshots of the console as test artifacts in
//! `target/tmp/` (`console.png`, `console-phone.png`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use maregistry::Config;
use serde_json::{json, Value};
use test_support::{deps, eventually, free_listener, Client, Node};

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the page may take to show a change: it waits on blocking queries, so this is
/// only reached when it is broken.
pub(crate) const SHOWN: Duration = Duration::from_secs(20);

/// A chromedriver on a free port, killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_driver() -> Driver {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let child = Command::new(deps::chromedriver())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let status = format!("{}/status", driver.url);
    let client = Client::new();
    eventually("chromedriver answers /status", SHOWN, || {
        let status = status.clone();
        let client = &client;
        async move {
            client
                .try_raw("GET", &status, "")
                .await
                .is_ok_and(|answer| answer.status == 200)
        }
    })
    .await;
    driver
}

pub(crate) async fn open_browser(driver: &Driver, profile: &std::path::Path) -> Browser {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,860",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The texts of the cells of the rows `selector` finds.
pub(crate) async fn rows(browser: &Browser, selector: &str) -> Vec<Vec<String>> {
    let script = format!(
        "return [...document.querySelectorAll({selector:?})].map(r => [...r.cells].map(c => c.textContent.trim()));"
    );
    match browser.execute(&script, vec![]).await {
        Ok(Value::Array(rows)) => rows
            .into_iter()
            .map(|row| {
                row.as_array()
                    .map(|cells| cells.iter().map(|c| c.as_str().unwrap_or("").to_owned()).collect())
                    .unwrap_or_default()
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Waits until the page shows what `check` looks for in the rows `selector` finds.
pub(crate) async fn until_shown(browser: &Browser, what: &str, selector: &str, check: impl Fn(&[Vec<String>]) -> bool) {
    let deadline = tokio::time::Instant::now() + SHOWN;
    loop {
        let found = rows(browser, selector).await;
        if check(&found) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the console did not show {what} within {SHOWN:?}; rows of {selector}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the element `locator` finds.
pub(crate) async fn click(browser: &Browser, locator: Locator<'_>) {
    browser
        .find(locator)
        .await
        .unwrap_or_else(|e| panic!("no {locator:?} to click: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
}

/// The text of the element `locator` finds.
pub(crate) async fn text(browser: &Browser, locator: Locator<'_>) -> String {
    let element = browser
        .find(locator)
        .await
        .unwrap_or_else(|e| panic!("no {locator:?}: {e}"));
    element.text().await.expect("its text")
}

/// Replaces what the field `id` holds with `value`.
pub(crate) async fn fill(browser: &Browser, id: &str, value: &str) {
    let field = browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"));
    field.clear().await.expect("cleared");
    field.send_keys(value).await.expect("typed");
}

/// Waits until the element `id` says `wanted` (`what` names the wait in a failure).
pub(crate) async fn until_says(browser: &Browser, id: &str, what: &str, wanted: &str) {
    let deadline = tokio::time::Instant::now() + SHOWN;
    loop {
        let said = text(browser, Locator::Id(id)).await;
        if said.contains(wanted) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: #{id} says {said:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn instance(host: &str, port: u16, zone: &str) -> String {
    format!(r#"{{"scheme":"http","host":"{host}","port":{port},"context":"orders","parameters":{{"zone":"{zone}"}}}}"#)
}

pub(crate) fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_registry_live_and_unregisters() {
    let _machine = test_support::timing_a_browser().await;
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    for (port, zone) in [(8080, "eu-1"), (8081, "eu-2")] {
        c.ok(
            "POST",
            &node.at("/reg?service=com.demo.Orders"),
            &instance("10.0.0.1", port, zone),
        )
        .await;
    }
    c.ok(
        "POST",
        &node.at("/reg?service=com.demo.Payments"),
        &instance("10.0.1.1", 9090, "us-1"),
    )
    .await;

    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("a browser profile dir");
    let browser = open_browser(&driver, profile.path()).await;
    browser.goto(&node.at("/ui")).await.expect("the console loads");
    assert_eq!(browser.title().await.expect("a title"), "maregistry console");

    // The services with their instance counts and versions.
    until_shown(&browser, "both services", "#services tbody tr.service", |rows| {
        rows == [
            vec!["com.demo.Orders".to_owned(), "2".to_owned(), "2".to_owned()],
            vec!["com.demo.Payments".to_owned(), "1".to_owned(), "3".to_owned()],
        ]
    })
    .await;
    // The cluster: this node, up, leading.
    until_shown(&browser, "this node as leader", "#cluster tbody tr", |rows| {
        rows.len() == 1 && rows[0][1] == "up" && rows[0][2] == "leader"
    })
    .await;

    // A service's instances with their parameters and seconds since renewal.
    click(&browser, Locator::Css(r#"tr[data-service="com.demo.Orders"]"#)).await;
    until_shown(
        &browser,
        "the two Orders instances",
        "#instances tbody tr[data-instance]",
        |rows| {
            rows.len() == 2
                && rows[0][0] == "http://10.0.0.1:8080/orders"
                && rows[0][1] == "zone=eu-1"
                && rows[0][2].ends_with(" s")
                && rows[1][0] == "http://10.0.0.1:8081/orders"
        },
    )
    .await;

    // A registration shows up without a reload: in the list and in the counts.
    c.ok(
        "POST",
        &node.at("/reg?service=com.demo.Orders"),
        &instance("10.0.0.2", 8080, "eu-3"),
    )
    .await;
    until_shown(
        &browser,
        "the new instance",
        "#instances tbody tr[data-instance]",
        |rows| rows.len() == 3 && rows[2][0] == "http://10.0.0.2:8080/orders" && rows[2][1] == "zone=eu-3",
    )
    .await;
    until_shown(&browser, "the new count", "#services tbody tr.service", |rows| {
        rows.first().is_some_and(|r| r[1] == "3" && r[2] == "4")
    })
    .await;
    c.ok(
        "POST",
        &node.at("/reg?service=com.demo.Stock"),
        &instance("10.0.2.1", 7000, "eu-1"),
    )
    .await;
    until_shown(&browser, "the new service", "#services tbody tr.service", |rows| {
        rows.len() == 3
    })
    .await;

    // The filter box.
    browser
        .find(Locator::Id("filter"))
        .await
        .expect("the filter box")
        .send_keys("pay")
        .await
        .expect("typing");
    until_shown(&browser, "only Payments", "#services tbody tr.service", |rows| {
        rows.len() == 1 && rows[0][0] == "com.demo.Payments"
    })
    .await;
    browser
        .find(Locator::Id("filter"))
        .await
        .expect("the filter box")
        .clear()
        .await
        .expect("clearing");
    // `clear` fires no input event: type a space and delete it.
    browser
        .execute(
            "const f = document.getElementById('filter'); f.dispatchEvent(new Event('input'));",
            vec![],
        )
        .await
        .expect("an input event");
    until_shown(&browser, "all services again", "#services tbody tr.service", |rows| {
        rows.len() == 3
    })
    .await;

    // Unregister through the page: a confirmation first; cancelling changes nothing.
    let unregister = r#"tr[data-instance="http://10.0.0.1:8081/orders"] button.unreg"#;
    click(&browser, Locator::Css(unregister)).await;
    let dialog_open = "return document.getElementById('confirm').open;";
    assert_eq!(browser.execute(dialog_open, vec![]).await.expect("script"), json!(true));
    let question = text(&browser, Locator::Id("confirm-text")).await;
    assert!(question.contains("http://10.0.0.1:8081/orders"), "{question}");
    click(&browser, Locator::Id("confirm-no")).await;
    assert_eq!(
        browser.execute(dialog_open, vec![]).await.expect("script"),
        json!(false)
    );
    assert_eq!(
        c.ok("GET", &node.at("/findAll?service=com.demo.Orders"), "")
            .await
            .as_array()
            .map(Vec::len),
        Some(3),
        "cancel unregisters nothing"
    );
    click(&browser, Locator::Css(unregister)).await;
    click(&browser, Locator::Id("confirm-yes")).await;
    until_shown(
        &browser,
        "the instance gone",
        "#instances tbody tr[data-instance]",
        |rows| rows.len() == 2 && rows.iter().all(|r| r[0] != "http://10.0.0.1:8081/orders"),
    )
    .await;
    let left = c.ok("GET", &node.at("/findAll?service=com.demo.Orders"), "").await;
    let ports: Vec<u64> = left
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|i| i["port"].as_u64())
        .collect();
    assert_eq!(ports, vec![8080, 8080], "the node no longer holds 10.0.0.1:8081");

    let png = browser.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(artifact("console.png"), &png).expect("saving the screenshot");

    // A phone: nothing wider than the screen.
    browser.set_window_size(390, 844).await.expect("a phone-sized window");
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .expect("script");
    assert!(
        overflow.as_i64().is_some_and(|px| px <= 0),
        "the page is wider than a phone's screen by {overflow} px"
    );
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(artifact("console-phone.png"), &png).expect("saving the screenshot");

    browser.close().await.expect("the session closes");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_raft_cluster_with_terms_and_applied_indexes() {
    let _machine = test_support::timing_a_browser().await;
    let data = tempfile::tempdir().expect("a data dir");
    let nodes = test_support::start_raft_grpc(data.path(), 3, |config| config);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let leader = test_support::agreed_leader(&c, &urls).await;
    c.ok(
        "POST",
        &format!("{leader}/reg?service=com.demo.Orders"),
        &instance("10.0.0.1", 8080, "eu-1"),
    )
    .await;
    let follower = nodes.iter().find(|n| n.url != leader).expect("a follower");
    // A Nacos gRPC client holds a connection to the follower.
    let mut grpc = crate::nacos2::Raw::connect(follower.addr.port() + 1000).await;
    grpc.setup().await;

    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("a browser profile dir");
    let browser = open_browser(&driver, profile.path()).await;
    browser.goto(&follower.at("/ui")).await.expect("the console loads");
    // Every node, one marked leader (on a loaded machine, not always the first: an
    // election may move it), each with a term and an applied index.
    until_shown(&browser, "three raft nodes", "#cluster tbody tr", |rows| {
        rows.len() == 3
            && rows.iter().filter(|r| r[2] == "leader").count() == 1
            && rows
                .iter()
                .all(|r| r[1] == "up" && r[4].parse::<u64>().is_ok_and(|t| t >= 1))
            && rows.iter().all(|r| r[5].parse::<u64>().is_ok_and(|a| a >= 2))
    })
    .await;
    // Each node's gRPC connections: the follower's one, as its probe says too.
    until_shown(
        &browser,
        "the follower's gRPC connection",
        "#cluster tbody tr",
        |rows| {
            rows.iter()
                .all(|r| r[6] == if r[0].starts_with(&follower.url) { "1" } else { "0" })
        },
    )
    .await;
    assert_eq!(text(&browser, Locator::Id("mode")).await, "raft");
    until_shown(
        &browser,
        "the service the follower applied",
        "#services tbody tr.service",
        |rows| rows == [vec!["com.demo.Orders".to_owned(), "1".to_owned(), "1".to_owned()]],
    )
    .await;
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(artifact("console-raft.png"), &png).expect("saving the screenshot");
    browser.close().await.expect("the session closes");
    for node in nodes {
        node.stop().await;
    }
}
