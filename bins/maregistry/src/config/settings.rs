//! [`Config`]: the settings of one node, validated, with what only one cluster mode needs
//! kept in that mode's variant ([`Mode`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use registry_api::Auth;
use registry_consul::ConsulSettings;
use registry_nacos::GrpcSettings;

use super::cli::Protocol;
use registry_cluster::{normalize_url, ElectionKind};
use registry_core::{ChangeLogLimits, HistoryLimits, LeaseBounds};
use registry_http::tls::{PeerTls, ServerTls};
use registry_raft::{LogFaults, RaftSettings};

/// The settings of one node, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// With `--auth-enabled`: the first admin, made at start when no user of its name
    /// exists.
    pub admin: Option<Admin>,
    /// Instances not renewed for longer than this are evicted.
    pub ttl: Duration,
    /// How often the leader looks for expired instances.
    pub evict_interval: Duration,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// The cluster's server urls, normalised; empty for a single node.
    pub server_list: Vec<String>,
    /// This node's url as the others reach it; `None` for `http://<bind>:<port>`.
    pub my_url: Option<String>,
    /// Connect and read timeout of calls to other nodes (probes, sync, forwarding).
    pub http_timeout: Duration,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// How many client connections are served at once, both listeners together; the gRPC
    /// listener's part is `grpc.max_connections`, HTTP has the rest.
    pub max_connections: usize,
    /// How many connections over the limit are answered 503 at once.
    pub max_refusals: usize,
    /// How long a TLS handshake (and a gRPC connection's setup) may take.
    pub handshake_timeout: Duration,
    /// How long an HTTP connection may wait for a request.
    pub idle_timeout: Duration,
    /// The longest a blocking query waits.
    pub max_wait: Duration,
    /// The most operations one `/batch` may hold.
    pub max_batch: usize,
    /// What the change log (deltas for followers) keeps.
    pub change_log: ChangeLogLimits,
    /// The largest config content accepted, in bytes.
    pub config_max_size: usize,
    /// What the config history keeps.
    pub config_history: HistoryLimits,
    /// Who may call what.
    pub auth: Auth,
    /// Self-preservation: an eviction pass that would remove more than this fraction of
    /// all instances removes none (1.0: off).
    pub evict_max_fraction: f64,
    /// The leases granted to instances that declare their own.
    pub leases: LeaseBounds,
    /// How the nodes form a cluster, with what only that mode needs.
    pub mode: Mode,
    /// The protocol families served (the console, the operators' and the cluster's
    /// endpoints always are).
    pub protocols: Vec<Protocol>,
    /// The port of the Nacos gRPC listener (0: any free one); `None`: no listener.
    pub grpc_port: Option<u16>,
    /// What the Consul facade answers as, and how its checks run.
    pub consul: ConsulSettings,
    /// A second port serving the API for Consul clients (`--consul-port`); `None`: none.
    pub consul_port: Option<u16>,
    /// How the gRPC listener treats its clients.
    pub grpc: GrpcSettings,
    /// The listener's TLS (`--tls-cert`, `--tls-key`, `--tls-client-ca`); `None`: plain
    /// HTTP.
    pub tls: Option<Arc<ServerTls>>,
    /// The TLS towards the other nodes at https:// urls (`--peer-ca`, `--peer-cert`,
    /// `--peer-key`).
    pub peer_tls: Option<Arc<PeerTls>>,
}

/// How the nodes of a cluster keep one registry, and the settings of that way alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The seed's design (docs/spec.md §4): the leader's data reaches followers by snapshot.
    Snapshot(SnapshotMode),
    /// Consensus on a durable log (docs/spec.md §7).
    Raft(RaftMode),
}

/// The snapshot mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMode {
    /// The election rule.
    pub election: ElectionKind,
    /// How often the cluster loop probes and elects.
    pub cluster_interval: Duration,
    /// How long a follower's long poll waits on the leader.
    pub sync_wait: Duration,
}

/// The least number of commands since the last snapshot that makes a raft node take one
/// ([`RaftMode::snapshot_commands`]).
pub const SNAPSHOT_COMMANDS: u64 = 50_000;

