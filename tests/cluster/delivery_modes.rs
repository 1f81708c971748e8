//! Delivery modes against the real control plane and git server: `GitOps`
//! (the controller commits and never writes the target Secret; an engine,
//! simulated here by decrypting the committed file with the real `sops`
//! and server-side applying it under its own field manager, does), `Both`,
//! `Direct` (no commit), the pull-request gate (nothing reaches the target
//! before the merge, made through the git server's API), the emergency
//! policy, and waking the engine — only objects the tenant was granted.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use quayside::api::{Environment, ROTATE_ANNOTATION};
use quayside::credentials::RobotCredentials;
use quayside::gitops::DeliveryMode as SideRepoMode;
use quayside::seal::Identity;
use quayside_testkit::git_server::PASSWORD;
use quayside_testkit::harness::{Harness, SIDE_REPO};
use quayside_testkit::registry::creds_of;
use quayside_testkit::{cluster, component, tools, wait};
use secrecy::SecretString;

const T: Duration = Duration::from_secs(90);
/// The field manager the simulated engine applies with (Flux's).
const ENGINE: &str = "kustomize-controller";
/// The field manager the controller applies with.
const CONTROLLER: &str = "quayside";
const GENERATION: &str = "quayside.dev/credentials-generation";

/// The engine's age key: the Environments list its recipient.
fn engine_key() -> std::path::PathBuf {
    tools::root().join("fixtures/render/argocd.agekey")
}

fn engine_recipient() -> String {
    let text = std::fs::read_to_string(engine_key()).unwrap();
    Identity::parse(&text).unwrap().to_recipient().to_string()
}

/// An Environment `name` delivering to `target` with `delivery` as its
/// `spec.delivery`.
async fn create_env(h: &Harness, name: &str, target: &str, delivery: serde_json::Value) {
    let e: Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name},
        "spec": {
            "target": {"namespace": target},
            "recipients": [engine_recipient()],
            "delivery": delivery,
        }
    }))
    .unwrap();
    h.environments()
        .create(&PostParams::default(), &e)
        .await
        .unwrap();
}

