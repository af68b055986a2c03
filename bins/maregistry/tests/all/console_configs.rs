//! The console's configs page (`/ui/configs`) in a real browser, against a real node:
//! reached from `/ui`, it lists and filters configs, creates and edits them (showing the
//! md5; an edit over a config changed elsewhere meanwhile is refused), shows history and
//! rolls back, deletes after a confirmation, exports and imports. Saves a screenshot as
//! `target/tmp/console-configs.png`.

use fantoccini::Locator;
use maregistry::Config;
use registry_core::md5_hex;
use test_support::{eventually, free_listener, Client, Node};

use crate::console::{artifact, click, fill, open_browser, start_driver, text, until_says, until_shown, SHOWN};
use crate::nacos_config::{get, header, publish, zip_of};

/// The server's copy of `data_id` in `group`: its status and content.
async fn on_server(c: &Client, node: &Node, data_id: &str, group: &str) -> (u16, String) {
    let answer = get(c, &node.url, &[("dataId", data_id), ("group", group)]).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configs_page_edits_rolls_back_deletes_exports_and_imports() {
    let _machine = test_support::timing_a_browser().await;
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    publish(
        &c,
        &node.url,
        &[("dataId", "seed.yaml"), ("content", "a: 1"), ("type", "yaml")],
        &[],
    )
    .await;

    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("a browser profile dir");
    let browser = open_browser(&driver, profile.path()).await;
    browser.goto(&node.at("/ui")).await.expect("the console loads");
    click(&browser, Locator::Css(r#"a.page[href="/ui/configs"]"#)).await;
    until_shown(&browser, "the published config", "#configs tbody tr.config", |rows| {
        rows == [vec![
            "seed.yaml".to_owned(),
            "DEFAULT_GROUP".to_owned(),
            "yaml".to_owned(),
            md5_hex("a: 1"),
        ]]
    })
    .await;

    // Create one, then edit it: the md5 shown is the server's.
    click(&browser, Locator::Id("new")).await;
    fill(&browser, "data-id", "web.yaml").await;
    fill(&browser, "group", "WEB").await;
    fill(&browser, "content", "port: 80").await;
    click(&browser, Locator::Id("save")).await;
    eventually("the new config on the server", SHOWN, || async {
        on_server(&c, &node, "web.yaml", "WEB").await == (200, "port: 80".to_owned())
    })
    .await;
    eventually("its md5 on the page", SHOWN, || async {
        text(&browser, Locator::Id("md5")).await == md5_hex("port: 80")
    })
    .await;
    fill(&browser, "content", "port: 81").await;
    click(&browser, Locator::Id("save")).await;
    until_shown(&browser, "two revisions", "#history tbody tr", |rows| {
        rows.len() == 2 && rows[0][1] == "U" && rows[1][1] == "I"
    })
    .await;
    assert_eq!(on_server(&c, &node, "web.yaml", "WEB").await.1, "port: 81");

    // Roll back to the first revision.
    click(&browser, Locator::Css("#history tbody tr:last-child button.rollback")).await;
    eventually("the rollback on the server", SHOWN, || async {
        on_server(&c, &node, "web.yaml", "WEB").await.1 == "port: 80"
    })
    .await;
    until_shown(&browser, "three revisions", "#history tbody tr", |rows| rows.len() == 3).await;

    // Changed elsewhere meanwhile: the page's edit is refused, nothing is overwritten.
    publish(
        &c,
        &node.url,
        &[("dataId", "web.yaml"), ("group", "WEB"), ("content", "port: 99")],
        &[],
    )
    .await;
    fill(&browser, "content", "port: 82").await;
    click(&browser, Locator::Id("save")).await;
    until_says(&browser, "status-line", "a stale edit", "publish refused: 409").await;
    assert_eq!(on_server(&c, &node, "web.yaml", "WEB").await.1, "port: 99");

    // The filter.
    fill(&browser, "data-id-filter", "web*").await;
    until_shown(&browser, "only web.yaml", "#configs tbody tr.config", |rows| {
        rows.len() == 1 && rows[0][0] == "web.yaml"
    })
    .await;
    let screenshot = browser.screenshot().await.expect("a screenshot");
    std::fs::write(artifact("console-configs.png"), screenshot).expect("the screenshot saved");

    // Export: the link is the v2 zip of the namespace.
    fill(&browser, "data-id-filter", "").await;
    let href = browser
        .find(Locator::Id("export"))
        .await
        .expect("the export link")
        .attr("href")
        .await
        .expect("an href")
        .expect("set");
    assert!(href.contains("exportV2=true"), "{href}");
    let zip = c.raw("GET", &node.at(&href), "").await;
    assert_eq!(header(&zip, "content-type"), "application/zip");

    // Delete, after the confirmation.
    let web = r#"tr[data-config="WEB/web.yaml"]"#;
    click(&browser, Locator::Css(web)).await;
    eventually("the config opened", SHOWN, || async {
        text(&browser, Locator::Id("md5")).await == md5_hex("port: 99")
    })
    .await;
    click(&browser, Locator::Id("delete")).await;
    click(&browser, Locator::Id("confirm-yes")).await;
    eventually("gone from the server", SHOWN, || async {
        on_server(&c, &node, "web.yaml", "WEB").await.0 == 404
    })
    .await;

    // Import a zip in the Java server's layout.
    let file = tempfile::Builder::new().suffix(".zip").tempfile().expect("a file");
    std::fs::write(file.path(), zip_of(&[("IMPORTED/i.properties", "i=1")])).expect("written");
    browser
        .find(Locator::Id("import-file"))
        .await
        .expect("the file input")
        .send_keys(&file.path().display().to_string())
        .await
        .expect("chosen");
    click(&browser, Locator::Id("import")).await;
    until_says(&browser, "status-line", "the import", "imported 1").await;
    assert_eq!(
        on_server(&c, &node, "i.properties", "IMPORTED").await,
        (200, "i=1".to_owned())
    );
    until_shown(
        &browser,
        "the imported config listed",
        "#configs tbody tr.config",
        |rows| rows.iter().any(|r| r[0] == "i.properties"),
    )
    .await;
    browser.close().await.expect("the browser closes");
    node.stop().await;
}
