//! Stopping the controller is bounded even when the API server never
//! answered: the object cache is not ready then, and kube-runtime's own
//! graceful shutdown would wait for it forever.

use std::sync::Arc;
use std::time::Duration;

use quayside::controller::{self, Config, Context, Metrics};
use quayside::quay::{QuayClient, QuayConfig, RetryPolicy};
use quayside::render::KustomizeFlavor;
use quayside::seal::Identity;
use quayside::source::ProbeScope;

/// A listener that accepts connections and never answers on them.
async fn silent_api_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    (url, held)
}

fn config() -> Config {
    Config {
        registry_host: "quay.example".into(),
        side_repo: None,
        delivery_mode: quayside::api::DeliveryMode::Both,
        flavor: KustomizeFlavor::Ksops,
        identity: Identity::generate(),
        heartbeat: Duration::from_secs(3600),
        quay_verify_interval: Duration::from_secs(3600),
        rotation_interval: None,
        cleanup_timeout: Duration::from_secs(30),
        source_retry: RetryPolicy::default(),
        source_scope: ProbeScope::PublicOnly,
        namespace: Some("ws".into()),
        delivery: None,
        side_repo_scope: Default::default(),
        rotation_request_cooldown: Duration::ZERO,
        rotation_deadline: None,
        concurrency: 32,
        remote_watch_limit: 100,
    }
}

#[tokio::test]
async fn stop_before_the_first_list_returns_promptly() {
    let (url, _held) = silent_api_server().await;
    let kube_config = kube::Config::new(url.parse().unwrap());
    let client = kube::Client::try_from(kube_config).unwrap();
    let quay = QuayClient::new(QuayConfig::new(
        "http://127.0.0.1:1/api/v1",
        "org",
        "/nonexistent",
    ))
    .unwrap();
    let ctx = Arc::new(Context::new(client, config(), quay, Metrics::default()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(controller::run(ctx, async move {
        let _ = stopped.await;
    }));
    // Let the watches connect (and hang) before asking it to stop.
    tokio::task::yield_now().await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the controller stops within 10 s of being asked")
        .unwrap();
}
