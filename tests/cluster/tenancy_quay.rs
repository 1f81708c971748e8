//! Attacks through the shared Quay organization (issue: tenancy): a robot
//! or repository with the name quayside would give a Component, but made
//! outside quayside or owned by another Component, must never be adopted,
//! changed or deleted. Each test named `attack_…` failed before owner
//! records existed. Also: a Component provisioned before owner records
//! keeps working and keeps its tokens.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use quayside::api::ResolvedVisibility;
use quayside::names::{RobotRole, repository_name, robot_short_name};
use quayside::quay::QuayClient;
use quayside_testkit::harness::{Harness, ORG};
use quayside_testkit::{cluster, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(60);

/// Component `name`'s RepositoryReady condition once its first pass
/// decided: False (refused), or True (the attack went through).
async fn repository_condition(h: &Harness, name: &str) -> Condition {
    wait::until(&format!("Component {name} RepositoryReady"), T, || async {
        let c = h.components().get(name).await.ok()?;
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "RepositoryReady" && (c.status == "False" || c.status == "True"))
    })
    .await
}

/// Every Secret of the workspace as plain text: each data value decoded,
/// and each registry login (`auths.*.auth`, base64 of `user:token`) in it
/// decoded too — where a stolen token would land.
async fn workspace_secrets_dump(h: &Harness) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let secrets = Api::<Secret>::namespaced(h.client.clone(), &h.workspace)
        .list(&Default::default())
        .await
        .unwrap();
    let mut out = serde_json::to_string(&secrets.items).unwrap();
    for value in secrets.items.iter().flat_map(|s| s.data.iter().flatten()) {
        let text = String::from_utf8_lossy(&value.1.0).to_string();
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            for login in json["auths"]
                .as_object()
                .into_iter()
                .flat_map(|a| a.values())
            {
                let auth = login["auth"].as_str().unwrap_or_default();
                out.push_str(&String::from_utf8_lossy(
                    &b64.decode(auth).unwrap_or_default(),
                ));
            }
        }
        out.push_str(&text);
    }
    out
}

/// A robot made by hand in the organization, named as quayside would name
/// the push robot of the workspace's Component `app`, is not quayside's:
/// its token must never reach the workspace, it is not granted anything,
/// and the Component's condition says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_robot_made_outside_quayside_is_never_adopted() {
    let mut h = Harness::start().await;
    let quay = QuayClient::new(h.quay_config()).unwrap();
    let repo = repository_name(&h.workspace, "app", None).unwrap();
    let short = robot_short_name(&repo, RobotRole::Push, 0);
    let full = format!("{ORG}+{short}");
    let theirs = quay.create_robot(&short, "made by hand").await.unwrap();
    let token = theirs.token.expose_secret().to_string();
    let before = h.emulator.snapshot().robot(&full).cloned().unwrap();
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let condition = repository_condition(&h, "app").await;
    let dump = workspace_secrets_dump(&h).await;
    cluster::delete_and_wait(&h.components(), "app", T).await;
    h.stop_controller().await;
    assert!(
        !dump.contains(&token),
        "the hand-made robot's token reached the workspace"
    );
    let state = h.emulator.snapshot();
    let after = state
        .robot(&full)
        .expect("the hand-made robot is not deleted");
    assert!(
        quay_emulator::same_token(&after.token, &before.token),
        "its token was not regenerated"
    );
    assert_eq!(after.description, before.description);
    assert_eq!(
        state.permission(&format!("{ORG}/{repo}"), &full),
        None,
        "it was granted nothing"
    );
    assert_eq!(condition.status, "False", "{}", condition.message);
    assert_eq!(
        condition.reason, "RobotOwnedElsewhere",
        "{}",
        condition.message
    );
    assert!(
        condition.message.contains(&full) && condition.message.contains("Quay organization admin"),
        "{}",
        condition.message
    );
}

