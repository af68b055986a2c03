//! The write pipeline every protocol goes through: accept (relay to the leader when
//! another node leads, else read the body within its limit), validate (the caller's
//! parsing), then submit the command to the cluster, relaying after all when leadership
//! moved meanwhile. Heartbeats renew here on the leader and turn what is unknown into
//! registrations.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use registry_cluster::{CoordinatorError, Role};
use registry_core::{Command, InstanceMeta};

use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::forward::{forward_parts, Relay};
use crate::headers::is_forwarded;
use crate::limits::Limits;
use crate::request::read_body;

/// A write this node applies: what is needed to relay it after all, should leadership
/// move before it is applied.
pub(crate) struct Write {
    method: Method,
    path_and_query: Option<PathAndQuery>,
    authorization: Option<HeaderValue>,
    forwarded: bool,
    /// The request body, read within its limit.
    pub(crate) body: Bytes,
}

impl Write {
    /// The request's query string (empty when none).
    pub(crate) fn query(&self) -> &str {
        self.path_and_query.as_ref().and_then(|p| p.query()).unwrap_or("")
    }
}

/// Where a write goes: here, or (answered already) to the leader.
pub(crate) enum Accepted {
    /// This node leads: apply it here.
    Here(Write),
    /// Another node leads: this is its answer, relayed.
    Relayed(Response<Body>),
}

/// Relays the request when another node leads (answering the leader's answer), or reads
/// its body (within `limits`) to apply here. With no leader known yet, waits for one up to
/// the cluster's write timeout; a write relayed once is never relayed again, and a write
/// is sent to a leader at most once (docs/spec.md §7, "At most once").
pub(crate) async fn accept(app: &App, request: Request<Incoming>, limits: &Limits) -> Result<Accepted, ApiError> {
    let forwarded = is_forwarded(&request);
    let role = match app.cluster.role() {
        Role::NoLeader => app.cluster.settle().await,
        role => role,
    };
    match role {
        Role::Leader => {}
        Role::Follower { leader } if forwarded => {
            return Err(ApiError::NoLeader(format!(
                "this node does not lead (it follows {leader}) and a forwarded write is never forwarded again"
            )))
        }
        Role::Follower { .. } => {}
        Role::NoLeader => {
            return Err(ApiError::NoLeader(
                "no leader is reachable: writes are refused until one is elected".to_owned(),
            ))
        }
    }
    let method = request.method().clone();
    let path_and_query = request.uri().path_and_query().cloned();
    let authorization = request.headers().get(AUTHORIZATION).cloned();
    if let Role::Follower { leader } = role {
        // Relayed as it came (the leader applies its own limits), once: should leadership
        // move meanwhile, the answer is 503 and the write is not sent again.
        let body = read_body(request, &app.limits).await?;
        let target = path_and_query.as_ref().map_or("/", |p| p.as_str());
        let relayed = forward_parts(app, &leader, Relay::Write, method, target, authorization.as_ref(), body).await?;
        return Ok(Accepted::Relayed(relayed));
    }
    let body = read_body(request, limits).await?;
    Ok(Accepted::Here(Write {
        method,
        path_and_query,
        authorization,
        forwarded,
        body,
    }))
}

