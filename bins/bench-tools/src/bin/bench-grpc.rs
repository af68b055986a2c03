//! A load client for the Nacos gRPC protocol, for `scripts/bench.sh`: the same requests to
//! maregistry and to r-nacos.
//!
//! - `register`: `--connections` clients, each registering a new instance in a new service
//!   per request (`InstanceRequest`), for `--seconds`: registrations per second and latency.
//! - `fanout`: `--connections` subscribers of one service; then `--rounds` changes of it
//!   (a registration through gRPC, then its deregistration, alternately), each timed until
//!   every subscriber has the push that shows it: p50/p99/max over all deliveries.
//! - `idle`: `--connections` set-up connections held for `--seconds`, doing nothing (the
//!   script reads the server's memory and CPU meanwhile).
//!
//! Prints one JSON object of figures on stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench_tools::grpc::{body, connect, payload, payload_text, result_code, run_for, summary};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Register,
    Fanout,
    Idle,
}

#[derive(Debug, Parser)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,
    /// The gRPC address, host:port.
    #[arg(long)]
    target: String,
    /// Connections (clients, or subscribers).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to run (register) or hold (idle).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Changes to time (fanout).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

/// An `InstanceRequest` body of `kind` (`registerInstance`, `deregisterInstance`), written
/// out directly rather than built as a JSON value: the load loop stays cheap, so that the
/// client (on its own core) is not what limits the rate measured.
fn instance_request(service: &str, ip: &str, port: u16, kind: &str) -> String {
    format!(
        r#"{{"requestId":"","namespace":"public","groupName":"DEFAULT_GROUP","serviceName":"{service}","module":"naming","type":"{kind}","instance":{{"ip":"{ip}","port":{port},"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT","metadata":{{"env":"bench"}}}}}}"#
    )
}

async fn register(args: &Args) -> anyhow::Result<Value> {
    let mut callers = Vec::new();
    for _ in 0..args.connections {
        callers.push(connect(&args.target, "naming", |_, _, _| {}).await?);
    }
    let run = run_for(
        callers,
        args.seconds,
        Arc::new(|c, i| {
            let request = instance_request(&format!("bench.{c}.{i}"), "10.9.0.1", 8080, "registerInstance");
            payload_text("InstanceRequest", request)
        }),
    )
    .await?;
    let mut figures = run.figures("registrations");
    figures.insert("mode".to_owned(), json!("register"));
    figures.insert("connections".to_owned(), json!(args.connections));
    Ok(Value::Object(figures))
}

async fn fanout(args: &Args) -> anyhow::Result<Value> {
    let service = "bench.fanout";
    // Each subscriber reports the host count of every push it gets.
    let (pushed_tx, mut pushed) = mpsc::unbounded_channel::<(usize, usize, Instant)>();
    let mut subscribers = Vec::new();
    for s in 0..args.connections {
        let tx = pushed_tx.clone();
        let mut conn = connect(&args.target, "naming", move |kind, sent, at| {
            if kind == "NotifySubscriberRequest" {
                let _ = tx.send((s, sent.hosts(), at));
            }
        })
        .await?;
        let subscribe = json!({"requestId":"","namespace":"public","groupName":"DEFAULT_GROUP","serviceName":service,
            "module":"naming","subscribe":true,"clusters":""});
        conn.unary
            .request(payload("SubscribeServiceRequest", &subscribe))
            .await?;
        subscribers.push(conn);
    }
    // Everyone has the first push (no hosts yet) before the clock starts.
    let mut first = vec![false; args.connections];
    let mut waiting = args.connections;
    while waiting > 0 {
        let (s, _, _) = tokio::time::timeout(Duration::from_secs(60), pushed.recv())
            .await
            .context("the first pushes")?
            .context("closed")?;
        if !std::mem::replace(&mut first[s], true) {
            waiting -= 1;
        }
    }
    let mut publisher = connect(&args.target, "naming", |_, _, _| {}).await?;
    let mut deliveries = Vec::new();
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let (kind_of, expected) = if round % 2 == 0 {
            ("registerInstance", 1)
        } else {
            ("deregisterInstance", 0)
        };
        while pushed.try_recv().is_ok() {}
        let started = Instant::now();
        let answer = publisher
            .unary
            .request(payload_text(
                "InstanceRequest",
                instance_request(service, "10.9.9.9", 9999, kind_of),
            ))
            .await?;
        if result_code(answer.get_ref()) != Some(200) {
            bail!("the change was refused: {}", body(answer.get_ref()));
        }
        let mut seen = vec![false; args.connections];
        let mut waiting = args.connections;
        let mut last = 0.0;
        while waiting > 0 {
            let (s, hosts, at) = tokio::time::timeout(Duration::from_secs(60), pushed.recv())
                .await
                .with_context(|| format!("round {round}: {waiting} subscribers never got the push"))?
                .context("closed")?;
            if hosts == expected && !std::mem::replace(&mut seen[s], true) {
                waiting -= 1;
                let ms = at.duration_since(started).as_secs_f64() * 1000.0;
                deliveries.push(ms);
                last = ms;
            }
        }
        rounds.push(last);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(subscribers);
    Ok(
        json!({"mode":"fanout","subscribers":args.connections,"rounds":args.rounds,
        "delivery":summary(deliveries),"round_complete":summary(rounds)}),
    )
}

async fn idle(args: &Args) -> anyhow::Result<Value> {
    let mut held = Vec::with_capacity(args.connections);
    let started = Instant::now();
    for _ in 0..args.connections {
        held.push(connect(&args.target, "naming", |_, _, _| {}).await?);
    }
    let opened = started.elapsed().as_secs_f64();
    // Tell the script the connections are up, then hold them.
    eprintln!("IDLE-UP {}", held.len());
    let (_tx, mut rx) = watch::channel(());
    let _ = tokio::time::timeout(Duration::from_secs(args.seconds), rx.changed()).await;
    Ok(json!({"mode":"idle","connections":held.len(),"open_seconds":opened}))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Thousands of connections need more descriptors than the default soft limit.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let figures = runtime.block_on(async {
        match args.mode {
            Mode::Register => register(&args).await,
            Mode::Fanout => fanout(&args).await,
            Mode::Idle => idle(&args).await,
        }
    })?;
    println!("{figures}");
    Ok(())
}