/// Repositories under the workspace's prefix that are not this
/// Component's — one recorded for another Component, one made by hand —
/// keep their visibility, get no robots, and survive the Component's
/// deletion; status names no image, so the person can pick another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_repository_of_another_owner_is_never_changed_or_deleted() {
    let mut h = Harness::start().await;
    let quay = QuayClient::new(h.quay_config()).unwrap();
    let cases = [
        (
            "owned",
            "Images of Component other/owned (managed by quayside; owner uid 6f1c2a7e-0000-4000-8000-000000000001)",
        ),
        ("handmade", "our team's images, made by hand"),
    ];
    for (name, description) in cases {
        let repo = repository_name(&h.workspace, name, None).unwrap();
        quay.create_repository(&repo, ResolvedVisibility::Private, description)
            .await
            .unwrap();
    }
    let before = h.emulator.snapshot();
    h.start_controller().await;
    let mut conditions = Vec::new();
    for (name, _) in cases {
        h.create_component(name, &h.git.repo_url("public-app"), "public")
            .await;
        conditions.push(repository_condition(&h, name).await);
    }
    let mut images = Vec::new();
    for (name, _) in cases {
        let c = h.components().get(name).await.unwrap();
        images.push(c.status.and_then(|s| s.image));
    }
    for (name, _) in cases {
        cluster::delete_and_wait(&h.components(), name, T).await;
    }
    h.stop_controller().await;
    let state = h.emulator.snapshot();
    for (name, _) in cases {
        let repo = repository_name(&h.workspace, name, None).unwrap();
        let after = state
            .repository(ORG, &repo)
            .unwrap_or_else(|| panic!("{repo} was deleted"));
        assert!(!after.public, "{repo}: visibility flipped to public");
        assert_eq!(
            Some(after),
            before.repository(ORG, &repo),
            "{repo} unchanged"
        );
        let granted: Vec<_> = state
            .permissions
            .iter()
            .filter(|p| p.repository == format!("{ORG}/{repo}"))
            .collect();
        assert!(granted.is_empty(), "{repo}: robots granted: {granted:?}");
    }
    for c in &conditions {
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "RepositoryOwnedElsewhere"),
            "{}",
            c.message
        );
        assert!(c.message.contains("spec.image"), "{}", c.message);
    }
    assert_eq!(images, vec![None, None], "status names no image");
}

/// The workspace Secret of `component` for `role`, as stored.
async fn stored_secret(h: &Harness, component: &str, role: RobotRole) -> Secret {
    let name = quayside::vocabulary::workspace_secret_name(component, role);
    Api::<Secret>::namespaced(h.client.clone(), &h.workspace)
        .get(&name)
        .await
        .unwrap()
}

/// Poke the spec so the next pass asks Quay again (a new source URL; the
/// visibility is explicit, so nothing is probed).
async fn change_spec(h: &Harness, name: &str) {
    let url = format!("{}?moved", h.git.repo_url("public-app"));
    let patch = serde_json::json!({"spec": {"source": {"git": {"url": url}}}});
    h.components()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// A Component provisioned before owner records (its repository's
/// description and its robots without them, as the older controller left
/// them) keeps working after the upgrade: no token changes, the repository
/// gets its record the next time Quay is asked, and rotation and deletion
/// still reach its robots, proven ours by the tokens its Secrets hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_component_provisioned_before_owner_records_keeps_its_tokens() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let uid = h.wait_component_ready("app", T).await.metadata.uid.unwrap();
    h.stop_controller().await;
    let repo = repository_name(&h.workspace, "app", None).unwrap();
    strip_owner_records(&h, &repo).await;
    let roles = [RobotRole::Push, RobotRole::Pull];
    let mut before = Vec::new();
    for role in roles {
        before.push(stored_secret(&h, "app", role).await.data);
    }

    h.start_controller().await;
    change_spec(&h, "app").await;
    let description = wait::until("the owner record on the repository", T, || async {
        let state = h.emulator.snapshot();
        let d = &state.repository(ORG, &repo)?.description;
        d.contains("owner uid").then(|| d.clone())
    })
    .await;
    wait::until("the changed spec is Ready", T, || async {
        let c = h.components().get("app").await.ok()?;
        let s = c.status.as_ref()?;
        (s.observed_generation == c.metadata.generation
            && quayside_testkit::component::is_ready(&c))
        .then_some(())
    })
    .await;
    for (role, data) in roles.iter().zip(&before) {
        let now = stored_secret(&h, "app", *role).await.data;
        assert!(&now == data, "the {} login changed", role.as_str());
    }
    assert_eq!(
        description,
        format!(
            "Images of Component {}/app (managed by quayside; owner uid {uid})",
            h.workspace
        )
    );

    h.request_rotation("app").await;
    h.wait_rotated("app", 2, T).await;
    cluster::delete_and_wait(&h.components(), "app", T).await;
    h.stop_controller().await;
    let state = h.emulator.snapshot();
    assert!(state.repository(ORG, &repo).is_none(), "repository deleted");
    assert!(
        state.robots.is_empty(),
        "robots deleted: {:?}",
        state.robots
    );
}

/// Make `repo` and its robots look as the controller before owner records
/// left them: its old description, robots without metadata.
async fn strip_owner_records(h: &Harness, repo: &str) {
    let quay = QuayClient::new(h.quay_config()).unwrap();
    let component = format!("{}/app", h.workspace);
    let old = format!("Images of Component {component} (managed by quayside)");
    quay.update_repository_description(repo, &old)
        .await
        .unwrap();
    for role in [RobotRole::Push, RobotRole::Pull] {
        let full = format!("{ORG}+{}", robot_short_name(repo, role, 0));
        let old = format!("quayside {} robot for {component}", role.as_str());
        assert!(h.emulator.rewrite_robot(&full, &old, None), "{full}");
    }
}
