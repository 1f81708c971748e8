//! Security end to end: the controller runs under exactly the deploy/ RBAC
//! (with a token of its own ServiceAccount), and after a full run with rotations
//! no token — raw or base64 — appears in logs, events, status, metrics or
//! any object of the side repository's git history.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use quayside_testkit::harness::{Harness, SIDE_REPO};
use quayside_testkit::tools;
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(60);

/// Log lines written in this test binary while this test runs: the
/// subscriber is process-wide, so other tests' lines come too (their
/// tokens are not this test's). Closed once read, so it stops growing.
#[derive(Clone)]
struct Captured(Arc<Mutex<Option<Vec<u8>>>>);

impl Captured {
    /// What was written so far; later writes are dropped.
    fn close(&self) -> Vec<u8> {
        self.0.lock().unwrap().take().unwrap_or_default()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(b) = self.0.lock().unwrap().as_mut() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    let captured = Captured(Arc::new(Mutex::new(Some(Vec::new()))));
    let writer = captured.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("debug,hyper=info,h2=info,tower=info,rustls=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();
    captured
}

async fn rotate(h: &Harness, name: &str, to: i64) {
    h.request_rotation(name).await;
    let c = h.wait_rotated(name, to, T).await;
    assert_eq!(c.status.unwrap().credentials_generation, to, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_privilege_rbac_and_no_token_leaks() {
    let logs = capture_logs();
    let mut h = Harness::start().await;
    // Install deploy/'s RBAC and act as the controller's ServiceAccount.
    let _ =
        h.cp.kubectl()
            .args(["create", "namespace", "quayside-system"])
            .output();
    for f in [
        "deploy/controller/namespace.yaml",
        "deploy/rbac/clusterrole.yaml",
    ] {
        let out =
            h.cp.kubectl()
                .args(["apply", "-f"])
                .arg(tools::root().join(f))
                .output()
                .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A token of the controller's own ServiceAccount, not impersonation by
    // the administrator: the controller's impersonation of each workspace's
    // delivery account is then checked against deploy/'s RBAC too.
    let sa_config =
        h.cp.service_account_config("quayside-system", "quayside-controller")
            .await;
    let sa_client = kube::Client::try_from(sa_config.clone()).unwrap();
    let dev = h.target_namespace("sec-dev", true).await;
    let prod = h.target_namespace("sec-prod", false).await;
    h.create_environment("dev", &dev, &[]).await;
    h.create_environment("prod", &prod, &[]).await;
    let mut cfg = h.config();
    cfg.delivery.as_mut().unwrap().base = sa_config;
    h.start_controller_as(sa_client, cfg).await;
    h.create_component("one", &h.git.repo_url("public-app"), "auto")
        .await;
    h.create_component("two", &h.git.repo_url("private-app"), "auto")
        .await;
    h.wait_component_ready("one", T).await;
    h.wait_component_ready("two", T).await;
    // Every token the run ever produced, including the rotated-away ones.
    let mut tokens: Vec<String> = Vec::new();
    let mut collect = |h: &Harness| {
        for r in h.emulator.snapshot().robots {
            tokens.push(r.token.expose_secret().to_string());
        }
    };
    collect(&h);
    rotate(&h, "one", 2).await;
    collect(&h);
    rotate(&h, "one", 3).await;
    collect(&h);
    rotate(&h, "two", 2).await;
    collect(&h);
    h.wait_component_ready("one", T).await;
    h.wait_component_ready("two", T).await;
    tokens.sort();
    tokens.dedup();
    assert!(
        tokens.len() >= 7,
        "4 robots + 3 regenerations: {}",
        tokens.len()
    );
    let (metrics, quay) = h.observed.clone().unwrap();
    h.stop_controller().await;

    // Everything a person or a log pipeline could see.
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let logged = logs.close();
    // The controller's log lines reached the capture (the subscriber is
    // process-wide, and no other test of this binary installs one).
    assert!(!logged.is_empty(), "the controller's logs were captured");
    haystacks.push(("logs".into(), logged));
    for ns in [&h.workspace, &dev, &prod] {
        let events = Api::<Event>::namespaced(h.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        haystacks.push((
            format!("events in {ns}"),
            serde_json::to_vec(&events.items).unwrap(),
        ));
    }
    let comps = h.components().list(&ListParams::default()).await.unwrap();
    let envs = h.environments().list(&ListParams::default()).await.unwrap();
    haystacks.push((
        "Component status".into(),
        serde_json::to_vec(&comps.items).unwrap(),
    ));
    haystacks.push((
        "Environment status".into(),
        serde_json::to_vec(&envs.items).unwrap(),
    ));
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    quay.metrics().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("quayside_reconciles"),
        "metrics were recorded"
    );
    haystacks.push(("metrics".into(), text.into_bytes()));
    // Every object of the side repository, every commit.
    let mut all = Command::new("git")
        .arg("--git-dir")
        .arg(h.git.repo_path(SIDE_REPO))
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut git_bytes = Vec::new();
    std::io::Read::read_to_end(all.stdout.as_mut().unwrap(), &mut git_bytes).unwrap();
    all.wait().unwrap();
    assert!(git_bytes.len() > 1000, "the side repository has content");
    haystacks.push(("git objects".into(), git_bytes));

    let b64 = base64::engine::general_purpose::STANDARD;
    let mut hits = Vec::new();
    for token in &tokens {
        let needles = [token.clone(), b64.encode(token)];
        for (name, hay) in &haystacks {
            for needle in &needles {
                if hay.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(name.clone());
                }
            }
        }
    }
    assert!(hits.is_empty(), "tokens leaked into: {hits:?}");
}
