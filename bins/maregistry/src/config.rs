//! Settings: the command line (each flag also from `MAREGISTRY_<FLAG>`, and from the
//! TOML file `--config FILE`, keyed by the flag's name), parsed into a raw form by clap
//! and validated into [`Config`]. Precedence: flags, then the environment, then the
//! file, then the defaults. A bad value stops the program with a message naming it (and
//! the file, when it came from one); nothing falls back to a default silently.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, ValueEnum};
use registry_api::Auth;
use registry_cluster::{normalize_url, ElectionKind};
use registry_core::{ChangeLogLimits, LeaseBounds};
use registry_http::Token;

/// The settings of one node, validated.
#[derive(Debug, Clone)]
pub struct Config {
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
    /// The election rule.
    pub election: ElectionKind,
    /// How often the cluster loop probes, elects and syncs.
    pub cluster_interval: Duration,
    /// Connect and read timeout of calls to other nodes (probes, sync, forwarding).
    pub http_timeout: Duration,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// How many client connections are served at once.
    pub max_connections: usize,
    /// How the nodes form a cluster.
    pub cluster_mode: ClusterMode,
    /// Raft: where the log and snapshots live (required in raft mode).
    pub data_dir: Option<PathBuf>,
    /// Raft: join an existing cluster instead of initialising one.
    pub join: bool,
    /// Raft: how long a write waits for a leader to commit it (503 after).
    pub write_timeout: Duration,
    /// Raft: the leader's heartbeat interval.
    pub raft_heartbeat: Duration,
    /// Raft: the shortest election timeout (the longest is twice it).
    pub raft_election: Duration,
    /// Raft: log entries between snapshots.
    pub raft_snapshot_every: u64,
    /// Raft: how long sending a snapshot to a peer, or a new member's catching up, may take.
    pub raft_install_timeout: Duration,
    /// The longest a blocking query waits.
    pub max_wait: Duration,
    /// The most operations one `/batch` may hold.
    pub max_batch: usize,
    /// Snapshot mode: how long a follower's long poll waits on the leader.
    pub sync_wait: Duration,
    /// What the change log (deltas for followers) keeps.
    pub change_log: ChangeLogLimits,
    /// Who may call what.
    pub auth: Auth,
    /// Self-preservation: an eviction pass that would remove more than this fraction of
    /// all instances removes none (1.0: off).
    pub evict_max_fraction: f64,
    /// The leases granted to instances that declare their own.
    pub leases: LeaseBounds,
}

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