/// The sealed pull Secret of `component` for Environment `env` on the
/// side repository's main branch, decrypted by the real `sops` with the
/// engine's key; `None` while main does not hold it.
fn committed_secret(h: &Harness, env: &str, component: &str) -> Option<Secret> {
    let dir = h.try_clone_side_repo()?;
    let file = dir.path().join(format!(
        "repo/environments/{}/{env}/secrets/{component}-pull.sops.yaml",
        h.workspace
    ));
    if !file.exists() {
        return None;
    }
    let out = Command::new(tools::bin("sops"))
        .args(["--decrypt", "--input-type", "yaml", "--output-type", "json"])
        .arg(&file)
        .env("SOPS_AGE_KEY_FILE", engine_key())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The engine's sync: apply what main holds for `component`, as the
/// engine's field manager. The generation applied, if main held one.
async fn engine_syncs(h: &Harness, env: &str, ns: &str, component: &str) -> Option<i64> {
    let secret = tokio::task::block_in_place(|| committed_secret(h, env, component))?;
    let generation = secret.annotations().get(GENERATION)?.parse().ok();
    let mut value = serde_json::to_value(&secret).unwrap();
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    value["metadata"]["namespace"] = ns.into();
    Api::<Secret>::namespaced(h.client.clone(), ns)
        .patch(
            &secret.name_any(),
            &PatchParams::apply(ENGINE).force(),
            &Patch::Apply(&value),
        )
        .await
        .expect("the engine's apply");
    generation
}

/// The field managers that ever wrote the target Secret.
fn managers(s: &Secret) -> Vec<String> {
    s.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect()
}

fn generation_of(s: &Secret) -> Option<i64> {
    s.annotations().get(GENERATION)?.parse().ok()
}

/// The Environment's `Applied` condition reason, once it is `reason`.
async fn wait_applied(h: &Harness, env: &str, reason: &str) -> Environment {
    wait::until(
        &format!("Environment {env} Applied={reason}"),
        T,
        || async {
            let e = h.environments().get(env).await.ok()?;
            let c = e
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Applied")?;
            (c.reason == reason).then_some(e)
        },
    )
    .await
}

async fn rotate(h: &Harness, value: &str) {
    let patch = serde_json::json!({"metadata": {"annotations": {ROTATE_ANNOTATION: value}}});
    h.components()
        .patch("svc", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn component_generation(h: &Harness) -> i64 {
    component::generation(&h.components().get("svc").await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gitops_mode_commits_and_only_the_engine_writes_the_secret() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    let ns = h.target_namespace("gitops", true).await;
    create_env(
        &h,
        "env",
        &ns,
        serde_json::json!({"mode": "GitOps", "emergency": "Wait"}),
    )
    .await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    let e = wait_applied(&h, "env", "AwaitingEngine").await;
    let status = e.status.unwrap();
    assert_eq!(status.delivery_mode.as_deref(), Some("GitOps"));
    assert_eq!(status.live.len(), 1, "{:?}", status.live);
    assert_eq!(status.live[0].generation, None);
    assert!(
        h.target_secret(&ns, "svc").await.is_none(),
        "in GitOps mode the controller never writes the target Secret"
    );

    // The engine applies what was committed: the target serves it, the
    // Environment says so, the ServiceAccount is linked, the Component is Ready.
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(1));
    let e = wait_applied(&h, "env", "Live").await;
    assert_eq!(e.status.unwrap().live[0].generation, Some(1));
    h.wait_component_ready("svc", T).await;
    assert_eq!(
        h.image_pull_secrets(&ns, "deployer").await,
        vec!["svc-pull".to_string()]
    );

    // A rotation (policy Wait): the new token is committed, and the
    // rotation does not complete while the target serves the old one.
    rotate(&h, "one").await;
    wait::until("generation 2 committed", T, || async {
        let s = tokio::task::block_in_place(|| committed_secret(&h, "env", "svc"))?;
        (generation_of(&s) == Some(2)).then_some(())
    })
    .await;
    wait_applied(&h, "env", "AwaitingEngine").await;
    let target = h.target_secret(&ns, "svc").await.unwrap();
    assert_eq!(
        generation_of(&target),
        Some(1),
        "nobody but the engine writes it"
    );
    assert_eq!(
        component_generation(&h).await,
        1,
        "not complete before it is live"
    );

    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(2));
    h.wait_rotated("svc", 2, T).await;
    wait_applied(&h, "env", "Live").await;
    let target = h.target_secret(&ns, "svc").await.unwrap();
    assert_eq!(
        managers(&target),
        vec![ENGINE.to_string()],
        "exactly one writer: {:?}",
        managers(&target)
    );

    // The engine prunes the Secret (say, the folder left its sync): the
    // controller does not put it back, and unlinks it.
    Api::<Secret>::namespaced(h.client.clone(), &ns)
        .delete("svc-pull", &Default::default())
        .await
        .unwrap();
    wait_applied(&h, "env", "AwaitingEngine").await;
    wait::until("the pruned Secret unlinked", T, || async {
        h.image_pull_secrets(&ns, "deployer")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(h.target_secret(&ns, "svc").await.is_none());
    h.stop_controller().await;
}

/// A running controller, an Environment `env` of delivery `mode` on a new
/// target namespace (named after `prefix`), and Component `svc` created;
/// returns the harness and the target namespace.
async fn component_in_mode(mode: &str, prefix: &str) -> (Harness, String) {
    let mut h = Harness::start().await;
    h.start_controller().await;
    let ns = h.target_namespace(prefix, false).await;
    create_env(&h, "env", &ns, serde_json::json!({ "mode": mode })).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    (h, ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gitops_emergency_rotation_is_applied_directly_by_default() {
    let (mut h, ns) = component_in_mode("GitOps", "gitops-em").await;
    wait_applied(&h, "env", "AwaitingEngine").await;
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(1));
    h.wait_component_ready("svc", T).await;

    // Emergency: Quay revoked the live token. The engine never syncs, yet
    // the rotation completes: the controller applied the new Secret.
    rotate(&h, "leak").await;
    h.wait_rotated("svc", 2, T).await;
    let target = h.target_secret(&ns, "svc").await.unwrap();
    assert_eq!(generation_of(&target), Some(2));
    assert!(
        managers(&target).contains(&CONTROLLER.to_string()),
        "{:?}",
        managers(&target)
    );
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_mode_applies_and_commits_nothing() {
    let (mut h, ns) = component_in_mode("Direct", "direct").await;
    h.wait_component_ready("svc", T).await;
    let e = wait_applied(&h, "env", "Applied").await;
    let status = e.status.unwrap();
    assert_eq!(status.delivery_mode.as_deref(), Some("Direct"));
    assert!(status.commit.is_none(), "{status:?}");
    assert!(!status.conditions.iter().any(|c| c.type_ == "Committed"));
    assert_eq!(
        generation_of(&h.target_secret(&ns, "svc").await.unwrap()),
        Some(1)
    );
    assert!(
        h.side_repo_log().is_empty(),
        "Direct mode commits nothing: {:?}",
        h.side_repo_log()
    );
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_mode_commits_then_applies() {
    let (mut h, ns) = component_in_mode("Both", "both").await;
    h.wait_component_ready("svc", T).await;
    wait_applied(&h, "env", "Applied").await;
    let target = h.target_secret(&ns, "svc").await.unwrap();
    let committed = tokio::task::block_in_place(|| committed_secret(&h, "env", "svc"))
        .expect("Both mode commits");
    assert_eq!(generation_of(&target), generation_of(&committed));
    let sealed = committed.string_data.as_ref().unwrap()[".dockerconfigjson"].clone();
    let sealed = RobotCredentials::from_docker_config_json(&sealed).unwrap();
    // Compared, never printed.
    assert!(creds_of(&target) == sealed, "git and the target disagree");
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_gitops_environment_on_another_teams_namespace_learns_nothing() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    // Another team's namespace, never granted to this workspace, holding a
    // Secret that looks like this Environment's, "live" at generation 1.
    let theirs = h.ungranted_namespace("team-b", false).await;
    let forged: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "svc-pull",
            "labels": quayside::vocabulary::target_labels(&h.workspace, "env", "svc"),
            "annotations": {GENERATION: "1"},
        },
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": "{\"auths\":{}}"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(h.client.clone(), &theirs)
        .create(&PostParams::default(), &forged)
        .await
        .unwrap();
    create_env(&h, "env", &theirs, serde_json::json!({"mode": "GitOps"})).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    let e = wait_applied(&h, "env", "DeliveryNotGranted").await;
    let status = e.status.unwrap();
    assert!(
        status.live.is_empty(),
        "read nothing there: {:?}",
        status.live
    );
    // Nor does the Component count the forged Secret as delivered.
    let c = wait::until("the Component's delivery record", T, || async {
        let c = h.components().get("svc").await.ok()?;
        let s = c.status.clone()?;
        (s.credentials_generation == 1 && !s.environments.is_empty()).then_some(s)
    })
    .await;
    assert_eq!(c.environments[0].generation, 0, "{:?}", c.environments);
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gitops_without_a_side_repository_is_refused_not_ignored() {
    let mut h = Harness::start().await;
    let mut setup = h.controller_setup();
    setup.config.side_repo = None;
    // The flag's default (Both) falls back to Direct without a side repository.
    h.start_controller_from(setup).await;
    let ns = h.target_namespace("no-side", false).await;
    create_env(&h, "asks", &ns, serde_json::json!({"mode": "GitOps"})).await;
    create_env(&h, "default", &ns, serde_json::json!({})).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    let e = wait_applied(&h, "asks", "InvalidSpec").await;
    let applied = e
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Applied")
        .unwrap();
    assert!(
        applied.message.contains("needs a side repository"),
        "{}",
        applied.message
    );
    let e = wait_applied(&h, "default", "Applied").await;
    assert_eq!(e.status.unwrap().delivery_mode.as_deref(), Some("Direct"));
    wait::until("the pull Secret applied directly", T, || async {
        h.target_secret(&ns, "svc").await
    })
    .await;
    h.stop_controller().await;
}

/// The pull request the Environment's status names, once it awaits review.
async fn awaiting_review(h: &Harness, env: &str) -> String {
    let e = wait_applied(h, env, "AwaitingReview").await;
    let status = e.status.unwrap();
    let url = status
        .pull_request
        .expect("the pull request's URL in status");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "AwaitingReview");
    assert!(ready.message.contains(&url), "{}", ready.message);
    url
}

/// Merge pull request `url` through the git server's API.
async fn merge(h: &Harness, url: &str) {
    let number = url.rsplit('/').next().unwrap();
    let api = format!(
        "{}/api/v1/repos/team/{SIDE_REPO}/pulls/{number}/merge",
        h.git.base_url()
    );
    let resp = reqwest::Client::new()
        .put(&api)
        .header("Authorization", format!("token {PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
}

/// Start the controller with the side repository in pull-request mode,
/// rotating on schedule every `rotation` if set.
async fn start_in_pull_request_mode(h: &mut Harness, rotation: Option<Duration>) {
    let mut setup = h.controller_setup();
    setup.config.rotation_interval = rotation;
    let side = setup.config.side_repo.as_mut().unwrap();
    side.mode = SideRepoMode::PullRequest {
        api_url: format!("{}/api/v1", h.git.base_url()),
        owner: "team".into(),
        repo: SIDE_REPO.into(),
        token: SecretString::from(PASSWORD.to_string()),
    };
    h.start_controller_from(setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_request_gates_gitops_delivery() {
    let mut h = Harness::start().await;
    start_in_pull_request_mode(&mut h, None).await;
    let ns = h.target_namespace("gate", false).await;
    create_env(
        &h,
        "env",
        &ns,
        serde_json::json!({"mode": "GitOps", "emergency": "Wait"}),
    )
    .await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    let url = awaiting_review(&h, "env").await;
    // Nothing reaches the target: main holds nothing the engine could apply.
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, None);
    assert!(h.target_secret(&ns, "svc").await.is_none());

    merge(&h, &url).await;
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(1));
    let e = wait_applied(&h, "env", "Live").await;
    assert_eq!(e.status.unwrap().pull_request, None);
    h.wait_component_ready("svc", T).await;

    // A rotation under review keeps the old credentials live (and the
    // rotation open) until the merged change is applied.
    rotate(&h, "reviewed").await;
    let url = awaiting_review(&h, "env").await;
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(1));
    assert_eq!(component_generation(&h).await, 1);
    merge(&h, &url).await;
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(2));
    h.wait_rotated("svc", 2, T).await;
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_rotation_under_review_keeps_the_old_robots_until_live() {
    let mut h = Harness::start().await;
    // Long enough for the first review round to finish first, even under load.
    start_in_pull_request_mode(&mut h, Some(Duration::from_secs(40))).await;
    let ns = h.target_namespace("gate-sched", false).await;
    create_env(&h, "env", &ns, serde_json::json!({"mode": "GitOps"})).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    let url = awaiting_review(&h, "env").await;
    merge(&h, &url).await;
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(1));
    h.wait_component_ready("svc", T).await;
    let old = creds_of(&h.target_secret(&ns, "svc").await.unwrap());

    // The schedule comes due: new robots, proposed for review. The old
    // robot keeps working, and the rotation stays open, until the merged
    // change is live — whatever the emergency policy says.
    let url = wait::until("the scheduled rotation proposed", T, || async {
        let e = h.environments().get("env").await.ok()?;
        let s = e.status?;
        (s.live.first()?.desired == 2)
            .then_some(s.pull_request)
            .flatten()
    })
    .await;
    let target = h.target_secret(&ns, "svc").await.unwrap();
    assert_eq!(generation_of(&target), Some(1), "nothing before the merge");
    assert!(
        h.emulator.accepts_login(
            &old.username,
            secrecy::ExposeSecret::expose_secret(&old.token)
        ),
        "the old robot is kept while the change awaits review"
    );
    assert_eq!(component_generation(&h).await, 1);

    merge(&h, &url).await;
    assert_eq!(engine_syncs(&h, "env", &ns, "svc").await, Some(2));
    h.wait_rotated("svc", 2, T).await;
    let new = creds_of(&h.target_secret(&ns, "svc").await.unwrap());
    assert_ne!(new.username, old.username, "a robot of the other slot");
    wait::until(
        "the old robot deleted once the new one is live",
        T,
        || async {
            let token = secrecy::ExposeSecret::expose_secret(&old.token);
            (!h.emulator.accepts_login(&old.username, token)).then_some(())
        },
    )
    .await;
    h.stop_controller().await;
}

/// A minimal CRD for `group/version` `kind` (schema-less), served once
/// created: for Argo CD's Application only (Flux's real CRDs are installed).
async fn install_crd(client: &Client, group: &str, version: &str, kind: &str, plural: &str) {
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase()},
            "versions": [{
                "name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        }
    }))
    .unwrap();
    let _ = Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await;
    let api: Api<DynamicObject> =
        Api::all_with(client.clone(), &resource(group, version, kind, plural));
    wait::until(&format!("{kind} served"), T, || async {
        api.list(&ListParams::default().limit(1)).await.ok()
    })
    .await;
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn kustomizations() -> ApiResource {
    resource(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
    )
}

fn git_repositories() -> ApiResource {
    resource(
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
    )
}

fn applications() -> ApiResource {
    resource("argoproj.io", "v1alpha1", "Application", "applications")
}

async fn create_object(client: &Client, ar: &ApiResource, ns: &str, name: &str) {
    // What each kind's schema requires; nothing reconciles these objects.
    let spec = match ar.kind.as_str() {
        "GitRepository" => {
            serde_json::json!({"url": "https://git.example/side-repo.git", "interval": "10m"})
        }
        "Kustomization" => serde_json::json!({
            "interval": "10m", "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "side-repo"},
        }),
        _ => serde_json::json!({"interval": "10m"}),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    let obj = DynamicObject::new(name, ar)
        .within(ns)
        .data(serde_json::json!({ "spec": spec }));
    api.create(&PostParams::default(), &obj).await.unwrap();
}

async fn annotation(
    client: &Client,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    key: &str,
) -> Option<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    api.get(name).await.unwrap().annotations().get(key).cloned()
}

/// Let the workspace's delivery account wake engine objects in `ns`.
async fn grant_wake(h: &Harness, ns: &str) {
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("quayside-wake-{}", h.workspace), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "quayside-wake"},
        "subjects": [{"kind": "ServiceAccount", "name": cluster::DELIVERY_ACCOUNT, "namespace": h.workspace}],
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(h.client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_wakes_only_the_engine_objects_the_tenant_was_granted() {
    const FLUX: &str = "reconcile.fluxcd.io/requestedAt";
    const ARGO: &str = "argocd.argoproj.io/refresh";
    let mut h = Harness::start().await;
    // Flux's own CRDs (the flux tests share this control plane and need
    // their real schemas and status subresources); Argo CD's is not
    // available here, so a schema-less one stands in for it.
    quayside_testkit::flux::install_crds(&h.client)
        .await
        .expect("Flux's CRDs (run scripts/setup)");
    install_crd(
        &h.client,
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
    )
    .await;
    // The tenant's own engine namespace (granted) and another team's (not).
    let flux = h.ungranted_namespace("flux", false).await;
    grant_wake(&h, &flux).await;
    let theirs = h.ungranted_namespace("team-b", false).await;
    create_object(&h.client, &kustomizations(), &flux, "apps").await;
    create_object(&h.client, &applications(), &flux, "apps").await;
    create_object(&h.client, &git_repositories(), &flux, "side-repo").await;
    create_object(&h.client, &kustomizations(), &theirs, "team-b-apps").await;

    h.start_controller().await;
    let ns = h.target_namespace("wake", false).await;
    create_env(
        &h,
        "env",
        &ns,
        serde_json::json!({"mode": "GitOps", "wake": [
            {"kind": "GitRepository", "name": "side-repo", "namespace": flux},
            {"kind": "Kustomization", "name": "apps", "namespace": flux},
            {"kind": "Application", "name": "apps", "namespace": flux},
            {"kind": "Kustomization", "name": "team-b-apps", "namespace": theirs},
        ]}),
    )
    .await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    let requested = wait::until("the Kustomization woken", T, || async {
        annotation(&h.client, &kustomizations(), &flux, "apps", FLUX).await
    })
    .await;
    assert!(
        requested.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "requestedAt is a time: {requested:?}"
    );
    assert!(
        annotation(&h.client, &git_repositories(), &flux, "side-repo", FLUX)
            .await
            .is_some(),
        "the GitRepository woken too"
    );
    assert_eq!(
        annotation(&h.client, &applications(), &flux, "apps", ARGO)
            .await
            .as_deref(),
        Some("normal")
    );
    // The attack: another team's Kustomization named in a tenant's spec.
    // Whichever comes first — the refusal, or their object annotated — the
    // object must not be annotated.
    let events: Api<Event> = Api::namespaced(h.client.clone(), &h.workspace);
    let refusal = wait::until("the wake of team-b's object refused or done", T, || async {
        if annotation(&h.client, &kustomizations(), &theirs, "team-b-apps", FLUX)
            .await
            .is_some()
        {
            return Some(None);
        }
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find_map(|ev| {
            (ev.reason.as_deref() == Some("WakeNotGranted"))
                .then(|| Some(ev.note.unwrap_or_default()))
        })
    })
    .await;
    assert_eq!(
        annotation(&h.client, &kustomizations(), &theirs, "team-b-apps", FLUX).await,
        None,
        "a tenant must not make quayside annotate another team's objects"
    );
    let note = refusal.expect("a WakeNotGranted warning");
    assert!(
        note.contains(&theirs) && note.contains("kubectl create rolebinding quayside-wake-"),
        "{note}"
    );
    // Only the annotation: the object's spec is untouched.
    let api: Api<DynamicObject> = Api::namespaced_with(h.client.clone(), &flux, &kustomizations());
    assert_eq!(
        api.get("apps").await.unwrap().data["spec"]["interval"],
        "10m"
    );
    h.stop_controller().await;
}
