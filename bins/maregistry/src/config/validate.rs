//! From the raw command line to a valid [`Config`]: what clap cannot check (non-zero
//! durations, usable urls, settings that need each other, a connection limit the process
//! can reach), each refusal naming the flag (and the file's key, when it came from one).

use registry_consul::ConsulSettings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use registry_api::access::{Guard, TokenKey, MAX_PASSWORD_LEN};
use registry_api::Auth;
use registry_cluster::normalize_url;
use registry_core::{ChangeLogLimits, HistoryLimits, LeaseBounds};
use registry_http::tls::{PeerTls, PeerTlsFiles, ServerTls, ServerTlsFiles, TlsError, TlsFile};
use registry_http::Token;
use registry_nacos::GrpcSettings;
use registry_raft::LogFaults;

use super::cli::{Cli, ClusterMode, GrpcPort, Protocol};
use super::file::trace_to_file;
use super::settings::{Admin, Config, Mode, RaftMode, SnapshotMode, SNAPSHOT_COMMANDS};

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

/// How many connections over the limit may be answered at once: a quarter of the reserve,
/// at most 64, so that the rest stays for peers and data files.
fn refusals_at_once(open_files: u64) -> usize {
    usize::try_from((reserved_files(open_files) / 4).clamp(1, 64)).unwrap_or(64)
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

    fn checked(mut self, open_files: u64) -> Result<(SocketAddr, Config), String> {
        let tls_flags = TlsFlags {
            tls_cert: self.tls_cert.take(),
            tls_key: self.tls_key.take(),
            tls_client_ca: self.tls_client_ca.take(),
            peer_ca: self.peer_ca.take(),
            peer_cert: self.peer_cert.take(),
            peer_key: self.peer_key.take(),
        };
        let protocols = self.protocols()?;
        let (max_connections, grpc_max_connections) = self.connection_budget(open_files)?;
        self.check_amounts()?;
        let mut auth = self.auth()?;
        let (server_list, my_url) = self.urls()?;
        let (tls, peer_tls) = tls(&tls_flags, &server_list, my_url.as_deref())?;
        let mode = self.mode()?;
        if auth.client_reads && auth.cluster.is_none() && !server_list.is_empty() {
            return Err(
                "--client-token-reads in a cluster needs --cluster-token: the nodes read each other's /info and \
                 /snapshot, and they present the cluster token"
                    .to_owned(),
            );
        }
        let admin = self.users(&mut auth, &server_list, &mode)?;
        let grpc_port = self.grpc_port()?;
        let (consul, consul_port) = self.consul(&protocols)?;
        let config = Config {
            admin,
            protocols,
            grpc_port,
            consul,
            consul_port,
            grpc: GrpcSettings {
                lease: self.grpc_lease,
                max_connections: grpc_max_connections,
                max_instances: self.grpc_max_instances,
                max_subscriptions: self.grpc_max_subscriptions,
                ..GrpcSettings::default()
            },
            leases: LeaseBounds {
                min: self.lease_min,
                max: self.lease_max,
            },
            evict_max_fraction: self.evict_max_fraction,
            max_wait: self.max_wait,
            max_batch: self.max_batch,
            change_log: ChangeLogLimits {
                max_entries: self.change_log_entries,
                max_bytes: self.change_log_bytes,
            },
            config_max_size: self.config_max_size,
            config_history: HistoryLimits {
                per_config: self.config_history,
                max_bytes: self.config_history_bytes,
            },
            auth,
            mode,
            ttl: self.ttl,
            evict_interval: self.evict_interval,
            max_body: self.max_body,
            server_list,
            my_url,
            http_timeout: self.http_timeout,
            body_timeout: self.body_timeout,
            max_connections,
            max_refusals: refusals_at_once(open_files),
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            tls,
            peer_tls,
        };
        Ok((SocketAddr::new(self.bind, self.port), config))
    }

    /// The Consul facade's settings and its own port, which needs the consul protocol.
    fn consul(&self, protocols: &[Protocol]) -> Result<(ConsulSettings, Option<u16>), String> {
        let port = self.consul_port.filter(|_| protocols.contains(&Protocol::Consul));
        if self.consul_port.is_some() && port.is_none() {
            return Err("--consul-port serves Consul clients, and --protocols leaves consul out".to_owned());
        }
        if self.consul_datacenter.is_empty() || self.consul_node_name.is_empty() {
            return Err("--consul-datacenter and --consul-node-name must not be empty".to_owned());
        }
        let settings = ConsulSettings {
            datacenter: self.consul_datacenter.clone(),
            node_name: self.consul_node_name.clone(),
            deregister_min: self.consul_deregister_min,
            check_every: self.consul_check_every,
        };
        Ok((settings, port))
    }

    /// `--protocols`, each once, in the order given. Without nacos there is no gRPC
    /// listener: `--grpc-port auto` is off, and a port given for it is refused.
    fn protocols(&mut self) -> Result<Vec<Protocol>, String> {
        let mut protocols: Vec<Protocol> = Vec::new();
        for protocol in &self.protocols {
            if !protocols.contains(protocol) {
                protocols.push(*protocol);
            }
        }
        if protocols.is_empty() {
            return Err("--protocols needs at least one of seed, nacos, eureka, consul".to_owned());
        }
        if !protocols.contains(&Protocol::Nacos) {
            match self.grpc_port {
                GrpcPort::Port(port) => {
                    return Err(format!(
                        "--grpc-port {port} serves Nacos gRPC clients, and --protocols leaves nacos out"
                    ))
                }
                GrpcPort::Auto | GrpcPort::Off => self.grpc_port = GrpcPort::Off,
            }
        }
        Ok(protocols)
    }

    /// Durations and sizes that must be above zero, and bounds that must hold together.
    fn check_amounts(&self) -> Result<(), String> {
        for (flag, value) in [
            ("--ttl", self.ttl),
            ("--handshake-timeout", self.handshake_timeout),
            ("--idle-timeout", self.idle_timeout),
            ("--evict-interval", self.evict_interval),
            ("--cluster-interval", self.cluster_interval),
            ("--http-timeout", self.http_timeout),
            ("--body-timeout", self.body_timeout),
            ("--write-timeout", self.write_timeout),
            ("--raft-heartbeat", self.raft_heartbeat),
            ("--raft-install-timeout", self.raft_install_timeout),
            ("--sync-wait", self.sync_wait),
            ("--grpc-lease", self.grpc_lease),
        ] {
            if value.is_zero() {
                return Err(format!("{flag} must be greater than zero"));
            }
        }
        for (flag, value) in [
            ("--max-body", self.max_body),
            ("--max-batch", self.max_batch),
            ("--config-max-size", self.config_max_size),
            ("--grpc-max-instances", self.grpc_max_instances),
            ("--grpc-max-subscriptions", self.grpc_max_subscriptions),
        ] {
            if value == 0 {
                return Err(format!("{flag} must be greater than zero"));
            }
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
        Ok(())
    }

    /// The tokens.
    fn auth(&mut self) -> Result<Auth, String> {
        let auth = Auth {
            cluster: token(
                "cluster-token",
                self.cluster_token.take(),
                self.cluster_token_file.take(),
            )?,
            client: token("client-token", self.client_token.take(), None)?,
            client_reads: self.client_token_reads,
            guard: None,
        };
        if auth.client_reads && auth.client.is_none() {
            return Err("--client-token-reads needs --client-token".to_owned());
        }
        Ok(auth)
    }

    /// `--auth-enabled`: the guard (its token key and ttl) into `auth`, and the first admin.
    fn users(&mut self, auth: &mut Auth, server_list: &[String], mode: &Mode) -> Result<Option<Admin>, String> {
        let needs = |flag: &str| format!("--{flag} needs --auth-enabled");
        if !self.auth_enabled {
            return match (&self.admin_password_file, &self.token_secret_file) {
                (Some(_), _) => Err(needs("admin-password-file")),
                (_, Some(_)) => Err(needs("token-secret-file")),
                _ => Ok(None),
            };
        }
        let clustered = !server_list.is_empty();
        if clustered && matches!(mode, Mode::Snapshot(_)) {
            return Err(
                "--auth-enabled in a cluster needs --cluster-mode raft: users, roles and permissions are \
                        replicated by the raft log"
                    .to_owned(),
            );
        }
        if clustered && auth.cluster.is_none() {
            return Err(
                "--auth-enabled in a cluster needs --cluster-token: a write relayed between nodes is \
                        trusted only with it"
                    .to_owned(),
            );
        }
        let key = match self.token_secret_file.take() {
            Some(path) => {
                let secret = std::fs::read_to_string(&path)
                    .map_err(|e| format!("--token-secret-file {}: {e}", path.display()))?;
                TokenKey::new(secret.trim().as_bytes()).map_err(|e| format!("--token-secret-file: {e}"))?
            }
            None if clustered => {
                return Err(
                    "--auth-enabled in a cluster needs --token-secret-file (the same secret on every node), \
                            or a token one node issued is refused by the others"
                        .to_owned(),
                )
            }
            None => TokenKey::random(),
        };
        let password = match self.admin_password_file.take() {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("--admin-password-file {}: {e}", path.display()))?;
                let password = text.trim().to_owned();
                if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
                    return Err(format!(
                        "--admin-password-file {}: the password must be 1 to {MAX_PASSWORD_LEN} bytes",
                        path.display()
                    ));
                }
                Some(password)
            }
            None => None,
        };
        if password.is_none() && matches!(mode, Mode::Snapshot(_)) {
            return Err(format!(
                "--auth-enabled needs an admin, and this node keeps nothing across restarts: give \
                 --admin-password-file (a file holding the password of --admin-user {:?})",
                self.admin_user
            ));
        }
        let user = self.admin_user.trim().to_owned();
        if user.is_empty() {
            return Err("--admin-user is empty".to_owned());
        }
        auth.guard = Some(Arc::new(Guard::new(key, self.token_ttl)));
        Ok(Some(Admin { user, password }))
    }

    /// `--server-list` (normalised, each once) and `--my-url`.
    fn urls(&self) -> Result<(Vec<String>, Option<String>), String> {
        let mut server_list = Vec::new();
        for url in self.server_list.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let url = normalize_url(url).map_err(|e| format!("--server-list: {e}"))?;
            if !server_list.contains(&url) {
                server_list.push(url);
            }
        }
        let my_url = match self.my_url.as_deref() {
            Some(url) => Some(normalize_url(url).map_err(|e| format!("--my-url: {e}"))?),
            None => None,
        };
        if my_url.is_none() && !server_list.is_empty() && self.bind.is_unspecified() {
            return Err(format!(
                "--my-url is required with --server-list when binding to {}: the other servers need an address they can reach",
                self.bind
            ));
        }
        Ok((server_list, my_url))
    }

    /// The cluster mode and its settings.
    fn mode(&mut self) -> Result<Mode, String> {
        let data_dir = match (self.cluster_mode, self.data_dir.take()) {
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
            (Some(ClusterMode::Raft) | None, Some(data_dir)) => data_dir,
            (Some(ClusterMode::Snapshot) | None, None) if self.join => {
                return Err("--join needs --cluster-mode raft (and --data-dir)".to_owned())
            }
            (Some(ClusterMode::Snapshot) | None, None) => {
                return Ok(Mode::Snapshot(SnapshotMode {
                    election: self.election,
                    cluster_interval: self.cluster_interval,
                    sync_wait: self.sync_wait,
                }))
            }
        };
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
        Ok(Mode::Raft(RaftMode {
            data_dir,
            join: self.join,
            write_timeout: self.write_timeout,
            heartbeat: self.raft_heartbeat,
            election: self.raft_election,
            snapshot_every: self.raft_snapshot_every,
            snapshot_commands: SNAPSHOT_COMMANDS,
            install_timeout: self.raft_install_timeout,
            log_faults: LogFaults::default(),
        }))
    }

    /// The gRPC listener's port: the HTTP port + 1000 for `auto`, none for `off`.
    fn grpc_port(&self) -> Result<Option<u16>, String> {
        Ok(match self.grpc_port {
            GrpcPort::Off => None,
            GrpcPort::Auto if self.port == 0 => Some(0),
            GrpcPort::Auto => Some(self.port.checked_add(1000).ok_or_else(|| {
                format!(
                    "--grpc-port auto is the HTTP port + 1000, above 65535 for --port {}; give --grpc-port a port (or off)",
                    self.port
                )
            })?),
            GrpcPort::Port(port) if port != 0 && port == self.port => {
                return Err(format!("--grpc-port {port} is the HTTP port; give another one"))
            }
            GrpcPort::Port(port) => Some(port),
        })
    }

    /// The process's connection budget (`--max-connections`, what the open-file limit
    /// allows less the reserve) and the gRPC listener's part of it.
    fn connection_budget(&self, open_files: u64) -> Result<(usize, usize), String> {
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
        let grpc_max_connections = match (self.grpc_max_connections, self.grpc_port) {
            (_, GrpcPort::Off) => 0,
            (None, _) if max_connections < 2 => {
                return Err("--max-connections must be at least 2 with a gRPC listener (one each)".to_owned())
            }
            (None, _) => max_connections / 2,
            (Some(n), _) if n == 0 || n >= max_connections => {
                return Err(format!(
                    "--grpc-max-connections {n} must be above zero and below --max-connections ({max_connections}): \
                     the HTTP listener has the rest"
                ))
            }
            (Some(n), _) => n,
        };
        Ok((max_connections, grpc_max_connections))
    }
}

