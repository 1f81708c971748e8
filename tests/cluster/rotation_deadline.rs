//! Rotations that always finish: an Environment whose cluster becomes
//! unreachable in the middle of a rotation (a TCP link the test cuts) is
//! left behind when `--rotation-deadline` passes — the rotation completes
//! for the others, the straggler is named in status, an event and a metric
//! — and catches up when the link is back. The deadline counts from status,
//! so a controller killed while it waits and restarted after the deadline
//! finishes at once, even when it crashes again inside the finish.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use quayside::api::Component;
use quayside::controller::metrics::ComponentLabels;
use quayside_testkit::component::rotation_pending;
use quayside_testkit::harness::Harness;
use quayside_testkit::proxy::Proxy;
use quayside_testkit::registry::creds_of;
use quayside_testkit::wait;
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(90);

/// A kubeconfig for the test's own control plane that goes through a
/// proxy the test can cut: a "remote" cluster with a link that can fail.
async fn proxied_kubeconfig(h: &Harness) -> (String, Proxy) {
    let text = std::fs::read_to_string(h.cp.kubeconfig()).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("a server line")
        .to_string();
    let upstream: SocketAddr = server.parse().expect("host:port");
    let proxy = Proxy::start(upstream).await;
    let proxied = text.replace(
        &format!("server: https://{server}"),
        &format!("server: https://{}", proxy.addr()),
    );
    (proxied, proxy)
}

/// A Component's condition `kind` as (status, message).
fn condition(c: &Component, kind: &str) -> Option<(String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == kind)
        .map(|x| (x.status.clone(), x.message.clone()))
}

/// Quay's current token of the robot `username`, if it exists.
fn quay_token(h: &Harness, username: &str) -> Option<String> {
    h.emulator
        .snapshot()
        .robot(username)
        .map(|r| r.token.expose_secret().to_string())
}

/// `far`'s pull Secret holds Quay's current token and the straggler is
/// gone from status; returns the Component then.
async fn caught_up(h: &Harness, far: &str) -> Component {
    wait::until("the straggler caught up", T, || async {
        let c = h.components().get("app").await.ok()?;
        let s = c.status.as_ref()?;
        let held = creds_of(&h.target_secret(far, "app").await?);
        let current = quay_token(h, &held.username)?;
        (held.token.expose_secret() == current.as_str()
            && s.rotation_stragglers.is_empty()
            && condition(&c, "Degraded").is_none()
            && condition(&c, "Ready").is_some_and(|(s, _)| s == "True"))
        .then_some(c)
    })
    .await
}

/// Two Environments: `near` (this cluster) and `far` (the same cluster
/// through the proxy); returns their target namespaces.
async fn two_environments(h: &Harness, kubeconfig: &str) -> (String, String) {
    let near = h.target_namespace("near", true).await;
    let far = h.target_namespace("far", true).await;
    h.create_environment("near", &near, &[]).await;
    h.create_remote_environment("far", &far, kubeconfig).await;
    (near, far)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_environment_unreachable_mid_rotation_is_left_behind_and_catches_up() {
    const DEADLINE: Duration = Duration::from_secs(5);
    let mut h = Harness::start().await;
    let (kubeconfig, mut proxy) = proxied_kubeconfig(&h).await;
    let (near, far) = two_environments(&h, &kubeconfig).await;
    let mut cfg = h.config();
    cfg.rotation_deadline = Some(DEADLINE);
    h.start_controller_with(cfg).await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    let before = creds_of(&h.target_secret(&far, "app").await.unwrap());

    proxy.cut();
    let asked = Instant::now();
    h.request_rotation("app").await;
    let c = h.wait_rotated("app", 2, T).await;
    let finished_after = asked.elapsed();
    assert!(
        finished_after >= DEADLINE,
        "finished after {finished_after:?}, before the deadline"
    );
    let s = c.status.clone().unwrap();
    assert_eq!(s.rotation_stragglers, vec!["far".to_string()]);
    assert!(s.rotation_started_at.is_none(), "nothing in flight");
    let (degraded, message) = condition(&c, "Degraded").expect("a Degraded condition");
    assert_eq!(degraded, "True");
    assert!(
        message.contains("far") && !message.contains("near"),
        "{message}"
    );
    // Ready speaks for the healthy Environment.
    assert_eq!(
        condition(&c, "Ready").unwrap().0,
        "True",
        "{:?}",
        s.conditions
    );
    let held = creds_of(&h.target_secret(&near, "app").await.unwrap());
    assert_eq!(
        quay_token(&h, &held.username).as_deref(),
        Some(held.token.expose_secret()),
        "near holds Quay's current token"
    );
    // The straggler still holds the old token, which Quay no longer takes.
    let stale = creds_of(&h.target_secret(&far, "app").await.unwrap());
    assert_eq!(stale.token.expose_secret(), before.token.expose_secret());
    assert_ne!(
        quay_token(&h, &stale.username).as_deref(),
        Some(stale.token.expose_secret())
    );
    let (metrics, _) = h.observed.clone().unwrap();
    let labels = ComponentLabels {
        namespace: h.workspace.clone(),
        name: "app".into(),
    };
    assert_eq!(metrics.rotation_stragglers.get_or_create(&labels).get(), 1);
    assert_eq!(metrics.rotation_deadlines.get(), 1);
    deadline_event(&h).await;

    proxy.restore().await;
    let back = Instant::now();
    let c = caught_up(&h, &far).await;
    let caught_up_after = back.elapsed();
    assert_eq!(c.status.unwrap().credentials_generation, 2);
    // The series goes with the last straggler (get_or_create would add it).
    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        !text.contains(&format!(
            "quayside_rotation_stragglers{{namespace=\"{}\"",
            h.workspace
        )),
        "{text}"
    );
    eprintln!(
        "FIGURES deadline: rotation finished {finished_after:?} after the request (deadline {DEADLINE:?}); \
         straggler caught up {caught_up_after:?} after its link came back"
    );
    h.stop_controller().await;
}

