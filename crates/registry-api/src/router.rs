use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::app::App;
use crate::error::ApiError;
use crate::handlers::{cluster, discovery, registration, snapshot};

/// Every endpoint of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Reg,
    Unreg,
    Renew,
    Renews,
    FindAll,
    Version,
    Versions,
    Snapshot,
    Info,
    Cluster,
    Leader,
    SetLeader,
}

impl Route {
    /// The route of `path`, with the path as a static string for error answers.
    fn of(path: &str) -> Option<(Route, &'static str)> {
        Some(match path {
            "/reg" => (Route::Reg, "/reg"),
            "/unreg" => (Route::Unreg, "/unreg"),
            "/renew" => (Route::Renew, "/renew"),
            "/renews" => (Route::Renews, "/renews"),
            "/findAll" => (Route::FindAll, "/findAll"),
            "/findall" => (Route::FindAll, "/findall"),
            "/version" => (Route::Version, "/version"),
            "/versions" => (Route::Versions, "/versions"),
            "/snapshot" => (Route::Snapshot, "/snapshot"),
            "/info" => (Route::Info, "/info"),
            "/cluster" => (Route::Cluster, "/cluster"),
            "/leader" => (Route::Leader, "/leader"),
            "/sl" => (Route::SetLeader, "/sl"),
            _ => return None,
        })
    }
}

/// The hyper service: dispatches on the path, answers errors as JSON. Never fails.
pub(crate) async fn handle(app: Arc<App>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some((route, path)) = Route::of(request.uri().path()) else {
        return Ok(ApiError::NotFound.into_response(request.uri().path()));
    };
    if !matches!(*request.method(), Method::GET | Method::POST) {
        let method = request.method().to_string();
        return Ok(ApiError::MethodNotAllowed(method).into_response(path));
    }
    let answer = match route {
        Route::Reg => registration::reg(&app, request).await,
        Route::Unreg => registration::unreg(&app, request).await,
        Route::Renew => registration::renew(&app, request).await,
        Route::Renews => registration::renews(&app, request).await,
        Route::FindAll => discovery::find_all(&app, &request),
        Route::Version => discovery::version(&app, &request),
        Route::Versions => discovery::versions(&app, &request),
        Route::Snapshot => Ok(snapshot::snapshot(&app)),
        Route::Info => Ok(cluster::info(&app)),
        Route::Cluster => Ok(cluster::servers(&app)),
        Route::Leader => Ok(cluster::leader(&app)),
        Route::SetLeader => Ok(cluster::set_leader(&app)),
    };
    Ok(answer.unwrap_or_else(|e| {
        tracing::debug!(path, error = %e, "request refused");
        e.into_response(path)
    }))
}
