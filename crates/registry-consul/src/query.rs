//! The query parameters of Consul's endpoints, read once per request, and what the shared
//! ones do: `dc` (only this datacenter), `index` and `wait` (a blocking query), `stale` and
//! `consistent`, `token` (with `X-Consul-Token` and `Authorization: Bearer`).

use std::time::Duration;

use http::{Request, Response, StatusCode};
use registry_api::access::{Caller, Credentials};
use registry_api::request::decode;
use registry_api::{App, Body, Origin};
use registry_core::{Need, Resource};

use crate::decode::go_duration;
use crate::reply::Refused;
use crate::ConsulSettings;

/// The longest a blocking query waits, and how long when it says nothing (Consul's).
const MAX_WAIT: Duration = Duration::from_secs(600);
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// A request's query parameters.
#[derive(Debug, Default)]
pub(crate) struct Params {
    /// `index`: a blocking query waits until the index is above it.
    pub index: Option<u64>,
    /// `wait`, cut to 10 minutes (and to `--max-wait` where it is used).
    pub wait: Duration,
    /// `consistent`: a linearizable read.
    pub consistent: bool,
    /// `stale` (the default here too: any node answers from its copy).
    pub stale: bool,
    /// `token`.
    pub token: Option<String>,
    /// `passing`, as Go's `ParseBool` reads it (absent: false; present and empty: true).
    pub passing: Option<String>,
    /// Every `tag`.
    pub tags: Vec<String>,
    /// The rest, decoded, in order: what one endpoint reads (`note`, `cas`, `recurse`, …).
    pub other: Vec<(String, String)>,
}

impl Params {
    /// The parameters of `request`. A `dc` other than this datacenter is Consul's 500, a
    /// malformed `index` or `wait` its 400, and so is a `filter` (not evaluated here: an
    /// answer that ignored it would list what the client filtered out).
    pub(crate) fn of<B>(request: &Request<B>, settings: &ConsulSettings) -> Result<Params, Refused> {
        let mut params = Params {
            wait: DEFAULT_WAIT,
            ..Params::default()
        };
        for pair in request.uri().query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key).map_err(|e| Refused::bad(format!("Invalid query parameter: {e}")))?;
            let value = decode(value)
                .map_err(|e| Refused::bad(format!("Invalid value for ?{key}: {e}")))?
                .into_owned();
            match &*key {
                "dc" if !value.is_empty() && value != settings.datacenter => {
                    return Err(Refused(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "No path to datacenter".to_owned(),
                    ));
                }
                "dc" => {}
                "index" => {
                    params.index = Some(value.parse().map_err(|_| Refused::bad("Invalid index"))?);
                }
                "wait" => {
                    let ms = go_duration(&value).map_err(|_| Refused::bad("Invalid wait time"))?;
                    params.wait = Duration::from_millis(ms).min(MAX_WAIT);
                }
                "consistent" => params.consistent = true,
                "stale" => params.stale = true,
                "token" => params.token = Some(value).filter(|t| !t.is_empty()),
                "passing" => params.passing = Some(value),
                "tag" => params.tags.push(value),
                "filter" if !value.is_empty() => {
                    return Err(Refused::bad(
                        "Failed to create boolexpr evaluator: ?filter expressions are not evaluated by maregistry",
                    ))
                }
                _ => params.other.push((key.into_owned(), value)),
            }
        }
        if params.consistent && params.stale {
            return Err(Refused::bad(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        Ok(params)
    }

    /// The first value of `name` among the other parameters.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.other.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether flag `name` is present (Consul reads `?recurse`, `?keys`, `?raw` by
    /// presence: py-consul sends `recurse=1`, `keys=True`).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !matches!(v, "false" | "0"))
    }

    /// `?passing`: Go's `ParseBool`, or Consul's 400.
    pub(crate) fn passing(&self) -> Result<bool, Refused> {
        match self.passing.as_deref() {
            None => Ok(false),
            Some("" | "1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(_) => Err(Refused::bad("Invalid value for ?passing")),
        }
    }

    /// With `?index`, waits until `version()` is above it (at most `?wait`); services empty:
    /// any change of the registry wakes it.
    pub(crate) async fn block(&self, app: &App, services: &[&str], version: impl Fn() -> u64) {
        if let Some(index) = self.index {
            app.wait_for(services, index, self.wait(app), version).await;
        }
    }

    /// How long a blocking read waits: `?wait`, within the node's `--max-wait`.
    pub(crate) fn wait(&self, app: &App) -> Duration {
        self.wait.min(app.limits().max_wait)
    }

    /// With `?consistent`, makes the read linearizable: `Some` is the leader's answer to
    /// the read, relayed.
    pub(crate) async fn consistency<B>(
        &self,
        app: &App,
        request: &Request<B>,
    ) -> Result<Option<Response<Body>>, Refused> {
        if !self.consistent {
            return Ok(None);
        }
        Ok(app.read_consistently(request).await?)
    }

    /// Who calls: the router found it from `Authorization`; else the Consul token
    /// (`?token`, then `X-Consul-Token`), checked as any token of the node.
    pub(crate) fn caller<B>(&self, app: &App, request: &Request<B>) -> Caller {
        let caller = app.caller(request);
        if !app.auth_enabled() {
            return caller;
        }
        let header = request.headers().get("x-consul-token").and_then(|v| v.to_str().ok());
        let token = self.token.as_deref().or(header).filter(|t| !t.is_empty());
        match token {
            Some(token) => app.caller_or(
                caller,
                &Credentials {
                    access_token: Some(token),
                    ..Credentials::default()
                },
            ),
            None => caller,
        }
    }

    /// Where a write comes from: the request, and whoever its Consul token names.
    pub(crate) fn origin<B>(&self, app: &App, request: &Request<B>) -> Origin {
        Origin::of(request).with_caller(self.caller(app, request))
    }

    /// Refuses a read of `resource` the caller may not make.
    pub(crate) fn may_read<B>(&self, app: &App, request: &Request<B>, resource: &Resource<'_>) -> Result<(), Refused> {
        if !app.auth_enabled() {
            return Ok(());
        }
        Ok(app.authorize("consul", &self.caller(app, request), resource, Need::Read)?)
    }
}
