//! Crash consistency of emergency and scheduled rotation: the real
//! `quayside` process is aborted at each step of a rotation (a crash point
//! compiled into debug builds), then restarted; every time the rotation
//! converges, every Environment holds Quay's current token, and the revoked
//! one (or the deleted robot) is gone from Quay. The deadline passing in
//! the middle of a rotation is `rotation_deadline.rs`.

use std::time::Duration;

use quayside::controller::crash::{ROTATION_POINTS, SCHEDULED_POINTS};
use quayside::credentials::RobotCredentials;
use quayside_testkit::harness::Harness;
use quayside_testkit::process::KillOnDrop;
use quayside_testkit::registry::creds_of;
use quayside_testkit::wait;
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(90);

fn spawn_controller(h: &Harness, crash_at: Option<&str>) -> KillOnDrop {
    // Rotations follow each other within seconds here: the storm guard
    // would rightly refuse the second one.
    let cmd = h
        .controller_command()
        .args(["--rotation-request-cooldown", "0"]);
    match crash_at {
        Some(point) => cmd.crash_at(point).spawn(),
        None => cmd.spawn(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_converges_after_a_crash_at_every_step() {
    let h = Harness::start().await;
    let envs = [
        h.target_namespace("c1", true).await,
        h.target_namespace("c2", false).await,
    ];
    h.create_environment("one", &envs[0], &[]).await;
    h.create_environment("two", &envs[1], &[]).await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    {
        let _c = spawn_controller(&h, None);
        h.wait_component_ready("app", T).await;
    }

    let mut generation = 1;
    let mut revoked: Vec<RobotCredentials> = Vec::new();
    for point in ROTATION_POINTS {
        let before = creds_of(&h.target_secret(&envs[0], "app").await.unwrap());
        let mut crashing = spawn_controller(&h, Some(point));
        h.request_rotation("app").await;
        let status = wait::until(&format!("crash at {point}"), T, || {
            let s = crashing.0.try_wait().unwrap();
            async move { s }
        })
        .await;
        assert!(!status.success(), "the controller aborted at {point}");

        let _c = spawn_controller(&h, None);
        generation += 1;
        h.wait_rotated("app", generation, T).await;
        // Quay's current pull token is what every Environment holds.
        let state = h.emulator.snapshot();
        for ns in &envs {
            let held = creds_of(&h.target_secret(ns, "app").await.unwrap());
            let robot = state
                .robots
                .iter()
                .find(|r| r.name == held.username)
                .expect("robot exists");
            assert!(
                robot.token.expose_secret() == held.token.expose_secret(),
                "after a crash at {point}, {ns} holds Quay's current token"
            );
            assert!(
                held.token.expose_secret() != before.token.expose_secret(),
                "expected a different token (values not printed)"
            );
        }
        revoked.push(before);
        generation = h
            .components()
            .get("app")
            .await
            .unwrap()
            .status
            .unwrap()
            .credentials_generation;
    }
    // Exactly two robots: crashes never leaked one.
    assert_eq!(h.emulator.snapshot().robots.len(), 2);
    // Every pre-rotation token is revoked.
    let state = h.emulator.snapshot();
    for old in revoked {
        assert!(
            state
                .robots
                .iter()
                .all(|r| r.token.expose_secret() != old.token.expose_secret()),
            "a revoked token is still valid"
        );
    }
}

/// The scheduled rotation's interval in this test: long enough to stop the
/// controller between two rotations, short enough to wait for one.
const INTERVAL: &str = "8s";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_rotation_converges_after_a_crash_at_every_step() {
    let h = Harness::start().await;
    let envs = [
        h.target_namespace("s1", true).await,
        h.target_namespace("s2", false).await,
    ];
    h.create_environment("one", &envs[0], &[]).await;
    h.create_environment("two", &envs[1], &[]).await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let spawn = |crash_at: Option<&str>| {
        let cmd = h
            .controller_command()
            .args(["--rotation-interval", INTERVAL]);
        match crash_at {
            Some(point) => cmd.crash_at(point).spawn(),
            None => cmd.spawn(),
        }
    };
    {
        let _c = spawn(None);
        h.wait_component_ready("app", T).await;
    }
    for point in SCHEDULED_POINTS {
        let before = h.components().get("app").await.unwrap().status.unwrap();
        let old_robot = before.pull_robot.clone().unwrap();
        let mut crashing = spawn(Some(point));
        let status = wait::until(&format!("crash at {point}"), T, || {
            let s = crashing.0.try_wait().unwrap();
            async move { s }
        })
        .await;
        assert!(!status.success(), "the controller aborted at {point}");

        let c = spawn(None);
        let target = before.credentials_generation + 1;
        let rotated = h.wait_rotated("app", target, T).await;
        // Stopped before the next rotation is due, to look at a quiet state.
        drop(c);
        let s = rotated.status.unwrap();
        assert_eq!(
            s.credentials_generation, target,
            "one rotation, after {point}"
        );
        let robot = s.pull_robot.unwrap();
        assert_ne!(robot, old_robot, "moved to the other slot after {point}");
        let state = h.emulator.snapshot();
        let names: Vec<&str> = state.robots.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), 2, "no robot leaked after {point}: {names:?}");
        assert!(
            !names.contains(&old_robot.as_str()),
            "the old robot is deleted after {point}: {names:?}"
        );
        for ns in &envs {
            let held = creds_of(&h.target_secret(ns, "app").await.unwrap());
            assert_eq!(
                held.username, robot,
                "{ns} holds the new robot after {point}"
            );
            let current = state.robot(&robot).unwrap();
            assert!(
                current.token.expose_secret() == held.token.expose_secret(),
                "after a crash at {point}, {ns} holds Quay's current token"
            );
        }
    }
}
