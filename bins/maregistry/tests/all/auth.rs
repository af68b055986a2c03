//! Access control (docs/spec.md §9) against real nodes: Nacos login, the admin endpoints,
//! a permission matrix over every protocol's reads and writes (the seed API, Nacos naming
//! and config over v1 and gRPC, Eureka with Basic credentials), tokens across a 3-node raft
//! cluster (one node's token is accepted by the others; an expired one and one signed
//! with another secret are refused), removals taking effect on every node, and users,
//! roles and permissions kept across a restart.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use maregistry::config::Admin;
use maregistry::config::Mode;
use maregistry::Config;
use registry_api::access::{Guard, TokenKey};
use serde_json::json;
use test_support::{
    agreed_leader, eventually, free_listener, free_ports, listen, raft_mode, start_grpc, start_raft, Client, Node,
    Proc, LIMIT,
};

use crate::nacos2::{grpc_port, Raw};

const SECRET: &[u8] = b"a test secret of at least 32 bytes!!";
pub(crate) const ADMIN_PASSWORD: &str = "admin-pass";

pub(crate) fn with_auth(mut config: Config, ttl: Duration) -> Config {
    let key = TokenKey::new(SECRET).expect("a key");
    config.auth.guard = Some(Arc::new(Guard::new(key, ttl)));
    config.admin = Some(Admin {
        user: "nacos".to_owned(),
        password: Some(ADMIN_PASSWORD.to_owned()),
    });
    config
}

/// `POST /nacos/v1/auth/login` → (status, body).
pub(crate) async fn login(c: &Client, url: &str, user: &str, password: &str) -> (u16, serde_json::Value) {
    c.post(
        &format!("{url}/nacos/v1/auth/login?username={user}&password={password}"),
        "",
    )
    .await
}

pub(crate) async fn token(c: &Client, url: &str, user: &str, password: &str) -> String {
    let (status, body) = login(c, url, user, password).await;
    assert_eq!(status, 200, "login of {user}: {body}");
    body["accessToken"].as_str().expect("a token").to_owned()
}

/// An admin call with `token`; its status and body text.
async fn admin(c: &Client, method: &str, url: &str, path_and_query: &str, token: &str) -> (u16, String) {
    let separator = if path_and_query.contains('?') { '&' } else { '?' };
    let answer = c
        .raw(
            method,
            &format!("{url}{path_and_query}{separator}accessToken={token}"),
            "",
        )
        .await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

/// Makes `user` (its password `{user}-pass`), bound to `role`, which may do `action` on
/// `resource`.
pub(crate) async fn grant(
    c: &Client,
    url: &str,
    admin_token: &str,
    user: &str,
    role: &str,
    (resource, action): (&str, &str),
) {
    let password = format!("{user}-pass");
    for (method, path) in [
        (
            "POST",
            format!("/nacos/v1/auth/users?username={user}&password={password}"),
        ),
        ("POST", format!("/nacos/v1/auth/roles?role={role}&username={user}")),
        (
            "POST",
            format!("/nacos/v1/auth/permissions?role={role}&resource={resource}&action={action}"),
        ),
    ] {
        let (status, body) = admin(c, method, url, &path, admin_token).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
    }
}

/// Who calls in the matrix: the credentials to add to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    /// Reads namespace `dev`.
    Reader,
    /// Writes and reads namespace `ops` only.
    OtherWriter,
    Admin,
}

/// What a request of the matrix needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// A read in namespace `dev`.
    DevRead,
    /// A write in namespace `dev`.
    DevWrite,
    /// A read of every namespace (a listing of the whole registry).
    AllRead,
}

/// One request of the matrix.
struct Cell {
    what: &'static str,
    method: &'static str,
    path: String,
    body: String,
    needs: Needs,
}

fn cell(what: &'static str, method: &'static str, path: &str, body: &str, needs: Needs) -> Cell {
    Cell {
        what,
        method,
        path: path.to_owned(),
        body: body.to_owned(),
        needs,
    }
}

