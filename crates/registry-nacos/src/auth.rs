//! Nacos's login and its user, role and permission endpoints (docs/spec.md §9), v1
//! (`/nacos/v1/auth/...`) and v3 (`/nacos/v3/auth/...`), with Nacos's parameter names,
//! answers and refusals. Every change goes through the gateway as an
//! [`Op::Identity`], so it is one log entry and every node applies it; only the admin role
//! may make one (a user may change its own password).

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::{json, Value};

use registry_api::access::{hash_password, Caller, MAX_PASSWORD_LEN};
use registry_api::answer::json as json_answer;
use registry_api::{App, Body, FacadeError, Op, Origin};
use registry_core::{check_resource, Action, IdentityChange, IdentityState, ADMIN_ROLE};

use crate::config::{form, page};
use crate::v1::{number, Params};

type Answer = Result<Response<Body>, FacadeError>;

/// The token ttl answered with auth off (Nacos's default), seconds.
const DEFAULT_TTL_SECS: u64 = 18_000;

/// Which API a request came by: v3 wraps its answers in `{code, message, data}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V3,
}

/// Answers a request under `/nacos/v1/auth/` or `/nacos/v3/auth/`; `rest` is the path after
/// it.
pub(crate) async fn serve(app: &App, request: Request<Incoming>, rest: &str) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let v3 = path.starts_with("/nacos/v3/");
    let version = if v3 { Version::V3 } else { Version::V1 };
    let method = request.method().clone();
    let origin = Origin::of(&request);
    let params = match form(app, request).await {
        Ok(params) => params,
        Err(e) => return refusal(e, &path),
    };
    let origin = params.origin(app, origin);
    let answer = match (version, &method, rest) {
        (Version::V1, _, "users" | "") | (Version::V3, _, "user") if method != Method::GET => {
            users(app, &origin, &method, &params, version).await
        }
        (Version::V1, &Method::GET, "users") | (Version::V3, &Method::GET, "user/list") => {
            admin(app, &origin, version, |state| list_users(state, &params))
        }
        (Version::V1, &Method::GET, "users/search") | (Version::V3, &Method::GET, "user/search") => {
            admin(app, &origin, version, |state| search_users(state, &params))
        }
        (_, &Method::POST, "users/admin" | "user/admin") => Err(FacadeError::new(
            StatusCode::CONFLICT,
            "have admin user cannot use it: the first admin comes from --admin-user and --admin-password-file",
        )),
        (Version::V1, _, "roles") | (Version::V3, _, "role" | "role/list") => {
            roles(app, &origin, &method, &params, version).await
        }
        (Version::V1, _, "permissions") | (Version::V3, _, "permission" | "permission/list") => {
            permissions(app, &origin, &method, &params, version, rest).await
        }
        _ => Err(FacadeError::not_found(format!(
            "no Nacos auth endpoint for {method} {rest}"
        ))),
    };
    answer.unwrap_or_else(|e| refusal(e, &path))
}

/// A refusal as Nacos's Spring error JSON: `{status, error, message, path}`.
fn refusal(e: FacadeError, path: &str) -> Response<Body> {
    let status = e.status();
    let body = json!({
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": e.message(),
        "path": path,
    });
    json_answer(status, Bytes::from(body.to_string()))
}

/// A done change: v1 answers text, v3 `{code: 0, message, data}`.
fn done(version: Version, message: &str) -> Response<Body> {
    match version {
        Version::V1 => registry_api::answer::typed(StatusCode::OK, Bytes::from(message.to_owned()), "text/plain"),
        Version::V3 => ok(version, Value::String(message.to_owned())),
    }
}

/// A read's answer: v1 as it is, v3 wrapped.
fn ok(version: Version, data: Value) -> Response<Body> {
    let body = match version {
        Version::V1 => data,
        Version::V3 => json!({"code": 0, "message": "success", "data": data}),
    };
    json_answer(StatusCode::OK, Bytes::from(body.to_string()))
}

/// `POST /nacos/v1/auth/login` (and `/nacos/v1/auth/users/login`,
/// `/nacos/v3/auth/user/login`): a token for `username` and `password`.
pub(crate) async fn login(app: &App, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if request.method() != Method::POST {
        let refused = FacadeError::new(StatusCode::METHOD_NOT_ALLOWED, "a login is a POST");
        return refusal(refused, &path);
    }
    let answer = match form(app, request).await {
        Ok(params) => token(app, &params).await,
        Err(e) => Err(e),
    };
    answer.unwrap_or_else(|e| refusal(e, &path))
}

