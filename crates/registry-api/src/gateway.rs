//! The gateway every write of every protocol goes through (docs/architecture.md, "The
//! gateway"). A protocol turns its request into [`Op`]s once; the gateway applies them on
//! this node when it leads, or relays them to the leader (`POST /relay`, the ops in their
//! serde encoding, the instances as the log encodes them), and answers one [`Outcome`].
//! The protocol turns the outcome into its own answer. Heartbeats renew here on the
//! leader (not a change, not logged) and turn what is unknown into registrations.
//!
//! A write reaches a leader at most once (docs/spec.md §7, "At most once"): a relayed
//! write is never relayed again, and one whose leader moved while it was relayed is
//! answered `indeterminate`, not sent again.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use registry_cluster::Role;
use registry_core::{
    Cas, Command, ConfigFields, ConfigKey, ConfigOutcome, IdentityChange, InstanceMeta, Kind, Need, Resource,
};
use serde::{Deserialize, Serialize};

use crate::access::{Caller, Protocol};
use crate::answer::json;
use crate::app::App;
use crate::body::Body;
use crate::error::ApiError;
use crate::forward::{relay_to, Outgoing, Relay};
use crate::headers::is_forwarded;
use crate::request::read_body;

/// Where the leader takes relayed writes.
pub(crate) const RELAY_PATH: &str = "/relay";

/// One write, as every protocol asks for it. The instances are shared: a protocol that
/// keeps them (a gRPC connection's registrations) hands them over without a copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Register `instance` in the service (or replace its parameters).
    Reg(String, Arc<InstanceMeta>),
    /// Unregister `instance` from the service.
    Unreg(String, Arc<InstanceMeta>),
    /// A heartbeat that heals: renews the instance where it is known, registers it where
    /// it is not.
    Renew(String, Arc<InstanceMeta>),
    /// A heartbeat that only renews: an unknown instance is reported in the
    /// [`Outcome`], not registered (the client registers again).
    Beat(String, Arc<InstanceMeta>),
    /// Publish a config, if the condition holds; its [`ConfigOutcome`] is in the
    /// [`Outcome`]. Boxed: the registry's ops, the common ones, stay small.
    Publish(Box<ConfigPublish>),
    /// Remove a config, if the condition holds; its [`ConfigOutcome`] is in the
    /// [`Outcome`].
    Remove(Box<(ConfigKey, Option<Cas>)>),
    /// Change the users, roles or permissions (the admin role's).
    Identity(Box<IdentityChange>),
    /// Config writes and conditions applied in order, all or nothing (one log entry): if
    /// one's condition does not hold, none is applied. One [`ConfigOutcome`] each is in the
    /// [`Outcome`].
    Transaction(Vec<ConfigStep>),
}

/// One step of an [`Op::Transaction`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConfigStep {
    /// Publish a config, if its condition holds.
    Publish(ConfigPublish),
    /// Remove a config, if the condition holds.
    Remove(ConfigKey, Option<Cas>),
    /// Only a condition: the config is as this says.
    Check(ConfigKey, Cas),
}

impl ConfigStep {
    fn key(&self) -> &ConfigKey {
        match self {
            ConfigStep::Publish(publish) => &publish.key,
            ConfigStep::Remove(key, _) | ConfigStep::Check(key, _) => key,
        }
    }

    fn command(self, now_ms: u64) -> Command {
        match self {
            ConfigStep::Publish(ConfigPublish { key, fields, cas }) => Command::PublishConfig {
                key,
                fields,
                cas,
                now_ms,
            },
            ConfigStep::Remove(key, cas) => Command::RemoveConfig { key, cas, now_ms },
            ConfigStep::Check(key, cas) => Command::CheckConfig { key, cas },
        }
    }
}

/// What an [`Op::Publish`] publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigPublish {
    /// Which config.
    pub key: ConfigKey,
    /// What it holds from now on.
    pub fields: ConfigFields,
    /// The condition on the config as it is, if any.
    pub cas: Option<Cas>,
}