/// The Warning the deadline publishes, naming the straggler.
async fn deadline_event(h: &Harness) -> String {
    let api: Api<Event> = Api::namespaced(h.client.clone(), &h.workspace);
    wait::until("a RotationDeadlinePassed event", T, || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find_map(|ev| {
            let note = ev.note.unwrap_or_default();
            (ev.type_.as_deref() == Some("Warning")
                && ev.reason.as_deref() == Some("RotationDeadlinePassed")
                && note.contains("far"))
            .then_some(note)
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deadline_survives_a_restart_and_a_crash_inside_the_finish() {
    const DEADLINE: u64 = 20;
    let h = Harness::start().await;
    let (kubeconfig, mut proxy) = proxied_kubeconfig(&h).await;
    let (_near, far) = two_environments(&h, &kubeconfig).await;
    let spawn = |crash_at: Option<&str>| {
        let cmd = h.controller_command().args([
            "--rotation-request-cooldown",
            "0",
            "--rotation-deadline",
            &format!("{DEADLINE}s"),
        ]);
        match crash_at {
            Some(p) => cmd.crash_at(p).spawn(),
            None => cmd.spawn(),
        }
    };
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let ctrl = spawn(None);
    h.wait_component_ready("app", T).await;
    h.target_secret(&far, "app").await.expect("far delivered");

    // The rotation starts waiting for `far`; its start is in status.
    proxy.cut();
    h.request_rotation("app").await;
    let started = wait::until("the rotation's start recorded", T, || async {
        let c = h.components().get("app").await.ok()?;
        c.status?.rotation_started_at
    })
    .await;
    drop(ctrl); // killed while it waits
    let due = started.0.as_second() + DEADLINE as i64;
    wait::until("the deadline passed while no controller ran", T, || async {
        (k8s_openapi::jiff::Timestamp::now().as_second() > due).then_some(())
    })
    .await;

    // Restarted after the deadline: it goes straight to the finish (and
    // crashes there, after removing the annotation).
    let restarted = Instant::now();
    let mut crashing = spawn(Some("rotation:annotation-removed"));
    let exit = wait::until("the crash inside the finish", T, || {
        let s = crashing.0.try_wait().unwrap();
        async move { s }
    })
    .await;
    let to_finish = restarted.elapsed();
    assert!(!exit.success(), "aborted at the crash point");
    assert!(
        to_finish < Duration::from_secs(DEADLINE),
        "the restart waited {to_finish:?}: the deadline was counted again"
    );
    let c = h.components().get("app").await.unwrap();
    assert!(!rotation_pending(&c), "annotation removed before the crash");
    assert_eq!(c.status.as_ref().unwrap().credentials_generation, 1);

    // Restarted again: the same finish, recorded, with the same straggler.
    let _ctrl = spawn(None);
    let c = h.wait_rotated("app", 2, T).await;
    assert_eq!(
        c.status.unwrap().rotation_stragglers,
        vec!["far".to_string()]
    );
    proxy.restore().await;
    caught_up(&h, &far).await;
    assert_eq!(h.emulator.snapshot().robots.len(), 2, "no robot leaked");
    eprintln!(
        "FIGURES deadline restart: finished {to_finish:?} after a restart past the deadline ({DEADLINE}s)"
    );
}

/// The point of the deadline for a scheduled rotation: the old robots,
/// whose credential the rotation exists to retire, are deleted even though
/// one Environment never received the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_rotation_deletes_the_old_robots_at_the_deadline() {
    let mut h = Harness::start().await;
    let (kubeconfig, mut proxy) = proxied_kubeconfig(&h).await;
    let (near, far) = two_environments(&h, &kubeconfig).await;
    let mut cfg = h.config();
    cfg.rotation_interval = Some(Duration::from_secs(8));
    cfg.rotation_deadline = Some(Duration::from_secs(3));
    h.start_controller_with(cfg).await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let first = h.wait_component_ready("app", T).await;
    let old_robot = first.status.unwrap().pull_robot.unwrap();
    h.target_secret(&far, "app").await.expect("far delivered");
    proxy.cut();
    let c = h.wait_rotated("app", 2, T).await;
    // No further scheduled rotation while the straggler comes back.
    h.stop_controller().await;
    let s = c.status.unwrap();
    assert_eq!(s.rotation_stragglers, vec!["far".to_string()]);
    let robot = s.pull_robot.unwrap();
    assert_ne!(robot, old_robot, "moved to the other slot");
    let state = h.emulator.snapshot();
    assert!(
        state.robot(&old_robot).is_none(),
        "the old robot is deleted at the deadline"
    );
    assert_eq!(state.robots.len(), 2, "no robot leaked");
    let held = creds_of(&h.target_secret(&near, "app").await.unwrap());
    assert_eq!(held.username, robot, "near holds the new robot");
    let stale = creds_of(&h.target_secret(&far, "app").await.unwrap());
    assert_eq!(stale.username, old_robot, "far still holds the deleted one");

    h.start_controller().await;
    proxy.restore().await;
    let c = caught_up(&h, &far).await;
    assert_eq!(
        creds_of(&h.target_secret(&far, "app").await.unwrap()).username,
        robot
    );
    assert_eq!(c.status.unwrap().credentials_generation, 2);
    h.stop_controller().await;
}
