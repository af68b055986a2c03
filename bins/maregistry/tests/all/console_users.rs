//! The console's users page (`/ui/users`, docs/spec.md §9.4) in a real browser, against a
//! node with `--auth-enabled`: its login form refuses a wrong password and logs the admin
//! in; the admin adds a user, binds a role and grants a permission, each seen by the
//! server (the user logs in and writes there), then revokes it (the write is refused), and
//! logs out. Saves a screenshot as `target/tmp/console-users.png`.

use std::time::Duration;

use fantoccini::Locator;
use maregistry::Config;
use test_support::{eventually, free_listener, Client, Node, LIMIT};

use crate::auth::{login, token, with_auth, ADMIN_PASSWORD};
use crate::console::{artifact, click, fill, open_browser, start_driver, until_says, until_shown};

/// Whether `user` (with `password`) may register in namespace dev now.
async fn writes_dev(c: &Client, node: &Node, user: &str, password: &str) -> u16 {
    let token = token(c, &node.url, user, password).await;
    let instance = r#"{"scheme":"http","host":"10.0.0.1","port":80}"#;
    c.raw(
        "POST",
        &node.at(&format!("/reg?service=dev/svc&accessToken={token}")),
        instance,
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_page_logs_in_and_manages_users_roles_and_permissions() {
    let _machine = test_support::timing_a_browser().await;
    let node = Node::start_on(free_listener(), with_auth(Config::default(), Duration::from_secs(600)));
    let c = Client::new();
    eventually("the first admin logs in", LIMIT, || async {
        login(&c, &node.url, "nacos", ADMIN_PASSWORD).await.0 == 200
    })
    .await;

    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("a browser profile dir");
    let browser = open_browser(&driver, profile.path()).await;
    browser.goto(&node.at("/ui")).await.expect("the console loads");
    click(&browser, Locator::Css(r#"a.page[href="/ui/users"]"#)).await;

    // Logged out, the page asks for a login; a wrong password is refused.
    fill(&browser, "username", "nacos").await;
    fill(&browser, "password", "wrong").await;
    click(&browser, Locator::Id("login-button")).await;
    until_says(&browser, "login-line", "the users page", "login failed").await;
    fill(&browser, "password", ADMIN_PASSWORD).await;
    click(&browser, Locator::Id("login-button")).await;
    until_shown(&browser, "the admin", "#users tbody tr.user", |rows| {
        rows.iter().any(|row| row[0] == "nacos")
    })
    .await;
    until_says(&browser, "who", "the users page", "signed in as nacos").await;

    // A user, a role, a permission: each on the server.
    fill(&browser, "new-user", "alice").await;
    fill(&browser, "new-password", "alice-pass").await;
    click(&browser, Locator::Css("#add-user button")).await;
    until_shown(&browser, "alice", "#users tbody tr.user", |rows| {
        rows.iter().any(|r| r[0] == "alice")
    })
    .await;
    fill(&browser, "role-name", "team").await;
    fill(&browser, "role-user", "alice").await;
    click(&browser, Locator::Css("#add-role button")).await;
    until_shown(&browser, "alice's role", "#roles tbody tr.role", |rows| {
        rows.iter().any(|r| r[0] == "team" && r[1] == "alice")
    })
    .await;
    assert_eq!(writes_dev(&c, &node, "alice", "alice-pass").await, 403, "no grant yet");
    fill(&browser, "permission-role", "team").await;
    fill(&browser, "permission-resource", "dev:*:*").await;
    click(&browser, Locator::Css("#add-permission button")).await;
    until_shown(&browser, "the grant", "#permissions tbody tr.permission", |rows| {
        rows.iter().any(|r| r[..3] == ["team", "dev:*:*", "r"])
    })
    .await;
    assert_eq!(
        writes_dev(&c, &node, "alice", "alice-pass").await,
        403,
        "r does not write"
    );
    let select = browser
        .find(Locator::Id("permission-action"))
        .await
        .expect("the action");
    select.select_by_value("rw").await.expect("rw chosen");
    fill(&browser, "permission-resource", "dev:*:*").await;
    fill(&browser, "permission-role", "team").await;
    click(&browser, Locator::Css("#add-permission button")).await;
    until_shown(&browser, "the rw grant", "#permissions tbody tr.permission", |rows| {
        rows.iter().any(|r| r[..3] == ["team", "dev:*:*", "rw"])
    })
    .await;
    assert_eq!(writes_dev(&c, &node, "alice", "alice-pass").await, 200);
    let screenshot = browser.screenshot().await.expect("a screenshot");
    std::fs::write(artifact("console-users.png"), screenshot).expect("the screenshot saved");

    // Revoked after a confirmation: refused again.
    let revoke = r#"#permissions tbody tr.permission:last-child button"#;
    click(&browser, Locator::Css(revoke)).await;
    browser.accept_alert().await.expect("the confirmation accepted");
    until_shown(&browser, "one grant left", "#permissions tbody tr.permission", |rows| {
        rows.len() == 1
    })
    .await;
    assert_eq!(writes_dev(&c, &node, "alice", "alice-pass").await, 403);

    click(&browser, Locator::Id("logout")).await;
    until_shown(&browser, "the login form again", "#admin:not([hidden]) tr", |rows| {
        rows.is_empty()
    })
    .await;
    browser.close().await.expect("the browser closed");
    node.stop().await;
}
