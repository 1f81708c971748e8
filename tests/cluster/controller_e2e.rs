//! End to end on a real control plane, the Quay emulator and a real git
//! server: the flows of the source ADR (new Environment, new Component,
//! emergency regeneration) plus drift healing, the deployer→default rule,
//! cleanup, and a remote cluster with a heartbeat.

use std::time::Duration;

use k8s_openapi::api::core::v1::{LocalObjectReference, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use quayside_testkit::harness::{Harness, ORG};
use quayside_testkit::registry::{creds_of, skopeo_login};
use quayside_testkit::{cluster, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(60);

fn generation_of(secret: &Secret) -> i64 {
    secret.metadata.annotations.as_ref().unwrap()["quayside.dev/credentials-generation"]
        .parse()
        .unwrap()
}

async fn add_foreign_pull_secret(client: &kube::Client, ns: &str, sa: &str) {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let mut obj = api.get(sa).await.unwrap();
    obj.image_pull_secrets = Some(vec![LocalObjectReference {
        name: "theirs".into(),
    }]);
    api.replace(sa, &PostParams::default(), &obj).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_component_reaches_every_environment_and_the_side_repo() {
    let mut h = Harness::start().await;
    let with_deployer = h.target_namespace("dev", true).await;
    let only_default = h.target_namespace("prod", false).await;
    add_foreign_pull_secret(&h.client, &with_deployer, "deployer").await;
    let argo = quayside::seal::Identity::generate();
    h.create_environment("dev", &with_deployer, &[argo.to_recipient().to_string()])
        .await;
    h.create_environment("prod", &only_default, &[]).await;
    h.start_controller().await;
    let public_url = h.git.repo_url("public-app");
    let private_url = h.git.repo_url("private-app");
    h.create_component("web", &public_url, "auto").await;
    h.create_component("api", &private_url, "auto").await;

    let web = h.wait_component_ready("web", T).await;
    let api = h.wait_component_ready("api", T).await;
    let ws = h.workspace.clone();

    // Quay: repositories with visibility from source detection, two robots each.
    let state = h.emulator.snapshot();
    let repo_of = |c: &quayside::api::Component| c.status.as_ref().unwrap().image.clone().unwrap();
    assert!(repo_of(&web).ends_with(&format!("{ORG}/{ws}/web")));
    let web_repo = state
        .repositories
        .iter()
        .find(|r| r.name == format!("{ws}/web"))
        .expect("web repository");
    assert!(web_repo.public, "public source → public repository");
    let api_repo = state
        .repositories
        .iter()
        .find(|r| r.name == format!("{ws}/api"))
        .expect("api repository");
    assert!(!api_repo.public, "private source → private repository");
    assert_eq!(state.robots.len(), 4, "push and pull robot per Component");
    assert_eq!(
        api.status.as_ref().unwrap().credentials_generation,
        1,
        "first generation"
    );

    // Targets: the pull robot (never the push one) in both namespaces.
    for ns in [&with_deployer, &only_default] {
        for c in ["web", "api"] {
            let s = wait::until(&format!("{c}-pull in {ns}"), T, || async {
                h.target_secret(ns, c).await
            })
            .await;
            assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
            let creds = creds_of(&s);
            let status = if c == "web" { &web } else { &api };
            assert_eq!(
                Some(creds.username.clone()),
                status.status.as_ref().unwrap().pull_robot,
                "the pull robot is delivered"
            );
            let robot = state
                .robots
                .iter()
                .find(|r| r.name == creds.username)
                .unwrap();
            assert!(
                robot.token.expose_secret() == creds.token.expose_secret(),
                "the token is Quay's current one"
            );
        }
    }
    // Links: deployer where it exists (keeping "theirs"), default elsewhere.
    // (A Component is Ready once every target holds its Secret; the link in
    // the same pass may land a moment later.)
    wait::until("links in both namespaces", T, || async {
        // Order follows arrival (ours are appended, theirs stay first).
        let dep = h.image_pull_secrets(&with_deployer, "deployer").await;
        let mut def = h.image_pull_secrets(&only_default, "default").await;
        let mut ours: Vec<String> = dep.iter().skip(1).cloned().collect();
        ours.sort();
        def.sort();
        (dep.first().map(String::as_str) == Some("theirs")
            && ours == ["api-pull", "web-pull"]
            && def == ["api-pull", "web-pull"])
        .then_some(())
    })
    .await;
    assert!(
        h.image_pull_secrets(&with_deployer, "default")
            .await
            .is_empty()
    );

    // Workspace push Secret for builds holds the push robot.
    let push: Secret = Api::namespaced(h.client.clone(), &ws)
        .get("web-image-push")
        .await
        .unwrap();
    assert_eq!(
        Some(creds_of(&push).username),
        web.status.as_ref().unwrap().push_robot
    );

    // Side repo: sealed files for both Environments, decryptable by Argo's key.
    let repo = wait::until("side repo has both folders", T, || async {
        let dir = h.try_clone_side_repo()?;
        let root = dir.path().join("repo");
        (root
            .join(format!(
                "environments/{}/dev/secrets/web-pull.sops.yaml",
                h.workspace
            ))
            .exists()
            && root
                .join(format!(
                    "environments/{}/dev/secrets/api-pull.sops.yaml",
                    h.workspace
                ))
                .exists()
            && root
                .join(format!(
                    "environments/{}/prod/secrets/web-pull.sops.yaml",
                    h.workspace
                ))
                .exists())
        .then_some(dir)
    })
    .await;
    let sealed = std::fs::read_to_string(repo.path().join(format!(
        "repo/environments/{}/dev/secrets/web-pull.sops.yaml",
        h.workspace
    )))
    .unwrap();
    let web_token = creds_of(&h.target_secret(&with_deployer, "web").await.unwrap());
    assert!(
        !sealed.contains(web_token.token.expose_secret()),
        "no plaintext token in git"
    );
    let opened = quayside::seal::open(&sealed, &argo).expect("Argo CD's key opens it");
    assert!(
        opened
            .expose_secret()
            .contains(web_token.token.expose_secret())
    );
    let log = h.side_repo_log();
    assert!(!log.is_empty());
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emergency_rotation_propagates_and_revokes_the_old_token() {
    let mut h = Harness::start().await;
    let a = h.target_namespace("a", true).await;
    let b = h.target_namespace("b", false).await;
    h.create_environment("a", &a, &[]).await;
    h.create_environment("b", &b, &[]).await;
    h.start_controller().await;
    h.create_component("svc", &h.git.repo_url("public-app"), "private")
        .await;
    h.wait_component_ready("svc", T).await;
    let before = wait::until("svc in b", T, || async { h.target_secret(&b, "svc").await }).await;
    let old = creds_of(&before);
    let registry = h.emulator.registry_host();
    assert!(
        skopeo_login(&registry, &old).await,
        "the current token logs in"
    );

    h.request_rotation("svc").await;
    let done = h.wait_rotated("svc", 2, T).await;
    assert_eq!(done.status.as_ref().unwrap().credentials_generation, 2);
    assert!(done.status.as_ref().unwrap().rotated_at.is_some());
    for ns in [&a, &b] {
        let s = h.target_secret(ns, "svc").await.unwrap();
        assert_eq!(generation_of(&s), 2);
        let new = creds_of(&s);
        assert!(
            new.token.expose_secret() != old.token.expose_secret(),
            "expected a different token (values not printed)"
        );
        assert!(skopeo_login(&registry, &new).await, "the new token logs in");
    }
    assert!(
        !skopeo_login(&registry, &old).await,
        "the old token is revoked"
    );
    // The rotation's propagation latency was recorded.
    let (metrics, _) = h.observed.clone().unwrap();
    let mut registry_text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    prometheus_client::encoding::text::encode(&mut registry_text, &registry).unwrap();
    assert!(
        registry_text.contains("quayside_propagation_seconds_count 1"),
        "{registry_text}"
    );
    // The workspace push Secret moved too.
    let push: Secret = Api::namespaced(h.client.clone(), &h.workspace)
        .get("svc-image-push")
        .await
        .unwrap();
    assert_eq!(generation_of(&push), 2);
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_heals_and_the_link_moves_to_a_new_deployer() {
    let mut h = Harness::start().await;
    let ns = h.target_namespace("drift", false).await;
    h.create_environment("e", &ns, &[]).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    wait::until("linked to default", T, || async {
        (h.image_pull_secrets(&ns, "default").await == vec!["app-pull"]).then_some(())
    })
    .await;

    // A deleted pull Secret comes back within seconds.
    Api::<Secret>::namespaced(h.client.clone(), &ns)
        .delete("app-pull", &DeleteParams::default())
        .await
        .unwrap();
    wait::until("pull Secret recreated", Duration::from_secs(20), || async {
        h.target_secret(&ns, "app").await
    })
    .await;

    // A removed link comes back.
    let sas: Api<ServiceAccount> = Api::namespaced(h.client.clone(), &ns);
    let mut sa = sas.get("default").await.unwrap();
    sa.image_pull_secrets = None;
    sas.replace("default", &PostParams::default(), &sa)
        .await
        .unwrap();
    wait::until("link restored", Duration::from_secs(20), || async {
        (h.image_pull_secrets(&ns, "default").await == vec!["app-pull"]).then_some(())
    })
    .await;

    // `deployer` appears: the link moves there and leaves `default`.
    cluster::create_service_account(&h.client, &ns, "deployer").await;
    wait::until(
        "link moved to deployer",
        Duration::from_secs(20),
        || async {
            (h.image_pull_secrets(&ns, "deployer").await == vec!["app-pull"]
                && h.image_pull_secrets(&ns, "default").await.is_empty())
            .then_some(())
        },
    )
    .await;
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_component_and_an_environment_cleans_everything() {
    let mut h = Harness::start().await;
    let ns = h.target_namespace("clean", true).await;
    h.create_environment("env", &ns, &[]).await;
    h.start_controller().await;
    h.create_component("gone", &h.git.repo_url("public-app"), "public")
        .await;
    h.create_component("stays", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("gone", T).await;
    h.wait_component_ready("stays", T).await;
    wait::until("both files in the side repo", T, || async {
        let d = h.try_clone_side_repo()?;
        let p = d
            .path()
            .join(format!("repo/environments/{}/env/secrets", h.workspace));
        (p.join("gone-pull.sops.yaml").exists() && p.join("stays-pull.sops.yaml").exists())
            .then_some(())
    })
    .await;

    h.components()
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    wait::until("Component gone", T, || async {
        h.components()
            .get_opt("gone")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let ws = h.workspace.clone();
    let state = h.emulator.snapshot();
    assert!(
        !state
            .repositories
            .iter()
            .any(|r| r.name == format!("{ws}/gone")),
        "repository deleted: {:?}",
        state
            .repositories
            .iter()
            .map(|r| &r.name)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        state.robots.len(),
        2,
        "only the remaining Component's robots"
    );
    assert!(h.target_secret(&ns, "gone").await.is_none());
    assert_eq!(
        h.image_pull_secrets(&ns, "deployer").await,
        vec!["stays-pull"]
    );
    wait::until("file removed from the side repo", T, || async {
        let d = h.try_clone_side_repo()?;
        let p = d
            .path()
            .join(format!("repo/environments/{}/env/secrets", h.workspace));
        (!p.join("gone-pull.sops.yaml").exists() && p.join("stays-pull.sops.yaml").exists())
            .then_some(())
    })
    .await;

    h.environments()
        .delete("env", &DeleteParams::default())
        .await
        .unwrap();
    wait::until("Environment gone", T, || async {
        h.environments()
            .get_opt("env")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(h.target_secret(&ns, "stays").await.is_none());
    assert!(h.image_pull_secrets(&ns, "deployer").await.is_empty());
    let d = h.clone_side_repo();
    assert!(
        !d.path()
            .join(format!("repo/environments/{}/env", h.workspace))
            .exists(),
        "folder removed"
    );
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_cluster_is_served_and_healed_by_the_heartbeat() {
    let mut h = Harness::start().await;
    let remote = cluster::ControlPlane::start();
    let remote_client = remote.client().await;
    let target = cluster::new_namespace(&remote_client, "remote").await;
    let kubeconfig = std::fs::read_to_string(remote.kubeconfig()).unwrap();
    h.create_remote_environment("far", &target, &kubeconfig)
        .await;
    let mut cfg = h.config();
    cfg.heartbeat = Duration::from_secs(2);
    // The heartbeat alone: remote watches (remote_watches.rs) are off.
    cfg.remote_watch_limit = 0;
    h.start_controller_with(cfg).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("svc", T).await;
    let remote_secrets: Api<Secret> = Api::namespaced(remote_client.clone(), &target);
    wait::until("Secret in the remote cluster", T, || async {
        remote_secrets.get_opt("svc-pull").await.unwrap()
    })
    .await;
    assert!(
        h.target_secret(&target, "svc").await.is_none(),
        "nothing lands in the local cluster"
    );
    // No watch reaches the remote cluster here: the heartbeat heals it.
    remote_secrets
        .delete("svc-pull", &DeleteParams::default())
        .await
        .unwrap();
    wait::until("heartbeat recreated the remote Secret", T, || async {
        remote_secrets.get_opt("svc-pull").await.unwrap()
    })
    .await;
    h.stop_controller().await;
    remote.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_rotation_moves_to_new_robots_and_deletes_the_old_ones() {
    let mut h = Harness::start().await;
    let ns = h.target_namespace("sched", true).await;
    h.create_environment("e", &ns, &[]).await;
    let mut cfg = h.config();
    cfg.rotation_interval = Some(Duration::from_secs(4));
    h.start_controller_with(cfg).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    let first = h.wait_component_ready("svc", T).await;
    let first_robot = first.status.as_ref().unwrap().pull_robot.clone().unwrap();
    let rotated = wait::until("a scheduled rotation", T, || async {
        let c = h.components().get("svc").await.ok()?;
        (c.status.as_ref()?.credentials_generation >= 2).then_some(c)
    })
    .await;
    h.stop_controller().await;
    let status = rotated.status.unwrap();
    let robot = status.pull_robot.unwrap();
    assert_ne!(robot, first_robot, "moved to the other robot slot");
    let held = creds_of(&h.target_secret(&ns, "svc").await.unwrap());
    assert_eq!(held.username, robot, "the Environment holds the new robot");
    let state = h.emulator.snapshot();
    let names: Vec<&str> = state.robots.iter().map(|r| r.name.as_str()).collect();
    assert!(
        !names.contains(&first_robot.as_str()),
        "the old robot is deleted once every Environment follows: {names:?}"
    );
    assert_eq!(state.robots.len(), 2, "{names:?}");
    let current = state.robots.iter().find(|r| r.name == robot).unwrap();
    assert!(
        current.token.expose_secret() == held.token.expose_secret(),
        "expected the same token (values not printed)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_component_costs_five_quay_calls_and_a_restart_none() {
    let mut h = Harness::start().await;
    let ns = h.target_namespace("calls", true).await;
    h.create_environment("e", &ns, &[]).await;
    h.start_controller().await;
    let before = h.emulator.api_calls();
    h.create_component("c", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("c", T).await;
    let provisioning = h.emulator.api_calls() - before;
    assert_eq!(
        provisioning,
        5,
        "create repository, 2 × create robot, 2 × grant: {:?}",
        h.emulator.snapshot().api_calls
    );
    // Let the first passes settle: the Component's status records the
    // Environment's generation and link once that Environment reported them.
    wait::until("status settled", T, || async {
        let env = h.environments().get("e").await.ok()?.status?;
        let c = h.components().get("c").await.ok()?.status?;
        let d = c.environments.first()?;
        (env.commit.is_some()
            && d.service_account == env.linked_service_account
            && d.generation == c.credentials_generation)
            .then_some(())
    })
    .await;
    // One unmeasured restart absorbs any status the first run had not
    // caught up with when it stopped; the measured one follows.
    h.stop_controller().await;
    h.start_controller().await;
    let (warmup, _) = h.observed.clone().unwrap();
    // One good pass of each kind: the start-up triggers of one object may
    // coalesce into a single pass, so counting two would race.
    wait::until("the warm-up run reconciled", T, || async {
        let ok = |controller: &str| {
            warmup
                .reconciles
                .get_or_create(&quayside::controller::metrics::ReconcileLabels {
                    controller: controller.into(),
                    result: "ok".into(),
                })
                .get()
        };
        (ok("component") >= 1 && ok("environment") >= 1).then_some(())
    })
    .await;
    // A restart re-reconciles everything: nothing changed, so no Quay call,
    // no Kubernetes write and no commit.
    h.stop_controller().await;
    let c_before = h.components().get("c").await.unwrap();
    let e_before = h.environments().get("e").await.unwrap();
    let commits = h.side_repo_log().len();
    let before = h.emulator.api_calls();
    h.start_controller().await;
    let (metrics, _) = h.observed.clone().unwrap();
    wait::until("the restarted controller reconciled", T, || async {
        (metrics
            .reconciles
            .get_or_create(&quayside::controller::metrics::ReconcileLabels {
                controller: "environment".into(),
                result: "ok".into(),
            })
            .get()
            >= 1
            && metrics
                .reconciles
                .get_or_create(&quayside::controller::metrics::ReconcileLabels {
                    controller: "component".into(),
                    result: "ok".into(),
                })
                .get()
                >= 1)
            .then_some(())
    })
    .await;
    h.stop_controller().await;
    assert_eq!(h.emulator.api_calls() - before, 0, "no Quay call");
    let c_after = h.components().get("c").await.unwrap();
    let e_after = h.environments().get("e").await.unwrap();
    assert_eq!(
        metrics.kube_writes.get(),
        0,
        "no Kubernetes write; component {:?} -> {:?}; env {:?} -> {:?}",
        serde_json::to_string(&c_before.status).unwrap(),
        serde_json::to_string(&c_after.status).unwrap(),
        serde_json::to_string(&e_before.status).unwrap(),
        serde_json::to_string(&e_after.status).unwrap()
    );
    assert_eq!(metrics.git_commits.get(), 0, "no commit");
    assert_eq!(h.side_repo_log().len(), commits);
}

/// A target namespace that does not exist yet is a spec problem the
/// Environment names; once it is created (and granted), delivery follows.
/// (Passes skip the namespace read where the watch shows our Secrets
/// there: this covers the read where it does not.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_namespace_created_late_is_named_then_served() {
    let mut h = Harness::start().await;
    let ns = format!("late-{}", h.workspace);
    h.create_environment("e", &ns, &[]).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    wait::until("the missing namespace named", T, || async {
        let e = h.environments().get("e").await.ok()?;
        let ready = e
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "False" && ready.message.contains(&format!("{ns} does not exist")))
            .then_some(())
    })
    .await;
    assert!(h.target_secret(&ns, "app").await.is_none());

    cluster::ensure_namespace(&h.client, &ns).await.unwrap();
    cluster::grant_delivery(&h.client, &h.workspace, &ns).await;
    wait::until("delivered once the namespace exists", T, || async {
        h.target_secret(&ns, "app").await
    })
    .await;
    wait::until("linked to default", T, || async {
        (h.image_pull_secrets(&ns, "default").await == vec!["app-pull"]).then_some(())
    })
    .await;
    h.stop_controller().await;
}
