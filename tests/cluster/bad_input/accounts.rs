//! Problems outside the objects: a Quay organization that does not exist,
//! a revoked OAuth token, and a side-repository branch that refuses pushes.

use kube::api::{Patch, PatchParams};
use quayside_testkit::harness::{Harness, QUAY_TOKEN, SIDE_REPO};
use quayside_testkit::wait;

use super::{
    Expect, T, check_message, component_condition, environment_condition, read_side_file,
    wait_event,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quay_account_and_side_repo_problems() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("biq", true).await;
    h.create_environment("env", &target, &[]).await;
    let public = h.git.repo_url("public-app");

    // 1. A Quay organization that does not exist.
    let mut setup = h.controller_setup();
    setup.quay.organization = "no-such-org".into();
    h.start_controller_from(setup).await;
    h.create_component("app", &public, "public").await;
    let e = Expect {
        condition: "Ready",
        status: "False",
        reason: "QuayOrganizationNotFound",
        says: &["no-such-org", "check the configured organization"],
    };
    let cond = component_condition(&h, "app", &e).await;
    check_message("wrong org", &cond, &e);
    wait_event(&h, "Component", "app", e.reason).await;
    h.stop_controller().await;

    // 2. A revoked OAuth token (the mounted file now holds a dead one).
    h.start_controller().await;
    h.wait_component_ready("app", T).await;
    let token_file = h.dir.path().join("quay-token");
    std::fs::write(&token_file, "revoked-token").unwrap();
    h.request_rotation("app").await;
    h.create_component("app2", &public, "public").await;
    let e = Expect {
        condition: "Ready",
        status: "False",
        reason: "QuayUnauthorized",
        says: &["rejected the OAuth token", "put a valid token"],
    };
    let cond = component_condition(&h, "app2", &e).await;
    check_message("revoked token", &cond, &e);
    assert!(
        !cond.message.contains("revoked-token"),
        "no token in messages"
    );
    wait_event(&h, "Component", "app2", e.reason).await;
    wait_event(&h, "Component", "app", e.reason).await;
    // The rotation could not run: the existing credentials stay in place.
    let before = h.target_secret(&target, "app").await.unwrap();
    assert_eq!(h.emulator.snapshot().robots.len(), 2, "app's robots kept");
    // Fix the token: both converge (a touch wakes them before the requeue).
    std::fs::write(&token_file, QUAY_TOKEN).unwrap();
    for name in ["app", "app2"] {
        let touch = serde_json::json!({"metadata": {"labels": {"touched": "1"}}});
        h.components()
            .patch(name, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .unwrap();
    }
    h.wait_component_ready("app2", T).await;
    h.wait_rotated("app", 2, T).await;
    let after = h.target_secret(&target, "app").await.unwrap();
    assert!(before.data != after.data, "rotated once the token works");

    // 3. A protected side-repo branch: a pre-receive hook refuses pushes.
    let hook = h.git.repo_path(SIDE_REPO).join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let commits_before = h.side_repo_log().len();
    h.create_component("app3", &public, "public").await;
    let e = Expect {
        condition: "Committed",
        status: "False",
        reason: "SideRepoError",
        says: &[
            "rejected the push",
            "check branch protection",
            "pull-request delivery mode",
        ],
    };
    let cond = environment_condition(&h, "env", &e).await;
    check_message("protected branch", &cond, &e);
    wait_event(&h, "Environment", "env", e.reason).await;
    // Delivery to the cluster does not depend on git; nothing was rewritten.
    h.wait_component_ready("app3", T).await;
    assert_eq!(h.side_repo_log().len(), commits_before);
    // Unprotect: the kept commit lands.
    std::fs::remove_file(&hook).unwrap();
    wait::until("app3 committed once the branch accepts", T, || async {
        read_side_file(
            &h,
            &format!(
                "environments/{}/env/secrets/app3-pull.sops.yaml",
                h.workspace
            ),
        )
    })
    .await;
    eprintln!("FIGURES bad-input quay/git: cases=4");
    h.stop_controller().await;
}