/// The token of a login. With auth off, a placeholder token, as r-nacos answers, so that
/// clients configured with credentials work.
async fn token(app: &App, params: &Params) -> Answer {
    let username = params.required("username")?;
    let password = params.get("password").unwrap_or("");
    let login = app.login(username, password).await?;
    let (token, ttl, admin) = match login {
        Some(login) => (login.token, login.ttl_secs, login.admin),
        None => ("AUTH_DISABLED".to_owned(), DEFAULT_TTL_SECS, true),
    };
    let body = json!({
        "accessToken": token,
        "tokenTtl": ttl,
        "globalAdmin": admin,
        "username": username,
    });
    let mut response = json_answer(StatusCode::OK, Bytes::from(body.to_string()));
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        response.headers_mut().insert(AUTHORIZATION, value);
    }
    Ok(response)
}

/// A read of the identities, for the admin role only.
fn admin(app: &App, origin: &Origin, version: Version, read: impl FnOnce(&IdentityState) -> Value) -> Answer {
    app.authorize_admin("nacos", origin.caller())?;
    let state = app.registry().identities().read();
    Ok(ok(version, read(&state)))
}

#[derive(Serialize)]
struct UserRow<'a> {
    username: &'a str,
    password: &'a str,
}

/// `GET users?search=accurate|blur&username&pageNo&pageSize`: a page of users with their
/// hashes, as Nacos answers it.
fn list_users(state: &IdentityState, params: &Params) -> Value {
    let wanted = params.get("username").unwrap_or("");
    let blur = params.get("search") == Some("blur");
    let rows: Vec<UserRow<'_>> = state
        .users
        .iter()
        .filter(|(name, _)| wanted.is_empty() || if blur { name.contains(wanted) } else { *name == wanted })
        .map(|(username, password)| UserRow { username, password })
        .collect();
    paged(rows, params)
}

fn paged<T: Serialize>(rows: Vec<T>, params: &Params) -> Value {
    let page_no = number(params, "pageNo", 1).unwrap_or(1);
    let page_size = number(params, "pageSize", 100).unwrap_or(100);
    page(rows, page_no, page_size)
}

/// `GET users/search?username`: the names containing it.
fn search_users(state: &IdentityState, params: &Params) -> Value {
    let wanted = params.get("username").unwrap_or("");
    Value::from(
        state
            .users
            .keys()
            .filter(|name| name.contains(wanted))
            .cloned()
            .collect::<Vec<_>>(),
    )
}

/// Applies `change` through the gateway (one log entry, every node), and answers once this
/// node shows it (a follower applies it a moment after the leader answered), so that the
/// caller's next request here sees it.
async fn change(app: &App, origin: &Origin, change: IdentityChange) -> Result<(), FacadeError> {
    app.write(origin, Op::Identity(Box::new(change.clone()))).await?;
    let deadline = tokio::time::Instant::now() + SHOWN_WITHIN;
    while !app.registry().identities().read().shows(&change) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(())
}

/// How long a change waits to show on the node that took it.
const SHOWN_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A password as the user sent it, hashed off the async threads.
async fn hashed(password: &str) -> Result<String, FacadeError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(FacadeError::bad(format!(
            "the password must be 1 to {MAX_PASSWORD_LEN} bytes"
        )));
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| FacadeError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| FacadeError::new(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// `POST users` (create), `PUT users` (a new password), `DELETE users`.
async fn users(app: &App, origin: &Origin, method: &Method, params: &Params, version: Version) -> Answer {
    let username = params.required("username")?;
    let exists = app.registry().identities().read().users.contains_key(username);
    match *method {
        Method::POST => {
            app.authorize_admin("nacos", origin.caller())?;
            if exists {
                return Err(FacadeError::bad(format!("user '{username}' already exist!")));
            }
            let password_hash = hashed(params.required("password")?).await?;
            let create = IdentityChange::CreateUser {
                username: username.to_owned(),
                password_hash,
            };
            change(app, origin, create).await?;
            Ok(done(version, "create user ok!"))
        }
        Method::PUT => {
            // An admin, or the user itself (the gateway's rule), before the hash is made.
            let own = matches!(origin.caller(), Caller::User(user) if &**user == username);
            if !own {
                app.authorize_admin("nacos", origin.caller())?;
            }
            if !exists {
                return Err(FacadeError::bad(format!("user {username} not exist!")));
            }
            let new = params.get("newPassword").or(params.get("password")).unwrap_or("");
            let password_hash = hashed(new).await?;
            let set = IdentityChange::SetPassword {
                username: username.to_owned(),
                password_hash,
            };
            change(app, origin, set).await?;
            Ok(done(version, "update user ok!"))
        }
        Method::DELETE => {
            app.authorize_admin("nacos", origin.caller())?;
            if app.registry().identities().read().is_admin(username) {
                return Err(FacadeError::bad(format!("cannot delete admin: {username}")));
            }
            let remove = IdentityChange::RemoveUser {
                username: username.to_owned(),
            };
            change(app, origin, remove).await?;
            Ok(done(version, "delete user ok!"))
        }
        _ => Err(FacadeError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported here"),
        )),
    }
}

#[derive(Serialize)]
struct RoleRow<'a> {
    role: &'a str,
    username: &'a str,
}

