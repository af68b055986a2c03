//! The parameters of a Nacos v1 request: the query string, then a form body.

use std::collections::HashMap;

use http::Request;

use registry_api::access::Credentials;
use registry_api::request::decode;
use registry_api::{App, FacadeError, Origin};

/// The parameters of a request: the query string, then a form body (the first value of a
/// name wins), decoded strictly.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn of<B>(request: &Request<B>) -> Result<Params, FacadeError> {
        Params::parse(request.uri().query().unwrap_or(""), None)
    }

    pub(crate) fn parse(query: &str, body: Option<&[u8]>) -> Result<Params, FacadeError> {
        let body = body.map(String::from_utf8_lossy);
        Params::parse_text(query, body.as_deref())
    }

    /// [`Params::parse`] of a body already known to be UTF-8.
    pub(crate) fn parse_text(query: &str, body: Option<&str>) -> Result<Params, FacadeError> {
        let mut params = HashMap::new();
        for text in std::iter::once(query).chain(body) {
            for pair in text.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let (key, value) = match (decode(key), decode(value)) {
                    (Ok(key), Ok(value)) => (key, value),
                    (Err(e), _) | (_, Err(e)) => return Err(FacadeError::bad(format!("parameter {key:?} {e}"))),
                };
                params.entry(key.into_owned()).or_insert_with(|| value.into_owned());
            }
        }
        Ok(Params(params))
    }

    /// A present, non-empty value.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(crate) fn required(&self, name: &str) -> Result<&str, FacadeError> {
        self.get(name)
            .ok_or_else(|| FacadeError::bad(format!("Param '{name}' is required.")))
    }

    /// The credentials the parameters carry: `accessToken`, or `username` and `password`.
    pub(crate) fn credentials(&self) -> Credentials<'_> {
        Credentials {
            access_token: self.get("accessToken"),
            username: self.get("username"),
            password: self.get("password"),
            ..Credentials::default()
        }
    }

    /// `origin`, whose caller is whoever these parameters name when its request named no one.
    pub(crate) fn origin(&self, app: &App, origin: Origin) -> Origin {
        if !app.auth_enabled() {
            return origin;
        }
        let caller = app.caller_or(origin.caller().clone(), &self.credentials());
        origin.with_caller(caller)
    }

    /// `true`/`false` in any case; absent is `default`.
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, FacadeError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(FacadeError::bad(format!(
                "Param '{name}' must be true or false, got {v:?}"
            ))),
        }
    }
}

/// A whole number parameter; absent is `default`.
pub(crate) fn number(params: &Params, name: &str, default: usize) -> Result<usize, FacadeError> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| FacadeError::bad(format!("Param '{name}' must be a whole number, got {v:?}"))),
    }
}