impl Default for Config {
    fn default() -> Self {
        Config {
            ttl: Duration::from_secs(20),
            evict_interval: Duration::from_secs(10),
            max_body: 64 * 1024,
            server_list: Vec::new(),
            my_url: None,
            election: ElectionKind::Auto,
            cluster_interval: Duration::from_secs(5),
            http_timeout: Duration::from_millis(500),
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            cluster_mode: ClusterMode::Snapshot,
            data_dir: None,
            join: false,
            write_timeout: Duration::from_secs(5),
            raft_heartbeat: Duration::from_millis(250),
            raft_election: Duration::from_secs(1),
            raft_snapshot_every: 20_000,
            raft_install_timeout: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
            max_batch: 1000,
            sync_wait: Duration::from_secs(30),
            change_log: ChangeLogLimits::default(),
            auth: Auth::default(),
            evict_max_fraction: 1.0,
            leases: LeaseBounds::default(),
        }
    }
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Config {
    /// What the API allows one client.
    pub fn limits(&self) -> registry_api::Limits {
        registry_api::Limits {
            max_body: self.max_body,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections,
            max_wait: self.max_wait,
            max_batch: self.max_batch,
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
    /// Client connections served at once; more are answered 503 and closed
    /// [default: derived from the open-file limit, at most 65536].
    #[arg(long, env = "MAREGISTRY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
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
    /// Raft: a follower that hears no leader for this long (up to twice it, at random)
    /// campaigns.
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
    /// The keys the config file set (those no flag or variable overrode), so that an
    /// invalid setting can be traced to it.
    #[arg(skip)]
    pub from_file: Option<(PathBuf, Vec<String>)>,
}

/// A setting that cannot be used: the message names the flag or key, and the file.
#[derive(Debug)]
pub enum SettingsError {
    /// Clap's own error (a bad flag or value on the command line, `--help`, `--version`):
    /// it prints and exits itself.
    Clap(clap::Error),
    /// A problem with the config file.
    File(String),
}

impl Cli {
    /// The settings from `args` (the program name first), the environment and, with
    /// `--config FILE`, that file: flags > environment > file > defaults.
    pub fn load<I, T>(args: I) -> Result<Cli, SettingsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = Cli::command()
            .try_get_matches_from(&args)
            .map_err(SettingsError::Clap)?;
        let Some(path) = matches.get_one::<PathBuf>("config").cloned() else {
            return Cli::from_arg_matches(&matches).map_err(SettingsError::Clap);
        };
        let (keys, extra) = file_args(&path, &matches)?;
        let mut with_file = args;
        with_file.extend(extra.into_iter().map(OsString::from));
        let matches = Cli::command()
            .try_get_matches_from(&with_file)
            .map_err(|e| SettingsError::File(format!("{}: {}", path.display(), first_line(&e))))?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(SettingsError::Clap)?;
        cli.from_file = Some((path, keys));
        Ok(cli)
    }
}

/// Names the config file's key in a validation `message` about a flag it set.
fn trace_to_file(from_file: Option<&(PathBuf, Vec<String>)>, message: String) -> String {
    let Some((path, keys)) = from_file else {
        return message;
    };
    // `--ttl` in the message, not the start of `--ttl-something`.
    let mentions = |key: &str| {
        let flag = format!("--{key}");
        message
            .match_indices(&flag)
            .any(|(at, _)| !message[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
    };
    match keys.iter().find(|key| mentions(key)) {
        Some(key) => format!("{message} (key `{key}` in {})", path.display()),
        None => message,
    }
}

/// The settings of the config file at `path` as `--flag=value` arguments, leaving out
/// those the command line or the environment set already. Every key must be a flag's
/// name and every value valid for it.
fn file_args(path: &Path, matches: &clap::ArgMatches) -> Result<(Vec<String>, Vec<String>), SettingsError> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::File(format!("cannot read the config file {file}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SettingsError::File(format!("{file} is not valid TOML: {}", e.message())))?;
    let command = Cli::command();
    let (mut keys, mut args) = (Vec::new(), Vec::new());
    for (key, value) in &table {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !matches!(key.as_str(), "config" | "help" | "version"))
            .ok_or_else(|| {
                SettingsError::File(format!(
                    "unknown key `{key}` in {file}: keys are the flags' names without the dashes (see --help)"
                ))
            })?;
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let bad = |expected: &str| {
            SettingsError::File(format!(
                "bad value for key `{key}` in {file}: expected {expected}, got {value}"
            ))
        };
        let text = match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => {
                args.push(format!("--{key}"));
                keys.push(key.clone());
                continue;
            }
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => continue,
            (ArgAction::SetTrue, _) => return Err(bad("true or false")),
            (_, toml::Value::String(s)) => s.clone(),
            (_, toml::Value::Integer(i)) => i.to_string(),
            (_, toml::Value::Float(f)) => f.to_string(),
            (_, toml::Value::Array(items)) if key == "server-list" => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| bad("a list of urls")))
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => return Err(bad("a string or a number")),
        };
        let flag = format!("--{key}={text}");
        // Checked alone, so that the message names the key and the file.
        if let Err(e) = Cli::command().try_get_matches_from(["maregistry", flag.as_str()]) {
            return Err(SettingsError::File(format!(
                "bad value for key `{key}` in {file}: {}",
                first_line(&e)
            )));
        }
        args.push(flag);
        keys.push(key.clone());
    }
    Ok((keys, args))
}

/// The first line of clap's message, without its `error: ` prefix.
fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("");
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// A token from `--X-token` or `--X-token-file` (not both), refused when empty.
fn token(flag: &str, value: Option<String>, file: Option<PathBuf>) -> Result<Option<Token>, String> {
    let secret = match (value, file) {
        (Some(_), Some(_)) => return Err(format!("give --{flag} or --{flag}-file, not both")),
        (Some(value), None) => value,
        (None, Some(path)) => {
            std::fs::read_to_string(&path).map_err(|e| format!("--{flag}-file {}: {e}", path.display()))?
        }
        (None, None) => return Ok(None),
    };
    Token::new(&secret)
        .map(Some)
        .ok_or_else(|| format!("--{flag} is empty: give a secret, or leave the flag out"))
}

/// File descriptors kept back from client connections (peers, logs, data files, refusals):
/// a quarter of the open-file limit, at most 256.
fn reserved_files(open_files: u64) -> u64 {
    (open_files / 4).min(256)
}

/// The default connection limit for a process that may open `open_files` files: all but
/// the reserve, at most 65,536 (about 1 GiB of buffers in the worst case).
pub fn default_max_connections(open_files: u64) -> usize {
    let usable = open_files.saturating_sub(reserved_files(open_files)).clamp(1, 65_536);
    usize::try_from(usable).unwrap_or(65_536)
}

impl Cli {
    /// Checks what clap cannot: non-zero durations and sizes, usable urls, a connection
    /// limit the process can reach with `open_files` descriptors. Answers the address to
    /// bind and the validated settings, or a message naming the bad value.
    pub fn validate(mut self, open_files: u64) -> Result<(SocketAddr, Config), String> {
        let from_file = self.from_file.take();
        self.checked(open_files)
            .map_err(|message| trace_to_file(from_file.as_ref(), message))
    }

