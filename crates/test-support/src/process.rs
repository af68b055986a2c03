//! Nodes as real `maregistry` processes, for faults that an in-process node cannot show:
//! `kill -9` (nothing is flushed, no goodbye) and SIGSTOP (the node is alive but silent,
//! its listener still accepting into the backlog).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use registry_http::{get_json, HyperInvoker, HyperInvokerConfig};
use serde_json::Value;

/// `n` loopback ports that were free a moment ago.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// The `--server-list` of nodes on these loopback ports.
pub fn server_list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `maregistry` binary Cargo built beside the running test (`target/<profile>/`):
/// integration tests of the server package have it built before they run.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/maregistry
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let binary = dir.join(format!("maregistry{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run the server's tests with cargo (cargo test -p maregistry), which builds it",
        binary.display()
    );
    binary
}

/// One `maregistry` process; killed when dropped.
pub struct Proc {
    pub url: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    /// The open-file limit (soft and hard) it runs under, when not the test's.
    open_files: Option<u64>,
}

impl Proc {
    /// Starts the binary on `port` with `args` after `--port`; logs go to a file in the
    /// temp dir (its tail is printed if the test fails).
    pub fn start(port: u16, args: &[String]) -> Proc {
        Proc::start_limited(port, args, None)
    }

    /// [`Proc::start`] under an open-file limit of `open_files`, soft and hard (the node
    /// raises its soft limit to the hard one as it starts, so both are set).
    pub fn start_with_open_files(port: u16, args: &[String], open_files: u64) -> Proc {
        Proc::start_limited(port, args, Some(open_files))
    }

    fn start_limited(port: u16, args: &[String], open_files: Option<u64>) -> Proc {
        let mut all = vec!["--port".to_owned(), port.to_string()];
        all.extend_from_slice(args);
        // No gRPC listener on port + 1000 (another test may hold it) unless asked for.
        if !args.iter().any(|a| a.starts_with("--grpc-port")) {
            all.extend(["--grpc-port".to_owned(), "off".to_owned()]);
        }
        let log = std::env::temp_dir().join(format!("maregistry-test-{}-{port}.log", std::process::id()));
        let scheme = if args.iter().any(|a| a == "--tls-cert") {
            "https"
        } else {
            "http"
        };
        let mut proc = Proc {
            url: format!("{scheme}://127.0.0.1:{port}"),
            args: all,
            log,
            child: None,
            open_files,
        };
        proc.spawn();
        proc
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the log file");
        let mut command = Command::new(binary());
        command
            .args(&self.args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(open_files) = self.open_files {
            let limit = libc::rlimit {
                rlim_cur: open_files,
                rlim_max: open_files,
            };
            // SAFETY: setrlimit(2) is async-signal-safe, and `limit` is a plain value
            // copied into the closure: nothing is allocated between fork and exec.
            unsafe {
                command.pre_exec(move || match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                });
            }
        }
        let child = command.spawn().expect("start maregistry");
        self.child = Some(child);
    }

    fn pid(&self) -> libc::pid_t {
        let child = self.child.as_ref().expect("the process runs");
        libc::pid_t::try_from(child.id()).expect("a pid")
    }

    /// `kill -9`: the process dies at once, whatever it was doing.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit (a graceful stop); answers its exit
    /// code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on the pid of a child this struct owns and has not reaped.
        let pid = libc::pid_t::try_from(child.id()).ok()?;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        child.wait().ok()?.code()
    }

    /// Whether the process still runs (it has not exited).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits (at most 60 s) for a process that stops by itself, e.g. refuses to start;
    /// answers its exit code. Panics if it is still running then.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().ok()? {
                self.child = None;
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not exit within 60 s",
                self.url
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the process again with the same arguments (an empty registry).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGSTOP: the process stays, silent; connections queue in its backlog.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Proc::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGHUP: a node with TLS reloads its certificates.
    pub fn hangup(&self) {
        self.signal(libc::SIGHUP);
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child this struct owns and has not reaped.
        let sent = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(sent, 0, "signal {signal} to {}", self.url);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            if let Ok(file) = File::open(&self.log) {
                let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
                eprintln!("---- last lines of {} ({}) ----", self.url, self.log.display());
                for line in &lines[lines.len().saturating_sub(40)..] {
                    eprintln!("{line}");
                }
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Watches every node's `/info` version in the background and records any decrease
/// (docs/spec.md §2: a registry version only grows). A node's own restart starts a new count:
/// call [`VersionWatch::restarted`].
pub struct VersionWatch {
    state: Arc<Mutex<WatchState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct WatchState {
    highest: HashMap<String, u64>,
    /// Bumped by each restart, so that an answer of the old process that arrives late is
    /// not counted against the new one.
    generation: HashMap<String, u64>,
    decreases: Vec<String>,
}

impl VersionWatch {
    pub fn start(urls: Vec<String>) -> VersionWatch {
        let state = Arc::new(Mutex::new(WatchState::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let http = HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_millis(300)));
            loop {
                for url in &urls {
                    let generation = shared.lock().expect("watch state").generation.get(url).copied();
                    let Ok(info) = get_json::<Value>(&http, &format!("{url}/info")).await else {
                        continue; // killed, paused or restarting
                    };
                    let Some(version) = info["version"].as_u64() else {
                        continue;
                    };
                    let mut state = shared.lock().expect("watch state");
                    if state.generation.get(url).copied() != generation {
                        continue;
                    }
                    let highest = state.highest.entry(url.clone()).or_insert(version);
                    if version < *highest {
                        let seen = format!("{url}: version {version} after {highest}");
                        state.decreases.push(seen);
                    } else {
                        *highest = version;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        VersionWatch { state, task }
    }

    /// `url` was restarted: its new process starts from 0 again.
    pub fn restarted(&self, url: &str) {
        let mut state = self.state.lock().expect("watch state");
        state.highest.remove(url);
        *state.generation.entry(url.to_owned()).or_default() += 1;
    }

    /// Every decrease seen so far.
    pub fn decreases(&self) -> Vec<String> {
        self.state.lock().expect("watch state").decreases.clone()
    }
}

impl Drop for VersionWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