/// Every read and write endpoint of the seed API, Nacos naming and config over HTTP, and
/// Eureka, on namespace `dev` (or on everything, for the listings).
fn cells() -> Vec<Cell> {
    use Needs::{AllRead, DevRead, DevWrite};
    let instance = r#"{"scheme":"http","host":"10.0.0.1","port":80}"#;
    let batch = json!([test_support::batch_op("reg", "dev/svc", "10.0.0.2", 80)]).to_string();
    let eureka = r#"{"instance":{"instanceId":"i1","hostName":"h","app":"DEVAPP","ipAddr":"10.0.0.2","status":"UP","port":{"$":8080,"@enabled":"true"}}}"#;
    let ns = "/nacos/v1/ns/instance?namespaceId=dev&serviceName=api&ip=10.0.0.3&port=80";
    let cs = "/nacos/v1/cs/configs?tenant=dev&dataId=app.yaml&group=DEFAULT_GROUP";
    let v2 = "/nacos/v2/cs/config?namespaceId=dev&dataId=v2.yaml&group=DEFAULT_GROUP";
    let listen = "Listening-Configs=app.yaml%02DEFAULT_GROUP%02%02dev%01";
    vec![
        cell("seed register", "POST", "/reg?service=dev/svc", instance, DevWrite),
        cell("seed renew", "POST", "/renew?service=dev/svc", instance, DevWrite),
        cell("seed batch", "POST", "/batch", &batch, DevWrite),
        cell("seed findAll", "GET", "/findAll?service=dev/svc", "", DevRead),
        cell("seed version", "GET", "/version?service=dev/svc", "", DevRead),
        cell("seed versions", "GET", "/versions?services=dev/svc", "", AllRead),
        cell("seed snapshot", "GET", "/snapshot", "", AllRead),
        cell("seed services", "GET", "/services", "", AllRead),
        cell("seed instances", "GET", "/instances?service=dev/svc", "", AllRead),
        cell("seed unregister", "POST", "/unreg?service=dev/svc", instance, DevWrite),
        cell("nacos v1 register", "POST", ns, "", DevWrite),
        cell(
            "nacos v1 beat",
            "PUT",
            &ns.replace("/instance?", "/instance/beat?"),
            "",
            DevWrite,
        ),
        cell(
            "nacos v1 list",
            "GET",
            "/nacos/v1/ns/instance/list?namespaceId=dev&serviceName=api",
            "",
            DevRead,
        ),
        cell("nacos v1 instance", "GET", ns, "", DevRead),
        cell(
            "nacos v1 services",
            "GET",
            "/nacos/v1/ns/service/list?namespaceId=dev&pageNo=1&pageSize=10",
            "",
            DevRead,
        ),
        cell("nacos v1 deregister", "DELETE", ns, "", DevWrite),
        cell("nacos config publish", "POST", &format!("{cs}&content=a"), "", DevWrite),
        cell("nacos config get", "GET", cs, "", DevRead),
        cell(
            "nacos config search",
            "GET",
            "/nacos/v1/cs/configs?search=accurate&tenant=dev&pageNo=1&pageSize=10",
            "",
            DevRead,
        ),
        cell(
            "nacos config export",
            "GET",
            "/nacos/v1/cs/configs?export=true&tenant=dev",
            "",
            DevRead,
        ),
        cell(
            "nacos config history",
            "GET",
            "/nacos/v1/cs/history?search=accurate&tenant=dev&dataId=app.yaml&group=DEFAULT_GROUP",
            "",
            DevRead,
        ),
        cell(
            "nacos config long poll",
            "POST",
            "/nacos/v1/cs/configs/listener",
            listen,
            DevRead,
        ),
        cell("nacos config delete", "DELETE", cs, "", DevWrite),
        cell(
            "nacos v2 config publish",
            "POST",
            &format!("{v2}&content=b"),
            "",
            DevWrite,
        ),
        cell("nacos v2 config get", "GET", v2, "", DevRead),
        cell("nacos v2 config delete", "DELETE", v2, "", DevWrite),
        cell("eureka register", "POST", "/eureka/apps/dev%2FDEVAPP", eureka, DevWrite),
        cell("eureka renew", "PUT", "/eureka/apps/dev%2FDEVAPP/i1", "", DevWrite),
        cell(
            "eureka status",
            "PUT",
            "/eureka/apps/dev%2FDEVAPP/i1/status?value=OUT_OF_SERVICE",
            "",
            DevWrite,
        ),
        cell("eureka app", "GET", "/eureka/apps/dev%2FDEVAPP", "", DevRead),
        cell("eureka instance", "GET", "/eureka/apps/dev%2FDEVAPP/i1", "", DevRead),
        cell("eureka apps", "GET", "/eureka/apps/", "", AllRead),
        cell("eureka delta", "GET", "/eureka/apps/delta", "", AllRead),
        cell("eureka cancel", "DELETE", "/eureka/apps/dev%2FDEVAPP/i1", "", DevWrite),
    ]
}

