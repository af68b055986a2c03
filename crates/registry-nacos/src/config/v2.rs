//! The Nacos v2 open API for configs (`/nacos/v2/cs/config`): get, publish and remove,
//! answered as `{"code":0,"message":"success","data":…}` (`ConfigControllerV2`); the
//! namespace is `namespaceId`.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use registry_api::answer::json as json_answer;
use registry_api::{App, Body, FacadeError, Origin};
use registry_core::Cas;

use super::http::{form, no_cache};
use super::names::{named, Named};
use super::v1::fields;
use super::{publish, remove, ConfigListeners, Written, CAS_FAILED, NOT_FOUND, NO_TAG};
use crate::v1::Params;

/// Nacos's v2 error codes.
const PARAMETER_VALIDATE_ERROR: u32 = 20_002;
const RESOURCE_NOT_FOUND: u32 = 20_004;
const CONFIG_CAS_FAILED: u32 = 20_010;
const SERVER_ERROR: u32 = 30_000;

/// Answers a request under `/nacos/v2/cs/` (`rest` is the path after it).
pub(crate) async fn serve_v2(
    app: &App,
    listeners: &ConfigListeners,
    request: Request<Incoming>,
    rest: &str,
) -> Response<Body> {
    let method = request.method().clone();
    let answer = match (&method, rest) {
        (&Method::GET, "config") => match Params::of(&request) {
            Ok(params) => get(app, &params),
            Err(e) => Err(e),
        },
        (&Method::POST | &Method::PUT, "config") => Box::pin(write(app, listeners, request)).await,
        (&Method::DELETE, "config") => Box::pin(delete(app, request)).await,
        (_, "config") => Err(FacadeError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported here"),
        )),
        _ => Err(FacadeError::not_found(format!(
            "no Nacos endpoint at /nacos/v2/cs/{rest}"
        ))),
    };
    answer.unwrap_or_else(|e| {
        let code = match e.status() {
            StatusCode::NOT_FOUND => RESOURCE_NOT_FOUND,
            StatusCode::CONFLICT => CONFIG_CAS_FAILED,
            status if status.is_client_error() => PARAMETER_VALIDATE_ERROR,
            _ => SERVER_ERROR,
        };
        result(e.status(), code, e.message(), Value::Null)
    })
}

/// `{"code", "message", "data"}` with `status`.
fn result(status: StatusCode, code: u32, message: &str, data: Value) -> Response<Body> {
    let body = json!({"code": code, "message": message, "data": data});
    no_cache(json_answer(status, Bytes::from(body.to_string())))
}

fn names(params: &Params) -> Result<Named, FacadeError> {
    named(params.get("dataId"), params.get("group"), params.get("namespaceId")).map_err(FacadeError::bad)
}

fn get(app: &App, params: &Params) -> Result<Response<Body>, FacadeError> {
    if params.get("tag").is_some() {
        return Err(FacadeError::bad(NO_TAG));
    }
    let key = names(params)?.key;
    let config = app
        .registry()
        .configs()
        .get(&key)
        .ok_or_else(|| FacadeError::not_found(NOT_FOUND))?;
    Ok(result(
        StatusCode::OK,
        0,
        "success",
        Value::from(config.fields.content.as_str()),
    ))
}

async fn write(
    app: &App,
    listeners: &ConfigListeners,
    request: Request<Incoming>,
) -> Result<Response<Body>, FacadeError> {
    let origin = Origin::of(&request);
    let params = form(app, request).await?;
    let origin = params.origin(app, origin);
    if params.get("tag").is_some() {
        return Err(FacadeError::bad(NO_TAG));
    }
    let key = names(&params)?.key;
    let mut fields = fields(&params)?;
    if fields.src_user.is_empty() {
        fields.src_user = params.get("srcUser").unwrap_or("").to_owned();
    }
    if fields.tags.is_empty() {
        fields.tags = params.get("configTags").unwrap_or("").to_owned();
    }
    let cas = params.get("casMd5").map(|md5| Cas::Md5(md5.to_owned()));
    match publish(app, listeners, &origin, key, fields, cas).await? {
        Written::Done => Ok(result(StatusCode::OK, 0, "success", Value::Bool(true))),
        Written::CasFailed => Err(FacadeError::new(StatusCode::CONFLICT, CAS_FAILED)),
    }
}

async fn delete(app: &App, request: Request<Incoming>) -> Result<Response<Body>, FacadeError> {
    let origin = Origin::of(&request);
    let params = form(app, request).await?;
    let origin = params.origin(app, origin);
    if params.get("tag").is_some() {
        return Err(FacadeError::bad(NO_TAG));
    }
    let key = names(&params)?.key;
    match remove(app, &origin, key, None).await? {
        Written::Done => Ok(result(StatusCode::OK, 0, "success", Value::Bool(true))),
        Written::CasFailed => Err(FacadeError::new(StatusCode::CONFLICT, CAS_FAILED)),
    }
}