impl Op {
    /// Checks the rules only new writes keep ([`Command::validate_new`]; an old log applies
    /// without them), where the write came in. The data model's own rules are checked by
    /// the cluster as it takes the command, and by the leader's renewals.
    #[inline]
    fn validate_new(&self, limits: &crate::Limits) -> Result<(), ApiError> {
        match self {
            Op::Reg(service, instance) => Ok(registry_core::validate_new_registration(service, instance)?),
            // A heartbeat is checked only where it turns into a registration (a renewal of
            // an instance registered before the rules were added goes on).
            Op::Unreg(..) | Op::Renew(..) | Op::Beat(..) => Ok(()),
            Op::Publish(..) | Op::Remove(..) | Op::Transaction(..) => self.validate_config(limits),
            Op::Identity(change) => Ok(change.validate()?),
        }
    }

    /// [`Op::validate_new`] of a config write: its names, fields and content size. Kept
    /// apart, so that the registry's ops (every heartbeat) pay nothing for it.
    #[cold]
    fn validate_config(&self, limits: &crate::Limits) -> Result<(), ApiError> {
        match self {
            Op::Publish(publish) => validate_publish(publish, limits),
            Op::Remove(remove) => Ok(remove.0.validate()?),
            Op::Transaction(steps) => steps.iter().try_for_each(|step| match step {
                ConfigStep::Publish(publish) => validate_publish(publish, limits),
                ConfigStep::Remove(key, _) | ConfigStep::Check(key, _) => Ok(key.validate()?),
            }),
            Op::Reg(..) | Op::Unreg(..) | Op::Renew(..) | Op::Beat(..) | Op::Identity(..) => Ok(()),
        }
    }
}

/// A publish's names, fields and content size.
fn validate_publish(publish: &ConfigPublish, limits: &crate::Limits) -> Result<(), ApiError> {
    let size = publish.fields.content.len();
    if size > limits.config_max_size {
        return Err(ApiError::ContentTooLarge(size, limits.config_max_size));
    }
    publish.key.validate()?;
    Ok(publish.fields.validate()?)
}

/// The ops of one write: one (the common write, kept without an allocation) or several.
#[derive(Debug, Clone, PartialEq)]
pub enum Ops {
    /// One op.
    One(Op),
    /// Several, applied in order, all or nothing.
    Many(Vec<Op>),
}

impl Ops {
    /// The one op, if there is one only; else all of them.
    fn single(self) -> Result<Op, Vec<Op>> {
        match self {
            Ops::One(op) => Ok(op),
            Ops::Many(mut ops) if ops.len() == 1 => ops.pop().ok_or(ops),
            Ops::Many(ops) => Err(ops),
        }
    }

    fn as_slice(&self) -> &[Op] {
        match self {
            Ops::One(op) => std::slice::from_ref(op),
            Ops::Many(ops) => ops,
        }
    }
}

impl From<Op> for Ops {
    fn from(op: Op) -> Ops {
        Ops::One(op)
    }
}

impl From<Vec<Op>> for Ops {
    fn from(ops: Vec<Op>) -> Ops {
        Ops::Many(ops)
    }
}

/// What applying a write did, as the protocol answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The leader's clock when it applied the write, ms since the epoch (a heartbeat's
    /// renewal time).
    pub now_ms: u64,
    /// The positions of the [`Op::Beat`]s whose instance was not registered.
    pub unknown: Vec<usize>,
    /// What each [`Op::Publish`] and [`Op::Remove`] did, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ConfigOutcome>,
}

impl Outcome {
    /// Whether the op at `index` (a [`Op::Beat`]) found its instance.
    pub fn known(&self, index: usize) -> bool {
        !self.unknown.contains(&index)
    }
}

/// Where a write came from: the credentials to pass on with a relay, and whether a
/// follower relayed it here already (then it is never relayed again).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    authorization: Option<HeaderValue>,
    forwarded: bool,
    /// Who asks (docs/spec.md §9), and over which protocol.
    caller: Caller,
    protocol: &'static str,
}

impl Origin {
    /// A client's HTTP request.
    pub fn of<B>(request: &Request<B>) -> Origin {
        Origin {
            authorization: request.headers().get(AUTHORIZATION).cloned(),
            forwarded: is_forwarded(request),
            caller: request.extensions().get::<Caller>().cloned().unwrap_or(Caller::Nobody),
            protocol: request.extensions().get::<Protocol>().map_or("http", |p| p.0),
        }
    }

