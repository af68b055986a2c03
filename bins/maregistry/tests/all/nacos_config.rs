//! The Nacos config service over HTTP (docs/spec.md §8): the v1 endpoints with Nacos's
//! headers and codes, the listener long poll, history, the v2 open API, export and import
//! in the Java server's zip layouts, and bad input refused with nothing changed.

use std::io::{Cursor, Read, Write};
use std::time::Duration;

use maregistry::Config;
use registry_core::md5_hex;
use registry_http::HttpResponse;
use serde_json::Value;
use test_support::{Client, Node, LIMIT};

pub(crate) const CONFIGS: &str = "/nacos/v1/cs/configs";

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// `POST /nacos/v1/cs/configs` with `pairs` as its form and `headers`.
pub(crate) async fn publish(
    c: &Client,
    url: &str,
    pairs: &[(&str, &str)],
    headers: &[(&'static str, &str)],
) -> HttpResponse {
    let mut all = vec![FORM];
    all.extend_from_slice(headers);
    c.send("POST", &format!("{url}{CONFIGS}"), &form(pairs), &all).await
}

/// `GET /nacos/v1/cs/configs?…`.
pub(crate) async fn get(c: &Client, url: &str, pairs: &[(&str, &str)]) -> HttpResponse {
    c.send("GET", &format!("{url}{CONFIGS}?{}", form(pairs)), "", &[]).await
}

pub(crate) fn text(answer: &HttpResponse) -> String {
    String::from_utf8(answer.body.to_vec()).expect("UTF-8")
}

pub(crate) fn header<'a>(answer: &'a HttpResponse, name: &str) -> &'a str {
    answer.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn json(answer: &HttpResponse) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("JSON ({e}): {}", text(answer)))
}

