//! `quayside rotate`, run as the real binary against the control plane
//! and a controller: each run asks for one rotation with a value the
//! controller has not handled (`quayside.dev/rotate`), and `--wait`
//! returns once the new credentials are issued.

use std::time::Duration;

use quayside::api::ROTATE_ANNOTATION;
use quayside_testkit::harness::Harness;

use super::cli_status::{kubeconfig, quayside};

const T: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_requests_one_rotation_per_run() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("rot", true).await;
    h.create_environment("dev", &target, &[]).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let first = h.wait_component_ready("app", T).await;
    let before = first.status.unwrap().credentials_generation;
    let (kc, ws) = (kubeconfig(&h), h.workspace.clone());
    let mut values = Vec::new();
    for n in 1..=2 {
        let ran = quayside(&[
            "rotate",
            "app",
            "-n",
            &ws,
            "--wait",
            "--timeout",
            "90s",
            "--kubeconfig",
            &kc,
        ])
        .await;
        assert!(ran.ok, "rotation {n}: {}{}", ran.stdout, ran.stderr);
        let want = format!("rotated to credentials generation {}", before + n);
        assert!(ran.stdout.contains(&want), "rotation {n}: {}", ran.stdout);
        let c = h.components().get("app").await.unwrap();
        let value = c.metadata.annotations.unwrap()[ROTATE_ANNOTATION].clone();
        assert!(
            ran.stdout.contains(&format!("{ROTATE_ANNOTATION}={value}")),
            "{}",
            ran.stdout
        );
        assert_eq!(
            c.status.unwrap().rotate_handled.as_deref(),
            Some(value.as_str())
        );
        values.push(value);
    }
    assert_ne!(values[0], values[1], "each run asks with a new value");
    // The new credentials reached the Environment.
    quayside_testkit::wait::until("generation 3 delivered", T, || async {
        let secret = h.target_secret(&target, "app").await?;
        let generation = quayside::vocabulary::generation_of(secret.metadata.annotations.as_ref());
        (generation == Some(before + 2)).then_some(())
    })
    .await;
    h.stop_controller().await;
    // A Component that does not exist: a failure that names it.
    let missing = quayside(&["rotate", "nothing-here", "-n", &ws, "--kubeconfig", &kc]).await;
    assert!(!missing.ok, "{}", missing.stdout);
    assert!(
        missing
            .stderr
            .contains("there is no Component nothing-here"),
        "{}",
        missing.stderr
    );
}
