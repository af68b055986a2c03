//! Users, logins and the one access check (docs/spec.md §9), for every protocol.
//!
//! With `--auth-enabled` a node has a [`Guard`]. The router identifies the caller of
//! every request once ([`Caller`]: a user by token or password, a holder of the client or
//! cluster token, or nobody) from whatever the protocol carries, and keeps it with the
//! request; a protocol without HTTP requests (gRPC) identifies its callers through
//! [`App::identify`]. Then the decision is always [`App::authorize`]: the caller, the
//! resource (`namespace:group:name`) and whether it is read or written, decided by the
//! permissions the log holds ([`registry_core::IdentityState::allows`]). Writes are checked
//! in the gateway, for every protocol at once; reads where each protocol knows what it
//! reads. Refusals are counted by protocol and reason and logged with the user and the
//! resource, never a secret.
//!
//! - `token` — signed, expiring login tokens.
//! - `password` — bcrypt hashes, the checked-password memory, slowed failures.

mod password;
mod token;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::AUTHORIZATION;
use http::Request;
use registry_core::{Need, Resource};

use crate::app::App;
use crate::error::ApiError;
use crate::request::decode;

use password::Passwords;
pub use password::{hash as hash_password, MAX_PASSWORD_LEN};
pub use token::{TokenError, TokenKey, MIN_SECRET_LEN};

/// What `--auth-enabled` turns on: the token key, how long tokens last, and this node's
/// memory of checked passwords, failed logins and refusals.
#[derive(Debug)]
pub struct Guard {
    key: TokenKey,
    ttl: Duration,
    passwords: Passwords,
    /// Refusals by (protocol, reason).
    denials: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Guard {
    /// A guard signing tokens with `key` that last `ttl`.
    pub fn new(key: TokenKey, ttl: Duration) -> Guard {
        Guard {
            key,
            ttl,
            passwords: Passwords::default(),
            denials: Mutex::default(),
        }
    }

    /// Refusals so far, by (protocol, reason).
    pub(crate) fn denials(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.denials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn deny(&self, protocol: &'static str, reason: &'static str) {
        *self
            .denials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((protocol, reason))
            .or_default() += 1;
    }
}

/// Who is calling, as far as access goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Caller {
    /// May do everything: auth is off, or the caller holds the client or cluster token,
    /// or the node acts itself.
    Trusted,
    /// A user, by a valid token or password.
    User(Arc<str>),
    /// No identity given.
    #[default]
    Nobody,
    /// An identity that did not hold: why, in the words Nacos uses.
    Failed(&'static str),
}

/// The protocol family a request reached (the facade's name, `seed` for the shared API):
/// what its refusals are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol(pub &'static str);

/// The credentials a request carries, however its protocol carries them. Its `Debug` form
/// shows which are present, never their values.
#[derive(Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// `Authorization` as sent.
    pub authorization: Option<&'a [u8]>,
    /// Nacos's `accessToken` (header, parameter or gRPC header).
    pub access_token: Option<&'a str>,
    /// `username` and `password` (parameters).
    pub username: Option<&'a str>,
    /// See `username`.
    pub password: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("authorization", &self.authorization.is_some())
            .field("access_token", &self.access_token.is_some())
            .field("username", &self.username)
            .field("password", &self.password.is_some())
            .finish()
    }
}

impl<'a> Credentials<'a> {
    /// What an HTTP request carries in its head: `Authorization`, the `accessToken` header,
    /// and the `accessToken`, `username` and `password` query parameters (decoded into
    /// `scratch`).
    pub fn of<B>(request: &'a Request<B>, scratch: &'a mut Vec<String>) -> Credentials<'a> {
        let headers = request.headers();
        let mut found = [None, None, None];
        for pair in request.uri().query().unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "accessToken" => 0,
                "username" => 1,
                "password" => 2,
                _ => continue,
            };
            if found[slot].is_none() {
                found[slot] = decode(value).ok().map(|v| v.into_owned());
            }
        }
        let header_token = headers.get("accessToken").and_then(|v| v.to_str().ok());
        let [token, username, password] = found;
        let base = scratch.len();
        scratch.extend([token, username, password].into_iter().map(Option::unwrap_or_default));
        let at = |i: usize| Some(scratch[base + i].as_str()).filter(|s| !s.is_empty());
        Credentials {
            authorization: headers.get(AUTHORIZATION).map(|v| v.as_bytes()),
            access_token: header_token.or_else(|| at(0)),
            username: at(1),
            password: at(2),
        }
    }
}

