//! The endpoints the running cluster mode serves itself (raft's `/raft/...` calls and
//! membership changes, the snapshot mode's refusal of them): the API reads the declared
//! parameters and body and hands them over, and relays to the leader when the mode says
//! the call belongs there. It knows nothing else of them.

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_cluster::{CoordinatorError, RouteCall};

use crate::answer::json;
use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::forward::{forward, Outgoing, Relay};
use crate::headers::is_forwarded;
use crate::request::{read_body, Query};

/// A call to `app.cluster.routes()[route]` → the mode's JSON answer.
pub(crate) async fn serve(app: &App, request: Request<Incoming>, route: usize) -> Result<Response<Body>, ApiError> {
    let Some(spec) = app.cluster.routes().get(route).copied() else {
        return Err(ApiError::NotFound);
    };
    let query = Query::of(&request);
    let params = spec
        .params
        .iter()
        .map(|name| query.required(name))
        .collect::<Result<Vec<String>, ApiError>>()?;
    let forwarded = is_forwarded(&request);
    let method = request.method().clone();
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let authorization = request.headers().get(AUTHORIZATION).cloned();
    let limits = if spec.peer_body {
        app.limits.for_peers()
    } else {
        app.limits
    };
    let body = read_body(request, &limits).await?;
    let call = RouteCall {
        params,
        body: body.clone(),
    };
    match app.cluster.serve_route(route, call).await {
        Ok(answer) => Ok(json(StatusCode::OK, answer)),
        Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !forwarded => {
            let outgoing = Outgoing {
                method,
                target: &path_and_query,
                authorization: authorization.as_ref(),
                body,
            };
            forward(app, &leader, Relay::Write, outgoing).await
        }
        Err(e) => Err(e.into()),
    }
}
