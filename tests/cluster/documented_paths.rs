//! Paths the docs and the ADR describe that no other test walked: an
//! Environment added after its Components are Ready (the ADR's scenario 1
//! as written), `quayside.dev/keep-repository`, the deletion of a
//! Component whose repository another Component uses, disaster recovery
//! (workspace Secrets and status wiped), and the `spec.image` migration
//! procedure of docs/operations.md.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use quayside::names::{RobotRole, robot_short_name};
use quayside_testkit::harness::{Harness, ORG};
use quayside_testkit::registry::creds_of;
use quayside_testkit::{cluster, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(60);

fn robots_of(repo: &str) -> Vec<String> {
    [RobotRole::Push, RobotRole::Pull]
        .map(|role| format!("{ORG}+{}", robot_short_name(repo, role, 0)))
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_environment_added_after_its_components_are_ready_receives_them() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    for c in ["web", "api"] {
        h.create_component(c, &h.git.repo_url("public-app"), "public")
            .await;
    }
    for c in ["web", "api"] {
        h.wait_component_ready(c, T).await;
    }
    let target = h.target_namespace("late", true).await;
    h.create_environment("late", &target, &[]).await;
    for c in ["web", "api"] {
        wait::until(&format!("{c}-pull in the late Environment"), T, || async {
            h.target_secret(&target, c).await
        })
        .await;
    }
    wait::until("both linked to deployer", T, || async {
        let links = h.image_pull_secrets(&target, "deployer").await;
        ["web-pull", "api-pull"]
            .iter()
            .all(|s| links.contains(&s.to_string()))
            .then_some(())
    })
    .await;
    for c in ["web", "api"] {
        h.wait_component_ready(c, T).await;
    }
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_repository_keeps_the_repository_and_deletes_the_robots() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    h.create_component("kept", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("kept", T).await;
    let patch =
        serde_json::json!({"metadata": {"annotations": {"quayside.dev/keep-repository": "true"}}});
    h.components()
        .patch("kept", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    cluster::delete_and_wait(&h.components(), "kept", T).await;
    h.stop_controller().await;
    let repo = format!("{}/kept", h.workspace);
    let state = h.emulator.snapshot();
    assert!(
        state.repository(ORG, &repo).is_some(),
        "the repository is kept"
    );
    for robot in robots_of(&repo) {
        assert!(state.robot(&robot).is_none(), "{robot} is deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_component_that_names_anothers_repository_leaves_it_alone() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    h.create_component("owner", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("owner", T).await;
    let repo = format!("{}/owner", h.workspace);
    let before = h.emulator.snapshot();
    let obj = serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "second"},
        "spec": {"source": {"git": {"url": h.git.repo_url("public-app")}},
                 "visibility": "public", "image": repo}
    });
    let c: quayside::api::Component = serde_json::from_value(obj).unwrap();
    h.components()
        .create(&kube::api::PostParams::default(), &c)
        .await
        .unwrap();
    wait::until("the second Component is refused", T, || async {
        let c = h.components().get("second").await.ok()?;
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "RepositoryReady" && c.status == "False")
    })
    .await;
    cluster::delete_and_wait(&h.components(), "second", T).await;
    h.wait_component_ready("owner", T).await;
    h.stop_controller().await;
    let after = h.emulator.snapshot();
    assert!(
        after.repository(ORG, &repo).is_some(),
        "the repository stays"
    );
    for robot in robots_of(&repo) {
        let (b, a) = (before.robot(&robot), after.robot(&robot));
        assert!(a.is_some(), "{robot} stays");
        assert_eq!(
            a.map(|r| secrecy::ExposeSecret::expose_secret(&r.token).to_string()),
            b.map(|r| secrecy::ExposeSecret::expose_secret(&r.token).to_string()),
            "{robot} keeps its token"
        );
    }
}

/// Every login held now: the workspace's push and pull Secrets and the
/// pull Secret in each target, as (where, username, token).
async fn logins(h: &Harness, targets: &[String]) -> Vec<(String, String, String)> {
    try_logins(h, targets).await.expect("every login present")
}

/// [`logins`], or `None` while one is missing.
async fn try_logins(h: &Harness, targets: &[String]) -> Option<Vec<(String, String, String)>> {
    let workspace: Api<Secret> = Api::namespaced(h.client.clone(), &h.workspace);
    let mut out = Vec::new();
    for role in ["push", "pull"] {
        let secret = workspace
            .get_opt(&format!("app-image-{role}"))
            .await
            .ok()??;
        let c = creds_of(&secret);
        out.push((
            format!("workspace {role}"),
            c.username,
            c.token.expose_secret().to_string(),
        ));
    }
    for ns in targets {
        let c = creds_of(&h.target_secret(ns, "app").await?);
        out.push((ns.clone(), c.username, c.token.expose_secret().to_string()));
    }
    Some(out)
}

/// docs/reliability.md, "Disaster recovery": the workspace Secrets and the
/// Component's status are wiped (a backup restored without them, a
/// mistaken delete). The controller finds the repository on Quay and treats
/// the lost logins as exposed: the robots are replaced (old tokens dead),
/// the new ones delivered above any generation an Environment still holds
/// (the Environments may have pruned the Component meanwhile: the two
/// reconcilers race, and either order must recover), and no robot is left
/// behind — here from the other rotation slot, where a scheduled rotation
/// had put the Component.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disaster_recovery_after_the_workspace_secrets_and_status_are_wiped() {
    let mut h = Harness::start().await;
    let targets = [
        h.target_namespace("dr1", true).await,
        h.target_namespace("dr2", false).await,
    ];
    h.create_environment("one", &targets[0], &[]).await;
    h.create_environment("two", &targets[1], &[]).await;
    // A scheduled rotation first, so the robots live in slot 1.
    let mut cfg = h.config();
    cfg.rotation_interval = Some(Duration::from_secs(3));
    h.start_controller_with(cfg).await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let before = wait::until("a scheduled rotation", T, || async {
        let c = h.components().get("app").await.ok()?;
        let s = c.status.clone()?;
        (s.credentials_generation >= 2 && quayside_testkit::component::is_ready(&c)).then_some(s)
    })
    .await;
    h.stop_controller().await;
    let old = logins(&h, &targets).await;
    assert_eq!(h.emulator.snapshot().robots.len(), 2);

    let workspace: Api<Secret> = Api::namespaced(h.client.clone(), &h.workspace);
    for role in ["push", "pull"] {
        workspace
            .delete(&format!("app-image-{role}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    h.components()
        .patch_status(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": null})),
        )
        .await
        .unwrap();
    assert!(
        h.components().get("app").await.unwrap().status.is_none(),
        "status wiped"
    );

    h.start_controller().await;
    let wiped_at = std::time::Instant::now();
    let old_tokens: Vec<String> = old.iter().map(|(_, _, t)| t.clone()).collect();
    let last = std::sync::Mutex::new(None);
    let recovered = tokio::time::timeout(
        T,
        wait::until(
            "recovered: Ready, every login new and Quay's",
            T * 2,
            || async {
                let c = h.components().get("app").await.ok()?;
                let s = c.status.clone()?;
                *last.lock().unwrap() = Some(s.clone());
                let now = try_logins(&h, &targets).await?;
                let state = h.emulator.snapshot();
                let current = now.iter().all(|(_, user, token)| {
                    !old_tokens.contains(token)
                        && state
                            .robot(user)
                            .is_some_and(|r| r.token.expose_secret() == token)
                });
                (current && quayside_testkit::component::is_ready(&c)).then_some((s, now))
            },
        ),
    )
    .await;
    let (after, now) = recovered.unwrap_or_else(|_| {
        panic!(
            "not recovered within {T:?}; last status: {:#?}",
            last.lock().unwrap()
        )
    });
    let recovered_in = wiped_at.elapsed();
    let state = h.emulator.snapshot();
    let names: Vec<&str> = state.robots.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 2, "no leaked robot: {names:?}");
    assert!(names.contains(&after.pull_robot.as_deref().unwrap()));
    for (where_, user, token) in &old {
        assert!(
            state
                .robots
                .iter()
                .all(|r| r.token.expose_secret() != token),
            "the old token of {user} ({where_}) still works"
        );
    }
    assert_eq!(now.len(), old.len());
    let events: Api<Event> = Api::namespaced(h.client.clone(), &h.workspace);
    let lost = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| {
            e.reason.as_deref() == Some("CredentialsLost") && e.type_.as_deref() == Some("Warning")
        });
    assert!(lost, "a CredentialsLost Warning");
    eprintln!(
        "FIGURES disaster recovery: generation {} -> {}, Ready {recovered_in:?} after the restart, robots {}",
        before.credentials_generation,
        after.credentials_generation,
        names.len()
    );
    h.stop_controller().await;
}

/// docs/operations.md, "Moving a Component to another image": spec.image is
/// immutable once provisioned, so a new Component takes the new image, the
/// deployments move to its pull Secret, and the old Component is deleted —
/// with `keep-repository` (its images stay, its robots go) or without
/// (everything goes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_to_a_new_image_is_a_new_component_then_the_old_one_goes() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("mig", true).await;
    h.create_environment("prod", &target, &[]).await;
    h.start_controller().await;
    for c in ["old", "legacy"] {
        h.create_component(c, &h.git.repo_url("public-app"), "public")
            .await;
        h.wait_component_ready(c, T).await;
    }
    let image = format!("{}/renamed", h.workspace);
    let refused = h
        .components()
        .patch(
            "old",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"image": image}})),
        )
        .await
        .expect_err("spec.image is immutable once provisioned");
    assert!(
        refused.to_string().contains("create a new Component"),
        "{refused}"
    );

    let obj = serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "new"},
        "spec": {"source": {"git": {"url": h.git.repo_url("public-app")}},
                 "visibility": "public", "image": image}
    });
    let c: quayside::api::Component = serde_json::from_value(obj).unwrap();
    h.components()
        .create(&kube::api::PostParams::default(), &c)
        .await
        .unwrap();
    let new = h.wait_component_ready("new", T).await;
    assert!(new.status.unwrap().image.unwrap().ends_with(&image));
    wait::until("new-pull delivered and linked", T, || async {
        h.target_secret(&target, "new").await?;
        h.image_pull_secrets(&target, "deployer")
            .await
            .contains(&"new-pull".to_string())
            .then_some(())
    })
    .await;

    // The deployments now use new-pull; the old Components go.
    let keep =
        serde_json::json!({"metadata": {"annotations": {"quayside.dev/keep-repository": "true"}}});
    h.components()
        .patch("old", &PatchParams::default(), &Patch::Merge(&keep))
        .await
        .unwrap();
    cluster::delete_and_wait(&h.components(), "old", T).await;
    cluster::delete_and_wait(&h.components(), "legacy", T).await;
    wait::until("old pull Secrets gone and unlinked", T, || async {
        let links = h.image_pull_secrets(&target, "deployer").await;
        (h.target_secret(&target, "old").await.is_none()
            && h.target_secret(&target, "legacy").await.is_none()
            && !links.contains(&"old-pull".to_string())
            && !links.contains(&"legacy-pull".to_string())
            && links.contains(&"new-pull".to_string()))
        .then_some(())
    })
    .await;
    let state = h.emulator.snapshot();
    let kept = format!("{}/old", h.workspace);
    let gone = format!("{}/legacy", h.workspace);
    assert!(
        state.repository(ORG, &kept).is_some(),
        "kept with keep-repository"
    );
    assert!(state.repository(ORG, &gone).is_none(), "deleted without it");
    for robot in robots_of(&kept).into_iter().chain(robots_of(&gone)) {
        assert!(state.robot(&robot).is_none(), "{robot} deleted");
    }
    assert!(state.repository(ORG, &image).is_some());
    h.wait_component_ready("new", T).await;
    h.stop_controller().await;
}