/// What a login answers.
#[derive(Debug, Clone)]
pub struct Login {
    /// The token.
    pub token: String,
    /// How long it lasts, seconds.
    pub ttl_secs: u64,
    /// Whether the user holds the admin role.
    pub admin: bool,
}

/// What `Authorization: Basic` carries.
fn basic(value: &[u8]) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix(b"Basic ")
        .or_else(|| value.strip_prefix(b"basic "))?;
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

impl App {
    /// Whether `--auth-enabled` is on.
    pub fn auth_enabled(&self) -> bool {
        self.auth.guard.is_some()
    }

    /// Who presents `credentials`. A client or cluster token is trusted; a token is
    /// checked against the key and the user must still exist; a username and password are
    /// checked against the stored hash.
    pub fn identify(&self, credentials: &Credentials<'_>) -> Caller {
        let Some(guard) = &self.auth.guard else {
            return Caller::Trusted;
        };
        let bearer = credentials.authorization.and_then(|value| {
            value
                .strip_prefix(b"Bearer ")
                .or_else(|| value.strip_prefix(b"bearer "))
                .and_then(|t| std::str::from_utf8(t).ok())
        });
        if let Some(token) = bearer.or(credentials.access_token) {
            if self.auth.holds_a_token(token.as_bytes()) {
                return Caller::Trusted;
            }
            return match guard.key.verify(token, self.now_ms() / 1000) {
                Ok(user) if self.registry().identities().read().users.contains_key(&user) => {
                    Caller::User(Arc::from(user))
                }
                Ok(_) => Caller::Failed("user not found!"),
                Err(TokenError::Expired) => Caller::Failed("token expired!"),
                Err(TokenError::Invalid) => Caller::Failed("token invalid!"),
            };
        }
        // Basic credentials first: an admin endpoint's `username` names whom it manages.
        let pair =
            credentials
                .authorization
                .and_then(basic)
                .or_else(|| match (credentials.username, credentials.password) {
                    (Some(user), Some(password)) => Some((user.to_owned(), password.to_owned())),
                    _ => None,
                });
        match pair {
            Some((user, password)) => match self.password_matches(guard, &user, &password) {
                true => Caller::User(Arc::from(user)),
                false => Caller::Failed("unknown user or wrong password!"),
            },
            None => Caller::Nobody,
        }
    }

    /// Whether `password` is `user`'s. A password sent with a request counts as a login:
    /// failures in a row hold the name back, refused unchecked for a while.
    fn password_matches(&self, guard: &Guard, user: &str, password: &str) -> bool {
        let now = self.now_ms();
        if guard.passwords.held_back(user, now) {
            return false;
        }
        let stored = self.registry().identities().read().users.get(user).cloned();
        let ok = stored.is_some_and(|stored| guard.passwords.matches(user, password, &stored));
        guard.passwords.count(user, ok, now);
        ok
    }

    /// Whether `caller` may do `need` to `resource`; a refusal is counted under
    /// `protocol`, logged, and answered 403 with why.
    pub fn authorize(
        &self,
        protocol: &'static str,
        caller: &Caller,
        resource: &Resource<'_>,
        need: Need,
    ) -> Result<(), ApiError> {
        let Some(guard) = &self.auth.guard else {
            return Ok(());
        };
        match caller {
            Caller::Trusted => Ok(()),
            Caller::User(user) if self.registry().identities().read().allows(user, resource, need) => Ok(()),
            _ => Err(refuse(guard, protocol, caller, resource, need)),
        }
    }

    /// Whether `caller` holds the admin role (or is trusted): what managing users, roles
    /// and permissions needs. A refusal as [`App::authorize`]'s.
    pub fn authorize_admin(&self, protocol: &'static str, caller: &Caller) -> Result<(), ApiError> {
        let Some(guard) = &self.auth.guard else {
            return Ok(());
        };
        match caller {
            Caller::Trusted => Ok(()),
            Caller::User(user) if self.registry().identities().read().is_admin(user) => Ok(()),
            _ => Err(refuse(guard, protocol, caller, &Resource::ALL, Need::Write)),
        }
    }

