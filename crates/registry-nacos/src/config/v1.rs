//! The Nacos v1 config endpoints (`/nacos/v1/cs/configs`, `/history`): get, publish,
//! remove, search and detail, as Nacos's `ConfigController` answers them (docs/api.md).

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use registry_api::{App, Body, FacadeError, Origin};
use registry_core::{Cas, Config, ConfigFields, ConfigKey};

use super::http::{header, http_date, ok_json, page, refusal, text, Answer};
use super::names::{named, Named};
use super::{known_type, publish, remove, ConfigListeners, Written, CAS_FAILED, NOT_FOUND, NO_BETA, NO_TAG};
use crate::v1::{number, Params};

/// Answers a request under `/nacos/v1/cs/` (`rest` is the path after it), but the long
/// poll, which has its own route.
pub(crate) async fn serve_v1(
    app: &App,
    listeners: &ConfigListeners,
    request: Request<Incoming>,
    rest: &str,
) -> Response<Body> {
    let method = request.method().clone();
    let answer = match (&method, rest) {
        (&Method::GET, "configs") => match Params::of(&request) {
            Ok(params) => read(app, &params),
            Err(e) => Err(e),
        },
        (&Method::POST | &Method::PUT, "configs") => Box::pin(write(app, listeners, request)).await,
        (&Method::DELETE, "configs") => Box::pin(delete(app, request)).await,
        (&Method::GET, "history" | "history/previous" | "history/configs") => {
            Params::of(&request).and_then(|params| super::history::serve(app, rest, &params))
        }
        (_, "configs" | "history" | "history/previous" | "history/configs") => Err(FacadeError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported here"),
        )),
        _ => Err(FacadeError::not_found(format!(
            "no Nacos endpoint at /nacos/v1/cs/{rest}"
        ))),
    };
    answer.unwrap_or_else(refusal)
}

/// `GET configs`: one config's content, or a search, an export, a detail.
fn read(app: &App, params: &Params) -> Answer {
    if params.get("search").is_some() {
        return search(app, params);
    }
    if params.flag("export", false)? {
        return super::transfer::export(app, params, false);
    }
    if params.flag("exportV2", false)? {
        return super::transfer::export(app, params, true);
    }
    if params.flag("beta", false)? {
        return Err(FacadeError::bad(NO_BETA));
    }
    if params.get("tag").is_some() {
        return Err(FacadeError::bad(NO_TAG));
    }
    let Named { key, .. } = names(params)?;
    let Some(config) = app.registry().configs().get(&key) else {
        return Ok(text(StatusCode::NOT_FOUND, NOT_FOUND));
    };
    if params.get("show") == Some("all") {
        return Ok(ok_json(&Detail::of(&key, &config)));
    }
    Ok(content(&config))
}

/// A config's content with Nacos's headers.
fn content(config: &Config) -> Response<Body> {
    let mut response = text(StatusCode::OK, config.fields.content.clone());
    header(&mut response, "content-md5", config.md5());
    header(&mut response, "config-type", config.kind());
    header(&mut response, "last-modified", &http_date(config.modified_ms));
    if !config.fields.encrypted_data_key.is_empty() {
        header(&mut response, "encrypted-data-key", &config.fields.encrypted_data_key);
    }
    response
}

/// The config a request names (`dataId`, `group`, `tenant`), as a 400 when it breaks
/// Nacos's rules.
pub(crate) fn names(params: &Params) -> Result<Named, FacadeError> {
    named(params.get("dataId"), params.get("group"), params.get("tenant")).map_err(FacadeError::bad)
}

/// `POST configs`: a publish (form fields, `casMd5` in a header), or an import.
async fn write(app: &App, listeners: &ConfigListeners, request: Request<Incoming>) -> Answer {
    let query = Params::of(&request)?;
    if query.flag("import", false)? {
        return super::transfer::import(app, listeners, request, &query).await;
    }
    let origin = Origin::of(&request);
    let header_of = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if header_of("betaIps").is_some() {
        return Err(FacadeError::bad(NO_BETA));
    }
    let cas = header_of("casMd5").map(Cas::Md5);
    let params = super::http::form(app, request).await?;
    let origin = params.origin(app, origin);
    if params.get("tag").is_some() {
        return Err(FacadeError::bad(NO_TAG));
    }
    let Named { key, .. } = names(&params)?;
    let fields = fields(&params)?;
    match publish(app, listeners, &origin, key, fields, cas).await? {
        Written::Done => Ok(text(StatusCode::OK, "true")),
        Written::CasFailed => Err(FacadeError::new(StatusCode::CONFLICT, CAS_FAILED)),
    }
}

/// What a v1 or v2 publish sets, from its form: the content (required, not blank) and the
/// descriptive fields; an unknown type is `text`.
pub(crate) fn fields(params: &Params) -> Result<ConfigFields, FacadeError> {
    let content = params.get("content").unwrap_or("");
    if content.trim().is_empty() {
        return Err(FacadeError::bad("content is required and must not be blank"));
    }
    let field = |name: &str| params.get(name).unwrap_or("").to_owned();
    Ok(ConfigFields {
        content: content.to_owned(),
        kind: known_type(params.get("type").unwrap_or("")),
        desc: field("desc"),
        app_name: field("appName"),
        tags: field("config_tags"),
        encrypted_data_key: field("encryptedDataKey"),
        src_user: field("src_user"),
        flags: 0,
    })
}

