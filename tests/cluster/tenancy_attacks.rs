//! Attacks a tenant can make with what it may write in its own workspace,
//! each run against the real control plane, the Quay emulator and the git
//! server (issue: tenancy). Each test is named `attack_…`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quayside_testkit::harness::{Harness, ORG, QUAY_TOKEN};
use quayside_testkit::wait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(60);

/// A listener the test owns, standing in for an attacker's server: it
/// records every byte any client sends it and answers 500.
async fn attacker_listener() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // One request's head is enough to see its Authorization header.
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await
                {
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    (addr.to_string(), seen)
}

/// Attack 1: a kubeconfig whose `tokenFile` names a file of the controller
/// (here the Quay admin token file; in a pod, its ServiceAccount token)
/// and whose server is the attacker's. The controller must refuse it
/// before any request, and say which field is not allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_kubeconfig_token_file_sends_the_controllers_token_nowhere() {
    let mut h = Harness::start().await;
    let (addr, seen) = attacker_listener().await;
    let token_file = h.dir.path().join("quay-token");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
         clusters:\n- name: x\n  cluster: {{server: \"http://{addr}\"}}\n\
         users:\n- name: x\n  user: {{tokenFile: \"{}\"}}\n\
         contexts:\n- name: x\n  context: {{cluster: x, user: x}}\n",
        token_file.display()
    );
    h.create_remote_environment("evil", "anything", &kubeconfig)
        .await;
    h.start_controller().await;
    let applied = wait::until("the Environment reports its target", T, || async {
        let e = h.environments().get("evil").await.ok()?;
        e.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Applied" && c.status == "False")
    })
    .await;
    h.stop_controller().await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen
            .windows(QUAY_TOKEN.len())
            .any(|w| w == QUAY_TOKEN.as_bytes()),
        "the attacker's server received the controller's token ({} bytes seen)",
        seen.len()
    );
    assert!(seen.is_empty(), "no request reached the attacker's server");
    assert_eq!(applied.reason, "TargetClusterUnavailable");
    assert!(
        applied.message.contains("refused"),
        "the condition says the kubeconfig is refused: {}",
        applied.message
    );
    assert!(
        !applied.message.contains(QUAY_TOKEN),
        "the condition does not quote the token"
    );
}

/// A Component's repository never moves: once provisioned, pointing
/// `spec.image` at another repository (another team's, say) is refused by
/// the API server, and the Component keeps its repository and delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_spec_image_moved_after_provisioning_is_refused() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let ready = h.wait_component_ready("app", T).await;
    let image = ready.status.unwrap().image.unwrap();
    let patch = serde_json::json!({"spec": {"image": "other-team/app"}});
    let refused = h
        .components()
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await;
    h.stop_controller().await;
    let err = refused.expect_err("the API server refuses a moved spec.image");
    assert!(
        err.to_string()
            .contains("cannot change once the repository is provisioned"),
        "{err}"
    );
    let after = h.components().get("app").await.unwrap();
    assert_eq!(after.spec.image, None, "spec unchanged");
    assert_eq!(after.status.unwrap().image.as_deref(), Some(image.as_str()));
}

/// Attack 5: a source URL aimed at an internal service (here a listener on
/// loopback; in a cloud, the metadata service) makes the controller send
/// requests there from inside the cluster's network on every pass. By
/// default the probe reaches public addresses only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_source_url_on_an_internal_address_is_never_probed() {
    let mut h = Harness::start().await;
    let (addr, seen) = attacker_listener().await;
    let mut cfg = h.config();
    cfg.source_scope = quayside::source::ProbeScope::PublicOnly;
    h.start_controller_with(cfg).await;
    h.create_component("probe", &format!("http://{addr}/internal.git"), "auto")
        .await;
    let refused = wait::until("the Component reports its source", T, || async {
        let c = h.components().get("probe").await.ok()?;
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "RepositoryReady" && c.status == "False")
    })
    .await;
    h.stop_controller().await;
    assert_eq!(
        refused.reason, "SourceAddressRefused",
        "{}",
        refused.message
    );
    assert!(refused.message.contains("set spec.visibility explicitly"));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.is_empty(),
        "the internal service received a request: {}",
        String::from_utf8_lossy(&seen)
    );
    let repo = format!("{}/probe", h.workspace);
    assert!(
        h.emulator.snapshot().repository(ORG, &repo).is_none(),
        "nothing was created on Quay for an unchecked source"
    );
}