/// The long poll of `records` (`dataId^Bgroup^Bmd5[^Btenant]^A` each) with `headers`.
pub(crate) async fn long_poll(c: &Client, url: &str, records: &str, headers: &[(&'static str, &str)]) -> HttpResponse {
    let mut all = vec![FORM];
    all.extend_from_slice(headers);
    let body = form(&[("Listening-Configs", records)]);
    c.send("POST", &format!("{url}{CONFIGS}/listener"), &body, &all).await
}

#[tokio::test]
async fn configs_are_published_read_and_removed_as_nacos_answers_them() {
    let node = Node::start(Config {
        config_max_size: 4096,
        ..Config::default()
    })
    .await;
    let (c, url) = (Client::new(), node.url.clone());
    let key = [("dataId", "app.yaml"), ("group", "G")];
    let missing = get(&c, &url, &key).await;
    assert_eq!(
        (missing.status, text(&missing).as_str()),
        (404, "config data not exist")
    );

    let content = "a: 1\nname: 配置 + more & more = ✓";
    let published = publish(
        &c,
        &url,
        &[
            ("dataId", "app.yaml"),
            ("group", "G"),
            ("content", content),
            ("type", "yaml"),
            ("appName", "shop"),
        ],
        &[],
    )
    .await;
    assert_eq!((published.status, text(&published).as_str()), (200, "true"));
    let read = get(&c, &url, &key).await;
    assert_eq!((read.status, text(&read)), (200, content.to_owned()));
    assert_eq!(header(&read, "content-md5"), md5_hex(content));
    assert_eq!(header(&read, "config-type"), "yaml");
    assert!(header(&read, "last-modified").ends_with(" GMT"), "{:?}", read.headers);
    assert_eq!(header(&read, "cache-control"), "no-cache,no-store");

    // Compare-and-set on the md5 the client holds.
    let stale = publish(
        &c,
        &url,
        &[key[0], key[1], ("content", "b")],
        &[("casMd5", &md5_hex("other"))],
    )
    .await;
    assert_eq!(stale.status, 409, "{}", text(&stale));
    assert_eq!(
        text(&get(&c, &url, &key).await),
        content,
        "a refused CAS changes nothing"
    );
    let current = md5_hex(content);
    let swapped = publish(
        &c,
        &url,
        &[
            key[0],
            key[1],
            ("content", "b: 2"),
            ("type", "yaml"),
            ("appName", "shop"),
        ],
        &[("casMd5", &current)],
    )
    .await;
    assert_eq!(swapped.status, 200);
    let on_missing = publish(
        &c,
        &url,
        &[("dataId", "nope"), ("content", "x")],
        &[("casMd5", &current)],
    )
    .await;
    assert_eq!(on_missing.status, 409, "a CAS on a missing config is refused");
    assert_eq!(get(&c, &url, &[("dataId", "nope")]).await.status, 404);

    // Namespaces and groups keep configs apart.
    assert_eq!(get(&c, &url, &[key[0], key[1], ("tenant", "ns-1")]).await.status, 404);
    assert_eq!(get(&c, &url, &[key[0], ("group", "OTHER")]).await.status, 404);
    publish(
        &c,
        &url,
        &[key[0], key[1], ("tenant", "ns-1"), ("content", "in ns-1")],
        &[],
    )
    .await;
    assert_eq!(
        text(&get(&c, &url, &[key[0], key[1], ("tenant", "ns-1")]).await),
        "in ns-1"
    );
    assert_eq!(text(&get(&c, &url, &key).await), "b: 2");

    // The console's reads: detail, search, history.
    let detail = json(&get(&c, &url, &[key[0], key[1], ("show", "all")]).await);
    assert_eq!(
        (detail["appName"].as_str(), detail["type"].as_str()),
        (Some("shop"), Some("yaml"))
    );
    assert_eq!(detail["md5"], md5_hex("b: 2"));
    let found = json(
        &get(
            &c,
            &url,
            &[
                ("search", "blur"),
                ("dataId", "app*"),
                ("group", ""),
                ("pageNo", "1"),
                ("pageSize", "10"),
            ],
        )
        .await,
    );
    assert_eq!(found["totalCount"], 1, "{found}");
    assert_eq!(found["pageItems"][0]["dataId"], "app.yaml");
    let exact = json(&get(&c, &url, &[("search", "accurate"), ("dataId", "app"), ("group", "G")]).await);
    assert_eq!(exact["totalCount"], 0);

    let removed = c
        .send("DELETE", &format!("{url}{CONFIGS}?{}", form(&key)), "", &[])
        .await;
    assert_eq!((removed.status, text(&removed).as_str()), (200, "true"));
    assert_eq!(get(&c, &url, &key).await.status, 404);
    let again = c
        .send("DELETE", &format!("{url}{CONFIGS}?{}", form(&key)), "", &[])
        .await;
    assert_eq!(again.status, 200, "removing what is gone is answered as Nacos does");

    let history = json(
        &c.send(
            "GET",
            &format!("{url}/nacos/v1/cs/history?search=accurate&{}", form(&key)),
            "",
            &[],
        )
        .await,
    );
    let ops: Vec<&str> = history["pageItems"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|e| e["opType"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ops, vec!["D", "U", "I"], "{history}");
    let first = &history["pageItems"][2];
    let nid = first["id"].as_str().expect("an id");
    let one = json(
        &c.send(
            "GET",
            &format!("{url}/nacos/v1/cs/history?nid={nid}&{}", form(&key)),
            "",
            &[],
        )
        .await,
    );
    assert_eq!(one["content"], content);
    node.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_changes() {
    let node = Node::start(Config {
        config_max_size: 1024,
        ..Config::default()
    })
    .await;
    let (c, url) = (Client::new(), node.url.clone());
    publish(&c, &url, &[("dataId", "kept"), ("content", "v1")], &[]).await;
    type Pairs<'a> = Vec<(&'a str, &'a str)>;
    type Case<'a> = (Pairs<'a>, Vec<(&'static str, &'a str)>, u16);
    let cases: Vec<Case<'_>> = vec![
        (vec![("dataId", "a b"), ("content", "x")], vec![], 400),
        (vec![("dataId", "a/b"), ("content", "x")], vec![], 400),
        (vec![("dataId", "ok"), ("group", "g!"), ("content", "x")], vec![], 400),
        (vec![("dataId", "ok"), ("tenant", "n s"), ("content", "x")], vec![], 400),
        (vec![("content", "x")], vec![], 400),
        (vec![("dataId", "ok"), ("content", " ")], vec![], 400),
        (vec![("dataId", "ok"), ("content", "x"), ("tag", "t")], vec![], 400),
        (
            vec![("dataId", "ok"), ("content", "x")],
            vec![("betaIps", "10.0.0.1")],
            400,
        ),
    ];
    for (pairs, headers, status) in cases {
        let answer = publish(&c, &url, &pairs, &headers).await;
        assert_eq!(answer.status, status, "{pairs:?}: {}", text(&answer));
    }
    let big = "x".repeat(1025);
    let answer = publish(&c, &url, &[("dataId", "kept"), ("content", &big)], &[]).await;
    assert_eq!(answer.status, 413, "{}", text(&answer));
    let answer = long_poll(&c, &url, "kept\u{2}DEFAULT_GROUP\u{1}", &[]).await;
    assert_eq!(answer.status, 400, "a malformed listener record: {}", text(&answer));
    let answer = c.send("POST", &format!("{url}{CONFIGS}/listener"), "", &[FORM]).await;
    assert_eq!(answer.status, 400);
    let found = json(&get(&c, &url, &[("search", "accurate"), ("pageSize", "100")]).await);
    assert_eq!(found["totalCount"], 1, "only the first publish: {found}");
    assert_eq!(text(&get(&c, &url, &[("dataId", "kept")]).await), "v1");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_changes_at_once_or_when_they_come() {
    let node = Node::start(Config {
        max_wait: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    let (c, url) = (Client::new(), node.url.clone());
    publish(&c, &url, &[("dataId", "a"), ("group", "G"), ("content", "1")], &[]).await;
    let held = md5_hex("1");
    let hang = ("Long-Pulling-Timeout", "30000");

    // Up to date (a missing config held as ""): nothing, at once with No-Hangup.
    let records = format!("a\u{2}G\u{2}{held}\u{1}missing\u{2}G\u{2}\u{1}");
    let answer = long_poll(&c, &url, &records, &[hang, ("Long-Pulling-Timeout-No-Hangup", "true")]).await;
    assert_eq!((answer.status, text(&answer).as_str()), (200, ""));
    // A stale md5: answered at once, encoded as Java encodes it, the tenant echoed only
    // when sent.
    let stale = format!("a\u{2}G\u{2}{}\u{1}a\u{2}G\u{2}\u{2}ns-1\u{1}", md5_hex("0"));
    let answer = long_poll(&c, &url, &stale, &[hang]).await;
    assert_eq!(text(&answer), "a%02G%01", "ns-1 holds nothing and has nothing");
    // Nothing changes: empty at the timeout (--max-wait caps the hold).
    let answer = long_poll(&c, &url, &records, &[hang]).await;
    assert_eq!((answer.status, text(&answer).as_str()), (200, ""));

    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_long_poll_is_woken_by_a_publish() {
    let node = Node::start(Config::default()).await;
    let (c, url) = (Client::new(), node.url.clone());
    let records = "k\u{2}DEFAULT_GROUP\u{2}\u{1}".to_owned();
    let waiting = {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move { long_poll(&c, &url, &records, &[("Long-Pulling-Timeout", "60000")]).await })
    };
    test_support::eventually("the poll waits", LIMIT, || async {
        let metrics = c.raw("GET", &format!("{url}/metrics"), "").await;
        text(&metrics).contains("maregistry_config_long_polls 1")
    })
    .await;
    publish(&c, &url, &[("dataId", "k"), ("content", "v")], &[]).await;
    let answer = tokio::time::timeout(LIMIT, waiting)
        .await
        .expect("woken")
        .expect("no panic");
    assert_eq!(text(&answer), "k%02DEFAULT_GROUP%01");
    node.stop().await;
}

#[tokio::test]
async fn the_v2_open_api() {
    let node = Node::start(Config::default()).await;
    let (c, url) = (Client::new(), node.url.clone());
    let at = format!("{url}/nacos/v2/cs/config");
    let body = form(&[
        ("dataId", "d"),
        ("group", "G"),
        ("namespaceId", "ns"),
        ("content", "v2 ✓"),
        ("type", "json"),
    ]);
    let answer = c.send("POST", &at, &body, &[FORM]).await;
    assert_eq!(
        json(&answer),
        serde_json::json!({"code":0,"message":"success","data":true})
    );
    let answer = c
        .send("GET", &format!("{at}?dataId=d&group=G&namespaceId=ns"), "", &[])
        .await;
    assert_eq!(json(&answer)["data"], "v2 ✓");
    let v1 = get(&c, &url, &[("dataId", "d"), ("group", "G"), ("tenant", "ns")]).await;
    assert_eq!(text(&v1), "v2 ✓", "one store under both APIs");
    let answer = c
        .send("DELETE", &format!("{at}?dataId=d&group=G&namespaceId=ns"), "", &[])
        .await;
    assert_eq!(json(&answer)["data"], true);
    let answer = c
        .send("GET", &format!("{at}?dataId=d&group=G&namespaceId=ns"), "", &[])
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(json(&answer)["code"], 20004);
    let answer = c.send("GET", &format!("{at}?group=G"), "", &[]).await;
    assert_eq!((answer.status, json(&answer)["code"].as_i64()), (400, Some(20002)));
    node.stop().await;
}

/// A zip of `entries` (name, content), as the Java server writes one.
pub(crate) fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("an entry");
        zip.write_all(content.as_bytes()).expect("written");
    }
    zip.finish().expect("a zip").into_inner()
}

/// The entries of a zip.
fn entries_of(zip: &[u8]) -> Vec<(String, String)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).expect("an entry");
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("UTF-8");
            (entry.name().to_owned(), text)
        })
        .collect()
}