/// The raft mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftMode {
    /// Where the log and snapshots live.
    pub data_dir: PathBuf,
    /// Join an existing cluster instead of initialising one.
    pub join: bool,
    /// How long a write waits for a leader to commit it (503 after).
    pub write_timeout: Duration,
    /// The leader's heartbeat interval.
    pub heartbeat: Duration,
    /// The shortest election timeout (the longest is a quarter more).
    pub election: Duration,
    /// Log entries between snapshots.
    pub snapshot_every: u64,
    /// A snapshot also once the entries since the last one carry this many commands (or a
    /// tenth of the instances, when more). Not a flag: the bound scales with the registry.
    pub snapshot_commands: u64,
    /// How long sending a snapshot to a peer, or a new member's catching up, may take.
    pub install_timeout: Duration,
    /// A switch for tests that makes the raft log's writes fail (never set from the
    /// command line or the config file).
    pub log_faults: LogFaults,
}

impl Default for SnapshotMode {
    fn default() -> Self {
        SnapshotMode {
            election: ElectionKind::Auto,
            cluster_interval: Duration::from_secs(5),
            sync_wait: Duration::from_secs(30),
        }
    }
}

impl RaftMode {
    /// The defaults, with the log in `data_dir`.
    pub fn new(data_dir: PathBuf) -> RaftMode {
        RaftMode {
            data_dir,
            join: false,
            write_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_millis(250),
            election: Duration::from_secs(1),
            snapshot_every: 20_000,
            snapshot_commands: SNAPSHOT_COMMANDS,
            install_timeout: Duration::from_secs(60),
            log_faults: LogFaults::default(),
        }
    }

    /// What the raft node of `config`, reached at `my_url`, runs with.
    pub fn settings(&self, config: &Config, my_url: String) -> RaftSettings {
        RaftSettings {
            join: self.join,
            heartbeat: self.heartbeat,
            election: (self.election, self.election * 5 / 4),
            write_timeout: self.write_timeout,
            snapshot_every: self.snapshot_every,
            snapshot_commands: self.snapshot_commands,
            install_timeout: self.install_timeout,
            ttl: config.ttl,
            probe_timeout: config.http_timeout,
            evict_max_fraction: config.evict_max_fraction,
            log_faults: self.log_faults.clone(),
            ..RaftSettings::new(self.data_dir.clone(), my_url, config.server_list.clone())
        }
    }
}

impl Mode {
    /// Raft with its defaults, the log in `data_dir`.
    pub fn raft(data_dir: PathBuf) -> Mode {
        Mode::Raft(RaftMode::new(data_dir))
    }

    /// The mode's name: `snapshot` or `raft`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Snapshot(_) => "snapshot",
            Mode::Raft(_) => "raft",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ttl: Duration::from_secs(20),
            evict_interval: Duration::from_secs(10),
            max_body: 64 * 1024,
            server_list: Vec::new(),
            my_url: None,
            http_timeout: Duration::from_millis(500),
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_refusals: 64,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(300),
            max_batch: 1000,
            change_log: ChangeLogLimits::default(),
            config_max_size: 1024 * 1024,
            config_history: HistoryLimits::default(),
            auth: Auth::default(),
            admin: None,
            evict_max_fraction: 1.0,
            leases: LeaseBounds::default(),
            mode: Mode::Snapshot(SnapshotMode::default()),
            protocols: vec![Protocol::Seed, Protocol::Nacos, Protocol::Eureka, Protocol::Consul],
            // A node started in-process serves gRPC only when asked; the binary's default
            // is the HTTP port + 1000 (`--grpc-port auto`).
            grpc_port: None,
            grpc: GrpcSettings::default(),
            consul: ConsulSettings::default(),
            consul_port: None,
            tls: None,
            peer_tls: None,
        }
    }
}

impl Config {
    /// What the API allows one client; the HTTP listener's connections are what the gRPC
    /// listener (when there is one) leaves of the budget.
    pub fn limits(&self) -> registry_api::Limits {
        let grpc = if self.grpc_port.is_some() {
            self.grpc.max_connections
        } else {
            0
        };
        registry_api::Limits {
            max_body: self.max_body,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections.saturating_sub(grpc).max(1),
            max_refusals: self.max_refusals,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            max_wait: self.max_wait,
            max_batch: self.max_batch,
            config_max_size: self.config_max_size,
        }
    }

    /// How many servers the cluster has once `my_url` joins the list.
    pub fn cluster_size(&self, my_url: &str) -> usize {
        let mine = normalize_url(my_url).ok();
        let listed = self.server_list.len();
        match mine {
            Some(mine) if self.server_list.contains(&mine) => listed,
            _ => listed + 1,
        }
    }
}

/// The first admin: its name and, when given, its password.
#[derive(Clone)]
pub struct Admin {
    /// `--admin-user`.
    pub user: String,
    /// From `--admin-password-file`; `None`: an admin must exist already.
    pub password: Option<String>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
