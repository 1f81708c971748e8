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
use quayside_testkit::harness::Harness;
use quayside_testkit::registry::{creds_of, skopeo_login};
use quayside_testkit::{component, long, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(120);

/// The real controller binary (async child: the emulator runs on this runtime).
fn spawn_controller(h: &Harness) -> tokio::process::Child {
    tokio::process::Command::from(h.controller_command().command())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn quayside run")
}

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
    let components = ["app", "web"];
    for c in components {
        h.create_component(c, &h.git.repo_url("public-app"), "public")
            .await;
    }
    let mut ctrl = spawn_controller(&h);
    for c in components {
        h.wait_component_ready(c, T).await;
    }

    // Every token ever handed out (pull from the targets, push and pull from
    // the workspace), keyed by token so each is checked once.
    let mut seen: BTreeMap<String, RobotCredentials> = BTreeMap::new();
    let workspace: Api<Secret> = Api::namespaced(h.client.clone(), &h.workspace);
    let record = |seen: &mut BTreeMap<String, RobotCredentials>, c: RobotCredentials| {
        seen.insert(c.token.expose_secret().to_string(), c);
    };
    let mut requested = 0usize;
    let mut killed_mid_rotation = 0;
    for round in 0..k {
        for c in components {
            for ns in &targets {
                if let Some(s) = h.target_secret(ns, c).await {
                    record(&mut seen, creds_of(&s));
                }
            }
            for role in ["push", "pull"] {
                if let Some(s) = workspace
                    .get_opt(&format!("{c}-image-{role}"))
                    .await
                    .unwrap()
                {
                    record(&mut seen, creds_of(&s));
                }
            }
        }
        // Rotate one Component or both, then kill at a random moment.
        let which: &[&str] = if round % 3 == 2 {
            &components
        } else {
            &components[round % 2..round % 2 + 1]
        };
        requested += which.len();
        for c in which {
            h.request_rotation(c).await;
        }
        // Fault-injection timing, not synchronisation.
        let delay = rand::random_range(0..1500u64);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        ctrl.start_kill().expect("SIGKILL the controller");
        let status = ctrl.wait().await.unwrap();
        assert!(!status.success(), "killed, not exited");
        let annotated = h
            .components()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(component::rotation_pending);
        if annotated {
            killed_mid_rotation += 1;
        }
        ctrl = spawn_controller(&h);
    }

    // Convergence: no rotation pending, every Environment on Quay's token.
    for c in components {
        wait::until(&format!("{c} converged"), T, || async {
            let comp = h.components().get(c).await.ok()?;
            (!component::rotation_pending(&comp) && component::is_ready(&comp)).then_some(())
        })
        .await;
    }
    let registry = h.emulator.registry_host();
    let state = h.emulator.snapshot();
    assert_eq!(
        state.robots.len(),
        4,
        "two robots per Component, none leaked"
    );
    let mut current = Vec::new();
    for c in components {
        let comp = h.components().get(c).await.unwrap();
        let pull_robot = comp.status.unwrap().pull_robot.unwrap();
        let quay_token = state.robot(&pull_robot).unwrap().token.clone();
        for ns in &targets {
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
    drop(ctrl);
    for c in &current {
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
    let generations: Vec<i64> = {
        let mut g = Vec::new();
        for c in components {
            g.push(
                h.components()
                    .get(c)
                    .await
                    .unwrap()
                    .status
                    .unwrap()
                    .credentials_generation,
            );
        }
        g
    };
    eprintln!(
        "FIGURES sigkill: rotations_requested={requested} kills={k} killed_with_rotation_pending={killed_mid_rotation} \
         revoked_tokens_checked={} final_generations={generations:?}",
        seen.len()
    );
}
