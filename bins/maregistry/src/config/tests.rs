//! The configuration's unit tests: values, precedence, the file, the documented example.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use super::cli::Cli;
use super::file::SettingsError;
use super::settings::{Config, Mode, RaftMode};
use super::units::{parse_duration, parse_size};
use super::validate::default_max_connections;

/// The raft settings of `config`, which must be in raft mode.
fn raft(config: &Config) -> &RaftMode {
    match &config.mode {
        Mode::Raft(raft) => raft,
        Mode::Snapshot(_) => panic!("not raft: {config:?}"),
    }
}

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
    assert_eq!(
        raft(&config).write_timeout,
        Duration::from_secs(5),
        "--data-dir means raft"
    );
    let (_, config) = cli(&["--cluster-mode", "raft", "--data-dir", "/tmp/x", "--join"]).unwrap();
    assert!(raft(&config).join);
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
fn users_need_an_admin_a_secret_and_raft_in_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (password, secret, short) = (
        write("password", "s3cret-admin\n"),
        write("secret", "0123456789abcdef0123456789abcdef\n"),
        write("short", "too short"),
    );
    let (_, config) = cli(&[]).unwrap();
    assert!(config.auth.guard.is_none() && config.admin.is_none(), "off by default");
    let (_, config) = cli(&["--auth-enabled", "--admin-password-file", &password]).unwrap();
    assert!(config.auth.guard.is_some());
    let admin = config.admin.clone().unwrap();
    assert_eq!(
        (admin.user.as_str(), admin.password.as_deref()),
        ("nacos", Some("s3cret-admin"))
    );
    assert!(!format!("{config:?}").contains("s3cret-admin"), "never in a log");
    let in_memory = cli(&["--auth-enabled"]).unwrap_err();
    assert!(in_memory.contains("--admin-password-file"), "{in_memory}");
    assert!(cli(&["--admin-password-file", &password])
        .unwrap_err()
        .contains("--auth-enabled"));
    assert!(cli(&["--token-secret-file", &secret])
        .unwrap_err()
        .contains("--auth-enabled"));
    let cluster = [
        "--auth-enabled",
        "--admin-password-file",
        &password,
        "--server-list",
        "http://a:1,http://b:2",
    ];
    assert!(cli(&cluster).unwrap_err().contains("raft"));
    let data = dir.path().join("data");
    let raft = [
        &cluster[..],
        &["--cluster-mode", "raft", "--data-dir", data.to_str().unwrap()],
    ]
    .concat();
    assert!(cli(&raft).unwrap_err().contains("--cluster-token"));
    let with_token = [&raft[..], &["--cluster-token", "k"]].concat();
    assert!(cli(&with_token).unwrap_err().contains("--token-secret-file"));
    assert!(cli(&[&with_token[..], &["--token-secret-file", &short]].concat())
        .unwrap_err()
        .contains("32 bytes"));
    let (_, config) = cli(&[&with_token[..], &["--token-secret-file", &secret]].concat()).unwrap();
    assert!(config.auth.guard.is_some());
    // A raft node with a data dir may start without the password: its state has the admin.
    let (_, config) = cli(&["--auth-enabled", "--data-dir", data.to_str().unwrap()]).unwrap();
    assert_eq!(config.admin.unwrap().password, None);
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
    let text = "ttl = \"30s\"\nmax-body = \"1MiB\"\nmax-batch = 10\nserver-list = [\"http://a:1\", \"http://b:2\"]\n\
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
    assert!(matches!(
        with_file("join = false\n", &[]).unwrap().mode,
        Mode::Snapshot(_)
    ));
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
    let doc = include_str!("../../../../docs/operations.md");
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
    assert_eq!(config.grpc.max_connections, (4096 - 256) / 2, "gRPC's half of them");
    assert_eq!(config.limits().max_connections, (4096 - 256) / 2, "HTTP's half");
    assert_eq!(config.limits().max_refusals, 64);
    assert_eq!(config.limits().handshake_timeout, Duration::from_secs(10));
    assert_eq!(config.limits().idle_timeout, Duration::from_secs(30));
    let (_, config) = cli(&["--max-connections", "10", "--grpc-max-connections", "3"]).unwrap();
    assert_eq!(
        (
            config.max_connections,
            config.grpc.max_connections,
            config.limits().max_connections
        ),
        (10, 3, 7),
        "one budget, split"
    );
    let (_, config) = cli(&["--max-connections", "10", "--grpc-port", "off"]).unwrap();
    assert_eq!(config.limits().max_connections, 10, "HTTP has it all without gRPC");
    assert!(cli(&["--max-connections", "10", "--grpc-max-connections", "10"]).is_err());
    assert!(cli(&["--grpc-max-connections", "0"]).is_err());
    assert!(cli(&["--idle-timeout", "0s"]).is_err());
    assert!(cli(&["--handshake-timeout", "0s"]).is_err());
    assert!(cli(&["--max-connections", "0"]).is_err());
    assert!(
        cli(&["--max-connections", "4000"]).is_err(),
        "above what 4096 files allow"
    );
    assert!(cli(&["--body-timeout", "0ms"]).is_err());
    assert!(matches!(config.mode, Mode::Snapshot(_)));
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