type ListenerTls = Option<Arc<ServerTls>>;
type PeersTls = Option<Arc<PeerTls>>;

/// The TLS flags, as given.
struct TlsFlags {
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    peer_ca: Option<PathBuf>,
    peer_cert: Option<PathBuf>,
    peer_key: Option<PathBuf>,
}

/// The listener's and the peers' TLS, loaded and checked: flags that go together,
/// https urls with a CA to check them, files that can be used.
fn tls(cli: &TlsFlags, server_list: &[String], my_url: Option<&str>) -> Result<(ListenerTls, PeersTls), String> {
    // The message names the flag (certificate, key, CA), the file and the problem.
    let named = |flags: [&'static str; 3]| {
        move |e: TlsError| {
            let flag = match e.kind {
                TlsFile::Certificate => flags[0],
                TlsFile::Key => flags[1],
                TlsFile::Ca => flags[2],
            };
            format!("{flag} {e}")
        }
    };
    let listener = named(["--tls-cert", "--tls-key", "--tls-client-ca"]);
    let peer = named(["--peer-cert", "--peer-key", "--peer-ca"]);
    let server = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(
            ServerTls::load(ServerTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: cli.tls_client_ca.clone(),
            })
            .map_err(listener)?,
        ),
        (None, None) if cli.tls_client_ca.is_some() => {
            return Err(
                "--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for in a \
                        TLS handshake"
                    .to_owned(),
            )
        }
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    let identity = match (&cli.peer_cert, &cli.peer_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => return Err("--peer-cert and --peer-key go together".to_owned()),
    };
    let https = server_list
        .iter()
        .map(String::as_str)
        .chain(my_url)
        .find(|u| u.starts_with("https://"));
    let peers = match (&cli.peer_ca, https) {
        (Some(ca), _) => Some(
            PeerTls::load(PeerTlsFiles {
                ca: ca.clone(),
                identity,
            })
            .map_err(peer)?,
        ),
        (None, Some(url)) => {
            return Err(format!(
                "{url} is an https:// url, and there is no --peer-ca to check the certificate of the node behind it"
            ))
        }
        (None, None) if identity.is_some() => {
            return Err("--peer-cert needs --peer-ca: it is shown to peers reached over https://".to_owned())
        }
        (None, None) => None,
    };
    if let Some(url) = my_url {
        if url.starts_with("https://") != server.is_some() {
            return Err(if server.is_some() {
                format!(
                    "--my-url {url} is plain http://, and this node serves HTTPS (--tls-cert): give its https:// url"
                )
            } else {
                format!("--my-url {url} is https://, and this node serves plain HTTP: give --tls-cert and --tls-key")
            });
        }
    }
    Ok((server, peers))
}
