//! The command line as clap reads it (each flag also from `MAREGISTRY_<FLAG>`), raw:
//! [`Cli`], and the enums of its flags.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use registry_cluster::ElectionKind;

use super::units::{parse_duration, parse_size};

/// How the nodes of a cluster keep one registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMode {
    /// The seed's design (docs/spec.md §4): the leader's data reaches followers by snapshot.
    Snapshot,
    /// Consensus on a durable log (docs/spec.md §7).
    Raft,
}

impl FromStr for ClusterMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "snapshot" => Ok(ClusterMode::Snapshot),
            "raft" => Ok(ClusterMode::Raft),
            other => Err(format!("unknown cluster mode {other:?}: expected snapshot or raft")),
        }
    }
}

/// Where the Nacos gRPC listener goes (`--grpc-port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcPort {
    /// The HTTP port + 1000, where Nacos clients look for it (any free port when the HTTP
    /// port is 0).
    Auto,
    /// No gRPC listener.
    Off,
    /// This port (0: any free one).
    Port(u16),
}

impl FromStr for GrpcPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(GrpcPort::Auto),
            "off" => Ok(GrpcPort::Off),
            port => port
                .parse()
                .map(GrpcPort::Port)
                .map_err(|_| format!("{port:?} is not a port: expected auto, off or 0 to 65535")),
        }
    }
}

/// A protocol family a node serves (`--protocols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// The seed's API: `/reg`, `/unreg`, `/renew`, `/renews`, `/batch`, `/findAll`,
    /// `/version`, `/versions`.
    Seed,
    /// Nacos: the open API v1 naming endpoints and the gRPC listener.
    Nacos,
    /// Eureka REST v2.
    Eureka,
    /// The Consul HTTP API under `/v1/` (agent, catalog, health, KV, status), and the
    /// checks the cluster runs for it.
    Consul,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The command line as typed.