    /// A login of `user` with `password`: a token when they match (failures in a row are
    /// held back more and more); `None` with auth off.
    pub async fn login(&self, user: &str, password: &str) -> Result<Option<Login>, ApiError> {
        let Some(guard) = &self.auth.guard else {
            return Ok(None);
        };
        let delay = guard.passwords.delay(user, self.now_ms());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // bcrypt takes tens of milliseconds on purpose: off the async threads.
        let stored = self.registry().identities().read().users.get(user).cloned();
        let ok = match stored {
            Some(stored) => {
                let (guard, user, password) = (guard.clone(), user.to_owned(), password.to_owned());
                tokio::task::spawn_blocking(move || guard.passwords.matches(&user, &password, &stored))
                    .await
                    .unwrap_or(false)
            }
            None => false,
        };
        guard.passwords.count(user, ok, self.now_ms());
        if !ok {
            guard.deny("login", "bad_password");
            tracing::info!(user, "login refused: unknown user or wrong password");
            return Err(ApiError::Forbidden(
                "User not found! Please check user exist or password is right!".to_owned(),
            ));
        }
        let ttl_secs = guard.ttl.as_secs().max(1);
        Ok(Some(Login {
            token: guard.key.sign(user, self.now_ms() / 1000 + ttl_secs),
            ttl_secs,
            admin: self.registry().identities().read().is_admin(user),
        }))
    }

    /// The caller the router found for `request` ([`Caller::Trusted`] with auth off).
    pub fn caller<B>(&self, request: &Request<B>) -> Caller {
        match (&self.auth.guard, request.extensions().get::<Caller>()) {
            (None, _) => Caller::Trusted,
            (Some(_), Some(caller)) => caller.clone(),
            (Some(_), None) => Caller::Nobody,
        }
    }

    /// `caller` unless it is nobody and `credentials` (read from a body) name someone.
    pub fn caller_or(&self, caller: Caller, credentials: &Credentials<'_>) -> Caller {
        match caller {
            Caller::Nobody => self.identify(credentials),
            caller => caller,
        }
    }
}

/// Counts and logs a refusal of `caller`, and says why.
fn refuse(guard: &Guard, protocol: &'static str, caller: &Caller, resource: &Resource<'_>, need: Need) -> ApiError {
    let (reason, message) = match caller {
        Caller::Trusted | Caller::User(_) => ("no_permission", "authorization failed!"),
        Caller::Nobody => (
            "no_identity",
            "no identity: log in (POST /nacos/v1/auth/login) and send the accessToken, or send username and password",
        ),
        Caller::Failed(why) => ("failed_identity", *why),
    };
    guard.deny(protocol, reason);
    let user = match caller {
        Caller::User(user) => user,
        _ => "",
    };
    tracing::info!(
        protocol,
        user,
        namespace = resource.namespace,
        group = resource.group,
        name = resource.name,
        need = ?need,
        reason,
        "access denied"
    );
    ApiError::Forbidden(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_headers_and_the_query_decoded() {
        let request = Request::get("/x?username=al%20ice&password=p%26w&accessToken=&other=1")
            .header("accessToken", "from-header")
            .header(AUTHORIZATION, "Bearer b")
            .body(())
            .unwrap();
        let mut scratch = Vec::new();
        let credentials = Credentials::of(&request, &mut scratch);
        assert_eq!(
            credentials.access_token,
            Some("from-header"),
            "the header before an empty parameter"
        );
        assert_eq!(
            (credentials.username, credentials.password),
            (Some("al ice"), Some("p&w"))
        );
        assert_eq!(credentials.authorization, Some(&b"Bearer b"[..]));
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("p&w") && !shown.contains("from-header"), "{shown}");

        let request = Request::get("/x?accessToken=t%2B1").body(()).unwrap();
        let mut scratch = Vec::new();
        assert_eq!(Credentials::of(&request, &mut scratch).access_token, Some("t+1"));
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let encoded = format!("Basic {}", STANDARD.encode("user:pa:ss"));
        assert_eq!(basic(encoded.as_bytes()), Some(("user".to_owned(), "pa:ss".to_owned())));
        for bad in ["Basic !!!", "Bearer x", "Basic ", "basic dXNlcg=="] {
            assert_eq!(basic(bad.as_bytes()), None, "{bad}");
        }
    }
}
