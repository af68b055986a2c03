//! The real binary with `--config`: the environment wins over the file, `--log-format
//! json` writes JSON lines, and a bad file stops it with exit code 2 naming key and file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_maregistry");

/// The first log line of the binary started with `args` and `env`, as JSON; the process
/// is killed after it.
fn first_json_line(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("maregistry starts");
    let mut line = String::new();
    let stderr = child.stderr.take().expect("its stderr");
    BufReader::new(stderr).read_line(&mut line).expect("a log line");
    let _ = child.kill();
    let _ = child.wait();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

#[test]
fn flags_over_environment_over_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maregistry.toml");
    std::fs::write(
        &file,
        "port = 0\nttl = \"30s\"\nevict-interval = \"7s\"\nhttp-timeout = \"900ms\"\nlog-format = \"json\"\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let line = first_json_line(
        &["--config", config, "--http-timeout", "800ms"],
        &[("MAREGISTRY_TTL", "25s"), ("MAREGISTRY_HTTP_TIMEOUT", "700ms")],
    );
    assert_eq!(line["message"], "maregistry listening", "{line}");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["ttl"], "25s", "the environment wins over the file: {line}");
    assert_eq!(line["http_timeout"], "800ms", "a flag wins over both: {line}");
    assert_eq!(line["evict_interval"], "7s", "the file wins over the default: {line}");
    assert_eq!(line["body_timeout"], "10s", "the default: {line}");
}

#[test]
fn a_bad_file_exits_2_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("port = 0\nttl-seconds = 5\n", "unknown key `ttl-seconds`"),
        ("port = 0\nmax-body = \"lots\"\n", "bad value for key `max-body`"),
        (
            "port = 0\nraft-snapshot-every = 0\ndata-dir = \"/tmp/x\"\n",
            "key `raft-snapshot-every`",
        ),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let output = Command::new(BIN)
            .args(["--config", file.to_str().unwrap()])
            .output()
            .expect("maregistry runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains(expected), "{text:?}: {stderr}");
        assert!(
            stderr.contains(file.to_str().unwrap()),
            "{text:?} names the file: {stderr}"
        );
    }
}