/// Imports `zip` into `namespace` with `policy`, as the console uploads it.
async fn import(c: &Client, url: &str, namespace: &str, policy: &str, zip: &[u8]) -> Value {
    let mut body = b"--B0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"configs.zip\"\r\nContent-Type: application/zip\r\n\r\n".to_vec();
    body.extend_from_slice(zip);
    body.extend_from_slice(b"\r\n--B0undary--\r\n");
    let target = format!("{url}{CONFIGS}?import=true&namespace={namespace}&policy={policy}");
    let answer = c
        .send_bytes(
            "POST",
            &target,
            body,
            &[("content-type", "multipart/form-data; boundary=B0undary")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", text(&answer));
    json(&answer)
}

#[tokio::test]
async fn imports_of_both_zip_layouts_follow_their_policy_and_exports_import_back() {
    let node = Node::start(Config::default()).await;
    let (c, url) = (Client::new(), node.url.clone());
    publish(
        &c,
        &url,
        &[
            ("dataId", "b.yaml"),
            ("group", "G"),
            ("tenant", "ns"),
            ("content", "existing"),
        ],
        &[],
    )
    .await;
    // The `export=true` layout: group/dataId entries and `.meta.yml`.
    let v1 = zip_of(&[
        ("G/a.yaml", "a: 1"),
        ("G/b.yaml", "b: from zip"),
        ("G/c.properties", "c=3"),
        (".meta.yml", "G.a~yaml.app=shop\r\nG.c~properties.app=shop\r\n"),
    ]);
    let aborted = import(&c, &url, "ns", "ABORT", &v1).await;
    assert_eq!(aborted["data"]["succCount"], 1, "{aborted}");
    assert_eq!(aborted["data"]["failData"][0]["dataId"], "b.yaml");
    assert_eq!(aborted["data"]["skipData"][0]["dataId"], "c.properties");
    let read = |data_id: &'static str| {
        let (c, url) = (c.clone(), url.clone());
        async move { get(&c, &url, &[("dataId", data_id), ("group", "G"), ("tenant", "ns")]).await }
    };
    assert_eq!(text(&read("b.yaml").await), "existing");
    assert_eq!(
        read("c.properties").await.status,
        404,
        "ABORT stops at the first conflict"
    );
    let skipped = import(&c, &url, "ns", "SKIP", &v1).await;
    assert_eq!(
        (
            skipped["data"]["succCount"].as_i64(),
            skipped["data"]["skipCount"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(text(&read("b.yaml").await), "existing");
    let overwritten = import(&c, &url, "ns", "OVERWRITE", &v1).await;
    assert_eq!(overwritten["data"]["succCount"], 3);
    assert_eq!(text(&read("b.yaml").await), "b: from zip");
    let detail = json(
        &get(
            &c,
            &url,
            &[("dataId", "a.yaml"), ("group", "G"), ("tenant", "ns"), ("show", "all")],
        )
        .await,
    );
    assert_eq!(detail["appName"], "shop", ".meta.yml names the app");

    // The `exportV2=true` layout: `.metadata.yml` as SnakeYAML writes it.
    let v2 = zip_of(&[
        ("G2/d.json", "{\"d\":4}"),
        (
            ".metadata.yml",
            "metadata:\n- appName: shop\n  dataId: d.json\n  desc: the d\n  group: G2\n  type: json\n",
        ),
    ]);
    let imported = import(&c, &url, "ns", "ABORT", &v2).await;
    assert_eq!(imported["data"]["succCount"], 1, "{imported}");
    let detail = json(
        &get(
            &c,
            &url,
            &[("dataId", "d.json"), ("group", "G2"), ("tenant", "ns"), ("show", "all")],
        )
        .await,
    );
    assert_eq!(
        (detail["type"].as_str(), detail["desc"].as_str()),
        (Some("json"), Some("the d"))
    );

    // Our export of both layouts imports into an empty node as the same configs.
    let empty = Node::start(Config::default()).await;
    for export in ["export", "exportV2"] {
        let zip = c
            .send("GET", &format!("{url}{CONFIGS}?{export}=true&tenant=ns"), "", &[])
            .await;
        assert_eq!(zip.status, 200);
        assert!(header(&zip, "content-disposition").contains("nacos_config_export_"));
        let names: Vec<String> = entries_of(&zip.body).into_iter().map(|(name, _)| name).collect();
        assert!(names.contains(&"G2/d.json".to_owned()), "{names:?}");
        let again = import(&c, &empty.url, "ns", "OVERWRITE", &zip.body).await;
        assert_eq!(again["data"]["succCount"], 4, "{export}: {again}");
    }
    let listing = |url: String| {
        let c = c.clone();
        async move {
            let page = json(
                &get(
                    &c,
                    &url,
                    &[("search", "accurate"), ("tenant", "ns"), ("pageSize", "100")],
                )
                .await,
            );
            let mut items: Vec<(String, String, String, String)> = page["pageItems"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| {
                    let s = |k: &str| i[k].as_str().unwrap_or("").to_owned();
                    (s("group"), s("dataId"), s("md5"), s("appName"))
                })
                .collect();
            items.sort();
            items
        }
    };
    assert_eq!(listing(url.clone()).await, listing(empty.url.clone()).await);
    let bad = c
        .send_bytes(
            "POST",
            &format!("{url}{CONFIGS}?import=true&namespace=ns"),
            b"not a zip".to_vec(),
            &[("content-type", "application/zip")],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", text(&bad));
    empty.stop().await;
    node.stop().await;
}