/// `path` with `who`'s credentials: a token for the reader, a username and password for
/// the other writer, Basic credentials for the admin.
fn with_credentials(path: &str, who: Who, reader_token: &str) -> (String, Vec<(&'static str, String)>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    match who {
        Who::Nobody => (path.to_owned(), vec![]),
        Who::Reader => (format!("{path}{separator}accessToken={reader_token}"), vec![]),
        Who::OtherWriter => (format!("{path}{separator}username=ops&password=ops-pass"), vec![]),
        Who::Admin => {
            let basic = STANDARD.encode(format!("nacos:{ADMIN_PASSWORD}"));
            (path.to_owned(), vec![("authorization", format!("Basic {basic}"))])
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_is_decided_by_the_same_permissions() {
    let mut config = with_auth(Config::default(), Duration::from_secs(600));
    config.protocols = vec![
        maregistry::config::Protocol::Seed,
        maregistry::config::Protocol::Nacos,
        maregistry::config::Protocol::Eureka,
    ];
    let node = start_grpc(config);
    let c = Client::new();
    eventually("the first admin logs in", LIMIT, || async {
        let (status, body) = login(&c, &node.url, "nacos", ADMIN_PASSWORD).await;
        status == 200 && body["globalAdmin"] == true
    })
    .await;
    let admin_token = token(&c, &node.url, "nacos", ADMIN_PASSWORD).await;
    let (status, body) = login(&c, &node.url, "nacos", "wrong").await;
    assert_eq!(status, 403, "a wrong password: {body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("User not found"),
        "{body}"
    );

    grant(&c, &node.url, &admin_token, "reader", "dev-readers", ("dev:*:*", "r")).await;
    grant(&c, &node.url, &admin_token, "ops", "ops-writers", ("ops:*:*", "rw")).await;
    let reader_token = token(&c, &node.url, "reader", "reader-pass").await;

    // The admin writes first, so that the reads find something.
    for who in [Who::Admin, Who::Nobody, Who::Reader, Who::OtherWriter] {
        for cell in cells() {
            let (path, headers) = with_credentials(&cell.path, who, &reader_token);
            let headers: Vec<(&'static str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut all_headers = headers.clone();
            if cell.body.starts_with('{') || cell.body.starts_with('[') {
                all_headers.push(("content-type", "application/json"));
            } else if !cell.body.is_empty() {
                all_headers.push(("content-type", "application/x-www-form-urlencoded"));
            }
            let answer = c.send(cell.method, &node.at(&path), &cell.body, &all_headers).await;
            let allowed = match who {
                Who::Admin => true,
                Who::Reader => cell.needs == Needs::DevRead,
                Who::Nobody | Who::OtherWriter => false,
            };
            let body = String::from_utf8_lossy(&answer.body);
            if allowed {
                // Allowed: whatever the endpoint answers (a 404 for what a delete removed
                // before), never a refusal.
                assert!(
                    answer.status != 403 && answer.status < 500,
                    "{who:?} {}: {} {body}",
                    cell.what,
                    answer.status
                );
            } else {
                assert_eq!(answer.status, 403, "{who:?} {}: {body}", cell.what);
            }
        }
    }

    grpc_cells(&node, &reader_token, &admin_token).await;

    // The other writer may write its own namespace; the metrics count the refusals.
    let (path, _) = with_credentials(
        "/nacos/v1/ns/instance?namespaceId=ops&serviceName=api&ip=10.0.0.9&port=80",
        Who::OtherWriter,
        "",
    );
    assert_eq!(c.raw("POST", &node.at(&path), "").await.status, 200);
    let metrics = c.raw("GET", &node.at("/metrics"), "").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("maregistry_access_denials_total{protocol=\"nacos\",reason=\"no_permission\"}"),
        "{text}"
    );
    assert!(text.contains("reason=\"no_identity\""), "{text}");
    assert!(!text.contains("reader-pass") && !text.contains(ADMIN_PASSWORD));

    // A revoked permission applies at once.
    let (status, _) = admin(
        &c,
        "DELETE",
        &node.url,
        "/nacos/v1/auth/permissions?role=dev-readers&resource=dev:*:*&action=r",
        &admin_token,
    )
    .await;
    assert_eq!(status, 200);
    let (path, _) = with_credentials("/findAll?service=dev/svc", Who::Reader, &reader_token);
    assert_eq!(c.raw("GET", &node.at(&path), "").await.status, 403);
    // A non-admin may not manage users.
    let (status, _) = admin(
        &c,
        "POST",
        &node.url,
        "/nacos/v1/auth/users?username=x&password=y",
        &reader_token,
    )
    .await;
    assert_eq!(status, 403);
    node.stop().await;
}

/// The matrix over Nacos gRPC: each naming and config request, as each caller; a refusal
/// is the request's own response type with error code 403.
async fn grpc_cells(node: &Node, reader_token: &str, admin_token: &str) {
    let instance = json!({"ip":"10.0.5.1","port":80,"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,
        "clusterName":"DEFAULT","metadata":{}});
    let naming = |extra: serde_json::Value| {
        let mut body = json!({"namespace":"dev","serviceName":"grpc-svc","groupName":"DEFAULT_GROUP","requestId":"1"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    let config = json!({"dataId":"grpc.yaml","group":"DEFAULT_GROUP","tenant":"dev","requestId":"1"});
    let cells: Vec<(&str, &str, serde_json::Value, bool)> = vec![
        (
            "InstanceRequest",
            "InstanceResponse",
            naming(json!({"type":"registerInstance","instance":instance})),
            true,
        ),
        (
            "ServiceQueryRequest",
            "QueryServiceResponse",
            naming(json!({"cluster":"","healthyOnly":false,"udpPort":0})),
            false,
        ),
        (
            "ServiceListRequest",
            "ServiceListResponse",
            naming(json!({"pageNo":1,"pageSize":10,"selector":""})),
            false,
        ),
        (
            "SubscribeServiceRequest",
            "SubscribeServiceResponse",
            naming(json!({"subscribe":true,"clusters":""})),
            false,
        ),
        (
            "ConfigPublishRequest",
            "ConfigPublishResponse",
            json!({"dataId":"grpc.yaml","group":"DEFAULT_GROUP","tenant":"dev","content":"a","requestId":"1"}),
            true,
        ),
        ("ConfigQueryRequest", "ConfigQueryResponse", config.clone(), false),
        (
            "ConfigBatchListenRequest",
            "ConfigChangeBatchListenResponse",
            json!({"listen":true,"configListenContexts":[{"dataId":"grpc.yaml","group":"DEFAULT_GROUP","tenant":"dev","md5":""}],"requestId":"1"}),
            false,
        ),
        ("ConfigRemoveRequest", "ConfigRemoveResponse", config, true),
    ];
    for who in [Who::Admin, Who::Nobody, Who::Reader, Who::OtherWriter] {
        let mut raw = Raw::connect(grpc_port(node)).await;
        raw.setup().await;
        eventually("the connection is set up", LIMIT, || raw.is_registered()).await;
        let headers: Vec<(&str, &str)> = match who {
            Who::Nobody => vec![],
            Who::Reader => vec![("accessToken", reader_token)],
            Who::OtherWriter => vec![("username", "ops"), ("password", "ops-pass")],
            Who::Admin => vec![("accessToken", admin_token)],
        };
        for (kind, answer_kind, body, write) in &cells {
            let (answered, body) = raw.call_with(kind, body.clone(), &headers).await;
            assert_eq!(&answered, answer_kind, "{who:?} {kind}: {body}");
            let allowed = match who {
                Who::Admin => true,
                Who::Reader => !write,
                Who::Nobody | Who::OtherWriter => false,
            };
            assert_eq!(body["errorCode"] == 403, !allowed, "{who:?} {kind}: {body}");
        }
    }
}

/// The real binary: without an admin it stops with status 2 and says how to make one; with
/// one, nothing it logs holds a password, and a restart without the password file keeps
/// the users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_needs_an_admin_and_never_logs_a_password() {
    let dir = tempfile::tempdir().expect("a dir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("written");
        path.display().to_string()
    };
    let password = file("admin-password", "Adm1n-Secret\n");
    let data = dir.path().join("data").display().to_string();
    let ports = free_ports(3);
    let c = Client::new();

    let mut in_memory = Proc::start(ports[0], &["--auth-enabled".to_owned()]);
    assert_eq!(in_memory.wait_exit(), Some(2));
    assert!(
        in_memory.log_text().contains("--admin-password-file"),
        "{}",
        in_memory.log_text()
    );

    let empty_dir = dir.path().join("empty").display().to_string();
    let mut empty = Proc::start(
        ports[1],
        &["--auth-enabled".to_owned(), "--data-dir".to_owned(), empty_dir],
    );
    assert_eq!(empty.wait_exit(), Some(2), "no admin anywhere: {}", empty.log_text());
    assert!(
        empty.log_text().contains("--admin-password-file"),
        "{}",
        empty.log_text()
    );

    let args = |with_password: bool| {
        let mut args = vec!["--auth-enabled".to_owned(), "--data-dir".to_owned(), data.clone()];
        if with_password {
            args.extend(["--admin-password-file".to_owned(), password.clone()]);
        }
        args
    };
    let mut node = Proc::start(ports[2], &args(true));
    let login_url = |url: &str, user: &str, password: &str| {
        format!("{url}/nacos/v1/auth/login?username={user}&password={password}")
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let answer = c
            .try_raw("POST", &login_url(&node.url, "nacos", "Adm1n-Secret"), "")
            .await;
        if answer.is_ok_and(|answer| answer.status == 200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the admin never logged in: {}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin_token = token(&c, &node.url, "nacos", "Adm1n-Secret").await;
    assert_eq!(login(&c, &node.url, "nacos", "Wrong-Secret").await.0, 403);
    grant(&c, &node.url, &admin_token, "carol", "carols", ("public:*:*", "rw")).await;
    let with_password = c
        .raw(
            "GET",
            &format!("{}/findAll?service=s&username=carol&password=carol-pass", node.url),
            "",
        )
        .await;
    assert_eq!(with_password.status, 200);
    assert_eq!(
        c.raw(
            "GET",
            &format!("{}/findAll?service=s&username=carol&password=Bad-Pass", node.url),
            ""
        )
        .await
        .status,
        403
    );
    node.terminate();
    let logged = node.log_text();
    for secret in [
        "Adm1n-Secret",
        "Wrong-Secret",
        "carol-pass",
        "Bad-Pass",
        admin_token.as_str(),
    ] {
        assert!(!logged.contains(secret), "the log holds {secret:?}:\n{logged}");
    }
    assert!(logged.contains("access denied"), "refusals are logged: {logged}");

    // Restarted without the password file: the users are kept.
    let mut node = Proc::start(ports[2], &args(false));
    eventually("carol logs in after the restart", LIMIT, || async {
        let answer = c
            .try_raw("POST", &login_url(&node.url, "carol", "carol-pass"), "")
            .await;
        answer.is_ok_and(|answer| answer.status == 200)
    })
    .await;
    node.terminate();
}

/// The v3 forms of the administration endpoints (the 3.x console's), and the v1 checks
/// Nacos scripts use: answers wrapped in `{code, message, data}`, the duplicate check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v3_administration_endpoints_answer_as_nacos_3() {
    let node = Node::start_on(free_listener(), with_auth(Config::default(), Duration::from_secs(600)));
    let c = Client::new();
    eventually("the first admin logs in", LIMIT, || async {
        login(&c, &node.url, "nacos", ADMIN_PASSWORD).await.0 == 200
    })
    .await;
    let (status, body) = c
        .post(
            &node.at(&format!(
                "/nacos/v3/auth/user/login?username=nacos&password={ADMIN_PASSWORD}"
            )),
            "",
        )
        .await;
    assert_eq!((status, body["globalAdmin"].as_bool()), (200, Some(true)), "{body}");
    let t = body["accessToken"].as_str().expect("a token").to_owned();
    let call = |method: &'static str, path: &'static str| {
        let (c, node, t) = (&c, &node, &t);
        async move {
            let separator = if path.contains('?') { '&' } else { '?' };
            let answer = c
                .raw(method, &node.at(&format!("{path}{separator}accessToken={t}")), "")
                .await;
            let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            (answer.status, body)
        }
    };
    let (status, body) = call("POST", "/nacos/v3/auth/user?username=dana&password=dana-pass").await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (_, body) = call("GET", "/nacos/v3/auth/user/list?pageNo=1&pageSize=10").await;
    let names: Vec<&str> = body["data"]["pageItems"]
        .as_array()
        .map(|items| items.iter().filter_map(|u| u["username"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["dana", "nacos"], "{body}");
    assert!(body["data"]["pageItems"][0]["password"]
        .as_str()
        .is_some_and(|h| h.starts_with("$2")));
    assert_eq!(call("POST", "/nacos/v3/auth/role?role=dev&username=dana").await.0, 200);
    let (status, body) = call("POST", "/nacos/v3/auth/role?role=ROLE_ADMIN&username=dana").await;
    assert_eq!(status, 400, "ROLE_ADMIN is not bound through the API: {body}");
    assert_eq!(
        call("POST", "/nacos/v3/auth/permission?role=dev&resource=dev:*:*&action=rw")
            .await
            .0,
        200
    );
    let (_, body) = call("GET", "/nacos/v3/auth/permission?role=dev&resource=dev:*:*&action=r").await;
    assert_eq!(body["data"], true, "an rw grant holds an r: {body}");
    let (_, body) = call("GET", "/nacos/v3/auth/permission/list?pageNo=1&pageSize=10").await;
    assert_eq!(body["data"]["pageItems"][0]["resource"], "dev:*:*", "{body}");
    let (status, body) = call("POST", "/nacos/v3/auth/permission?role=ghost&resource=dev:*:*&action=r").await;
    assert_eq!(status, 400, "a role no one holds: {body}");
    let (status, _) = call(
        "POST",
        "/nacos/v1/auth/permissions?role=dev&resource=not-three-parts&action=r",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        call("DELETE", "/nacos/v1/auth/users?username=nacos").await.0,
        400,
        "an admin stays"
    );
    assert_eq!(call("POST", "/nacos/v1/auth/users/admin").await.0, 409);
    // dana changes her own password; she may not change another's.
    let dana = token(&c, &node.url, "dana", "dana-pass").await;
    let own = c
        .raw(
            "PUT",
            &node.at(&format!(
                "/nacos/v1/auth/users?username=dana&newPassword=new-pass&accessToken={dana}"
            )),
            "",
        )
        .await;
    assert_eq!(own.status, 200);
    assert_eq!(login(&c, &node.url, "dana", "new-pass").await.0, 200);
    let other = c
        .raw(
            "PUT",
            &node.at(&format!(
                "/nacos/v1/auth/users?username=nacos&newPassword=x&accessToken={dana}"
            )),
            "",
        )
        .await;
    assert_eq!(other.status, 403);
    assert_eq!(call("DELETE", "/nacos/v3/auth/user?username=dana").await.0, 200);
    assert_eq!(login(&c, &node.url, "dana", "new-pass").await.0, 403);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_off_login_answers_a_placeholder() {
    let node = Node::start_on(free_listener(), Config::default());
    let c = Client::new();
    let (status, body) = login(&c, &node.url, "anyone", "anything").await;
    assert_eq!(status, 200);
    assert_eq!(body["accessToken"], "AUTH_DISABLED");
    assert_eq!(c.raw("GET", &node.at("/findAll?service=x"), "").await.status, 200);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_work_on_every_raft_node_and_survive_a_restart() {
    let data = tempfile::tempdir().expect("a data dir");
    let configure = |config: Config| {
        let mut config = with_auth(config, Duration::from_secs(600));
        config.auth.cluster = registry_http::Token::new("cluster-secret");
        config
    };
    let nodes = start_raft(data.path(), 3, configure);
    let c = Client::new();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    agreed_leader(&c, &urls).await;
    eventually("the first admin logs in", LIMIT, || async {
        login(&c, urls[0], "nacos", ADMIN_PASSWORD).await.0 == 200
    })
    .await;
    let admin_token = token(&c, urls[0], "nacos", ADMIN_PASSWORD).await;
    grant(&c, urls[1], &admin_token, "reader", "readers", ("public:*:*", "r")).await;
    let reader = token(&c, urls[2], "reader", "reader-pass").await;
    for url in &urls {
        let read = c
            .raw("GET", &format!("{url}/findAll?service=svc&accessToken={reader}"), "")
            .await;
        assert_eq!(read.status, 200, "{url} accepts a token another node issued");
    }
    // Expired, and signed with another secret: refused everywhere.
    let expired = TokenKey::new(SECRET).unwrap().sign("reader", 1);
    let foreign = TokenKey::new(b"another secret, also 32 bytes long!!")
        .unwrap()
        .sign("reader", u64::MAX / 2);
    for bad in [&expired, &foreign] {
        for url in &urls {
            let read = c
                .raw("GET", &format!("{url}/findAll?service=svc&accessToken={bad}"), "")
                .await;
            assert_eq!(read.status, 403);
        }
    }
    // A removed user: refused on every node once the change is applied there.
    let (status, _) = admin(
        &c,
        "DELETE",
        urls[0],
        "/nacos/v1/auth/users?username=reader",
        &admin_token,
    )
    .await;
    assert_eq!(status, 200);
    for url in &urls {
        eventually("the removal applies", Duration::from_secs(16), || async {
            c.raw("GET", &format!("{url}/findAll?service=svc&accessToken={reader}"), "")
                .await
                .status
                == 403
        })
        .await;
    }
    // A revoked permission and an unbound role: refused on every node within 16 s.
    grant(&c, urls[0], &admin_token, "temp", "temps", ("public:*:*", "r")).await;
    let temp = token(&c, urls[1], "temp", "temp-pass").await;
    let read_everywhere = |expected: u16| {
        let (c, temp, urls) = (&c, &temp, &urls);
        async move {
            for url in urls {
                eventually("the change applies", Duration::from_secs(16), || async {
                    c.raw("GET", &format!("{url}/findAll?service=svc&accessToken={temp}"), "")
                        .await
                        .status
                        == expected
                })
                .await;
            }
        }
    };
    read_everywhere(200).await;
    let revoke = "/nacos/v1/auth/permissions?role=temps&resource=public:*:*&action=r";
    assert_eq!(admin(&c, "DELETE", urls[2], revoke, &admin_token).await.0, 200);
    read_everywhere(403).await;
    let grant_again = "/nacos/v1/auth/permissions?role=temps&resource=public:*:*&action=r";
    assert_eq!(admin(&c, "POST", urls[2], grant_again, &admin_token).await.0, 200);
    read_everywhere(200).await;
    let unbind = "/nacos/v1/auth/roles?role=temps&username=temp";
    assert_eq!(admin(&c, "DELETE", urls[1], unbind, &admin_token).await.0, 200);
    read_everywhere(403).await;

    grant(&c, urls[0], &admin_token, "kept", "keepers", ("dev:*:*", "rw")).await;
    let all: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
    let addresses: Vec<std::net::SocketAddr> = all
        .iter()
        .map(|u| u.trim_start_matches("http://").parse().expect("an address"))
        .collect();
    Node::stop_all(nodes).await;

    // Restarted without the admin's password: the users, roles and permissions are there.
    let restarted: Vec<Node> = addresses
        .iter()
        .enumerate()
        .map(|(i, address)| {
            let mut config = configure(Config {
                server_list: all.clone(),
                http_timeout: Duration::from_secs(1),
                mode: Mode::Raft(raft_mode(data.path().join(i.to_string()))),
                ..Config::default()
            });
            if let Some(admin) = &mut config.admin {
                admin.password = None;
            }
            Node::start_on(listen(*address), config)
        })
        .collect();
    let urls: Vec<&str> = restarted.iter().map(|n| n.url.as_str()).collect();
    agreed_leader(&c, &urls).await;
    eventually("the kept user logs in and writes dev", LIMIT, || async {
        let (status, body) = login(&c, urls[1], "kept", "kept-pass").await;
        if status != 200 {
            return false;
        }
        let token = body["accessToken"].as_str().unwrap_or("");
        let instance = r#"{"scheme":"http","host":"10.0.0.1","port":80}"#;
        c.raw(
            "POST",
            &format!("{}/reg?service=dev/svc&accessToken={token}", urls[1]),
            instance,
        )
        .await
        .status
            == 200
    })
    .await;
    Node::stop_all(restarted).await;
}
