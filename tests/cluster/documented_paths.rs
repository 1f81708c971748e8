//! Paths the docs and the ADR describe that no other test walked: an
//! Environment added after its Components are Ready (the ADR's scenario 1
//! as written), `quayside.dev/keep-repository`, and the deletion of a
//! Component whose repository another Component uses.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use quayside::names::{RobotRole, robot_short_name};
use quayside_testkit::harness::{Harness, ORG};
use quayside_testkit::{cluster, wait};

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