#[derive(Debug, Parser)]
#[command(
    name = "maregistry",
    version,
    about = "A service registry, wire-compatible with the kkrpc registry API."
)]
pub struct Cli {
    /// A TOML file of settings, keyed by flag name (`ttl = "20s"`); flags and the
    /// environment take precedence over it.
    #[arg(long, env = "MAREGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// How log lines are written: text, or json (one object per line).
    #[arg(long, env = "MAREGISTRY_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Address to listen on.
    #[arg(long, env = "MAREGISTRY_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "MAREGISTRY_PORT", default_value_t = 8484)]
    pub port: u16,
    /// Evict instances not renewed for this long (e.g. 500ms, 20s, 1m).
    #[arg(long, env = "MAREGISTRY_TTL", default_value = "20s", value_parser = parse_duration)]
    pub ttl: Duration,
    /// How often the leader checks for expired instances.
    #[arg(long, env = "MAREGISTRY_EVICT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub evict_interval: Duration,
    /// Largest request body accepted (e.g. 65536, 64KiB, 1MiB).
    #[arg(long, env = "MAREGISTRY_MAX_BODY", default_value = "64KiB", value_parser = parse_size)]
    pub max_body: usize,
    /// The cluster's servers, comma-separated urls (this node joins if missing).
    #[arg(long, env = "MAREGISTRY_SERVER_LIST", value_delimiter = ',')]
    pub server_list: Vec<String>,
    /// This node's url as the other servers reach it [default: http://BIND:PORT].
    #[arg(long, env = "MAREGISTRY_MY_URL")]
    pub my_url: Option<String>,
    /// Election rule: auto (quorum for 3+ servers, else hash), hash or quorum.
    #[arg(long, env = "MAREGISTRY_ELECTION", default_value = "auto")]
    pub election: ElectionKind,
    /// How often to probe the other servers, elect and sync.
    #[arg(long, env = "MAREGISTRY_CLUSTER_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub cluster_interval: Duration,
    /// Connect and read timeout for calls to other servers.
    #[arg(long, env = "MAREGISTRY_HTTP_TIMEOUT", default_value = "500ms", value_parser = parse_duration)]
    pub http_timeout: Duration,
    /// How long a request body may take to arrive (408 after).
    #[arg(long, env = "MAREGISTRY_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Client connections served at once, HTTP and gRPC together; more are answered 503
    /// (gRPC: closed) [default: the open-file limit less a reserve for peers and data
    /// files, at most 65536].
    #[arg(long, env = "MAREGISTRY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// The gRPC listener's part of --max-connections; HTTP has the rest [default: half].
    #[arg(long, env = "MAREGISTRY_GRPC_MAX_CONNECTIONS")]
    pub grpc_max_connections: Option<usize>,
    /// How long a client may take over its TLS handshake, and a gRPC connection to set up
    /// its Nacos connection (or stay without one); it is closed after.
    #[arg(long, env = "MAREGISTRY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// How long an HTTP connection may wait for its next request (and take over its head);
    /// it is closed after.
    #[arg(long, env = "MAREGISTRY_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// How the nodes form a cluster: snapshot (the seed's design) or raft (consensus on a
    /// durable log; needs --data-dir) [default: raft with --data-dir, else snapshot].
    #[arg(long, env = "MAREGISTRY_CLUSTER_MODE")]
    pub cluster_mode: Option<ClusterMode>,
    /// Where a raft node keeps its log and snapshots; implies --cluster-mode raft.
    #[arg(long, env = "MAREGISTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Raft: join an existing cluster (its leader adds this node with POST /cluster/join)
    /// instead of initialising one from --server-list.
    #[arg(long, env = "MAREGISTRY_JOIN")]
    pub join: bool,
    /// Raft: how long a write waits for a leader to commit it (503 after).
    #[arg(long, env = "MAREGISTRY_WRITE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// Raft: the leader's heartbeat interval.
    #[arg(long, env = "MAREGISTRY_RAFT_HEARTBEAT", default_value = "250ms", value_parser = parse_duration)]
    pub raft_heartbeat: Duration,
    /// Raft: a follower that hears no leader for this long (up to a quarter more, at
    /// random) campaigns, once a majority agrees that no leader is heard (a pre-vote).
    #[arg(long, env = "MAREGISTRY_RAFT_ELECTION", default_value = "1s", value_parser = parse_duration)]
    pub raft_election: Duration,
    /// Raft: log entries between snapshots (older entries are then purged).
    #[arg(long, env = "MAREGISTRY_RAFT_SNAPSHOT_EVERY", default_value_t = 20_000)]
    pub raft_snapshot_every: u64,
    /// Raft: how long sending a snapshot to a peer may take, and how long /cluster/join
    /// waits for the new member to catch up (503 after; it stays a learner).
    #[arg(long, env = "MAREGISTRY_RAFT_INSTALL_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub raft_install_timeout: Duration,
    /// The longest a blocking query (since=V&wait=D) waits; longer waits are cut to it.
    #[arg(long, env = "MAREGISTRY_MAX_WAIT", default_value = "5m", value_parser = parse_duration)]
    pub max_wait: Duration,
    /// The most operations one POST /batch may hold.
    #[arg(long, env = "MAREGISTRY_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,
    /// Snapshot mode: how long a follower's long poll of the leader waits for a change.
    #[arg(long, env = "MAREGISTRY_SYNC_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub sync_wait: Duration,
    /// How many recent changes the node keeps for followers' deltas (older followers get
    /// the whole snapshot).
    #[arg(long, env = "MAREGISTRY_CHANGE_LOG_ENTRIES", default_value_t = 1_000)]
    pub change_log_entries: usize,
    /// How many bytes the change log may take (e.g. 1MiB).
    #[arg(long, env = "MAREGISTRY_CHANGE_LOG_BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub change_log_bytes: usize,
    /// The largest config content accepted (e.g. 1MiB; Nacos allows up to 10MiB).
    #[arg(long, env = "MAREGISTRY_CONFIG_MAX_SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub config_max_size: usize,
    /// How many past revisions of each config are kept (0: no history).
    #[arg(long, env = "MAREGISTRY_CONFIG_HISTORY", default_value_t = 20)]
    pub config_history: usize,
    /// How many bytes the config history may take, all configs together; the oldest
    /// revisions go first.
    #[arg(long, env = "MAREGISTRY_CONFIG_HISTORY_BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub config_history_bytes: usize,
    /// A shared secret every node-to-node call carries (Authorization: Bearer) and the
    /// node-only endpoints require. Prefer --cluster-token-file or the environment: a
    /// command line is visible to other users of the machine.
    #[arg(long, env = "MAREGISTRY_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// A file holding the cluster token (surrounding whitespace is ignored).
    #[arg(long, env = "MAREGISTRY_CLUSTER_TOKEN_FILE")]
    pub cluster_token_file: Option<PathBuf>,
    /// A token clients' writes must carry (Authorization: Bearer). Off by default: the
    /// seed's Java clients send none.
    #[arg(long, env = "MAREGISTRY_CLIENT_TOKEN", hide_env_values = true)]
    pub client_token: Option<String>,
    /// Reads need the client token too.
    #[arg(long, env = "MAREGISTRY_CLIENT_TOKEN_READS")]
    pub client_token_reads: bool,
    /// Users, roles and permissions decide every client request (docs/spec.md §9): clients
    /// log in (Nacos's /nacos/v1/auth/login) or send a username and password; reads need a
    /// grant too. The client and cluster tokens keep full access.
    #[arg(long, env = "MAREGISTRY_AUTH_ENABLED")]
    pub auth_enabled: bool,
    /// The first admin's name (with --auth-enabled), created at start when absent.
    #[arg(long, env = "MAREGISTRY_ADMIN_USER", default_value = "nacos")]
    pub admin_user: String,
    /// A file holding the first admin's password (surrounding whitespace is ignored).
    /// There is no built-in default password.
    #[arg(long, env = "MAREGISTRY_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// A file holding the secret login tokens are signed with (at least 32 bytes; the same
    /// on every node, so that each accepts the others' tokens). A single node without one
    /// signs with a random secret: its tokens die with the process.
    #[arg(long, env = "MAREGISTRY_TOKEN_SECRET_FILE")]
    pub token_secret_file: Option<PathBuf>,
    /// How long a login token lasts (Nacos: 18000s).
    #[arg(long, env = "MAREGISTRY_TOKEN_TTL", default_value = "18000s", value_parser = parse_duration)]
    pub token_ttl: Duration,
    /// Self-preservation: when one eviction pass would remove more than this fraction of
    /// all instances (0 to 1), it removes none and warns (1.0: off).
    #[arg(long, env = "MAREGISTRY_EVICT_MAX_FRACTION", default_value_t = 1.0)]
    pub evict_max_fraction: f64,
    /// The shortest lease an instance may declare for itself (parameter maregistry.lease;
    /// Eureka's leaseInfo.durationInSecs); shorter ones are raised to it.
    #[arg(long, env = "MAREGISTRY_LEASE_MIN", default_value = "5s", value_parser = parse_duration)]
    pub lease_min: Duration,
    /// The longest lease an instance may declare for itself; longer ones are cut to it.
    #[arg(long, env = "MAREGISTRY_LEASE_MAX", default_value = "5m", value_parser = parse_duration)]
    pub lease_max: Duration,
    /// The protocols served, comma-separated: seed, nacos, eureka, consul. A left-out protocol's
    /// paths answer 404 (and without nacos there is no gRPC listener); the console, the
    /// operators' and the cluster's endpoints are always served.
    #[arg(
        long,
        env = "MAREGISTRY_PROTOCOLS",
        value_delimiter = ',',
        default_value = "seed,nacos,eureka,consul"
    )]
    pub protocols: Vec<Protocol>,
    /// The Consul datacenter this cluster is (`?dc=` naming another is refused).
    #[arg(long, env = "MAREGISTRY_CONSUL_DATACENTER", default_value = "dc1")]
    pub consul_datacenter: String,
    /// The name of the one Consul node every service is on (the cluster).
    #[arg(long, env = "MAREGISTRY_CONSUL_NODE_NAME", default_value = "maregistry")]
    pub consul_node_name: String,
    /// Also serve the API on this port (Consul clients default to 8500); off by default.
    #[arg(long, env = "MAREGISTRY_CONSUL_PORT")]
    pub consul_port: Option<u16>,
    /// How often the leader looks at the Consul checks (TTL expiry, probes due,
    /// deregistrations).
    #[arg(long, env = "MAREGISTRY_CONSUL_CHECK_EVERY", default_value = "1s", value_parser = parse_duration)]
    pub consul_check_every: Duration,
    /// The shortest DeregisterCriticalServiceAfter honoured (Consul's
    /// check_deregister_interval_min); shorter ones are raised to it.
    #[arg(long, env = "MAREGISTRY_CONSUL_DEREGISTER_MIN", default_value = "1m", value_parser = parse_duration)]
    pub consul_deregister_min: Duration,
    /// Port of the Nacos 2/3 gRPC listener: auto (the HTTP port + 1000, where Nacos
    /// clients look for it), a port, or off.
    #[arg(long, env = "MAREGISTRY_GRPC_PORT", default_value = "auto")]
    pub grpc_port: GrpcPort,
    /// The lease of the instances a Nacos gRPC connection registers: the node holding the
    /// connection renews them while it lasts; if the node dies, they expire after this.
    #[arg(long, env = "MAREGISTRY_GRPC_LEASE", default_value = "20s", value_parser = parse_duration)]
    pub grpc_lease: Duration,
    /// How many instances one Nacos gRPC connection may publish, all services together
    /// (more are refused).
    #[arg(long, env = "MAREGISTRY_GRPC_MAX_INSTANCES", default_value = "10000")]
    pub grpc_max_instances: usize,
    /// How many services one Nacos gRPC connection may subscribe to (more are refused).
    #[arg(long, env = "MAREGISTRY_GRPC_MAX_SUBSCRIPTIONS", default_value = "10000")]
    pub grpc_max_subscriptions: usize,
    /// Serve every endpoint over HTTPS with this certificate (PEM, intermediates after
    /// it); with --tls-key. SIGHUP, or a change of the file, reloads it.
    #[arg(long, env = "MAREGISTRY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "MAREGISTRY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require every client, the other nodes included, to present a certificate this CA
    /// signed (PEM; mutual TLS).
    #[arg(long, env = "MAREGISTRY_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// The CA the other nodes' certificates must chain to (PEM); needed for https://
    /// urls in --server-list and --my-url.
    #[arg(long, env = "MAREGISTRY_PEER_CA")]
    pub peer_ca: Option<PathBuf>,
    /// The certificate this node presents to the other nodes (PEM); with --peer-key.
    #[arg(long, env = "MAREGISTRY_PEER_CERT")]
    pub peer_cert: Option<PathBuf>,
    /// The private key of --peer-cert (PEM).
    #[arg(long, env = "MAREGISTRY_PEER_KEY")]
    pub peer_key: Option<PathBuf>,
    /// The keys the config file set (those no flag or variable overrode), so that an
    /// invalid setting can be traced to it.
    #[arg(skip)]
    pub from_file: Option<(PathBuf, Vec<String>)>,
}