/// `POST roles` (bind), `DELETE roles` (unbind from one user or all), `GET roles`.
async fn roles(app: &App, origin: &Origin, method: &Method, params: &Params, version: Version) -> Answer {
    app.authorize_admin("nacos", origin.caller())?;
    if *method == Method::GET {
        let state = app.registry().identities().read();
        let (user, role) = (params.get("username"), params.get("role"));
        let rows: Vec<RoleRow<'_>> = state
            .bindings()
            .filter(|(u, r)| user.is_none_or(|w| w == *u) && role.is_none_or(|w| w == *r))
            .map(|(username, role)| RoleRow { role, username })
            .collect();
        return Ok(ok(version, paged(rows, params)));
    }
    let role = params.required("role")?;
    if role == ADMIN_ROLE {
        return Err(FacadeError::bad(format!(
            "role '{ADMIN_ROLE}' is not permitted to create or delete!"
        )));
    }
    match *method {
        Method::POST => {
            let username = params.required("username")?;
            let (exists, bound) = {
                let state = app.registry().identities().read();
                let bound = state.holds(username, role);
                (state.users.contains_key(username), bound)
            };
            if !exists {
                return Err(FacadeError::bad(format!("user '{username}' not found!")));
            }
            if bound {
                return Err(FacadeError::bad(format!(
                    "user '{username}' already bound to the role '{role}'!"
                )));
            }
            let bind = IdentityChange::BindRole {
                role: role.to_owned(),
                username: username.to_owned(),
            };
            change(app, origin, bind).await?;
            Ok(done(version, "add role ok!"))
        }
        Method::DELETE => {
            let username = params.get("username");
            let unbind = IdentityChange::UnbindRole {
                role: role.to_owned(),
                username: username.map(str::to_owned),
            };
            change(app, origin, unbind).await?;
            Ok(done(
                version,
                &format!("delete role of user {} ok!", username.unwrap_or(role)),
            ))
        }
        _ => Err(FacadeError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported here"),
        )),
    }
}

#[derive(Serialize)]
struct PermissionRow<'a> {
    role: &'a str,
    resource: &'a str,
    action: &'static str,
}

/// `POST permissions` (grant), `DELETE permissions` (revoke), `GET permissions` (a page
/// with `search`, else whether that grant exists).
async fn permissions(
    app: &App,
    origin: &Origin,
    method: &Method,
    params: &Params,
    version: Version,
    rest: &str,
) -> Answer {
    app.authorize_admin("nacos", origin.caller())?;
    let listing = rest.ends_with("/list") || (version == Version::V1 && params.get("search").is_some());
    if *method == Method::GET && listing {
        let state = app.registry().identities().read();
        let role = params.get("role");
        let rows: Vec<PermissionRow<'_>> = state
            .permissions()
            .filter(|(r, _, _)| role.is_none_or(|w| w == *r))
            .map(|(role, resource, action)| PermissionRow {
                role,
                resource,
                action: action.as_str(),
            })
            .collect();
        return Ok(ok(version, paged(rows, params)));
    }
    let role = params.required("role")?;
    let resource = params.required("resource")?;
    let action_text = params.required("action")?;
    let action = Action::parse(action_text)
        .ok_or_else(|| FacadeError::bad(format!("action must be r, w or rw, got {action_text:?}")))?;
    check_resource(resource).map_err(|e| FacadeError::bad(e.to_string()))?;
    match *method {
        Method::GET => {
            let state = app.registry().identities().read();
            let held = |a: Action| state.has_grant(role, resource, a);
            let duplicate = held(action) || held(Action::ReadWrite);
            let body = json!({"code": 0, "message": "success", "data": duplicate});
            Ok(json_answer(StatusCode::OK, Bytes::from(body.to_string())))
        }
        Method::POST => {
            if !app.registry().identities().read().role_exists(role) {
                return Err(FacadeError::bad(format!("role {role} not found!")));
            }
            let grant = IdentityChange::Grant {
                role: role.to_owned(),
                resource: resource.to_owned(),
                action,
            };
            change(app, origin, grant).await?;
            Ok(done(version, "add permission ok!"))
        }
        Method::DELETE => {
            let revoke = IdentityChange::Revoke {
                role: role.to_owned(),
                resource: resource.to_owned(),
                action,
            };
            change(app, origin, revoke).await?;
            Ok(done(version, "delete permission ok!"))
        }
        _ => Err(FacadeError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported here"),
        )),
    }
}

/// The console's users, roles and permissions page (`/ui/users`), with its login form:
/// static, it logs in and manages through the v1 endpoints above.
pub(crate) fn console_page() -> Response<Body> {
    let mut response = registry_api::answer::typed(
        StatusCode::OK,
        Bytes::from_static(include_str!("users.html").as_bytes()),
        "text/html; charset=utf-8",
    );
    response
        .headers_mut()
        .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