    fn checked(self, open_files: u64) -> Result<(SocketAddr, Config), String> {
        let max_connections = match self.max_connections {
            None => default_max_connections(open_files),
            Some(0) => return Err("--max-connections must be greater than zero".to_owned()),
            Some(n) if n as u64 > open_files.saturating_sub(reserved_files(open_files)) => {
                return Err(format!(
                    "--max-connections {n} is more than this process can open: its open-file limit is {open_files} \
                     ({} kept for peers and files); raise the limit (ulimit -n) or lower the value",
                    reserved_files(open_files)
                ))
            }
            Some(n) => n,
        };
        for (flag, value) in [
            ("--ttl", self.ttl),
            ("--evict-interval", self.evict_interval),
            ("--cluster-interval", self.cluster_interval),
            ("--http-timeout", self.http_timeout),
            ("--body-timeout", self.body_timeout),
            ("--write-timeout", self.write_timeout),
            ("--raft-heartbeat", self.raft_heartbeat),
            ("--raft-install-timeout", self.raft_install_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("{flag} must be greater than zero"));
            }
        }
        if self.max_body == 0 {
            return Err("--max-body must be greater than zero".to_owned());
        }
        if self.max_batch == 0 {
            return Err("--max-batch must be greater than zero".to_owned());
        }
        if self.sync_wait.is_zero() {
            return Err("--sync-wait must be greater than zero".to_owned());
        }
        if self.lease_min.is_zero() || self.lease_min > self.lease_max {
            return Err(format!(
                "--lease-min ({:?}) must be above zero and at most --lease-max ({:?})",
                self.lease_min, self.lease_max
            ));
        }
        if !(self.evict_max_fraction > 0.0 && self.evict_max_fraction <= 1.0) {
            return Err(format!(
                "--evict-max-fraction must be above 0 and at most 1 (1 turns self-preservation off), got {}",
                self.evict_max_fraction
            ));
        }
        let auth = Auth {
            cluster: token("cluster-token", self.cluster_token, self.cluster_token_file)?,
            client: token("client-token", self.client_token, None)?,
            client_reads: self.client_token_reads,
        };
        if auth.client_reads && auth.client.is_none() {
            return Err("--client-token-reads needs --client-token".to_owned());
        }
        let mut server_list = Vec::new();
        for url in self.server_list.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let url = normalize_url(url).map_err(|e| format!("--server-list: {e}"))?;
            if !server_list.contains(&url) {
                server_list.push(url);
            }
        }
        let my_url = match self.my_url {
            Some(url) => Some(normalize_url(&url).map_err(|e| format!("--my-url: {e}"))?),
            None => None,
        };
        if my_url.is_none() && !server_list.is_empty() && self.bind.is_unspecified() {
            return Err(format!(
                "--my-url is required with --server-list when binding to {}: the other servers need an address they can reach",
                self.bind
            ));
        }
        let cluster_mode = match (self.cluster_mode, &self.data_dir) {
            (Some(ClusterMode::Snapshot), Some(_)) => {
                return Err(
                    "--data-dir needs --cluster-mode raft: the snapshot mode keeps its data in memory".to_owned(),
                )
            }
            (Some(ClusterMode::Raft), None) => {
                return Err(
                    "--cluster-mode raft needs --data-dir: a raft node that forgets its log on restart breaks the \
                     protocol's promises"
                        .to_owned(),
                )
            }
            (Some(mode), _) => mode,
            (None, Some(_)) => ClusterMode::Raft,
            (None, None) => ClusterMode::Snapshot,
        };
        if self.join && cluster_mode != ClusterMode::Raft {
            return Err("--join needs --cluster-mode raft (and --data-dir)".to_owned());
        }
        if cluster_mode == ClusterMode::Raft {
            if self.raft_election < self.raft_heartbeat * 3 {
                return Err(format!(
                    "--raft-election ({:?}) must be at least three times --raft-heartbeat ({:?}), or followers \
                     campaign between two heartbeats",
                    self.raft_election, self.raft_heartbeat
                ));
            }
            if self.raft_snapshot_every == 0 {
                return Err("--raft-snapshot-every must be greater than zero".to_owned());
            }
        }
        if auth.client_reads && auth.cluster.is_none() && !server_list.is_empty() {
            return Err(
                "--client-token-reads in a cluster needs --cluster-token: the nodes read each other's /info and \
                 /snapshot, and they present the cluster token"
                    .to_owned(),
            );
        }
        let config = Config {
            leases: LeaseBounds {
                min: self.lease_min,
                max: self.lease_max,
            },
            evict_max_fraction: self.evict_max_fraction,
            max_wait: self.max_wait,
            max_batch: self.max_batch,
            sync_wait: self.sync_wait,
            change_log: ChangeLogLimits {
                max_entries: self.change_log_entries,
                max_bytes: self.change_log_bytes,
            },
            auth,
            cluster_mode,
            data_dir: self.data_dir,
            join: self.join,
            write_timeout: self.write_timeout,
            raft_heartbeat: self.raft_heartbeat,
            raft_election: self.raft_election,
            raft_snapshot_every: self.raft_snapshot_every,
            raft_install_timeout: self.raft_install_timeout,
            ttl: self.ttl,
            evict_interval: self.evict_interval,
            max_body: self.max_body,
            server_list,
            my_url,
            election: self.election,
            cluster_interval: self.cluster_interval,
            http_timeout: self.http_timeout,
            body_timeout: self.body_timeout,
            max_connections,
        };
        Ok((SocketAddr::new(self.bind, self.port), config))
    }
}

