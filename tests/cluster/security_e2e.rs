//! Security end to end: the controller runs under exactly the deploy/ RBAC
//! (with a token of its own ServiceAccount). After a full run with
//! rotations and failure paths (a target never granted, an unreachable
//! remote cluster, a Quay outage), no secret of the run — robot tokens, the
//! Quay admin token, the git password, the age identity, a tenant's remote
//! token — appears raw or base64-encoded at any alignment in logs, events,
//! status, metrics, the side repository's git history, or the decoded data
//! of a Secret where it does not belong.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use quayside_testkit::harness::{Harness, QUAY_TOKEN, SIDE_REPO};
use quayside_testkit::{git_server, leaks, tools, wait};
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
    // Then failure paths, so their messages, events and logs are searched too:
    // a target never granted, and a remote cluster that does not answer,
    // reached with a token of the tenant's.
    let nogrant = h.ungranted_namespace("sec-nogrant", false).await;
    h.create_environment("ungranted", &nogrant, &[]).await;
    let remote_token = format!("tenant-remote-token-{}", std::process::id());
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
         clusters:\n- name: x\n  cluster: {{server: \"https://127.0.0.1:1\"}}\n\
         users:\n- name: x\n  user: {{token: \"{remote_token}\"}}\n\
         contexts:\n- name: x\n  context: {{cluster: x, user: x}}\n"
    );
    h.create_remote_environment("remote", "apps", &kubeconfig)
        .await;
    // A new Component that first meets a Quay outage (HTTP 500 and HTML
    // 502 pages): the error path runs, then it is provisioned.
    h.emulator.set_faults(quay_emulator::Faults {
        error_5xx_fraction: 1.0,
        ..Default::default()
    });
    h.create_component("three", &h.git.repo_url("public-app"), "public")
        .await;
    wait::until("the outage shows in the Component's status", T, || async {
        let c = h.components().get("three").await.ok()?;
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.status == "False" && c.message.contains("HTTP 5"))
    })
    .await;
    h.emulator.set_faults(quay_emulator::Faults::default());
    wait::until("three's credentials once Quay is back", T, || async {
        let c = h.components().get("three").await.ok()?;
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "CredentialsReady" && c.status == "True")
    })
    .await;
    collect(&h);
    for (name, reason) in [
        ("ungranted", "DeliveryNotGranted"),
        ("remote", "TargetClusterUnavailable"),
    ] {
        wait::until(&format!("{name}: the failure path ran"), T, || async {
            let e = h.environments().get(name).await.ok()?;
            e.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Applied" && c.reason == reason)
        })
        .await;
    }
    tokens.sort();
    tokens.dedup();
    assert!(
        tokens.len() >= 7,
        "6 robots + 3 regenerations: {}",
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
    let mut warnings = 0;
    for ns in [&h.workspace, &dev, &prod, &nogrant] {
        let events = Api::<Event>::namespaced(h.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        warnings += events
            .items
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .count();
        if ns == &h.workspace {
            assert!(
                !events.items.is_empty(),
                "the workspace has events to search"
            );
        }
        haystacks.push((
            format!("events in {ns}"),
            serde_json::to_vec(&events.items).unwrap(),
        ));
    }
    assert!(
        warnings > 0,
        "the failure paths left Warning events to search"
    );
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

    // Every secret of the run: robot tokens, the Quay admin token, the
    // side repository's password, the controller's age identity, and the
    // tenant's remote-cluster token.
    let mut secrets: Vec<(String, String)> = tokens
        .iter()
        .map(|t| ("a robot token".to_string(), t.clone()))
        .collect();
    secrets.push(("the Quay admin token".into(), QUAY_TOKEN.into()));
    secrets.push(("the git password".into(), git_server::PASSWORD.into()));
    secrets.push((
        "the age identity".into(),
        h.identity.to_secret_string().expose_secret().to_string(),
    ));
    secrets.push(("the remote-cluster token".into(), remote_token.clone()));
    let mut hits = Vec::new();
    for (what, secret) in &secrets {
        let needles = leaks::needles(secret);
        for (name, hay) in &haystacks {
            if leaks::found(hay, &needles) {
                hits.push(format!("{what} in {name}"));
            }
        }
    }
    // Inside Secret data (decoded): robot tokens belong in the workspace
    // and pull Secrets, and the tenant's token in its kubeconfig Secret;
    // nothing else of the above is in any Secret, and no push token is in
    // a target namespace.
    let push: Vec<String> = h
        .emulator
        .snapshot()
        .robots
        .iter()
        .filter(|r| r.name.contains("push"))
        .map(|r| r.token.expose_secret().to_string())
        .collect();
    for ns in [&h.workspace, &dev, &prod, &nogrant] {
        let all = Api::<Secret>::namespaced(h.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        assert!(
            ns == &nogrant || !all.items.is_empty(),
            "{ns} has Secrets to search"
        );
        for secret in &all.items {
            let data = leaks::secret_data(secret);
            let name = format!(
                "Secret {ns}/{}",
                secret.metadata.name.as_deref().unwrap_or("")
            );
            for (what, value) in secrets.iter().skip(tokens.len()) {
                let theirs = value == &remote_token && name.ends_with("/remote-cluster");
                if !theirs && leaks::found(&data, &leaks::needles(value)) {
                    hits.push(format!("{what} in {name}"));
                }
            }
            if ns != &h.workspace {
                for token in &push {
                    if leaks::found(&data, &leaks::needles(token)) {
                        hits.push(format!("a push token in {name}"));
                    }
                }
            }
        }
    }
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");
}