/// Submits `command`, the write's one command; when this node turned out not to lead and
/// the command certainly was not applied ([`CoordinatorError::NotLeader`]), relays the
/// whole write to the leader instead and answers its answer (`Some`). That is the write's
/// first and only copy to reach a leader. A command that may be in the log already comes
/// back as [`CoordinatorError::Indeterminate`] and is never relayed.
pub(crate) async fn submit(app: &App, write: &Write, command: Command) -> Result<Option<Response<Body>>, ApiError> {
    // The rules only new writes keep (an old log applies without them).
    command.validate_new()?;
    match app.cluster.submit(command).await {
        Ok(_) => Ok(None),
        Err(CoordinatorError::NotLeader { leader: Some(leader) }) if !write.forwarded => {
            let path_and_query = write.path_and_query.as_ref().map_or("/", |p| p.as_str());
            let body = write.body.clone();
            Ok(Some(
                forward_parts(
                    app,
                    &leader,
                    Relay::Write,
                    write.method.clone(),
                    path_and_query,
                    write.authorization.as_ref(),
                    body,
                )
                .await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// A heartbeat of `instance` in `services` on the leader, at `now`: renews it where it is
/// known (not a change, not logged) and answers the services where it is not.
pub(crate) fn renew_known(
    app: &App,
    services: &[&str],
    instance: &InstanceMeta,
    now: u64,
) -> Result<Vec<String>, ApiError> {
    Ok(app.registry().renew_known_only(services, instance, now)?)
}

/// A heartbeat that heals: renews `instance` where it is known and registers it (one
/// command for all the services where it is not, each a change). `Some` when this node
/// turned out not to lead and the whole write was relayed instead.
pub(crate) async fn heartbeat(
    app: &App,
    write: &Write,
    services: &[&str],
    instance: &InstanceMeta,
    now: u64,
) -> Result<Option<Response<Body>>, ApiError> {
    let mut commands: Vec<Command> = renew_known(app, services, instance, now)?
        .into_iter()
        .map(|service| Command::Register {
            service,
            instance: instance.clone(),
            now_ms: now,
        })
        .collect();
    // One command (one log entry) for them all, so that the write is submitted once.
    let command = match commands.len() {
        0 => return Ok(None),
        1 => commands.swap_remove(0),
        _ => Command::Batch { commands },
    };
    submit(app, write, command).await
}

/// One write made on behalf of a protocol that does not arrive as an HTTP write (a gRPC
/// connection's registrations, their renewals and their removal when it ends).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// Register (or replace the parameters of) an instance.
    Reg(String, Arc<InstanceMeta>),
    /// Unregister an instance.
    Unreg(String, Arc<InstanceMeta>),
    /// Renew an instance; one the leader does not hold is registered.
    Renew(String, Arc<InstanceMeta>),
}

impl Op {
    /// The operation as `/batch` takes it.
    fn to_json(&self) -> serde_json::Value {
        let (op, service, instance) = match self {
            Op::Reg(s, i) => ("reg", s, i),
            Op::Unreg(s, i) => ("unreg", s, i),
            Op::Renew(s, i) => ("renew", s, i),
        };
        serde_json::json!({"op": op, "service": service, "instance": &**instance})
    }
}

/// Applies `ops` in order as the leader does a `/batch` (all or nothing, one log entry in
/// raft mode): here when this node leads, else relayed to the leader as a `/batch`. Waits
/// for a leader up to the cluster's write timeout. More operations than `--max-batch` go
/// in several batches.
pub(crate) async fn apply_ops(app: &App, mut ops: Vec<Op>) -> Result<(), ApiError> {
    let max = app.limits.max_batch.max(1);
    while !ops.is_empty() {
        let rest = ops.split_off(ops.len().min(max));
        apply_chunk(app, ops).await?;
        ops = rest;
        if !ops.is_empty() {
            // A long run of renewals lets the requests of other connections through.
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

async fn apply_chunk(app: &App, ops: Vec<Op>) -> Result<(), ApiError> {
    let role = match app.cluster.role() {
        Role::NoLeader => app.cluster.settle().await,
        role => role,
    };
    let leader = match role {
        // Should leadership move between here and the commit, the write is refused (the
        // clients of these writes retry: a gRPC client redoes, the renewals come again).
        Role::Leader => {
            return submit_ops(app, ops).await.map_err(|e| match e {
                CoordinatorError::NotLeader { .. } => {
                    ApiError::NoLeader("leadership moved while the write was applied; retry".to_owned())
                }
                e => e.into(),
            })
        }
        Role::Follower { leader } => leader,
        Role::NoLeader => {
            return Err(ApiError::NoLeader(
                "no leader is reachable: writes are refused until one is elected".to_owned(),
            ))
        }
    };
    relay_ops(app, &leader, ops).await
}

/// Relays `ops` to `leader` in order, as `/batch`es each within the leader's limit for one
/// (halved until they fit).
async fn relay_ops(app: &App, leader: &str, ops: Vec<Op>) -> Result<(), ApiError> {
    let limit = app.limits.for_batches().max_body;
    let mut queue = VecDeque::from([ops]);
    while let Some(mut ops) = queue.pop_front() {
        let body = ops_json(&ops);
        if body.len() > limit && ops.len() > 1 {
            let rest = ops.split_off(ops.len() / 2);
            queue.push_front(rest);
            queue.push_front(ops);
            continue;
        }
        relay(app, leader, body).await?;
    }
    Ok(())
}

/// `ops` as the JSON array `/batch` takes.
fn ops_json(ops: &[Op]) -> Bytes {
    Bytes::from(serde_json::Value::Array(ops.iter().map(Op::to_json).collect()).to_string())
}

/// Relays a `/batch` of `body` to `leader`.
async fn relay(app: &App, leader: &str, body: Bytes) -> Result<(), ApiError> {
    // Without a cluster token, a leader with a client token asks this relay for it.
    let authorization = app
        .auth
        .client
        .as_ref()
        .and_then(|token| HeaderValue::from_str(&token.bearer()).ok());
    let answer = forward_parts(
        app,
        leader,
        Relay::Write,
        Method::POST,
        "/batch",
        authorization.as_ref(),
        body,
    )
    .await?;
    if !answer.status().is_success() {
        return Err(ApiError::NoLeader(format!(
            "the leader {leader} refused the relayed write ({})",
            answer.status()
        )));
    }
    Ok(())
}

/// [`apply_ops`] on this node, which leads: renewals of known instances here and now,
/// everything else one command.
async fn submit_ops(app: &App, ops: Vec<Op>) -> Result<(), CoordinatorError> {
    let now = app.clock.now_ms();
    let mut commands = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Reg(service, instance) => commands.push(Command::Register {
                service,
                instance: Arc::unwrap_or_clone(instance),
                now_ms: now,
            }),
            Op::Unreg(service, instance) => commands.push(Command::Unregister {
                service,
                instance: Arc::unwrap_or_clone(instance),
            }),
            // Renewals are of instances checked when they were registered.
            Op::Renew(service, instance) => {
                if !app.registry().renew_url(&service, &instance.url(), now) {
                    commands.push(Command::Register {
                        service,
                        instance: (*instance).clone(),
                        now_ms: now,
                    });
                }
            }
        }
    }
    if commands.is_empty() {
        return Ok(());
    }
    app.cluster.submit(Command::Batch { commands }).await.map(|_| ())
}