pub use registry_api::parse_duration;

/// `65536`, `64KiB`, `1MiB`, `64KB`: bytes, with an optional binary or decimal unit.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (n, unit) = number_and_unit(text)
        .and_then(|(n, unit)| Some((usize::try_from(n).ok()?, unit)))
        .ok_or_else(|| format!("{text:?} is not a size: expected e.g. 65536, 64KiB or 1MiB"))?;
    let factor: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use B, KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    n.checked_mul(factor).ok_or_else(|| format!("{text:?} is too large"))
}

/// Splits `64KiB` into `(64, "KiB")`: leading digits, then the rest trimmed. `None` when
/// there are no digits or the number overflows.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "20", "s", "5 sec", "1.5s", "-1s", "5d", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        for bad in ["", "KiB", "64 kib", "1.5MiB", "-1", "64XB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    fn cli(args: &[&str]) -> Result<(SocketAddr, Config), String> {
        let mut argv = vec!["maregistry"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map_err(|e| e.to_string())?.validate(4096)
    }

    #[test]
    fn cluster_modes() {
        let (_, config) = cli(&["--data-dir", "/tmp/x"]).unwrap();
        assert_eq!(config.cluster_mode, ClusterMode::Raft, "--data-dir means raft");
        assert_eq!(config.write_timeout, Duration::from_secs(5));
        let (_, config) = cli(&["--cluster-mode", "raft", "--data-dir", "/tmp/x", "--join"]).unwrap();
        assert!(config.join);
        let err = cli(&["--cluster-mode", "snapshot", "--data-dir", "/tmp/x"]).unwrap_err();
        assert!(err.contains("--data-dir needs --cluster-mode raft"), "{err}");
        let err = cli(&["--cluster-mode", "raft"]).unwrap_err();
        assert!(err.contains("needs --data-dir"), "{err}");
        assert!(cli(&["--cluster-mode", "paxos"]).is_err());
        assert!(cli(&["--join"]).is_err());
        assert!(cli(&[
            "--data-dir",
            "/tmp/x",
            "--raft-heartbeat",
            "500ms",
            "--raft-election",
            "1s"
        ])
        .is_err());
    }

    #[test]
    fn tokens() {
        let (_, config) = cli(&[]).unwrap();
        assert!(!config.auth.any(), "open by default");
        let (_, config) = cli(&["--cluster-token", "s3cret", "--client-token", "c"]).unwrap();
        assert!(config.auth.cluster.as_ref().unwrap().accepts(Some(b"Bearer s3cret")));
        assert!(!format!("{config:?}").contains("s3cret"), "never in a log");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let (_, config) = cli(&["--cluster-token-file", file.to_str().unwrap()]).unwrap();
        assert!(config.auth.cluster.unwrap().accepts(Some(b"Bearer from-file")));
        let both = cli(&["--cluster-token", "a", "--cluster-token-file", file.to_str().unwrap()]);
        assert!(both.unwrap_err().contains("not both"));
        assert!(cli(&["--cluster-token", " "]).unwrap_err().contains("empty"));
        assert!(cli(&["--cluster-token-file", "/nonexistent/token"]).is_err());
        assert!(cli(&["--client-token-reads"]).is_err());
        assert!(cli(&[
            "--client-token",
            "c",
            "--client-token-reads",
            "--server-list",
            "http://a:1"
        ])
        .is_err());
        assert!(cli(&["--max-batch", "0"]).is_err());
    }

    /// `--config` with `text` as the file, then `args`.
    fn with_file(text: &str, args: &[&str]) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("maregistry.toml");
        std::fs::write(&file, text).unwrap();
        let mut argv = vec![
            "maregistry".to_owned(),
            "--config".to_owned(),
            file.display().to_string(),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let cli = Cli::load(argv).map_err(|e| match e {
            SettingsError::Clap(e) => e.to_string(),
            SettingsError::File(message) => message,
        })?;
        cli.validate(4096).map(|(_, config)| config)
    }

    #[test]
    fn config_file_below_flags() {
        let text =
            "ttl = \"30s\"\nmax-body = \"1MiB\"\nmax-batch = 10\nserver-list = [\"http://a:1\", \"http://b:2\"]\n\
                    client-token = \"c\"\nclient-token-reads = true\ncluster-token = \"k\"\nevict-max-fraction = 0.5\n";
        let config = with_file(text, &[]).unwrap();
        assert_eq!(config.ttl, Duration::from_secs(30));
        assert_eq!(config.max_body, 1 << 20);
        assert_eq!(config.max_batch, 10);
        assert_eq!(config.server_list, vec!["http://a:1", "http://b:2"]);
        assert!(config.auth.client_reads);
        assert_eq!(config.evict_max_fraction, 0.5);
        let config = with_file(text, &["--ttl", "40s", "--max-batch", "5"]).unwrap();
        assert_eq!(config.ttl, Duration::from_secs(40), "a flag wins over the file");
        assert_eq!(config.max_batch, 5);
        assert_eq!(config.max_body, 1 << 20, "the file wins over the default");
        assert!(!with_file("join = false\n", &[]).unwrap().join);
    }

    #[test]
    fn config_file_errors_name_the_key_and_the_file() {
        for (text, expected) in [
            ("bogus = 1\n", "unknown key `bogus` in "),
            ("config = \"x.toml\"\n", "unknown key `config` in "),
            ("ttl = \"30\"\n", "bad value for key `ttl` in "),
            ("ttl = 30\n", "bad value for key `ttl` in "),
            ("port = 70000\n", "bad value for key `port` in "),
            ("join = \"yes\"\n", "bad value for key `join` in "),
            ("server-list = [1]\n", "bad value for key `server-list` in "),
            ("election = [\"hash\"]\n", "bad value for key `election` in "),
            ("ttl = \"0s\"\n", "(key `ttl` in "),
            ("evict-max-fraction = 0\n", "(key `evict-max-fraction` in "),
            ("ttl = \n", "is not valid TOML"),
        ] {
            let err = with_file(text, &[]).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.contains("maregistry.toml"), "{text:?} names the file: {err}");
        }
        let err = Cli::load(["maregistry", "--config", "/nonexistent/maregistry.toml"]).unwrap_err();
        assert!(matches!(err, SettingsError::File(m) if m.contains("/nonexistent/maregistry.toml")));
    }

    /// The example in docs/operations.md names every key, and the keys that have a
    /// default, uncommented, make a valid file that sets exactly the defaults.
    #[test]
    fn the_documented_example_has_every_key_at_its_default() {
        let doc = include_str!("../../../docs/operations.md");
        let start = doc
            .find("```toml\n# maregistry.toml")
            .expect("the example in docs/operations.md");
        let block = &doc[start + "```toml\n".len()..];
        let block = &block[..block.find("```").expect("its end")];
        // `# key = value` and `key = value` lines.
        let settings: Vec<(&str, &str)> = block
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .filter_map(|line| line.split_once(" = "))
            .filter(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            .collect();
        let command = Cli::command();
        let mut defaults_file = String::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "config" | "help" | "version") {
                continue;
            }
            let Some((_, value)) = settings.iter().find(|(key, _)| *key == long) else {
                panic!("docs/operations.md's example lacks `{long}`");
            };
            if !arg.get_default_values().is_empty() {
                defaults_file.push_str(&format!("{long} = {value}\n"));
            }
        }
        let example = with_file(&defaults_file, &[]).expect("the example is valid");
        let (_, defaults) = cli(&[]).unwrap();
        assert_eq!(
            format!("{example:?}"),
            format!("{defaults:?}"),
            "the example's values are the defaults"
        );
    }

    #[test]
    fn connection_limit_defaults() {
        assert_eq!(default_max_connections(1024), 768);
        assert_eq!(default_max_connections(1_048_576), 65_536);
        assert_eq!(default_max_connections(16), 12);
        assert_eq!(default_max_connections(0), 1);
    }

    #[test]
    fn defaults_and_validation() {
        let (addr, config) = cli(&[]).unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:8484");
        assert_eq!(config.ttl, Duration::from_secs(20));
        assert_eq!(config.max_body, 65536);
        assert_eq!(config.body_timeout, Duration::from_secs(10));
        assert_eq!(config.max_connections, 4096 - 256, "derived from the open-file limit");
        assert_eq!(cli(&["--max-connections", "10"]).unwrap().1.max_connections, 10);
        assert!(cli(&["--max-connections", "0"]).is_err());
        assert!(
            cli(&["--max-connections", "4000"]).is_err(),
            "above what 4096 files allow"
        );
        assert!(cli(&["--body-timeout", "0ms"]).is_err());
        assert_eq!(config.cluster_mode, ClusterMode::Snapshot);
        assert!(config.server_list.is_empty());
        assert!(cli(&["--ttl", "0s"]).is_err());
        assert!(cli(&["--ttl", "20"]).is_err());
        assert!(cli(&["--port", "70000"]).is_err());
        assert!(cli(&["--election", "raft"]).is_err());
        assert!(cli(&["--server-list", "http://a:1,ftp://b:2"]).is_err());
        assert!(cli(&["--bind", "0.0.0.0", "--server-list", "http://a:1"]).is_err());
        let (_, config) = cli(&[
            "--server-list",
            "http://localhost:8081/,http://127.0.0.1:8081",
            "--my-url",
            "http://localhost:8082",
        ])
        .unwrap();
        assert_eq!(config.server_list, vec!["http://127.0.0.1:8081".to_owned()]);
        assert_eq!(config.cluster_size("http://127.0.0.1:8082"), 2);
        assert_eq!(config.cluster_size("http://localhost:8081"), 1);
    }
}
