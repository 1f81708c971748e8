//! What the controller records when Quay refuses: with a mistyped
//! organization (Quay answers 403 "Unauthorized", as recorded from a real
//! Quay), the condition says the organization does not exist, and status
//! names no image and no robot that Quay never confirmed.

use std::time::Duration;

use kube::api::Api;
use quayside::api::Component;
use quayside_testkit::harness::Harness;
use quayside_testkit::wait;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_organization_is_named_and_nothing_unconfirmed_is_recorded() {
    let mut h = Harness::start().await;
    let mut setup = h.controller_setup();
    setup.quay.organization = "acme-typo".into();
    h.start_controller_from(setup).await;
    let url = h.git.repo_url("public-app");
    h.create_component("typo", &url, "public").await;

    let api: Api<Component> = h.components();
    let c = wait::until("RepositoryReady=False", Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let c = api.get("typo").await.ok()?;
            let s = c.status.clone()?;
            s.conditions
                .iter()
                .any(|c| c.type_ == "RepositoryReady" && c.status == "False")
                .then_some(c)
        }
    })
    .await;
    let status = c.status.unwrap();
    let repo = status
        .conditions
        .iter()
        .find(|c| c.type_ == "RepositoryReady")
        .unwrap();
    assert_eq!(repo.reason, "QuayOrganizationNotFound", "{repo:?}");
    assert!(repo.message.contains("acme-typo"), "{repo:?}");
    assert_eq!(status.image, None, "Quay never confirmed a repository");
    assert_eq!(status.push_robot, None, "nor a robot");
    assert_eq!(status.pull_robot, None, "nor a robot");
    let propagated = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Propagated")
        .unwrap();
    assert_ne!(propagated.status, "True", "{propagated:?}");
    assert!(h.emulator.snapshot().repositories.is_empty());
    h.stop_controller().await;
}
