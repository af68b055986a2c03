//! A provider that registers itself and a consumer that watches it, against a registry
//! node started in this process (or the one at `MAREGISTRY_URL`, when set).
//!
//! `cargo run -p registry-client --example client`

use std::time::Duration;

use registry_client::{ClientConfig, RegistryClient};
use registry_core::InstanceMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, node) = match std::env::var("MAREGISTRY_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(maregistry::run(listener, maregistry::Config::default(), async {
                let _ = stopped.await;
            }));
            (url, Some((stop, task)))
        }
    };
    println!("registry at {url}");
    let config = ClientConfig {
        heartbeat: Duration::from_secs(1),
        ..ClientConfig::new(&[&url])
    };

    // The consumer watches the service before anyone provides it.
    let consumer = RegistryClient::new(config.clone())?;
    let mut watcher = consumer.watch("com.demo.Greeter").await?;
    let watching = tokio::spawn(async move {
        for _ in 0..3 {
            let Some(list) = watcher.next().await else { break };
            let urls: Vec<String> = list.iter().map(InstanceMeta::url).collect();
            println!("consumer sees {} instance(s): {urls:?}", list.len());
        }
    });

    // The provider registers itself and keeps renewing until it shuts down.
    let provider = RegistryClient::new(config)?;
    let me = InstanceMeta::new("http", "127.0.0.1", 8080, "greeter")?;
    provider.register("com.demo.Greeter", &me).await?;
    println!("provider registered {}", me.url());
    tokio::time::sleep(Duration::from_secs(2)).await;
    provider.shutdown().await;
    println!("provider shut down (unregistered)");

    watching.await?;
    consumer.shutdown().await;
    if let Some((stop, task)) = node {
        let _ = stop.send(());
        let _ = task.await;
    }
    Ok(())
}