/// `DELETE configs`.
async fn delete(app: &App, request: Request<Incoming>) -> Answer {
    let origin = Origin::of(&request);
    let params = super::http::form(app, request).await?;
    let origin = params.origin(app, origin);
    if params.get("tag").is_some() {
        return Err(FacadeError::bad(NO_TAG));
    }
    if params.get("delType").is_some() {
        return Err(FacadeError::bad(
            "delType=ids is not served: delete each config by dataId, group and tenant",
        ));
    }
    let Named { key, .. } = names(&params)?;
    match remove(app, &origin, key, None).await? {
        Written::Done => Ok(text(StatusCode::OK, "true")),
        Written::CasFailed => Err(FacadeError::new(StatusCode::CONFLICT, CAS_FAILED)),
    }
}

/// A config in a search answer (Nacos's `ConfigInfo`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listed<'a> {
    id: String,
    data_id: &'a str,
    group: &'a str,
    content: &'a str,
    md5: &'a str,
    encrypted_data_key: &'a str,
    tenant: &'a str,
    app_name: &'a str,
    r#type: &'a str,
    last_modified: u64,
}

impl<'a> Listed<'a> {
    pub(crate) fn of(key: &'a ConfigKey, config: &'a Config) -> Listed<'a> {
        Listed {
            id: config.created_revision.to_string(),
            data_id: &key.data_id,
            group: &key.group,
            content: &config.fields.content,
            md5: config.md5(),
            encrypted_data_key: &config.fields.encrypted_data_key,
            tenant: &key.namespace,
            app_name: &config.fields.app_name,
            r#type: config.kind(),
            last_modified: config.modified_ms,
        }
    }
}

/// A config with everything kept of it (Nacos's `ConfigAllInfo`, `show=all`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail<'a> {
    #[serde(flatten)]
    listed: Listed<'a>,
    desc: &'a str,
    config_tags: &'a str,
    create_user: &'a str,
    create_time: u64,
    modify_time: u64,
    revision: u64,
}

impl<'a> Detail<'a> {
    fn of(key: &'a ConfigKey, config: &'a Config) -> Detail<'a> {
        Detail {
            listed: Listed::of(key, config),
            desc: &config.fields.desc,
            config_tags: &config.fields.tags,
            create_user: &config.fields.src_user,
            create_time: config.created_ms,
            modify_time: config.modified_ms,
            revision: config.revision,
        }
    }
}

/// `GET configs?search=accurate|blur`: the configs of `tenant` whose `dataId` and `group`
/// match (exactly, or as patterns where `*` is any text; blank matches all), and
/// `appName` and `config_tags` when given, a page at a time.
fn search(app: &App, params: &Params) -> Answer {
    let blur = match params.get("search") {
        Some("blur") => true,
        Some("accurate") => false,
        Some(other) => {
            return Err(FacadeError::bad(format!(
                "search must be accurate or blur, got {other:?}"
            )))
        }
        None => false,
    };
    let namespace = match params.get("tenant").map(str::trim) {
        None | Some("") => registry_core::DEFAULT_NAMESPACE,
        Some(tenant) => tenant,
    };
    let (data_id, group) = (params.get("dataId").unwrap_or(""), params.get("group").unwrap_or(""));
    let (app_name, tags) = (params.get("appName"), params.get("config_tags"));
    let matches =
        |pattern: &str, text: &str| pattern.is_empty() || if blur { glob(pattern, text) } else { pattern == text };
    let found = app.registry().configs().list(Some(namespace), |key, config| {
        matches(data_id, &key.data_id)
            && matches(group, &key.group)
            && app_name.is_none_or(|name| config.fields.app_name == name)
            && tags.is_none_or(|wanted| has_tags(&config.fields.tags, wanted))
    });
    let listed: Vec<Listed<'_>> = found.iter().map(|(key, config)| Listed::of(key, config)).collect();
    let page_no = number(params, "pageNo", 1)?;
    let page_size = number(params, "pageSize", 10)?;
    Ok(ok_json(&page(listed, page_no, page_size)))
}

/// Whether the comma-separated `tags` hold every tag of `wanted`.
fn has_tags(tags: &str, wanted: &str) -> bool {
    let tags: Vec<&str> = tags.split(',').map(str::trim).collect();
    wanted
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .all(|tag| tags.contains(&tag))
}

/// Whether `text` matches `pattern`, where `*` stands for any text.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_nacos_blur_searches() {
        assert!(glob("app*", "app.yaml"));
        assert!(glob("*yaml", "app.yaml"));
        assert!(glob("*p.y*", "app.yaml"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("ab*ba", "aba"), "the ends do not overlap");
        assert!(!glob("app", "app.yaml"), "no star: exact");
        assert!(has_tags("a, b,c", "c,a"));
        assert!(!has_tags("a,b", "d"));
    }
}