    /// Who asks.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// This origin with `caller` asking (credentials found in a body).
    pub fn with_caller(mut self, caller: Caller) -> Origin {
        self.caller = caller;
        self
    }

    /// A write this node makes on behalf of a protocol that has no HTTP request (a gRPC
    /// connection's registrations, renewals and end): the client token, when one is
    /// configured, goes along for a leader without a cluster token to check.
    pub fn node(app: &App) -> Origin {
        let authorization = app
            .auth
            .client
            .as_ref()
            .and_then(|token| HeaderValue::from_str(&token.bearer()).ok());
        Origin {
            authorization,
            forwarded: false,
            caller: Caller::Trusted,
            protocol: "node",
        }
    }
}

impl App {
    /// Applies `ops` in order, all or nothing (one log entry in raft mode): here when this
    /// node leads, else relayed once to the leader. With no leader known yet, waits for one
    /// up to the cluster's write timeout.
    pub async fn write(&self, origin: &Origin, ops: impl Into<Ops>) -> Result<Outcome, ApiError> {
        let ops = ops.into();
        for op in ops.as_slice() {
            op.validate_new(&self.limits)?;
        }
        if self.auth.guard.is_some() && !origin.forwarded {
            self.authorize_ops(origin, ops.as_slice())?;
        }
        // One future for the common write: the leader applies it at once.
        let leader = match self.cluster.role() {
            Role::Leader => None,
            role => self.leader_of(role, origin).await?,
        };
        if let Some(leader) = leader {
            return self.relay(origin, &leader, relay_body(ops.as_slice())).await;
        }
        // Renewals of known instances here and now, everything else one command.
        let now_ms = self.clock.now_ms();
        let (command, unknown) = self.commands(ops, now_ms)?;
        let configs = match command {
            // Neither mode answers a command it was handed as leader with "not the
            // leader" (raft answers `indeterminate` when leadership moved under a
            // proposal: docs/spec.md §7, "At most once"); should one, the write was not
            // applied and the client hears 503 `not_applied`.
            Some(command) => self.cluster.submit(command).await?.configs,
            None => Vec::new(),
        };
        Ok(Outcome {
            now_ms,
            unknown,
            configs,
        })
    }

