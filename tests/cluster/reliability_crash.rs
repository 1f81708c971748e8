//! Crash consistency under SIGKILL: the real `quayside run` process is
//! killed at random moments during K emergency rotations (K=10 in CI, 50
//! with QUAYSIDE_LONG=1) and restarted each time. At the end every
//! Environment holds Quay's current token, `skopeo login` succeeds with it,
//! and fails with every token handed out before.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use quayside::credentials::RobotCredentials;
use quayside_testkit::component;
use quayside_testkit::harness::Harness;
use quayside_testkit::registry::{creds_of, skopeo_login};
use quayside_testkit::{long, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(120);
const COMPONENTS: [&str; 2] = ["app", "web"];

/// The real controller binary (async child: the emulator runs on this runtime).
fn spawn_controller(h: &Harness) -> tokio::process::Child {
    // Rotations follow each other within seconds: the storm guard would
    // rightly refuse them.
    let cmd = h
        .controller_command()
        .args(["--rotation-request-cooldown", "0"]);
    tokio::process::Command::from(cmd.command())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn quayside run")
}

/// Every token ever handed out, keyed by token so each is checked once.
type Seen = BTreeMap<String, RobotCredentials>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_during_rotations_converges() {
    let k = if long() { 50 } else { 10 };
    let h = Harness::start().await;
    let targets = [
        h.target_namespace("k1", true).await,
        h.target_namespace("k2", false).await,
    ];
    h.create_environment("one", &targets[0], &[]).await;
    h.create_environment("two", &targets[1], &[]).await;
    for c in COMPONENTS {
        h.create_component(c, &h.git.repo_url("public-app"), "public")
            .await;
    }
    let mut ctrl = spawn_controller(&h);
    for c in COMPONENTS {
        h.wait_component_ready(c, T).await;
    }

    let mut seen = Seen::new();
    let mut requested = 0usize;
    let mut killed_mid_rotation = 0;
    for round in 0..k {
        record_tokens(&h, &targets, &mut seen).await;
        // Rotate one Component or both, then kill at a random moment.
        let which: &[&str] = if round % 3 == 2 {
            &COMPONENTS
        } else {
            &COMPONENTS[round % 2..round % 2 + 1]
        };
        requested += which.len();
        if rotate_and_kill(&h, which, ctrl).await {
            killed_mid_rotation += 1;
        }
        ctrl = spawn_controller(&h);
    }

    converge(&h).await;
    let current = assert_quay_tokens_everywhere(&h, &targets).await;
    drop(ctrl);
    assert_only_current_tokens_log_in(&h, &current, &mut seen).await;
    let mut generations = Vec::new();
    for c in COMPONENTS {
        generations.push(component::generation(&h.components().get(c).await.unwrap()));
    }
    eprintln!(
        "FIGURES sigkill: rotations_requested={requested} kills={k} killed_with_rotation_pending={killed_mid_rotation} \
         revoked_tokens_checked={} final_generations={generations:?}",
        seen.len()
    );
}

/// The tokens the targets and the workspace hold now (pull from the
/// targets, push and pull from the workspace).
async fn record_tokens(h: &Harness, targets: &[String], seen: &mut Seen) {
    let workspace: Api<Secret> = Api::namespaced(h.client.clone(), &h.workspace);
    let mut record = |c: RobotCredentials| {
        seen.insert(c.token.expose_secret().to_string(), c);
    };
    for c in COMPONENTS {
        for ns in targets {
            if let Some(s) = h.target_secret(ns, c).await {
                record(creds_of(&s));
            }
        }
        for role in ["push", "pull"] {
            if let Some(s) = workspace
                .get_opt(&format!("{c}-image-{role}"))
                .await
                .unwrap()
            {
                record(creds_of(&s));
            }
        }
    }
}

/// Request rotations of `which`, SIGKILL the controller at a random moment
/// after; whether a rotation was still pending when it died.
async fn rotate_and_kill(h: &Harness, which: &[&str], mut ctrl: tokio::process::Child) -> bool {
    for c in which {
        h.request_rotation(c).await;
    }
    // Fault-injection timing, not synchronisation.
    let delay = rand::random_range(0..1500u64);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    ctrl.start_kill().expect("SIGKILL the controller");
    let status = ctrl.wait().await.unwrap();
    assert!(!status.success(), "killed, not exited");
    h.components()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(component::rotation_pending)
}

/// No rotation pending, every Component Ready.
async fn converge(h: &Harness) {
    for c in COMPONENTS {
        wait::until(&format!("{c} converged"), T, || async {
            let comp = h.components().get(c).await.ok()?;
            (!component::rotation_pending(&comp) && component::is_ready(&comp)).then_some(())
        })
        .await;
    }
}

/// Every Environment and the workspace hold Quay's current tokens; two
/// robots per Component, none leaked. Returns the credentials held.
async fn assert_quay_tokens_everywhere(h: &Harness, targets: &[String]) -> Vec<RobotCredentials> {
    let workspace: Api<Secret> = Api::namespaced(h.client.clone(), &h.workspace);
    let state = h.emulator.snapshot();
    assert_eq!(
        state.robots.len(),
        4,
        "two robots per Component, none leaked"
    );
    let mut current = Vec::new();
    for c in COMPONENTS {
        let comp = h.components().get(c).await.unwrap();
        let pull_robot = comp.status.unwrap().pull_robot.unwrap();
        let quay_token = state.robot(&pull_robot).unwrap().token.clone();
        for ns in targets {
            let held = creds_of(&h.target_secret(ns, c).await.unwrap());
            assert_eq!(held.username, pull_robot);
            assert!(
                held.token.expose_secret() == quay_token.expose_secret(),
                "{ns} holds Quay's current token for {c}"
            );
            current.push(held);
        }
        for role in ["push", "pull"] {
            let held = creds_of(&workspace.get(&format!("{c}-image-{role}")).await.unwrap());
            let robot = state.robot(&held.username).expect("robot exists");
            assert!(
                held.token.expose_secret() == robot.token.expose_secret(),
                "workspace {role} Secret of {c} holds Quay's current token"
            );
            current.push(held);
        }
    }
    current
}

/// `skopeo login` succeeds with every current token and fails with every
/// token handed out before (left in `seen`).
async fn assert_only_current_tokens_log_in(
    h: &Harness,
    current: &[RobotCredentials],
    seen: &mut Seen,
) {
    let registry = h.emulator.registry_host();
    for c in current {
        assert!(skopeo_login(&registry, c).await, "current token logs in");
        seen.remove(c.token.expose_secret());
    }
    assert!(!seen.is_empty(), "rotations revoked tokens");
    for old in seen.values() {
        assert!(
            !skopeo_login(&registry, old).await,
            "a revoked token of {} still logs in",
            old.username
        );
    }
}
