//! The Kubernetes API server restarted (on the same etcd) in the middle of
//! provisioning: the controller's watches and passes resume, every Component
//! becomes Ready, and nothing is lost or duplicated.
//!
//! On a control plane of its own: the restart would disturb every other
//! test of the binary, which share one.

use std::collections::BTreeSet;
use std::time::Duration;

use quayside_testkit::harness::{Harness, ORG};
use quayside_testkit::{cluster, long, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_resumes_after_an_api_server_restart_mid_pass() {
    let mut h = Harness::builder().own_control_plane().start().await;
    let target = h.target_namespace("rst", true).await;
    h.create_environment("prod", &target, &[]).await;
    h.start_controller().await;
    let url = h.git.repo_url("public-app");
    let (before, after) = if long() { (30, 30) } else { (8, 4) };
    let mut names: Vec<String> = Vec::new();
    for i in 0..before {
        let name = format!("pre-{i}");
        h.create_component(&name, &url, "public").await;
        names.push(name);
    }
    // Restart while those passes run (blocking: off the runtime's workers).
    let cp = h.cp.clone();
    tokio::task::spawn_blocking(move || cp.restart_apiserver())
        .await
        .unwrap();
    let restarted = std::time::Instant::now();
    // The harness's own client reconnects too; new work after the restart.
    h.client = h.cp.client().await;
    for i in 0..after {
        let name = format!("post-{i}");
        h.create_component(&name, &url, "public").await;
        names.push(name);
    }
    for name in &names {
        // The watches' backoff is capped at 5 s (controller/backoff.rs), so
        // this is seconds when idle; the bound leaves room for a loaded
        // 2-core machine.
        h.wait_component_ready(name, Duration::from_secs(120)).await;
    }
    let resumed = restarted.elapsed();
    // Every pull Secret is in the target and linked; the side repo has all.
    for name in &names {
        assert!(h.target_secret(&target, name).await.is_some(), "{name}");
    }
    let links = h.image_pull_secrets(&target, "deployer").await;
    for name in &names {
        assert!(links.contains(&format!("{name}-pull")), "{name} linked");
    }
    wait::until(
        "sealed files of every Component",
        Duration::from_secs(60),
        || async {
            let dir = h.try_clone_side_repo()?;
            let root = dir
                .path()
                .join(format!("repo/environments/{}/prod/secrets", h.workspace));
            names
                .iter()
                .all(|n| root.join(format!("{n}-pull.sops.yaml")).exists())
                .then_some(())
        },
    )
    .await;
    // Quay: exactly two robots per Component, none lost or leaked.
    let state = h.emulator.snapshot();
    assert_eq!(state.repositories.len(), names.len());
    assert_eq!(state.robots.len(), 2 * names.len());
    let robots: BTreeSet<&str> = state.robots.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(robots.len(), state.robots.len(), "no duplicate robots");
    for c in h.components().list(&Default::default()).await.unwrap() {
        let s = c.status.unwrap();
        assert_eq!(s.credentials_generation, 1, "no spurious rotation");
        assert!(
            s.pull_robot.is_some(),
            "{} {:?}",
            c.metadata.name.as_deref().unwrap_or(""),
            s
        );
        assert!(robots.contains(s.pull_robot.unwrap().as_str()));
        assert!(robots.contains(s.push_robot.unwrap().as_str()));
    }
    assert!(state.robots.iter().all(|r| r.name.starts_with(ORG)));
    // The control plane still works for a namespace created afterwards.
    let _ = cluster::new_namespace(&h.client, "after").await;
    eprintln!(
        "FIGURES apiserver-restart: components_before={before} components_after={after} \
         all_ready_after_restart_s={:.1}",
        resumed.as_secs_f64()
    );
    h.stop_controller().await;
}