    /// Applies a long run of `ops` (a gRPC connection's) in writes of at most
    /// `--max-batch` operations each, each all or nothing, the run not; a write relayed to
    /// another leader goes in parts that fit its limit.
    pub async fn write_all(&self, mut ops: Vec<Op>) -> Result<(), ApiError> {
        let origin = Origin::node(self);
        let max = self.limits.max_batch.max(1);
        while !ops.is_empty() {
            let rest = ops.split_off(ops.len().min(max));
            let leader = match self.cluster.role() {
                Role::Leader => None,
                role => self.leader_of(role, &origin).await?,
            };
            match leader {
                // Here: one write, never encoded.
                None => {
                    self.write(&origin, Ops::Many(ops)).await?;
                }
                Some(leader) => self.relay_in_parts(&origin, &leader, ops).await?,
            }
            ops = rest;
            if !ops.is_empty() {
                // A long run of renewals lets the requests of other connections through.
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }

    /// Relays `ops` to `leader` in order, in parts each within the leader's limit for a
    /// relay (halved until they fit).
    async fn relay_in_parts(&self, origin: &Origin, leader: &str, ops: Vec<Op>) -> Result<(), ApiError> {
        for op in &ops {
            op.validate_new(&self.limits)?;
        }
        let limit = self.limits.for_batches().max_body;
        let mut parts = VecDeque::from([ops]);
        while let Some(mut part) = parts.pop_front() {
            let body = relay_body(&part);
            if body.len() > limit && part.len() > 1 {
                let second = part.split_off(part.len() / 2);
                parts.push_front(second);
                parts.push_front(part);
                continue;
            }
            self.relay(origin, leader, body).await?;
        }
        Ok(())
    }

    /// `None` when this node leads (or, with no leader known yet in `role`, comes to lead
    /// within the cluster's write timeout), else the leader to relay to; refuses a write
    /// relayed here already that this node cannot apply, and any write when no leader is
    /// known.
    async fn leader_of(&self, role: Role, origin: &Origin) -> Result<Option<String>, ApiError> {
        let role = match role {
            Role::NoLeader => self.cluster.settle().await,
            role => role,
        };
        match role {
            Role::Leader => Ok(None),
            Role::Follower { leader } if origin.forwarded => Err(ApiError::NoLeader(format!(
                "this node does not lead (it follows {leader}) and a forwarded write is never forwarded again"
            ))),
            Role::Follower { leader } => Ok(Some(leader)),
            Role::NoLeader => Err(ApiError::NoLeader(
                "no leader is reachable: writes are refused until one is elected".to_owned(),
            )),
        }
    }

    /// The one command `ops` make at `now` on the leader (none when they only renewed),
    /// and the beats of unknown instances. A renewal of an instance a registration or
    /// unregistration of the same write touched is a registration: it follows that
    /// change, not the state before it.
    fn commands(&self, ops: Ops, now: u64) -> Result<(Option<Command>, Vec<usize>), ApiError> {
        let mut unknown = Vec::new();
        let mut ops = match ops.single() {
            // The common write: its command as it is, nothing gathered.
            Ok(op) => return Ok((self.command(0, op, now, false, &mut unknown)?, unknown)),
            Err(ops) => ops,
        };
        // Only a write of changes and heartbeats together needs to know what it touched.
        let changes = ops.iter().any(|op| matches!(op, Op::Reg(..) | Op::Unreg(..)));
        let heartbeats = ops.iter().any(|op| matches!(op, Op::Renew(..) | Op::Beat(..)));
        let mut touched: HashSet<(String, String)> = HashSet::new();
        let mut commands = Vec::with_capacity(ops.len());
        for (index, op) in ops.drain(..).enumerate() {
            let renewed_after_a_change = changes
                && heartbeats
                && match &op {
                    Op::Reg(service, instance) | Op::Unreg(service, instance) => {
                        touched.insert((service.clone(), instance.url()));
                        false
                    }
                    Op::Renew(service, instance) | Op::Beat(service, instance) => {
                        touched.contains(&(service.clone(), instance.url()))
                    }
                    Op::Publish(..) | Op::Remove(..) | Op::Identity(..) | Op::Transaction(..) => false,
                };
            commands.extend(self.command(index, op, now, renewed_after_a_change, &mut unknown)?);
        }
        let command = match commands.len() {
            0 => None,
            1 => commands.pop(),
            _ => Some(Command::Batch { commands }),
        };
        Ok((command, unknown))
    }

    /// The command of `op`, the write's op at `index`: none for a heartbeat of a known
    /// instance (renewed here, not a change) or a beat of an unknown one (added to
    /// `unknown`). `after_a_change`: the same write registered or unregistered the
    /// instance before, so that a heartbeat of it is a registration.
    fn command(
        &self,
        index: usize,
        op: Op,
        now: u64,
        after_a_change: bool,
        unknown: &mut Vec<usize>,
    ) -> Result<Option<Command>, ApiError> {
        let (service, instance, heals) = match op {
            Op::Reg(service, instance) => {
                return Ok(Some(Command::Register {
                    service,
                    instance: Arc::unwrap_or_clone(instance),
                    now_ms: now,
                }))
            }
            Op::Unreg(service, instance) => {
                return Ok(Some(Command::Unregister {
                    service,
                    instance: Arc::unwrap_or_clone(instance),
                }))
            }
            Op::Renew(service, instance) => (service, instance, true),
            Op::Beat(service, instance) => (service, instance, false),
            Op::Publish(publish) => {
                let ConfigPublish { key, fields, cas } = *publish;
                return Ok(Some(Command::PublishConfig {
                    key,
                    fields,
                    cas,
                    now_ms: now,
                }));
            }
            Op::Remove(remove) => {
                let (key, cas) = *remove;
                return Ok(Some(Command::RemoveConfig { key, cas, now_ms: now }));
            }
            Op::Identity(change) => return Ok(Some(Command::Identity { change: *change })),
            Op::Transaction(steps) => {
                let commands = steps.into_iter().map(|step| step.command(now)).collect();
                return Ok(Some(Command::ConfigTransaction { commands }));
            }
        };
        if !after_a_change
            && self
                .registry()
                .renew_known_only(&[&service], &instance, now)?
                .is_empty()
        {
            return Ok(None);
        }
        if !heals {
            unknown.push(index);
            return Ok(None);
        }
        registry_core::validate_new_registration(&service, &instance)?;
        Ok(Some(Command::Register {
            service,
            instance: Arc::unwrap_or_clone(instance),
            now_ms: now,
        }))
    }

    /// Relays ops (`body`, as [`relay_body`] encodes them) to `leader` once and reads its
    /// outcome.
    async fn relay(&self, origin: &Origin, leader: &str, body: Bytes) -> Result<Outcome, ApiError> {
        let outgoing = Outgoing {
            method: Method::POST,
            target: RELAY_PATH,
            authorization: origin.authorization.as_ref(),
            body,
        };
        let answer = relay_to(self, leader, Relay::Write, outgoing).await?;
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        if status.is_success() {
            return serde_json::from_slice(&answer.body).map_err(|e| {
                ApiError::Indeterminate(format!(
                    "the leader {leader} answered the relayed write unreadably ({e}); it may or may not have been applied"
                ))
            });
        }
        Err(ApiError::from_leader(status, &answer.body))
    }
}

impl App {
    /// Whether the caller of `origin` may make each of `ops` (a relayed write was checked
    /// where it came in).
    #[cold]
    fn authorize_ops(&self, origin: &Origin, ops: &[Op]) -> Result<(), ApiError> {
        for op in ops {
            let resource = match op {
                Op::Reg(service, _) | Op::Unreg(service, _) | Op::Renew(service, _) | Op::Beat(service, _) => {
                    Resource::service(service)
                }
                Op::Publish(publish) => config_resource(&publish.key),
                Op::Remove(remove) => config_resource(&remove.0),
                Op::Transaction(steps) => {
                    for step in steps {
                        let need = match step {
                            ConfigStep::Check(..) => Need::Read,
                            ConfigStep::Publish(..) | ConfigStep::Remove(..) => Need::Write,
                        };
                        self.authorize(origin.protocol, &origin.caller, &config_resource(step.key()), need)?;
                    }
                    continue;
                }
                // A user may set its own password; every other change is the admin role's.
                Op::Identity(change) => {
                    let own_password = matches!(
                        (&**change, &origin.caller),
                        (IdentityChange::SetPassword { username, .. }, Caller::User(user)) if **user == **username
                    );
                    if !own_password {
                        self.authorize_admin(origin.protocol, &origin.caller)?;
                    }
                    continue;
                }
            };
            self.authorize(origin.protocol, &origin.caller, &resource, Need::Write)?;
        }
        Ok(())
    }
}

/// The resource a config is.
pub fn config_resource(key: &ConfigKey) -> Resource<'_> {
    Resource {
        namespace: &key.namespace,
        group: &key.group,
        kind: Kind::Config,
        name: &key.data_id,
    }
}

/// `ops` as a relay carries them.
fn relay_body(ops: &[Op]) -> Bytes {
    Bytes::from(serde_json::to_vec(ops).unwrap_or_default())
}

/// `POST /relay` + the ops a follower relayed → their [`Outcome`]. Applied here, never
/// relayed again.
pub(crate) async fn relayed(app: &App, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let origin = Origin {
        forwarded: true,
        ..Origin::of(&request)
    };
    // A relay of a whole batch carries a little more than the batch's own body; one of a
    // config, its content escaped.
    let mut limits = app.limits.for_batches();
    limits.max_body = limits.max_body.saturating_mul(2).max(app.limits.for_configs().max_body);
    let body = read_body(request, &limits).await?;
    let ops: Vec<Op> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("a relayed write is a JSON array of operations: {e}")))?;
    if ops.is_empty() {
        return Err(ApiError::BadRequest(
            "a relayed write holds at least one operation".to_owned(),
        ));
    }
    let outcome = app.write(&origin, Ops::Many(ops)).await?;
    let body = serde_json::to_vec(&outcome).unwrap_or_default();
    Ok(json(StatusCode::OK, Bytes::from(body)))
}
