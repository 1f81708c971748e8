//! Quay-side drift (issue 15, part 5): a robot deleted or regenerated, a
//! permission revoked, a repository made public or deleted — each done out
//! of band, with Quay's own API as a person in the Quay UI would — is
//! noticed at the next heartbeat and healed, with a `QuayDriftHealed`
//! Warning event; a source repository that turns private makes its image
//! repository private at the next heartbeat. The verification costs two
//! Quay calls per Component per heartbeat and no registry login, plus one
//! robot listing per quarter heartbeat for the whole organization (measured).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use quayside::api::ResolvedVisibility;
use quayside::names::{RobotRole, repository_name, robot_short_name};
use quayside::quay::{QuayClient, Role};
use quayside_testkit::harness::{Harness, ORG};
use quayside_testkit::wait;

const T: Duration = Duration::from_secs(60);
/// Short enough for a test, long enough that a pass (a few hundred
/// milliseconds on a loaded machine) fits well inside it.
const HEARTBEAT: Duration = Duration::from_secs(4);
/// A drift must be noticed within one heartbeat; the slack covers the pass
/// itself and the event reaching the API server.
const NOTICED_WITHIN: Duration = Duration::from_secs(4 + 6);

/// A running controller with a short heartbeat, one Component `app` of
/// `source` with `visibility`, delivered to one Environment; returns the
/// harness, the target namespace, the Quay client (the "UI") and the repository.
async fn steady(source: &str, visibility: &str) -> (Harness, String, QuayClient, String) {
    let mut h = Harness::start().await;
    let ns = h.target_namespace("drift", true).await;
    h.create_environment("e", &ns, &[]).await;
    let mut cfg = h.config();
    cfg.heartbeat = HEARTBEAT;
    cfg.quay_verify_interval = HEARTBEAT;
    h.start_controller_with(cfg).await;
    h.create_component("app", &h.git.repo_url(source), visibility)
        .await;
    h.wait_component_ready("app", T).await;
    let repo = repository_name(&h.workspace, "app", None).unwrap();
    let quay = QuayClient::new(h.quay_config()).unwrap();
    wait_delivered(&h, &ns, &repo).await;
    (h, ns, quay, repo)
}

/// The login (user, token) in a `.dockerconfigjson` Secret.
fn login_of(secret: &Secret) -> Option<(String, String)> {
    let data = secret.data.as_ref()?.get(".dockerconfigjson")?;
    let json: serde_json::Value = serde_json::from_slice(&data.0).ok()?;
    let login = json["auths"].as_object()?.values().next()?;
    Some((
        login["username"].as_str()?.to_string(),
        login["password"].as_str()?.to_string(),
    ))
}

/// Wait until the target Secret holds the pull robot's current token
/// (the registry accepts it); returns that token.
async fn wait_delivered(h: &Harness, ns: &str, repo: &str) -> String {
    let pull = format!("{ORG}+{}", robot_short_name(repo, RobotRole::Pull, 0));
    wait::until("the pull robot's current token delivered", T, || async {
        let (user, token) = login_of(&h.target_secret(ns, "app").await?)?;
        (user == pull && h.emulator.accepts_login(&user, &token)).then_some(token)
    })
    .await
}

/// The message of the first `QuayDriftHealed` Warning about `app` that
/// contains `says`, and how long after `since` it was waited for.
async fn wait_drift_event(h: &Harness, says: &str, since: Instant) -> (String, Duration) {
    let api: Api<Event> = Api::namespaced(h.client.clone(), &h.workspace);
    let note = wait::until(&format!("a QuayDriftHealed event: {says}"), T, || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find_map(|ev| {
            let note = ev.note.unwrap_or_default();
            (ev.type_.as_deref() == Some("Warning")
                && ev.reason.as_deref() == Some("QuayDriftHealed")
                && ev
                    .regarding
                    .as_ref()
                    .is_some_and(|r| r.name.as_deref() == Some("app"))
                && note.contains(says))
            .then_some(note)
        })
    })
    .await;
    (note, since.elapsed())
}

fn assert_noticed_in_time(what: &str, elapsed: Duration) {
    println!("{what}: healed and reported {elapsed:?} after the change (heartbeat {HEARTBEAT:?})");
    assert!(
        elapsed <= NOTICED_WITHIN,
        "{what} took {elapsed:?}, more than one heartbeat ({HEARTBEAT:?}) and the slack"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_a_robot_deleted_on_quay_is_recreated_and_redelivered() {
    let (mut h, ns, quay, repo) = steady("public-app", "private").await;
    let old = wait_delivered(&h, &ns, &repo).await;
    let short = robot_short_name(&repo, RobotRole::Pull, 0);
    let since = Instant::now();
    quay.delete_robot(&short).await.unwrap();
    let (note, elapsed) = wait_drift_event(&h, "was deleted on Quay", since).await;
    let new = wait_delivered(&h, &ns, &repo).await;
    h.stop_controller().await;
    assert_noticed_in_time("deleted robot", elapsed);
    assert!(note.contains(&format!("{ORG}+{short}")), "{note}");
    assert_ne!(old, new, "the recreated robot's token reached the target");
    assert_eq!(
        h.emulator
            .snapshot()
            .permission(&format!("{ORG}/{repo}"), &format!("{ORG}+{short}")),
        Some("read")
    );
    assert!(!note.contains(&new), "no token in events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_a_token_regenerated_on_quay_is_redelivered() {
    let (mut h, ns, quay, repo) = steady("public-app", "private").await;
    let old = wait_delivered(&h, &ns, &repo).await;
    let short = robot_short_name(&repo, RobotRole::Pull, 0);
    let since = Instant::now();
    let regenerated = quay.regenerate_robot_token(&short).await.unwrap();
    let (note, elapsed) = wait_drift_event(&h, "was regenerated on Quay", since).await;
    let new = wait_delivered(&h, &ns, &repo).await;
    h.stop_controller().await;
    assert_noticed_in_time("regenerated token", elapsed);
    assert!(note.contains(&format!("{ORG}+{short}")), "{note}");
    assert_ne!(old, new);
    use secrecy::ExposeSecret;
    assert_eq!(new, regenerated.token.expose_secret(), "Quay's new token");
    assert!(!note.contains(&new), "no token in events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_a_revoked_pull_permission_is_granted_again() {
    let (mut h, _ns, quay, repo) = steady("public-app", "private").await;
    let short = robot_short_name(&repo, RobotRole::Pull, 0);
    let since = Instant::now();
    quay.revoke(&repo, &short).await.unwrap();
    let (note, elapsed) = wait_drift_event(&h, "permission", since).await;
    h.stop_controller().await;
    assert_noticed_in_time("revoked permission", elapsed);
    assert!(note.contains(&format!("{ORG}+{short}")), "{note}");
    assert_eq!(
        h.emulator
            .snapshot()
            .permission(&format!("{ORG}/{repo}"), &format!("{ORG}+{short}")),
        Some("read")
    );
    // A pull robot raised to write is drift too: it is set back to read.
    let since = Instant::now();
    h.start_controller_with({
        let mut cfg = h.config();
        cfg.heartbeat = HEARTBEAT;
        cfg.quay_verify_interval = HEARTBEAT;
        cfg
    })
    .await;
    quay.grant(&repo, &short, Role::Write).await.unwrap();
    wait::until("the pull robot is back to read", T, || async {
        let s = h.emulator.snapshot();
        (s.permission(&format!("{ORG}/{repo}"), &format!("{ORG}+{short}")) == Some("read"))
            .then_some(())
    })
    .await;
    h.stop_controller().await;
    assert_noticed_in_time("raised permission", since.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_a_repository_made_public_is_made_private_again() {
    let (mut h, _ns, quay, repo) = steady("public-app", "private").await;
    let since = Instant::now();
    quay.change_visibility(&repo, ResolvedVisibility::Public)
        .await
        .unwrap();
    let (note, elapsed) = wait_drift_event(&h, "public", since).await;
    h.stop_controller().await;
    assert_noticed_in_time("repository made public", elapsed);
    let state = h.emulator.snapshot();
    assert!(!state.repository(ORG, &repo).unwrap().public, "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_a_deleted_repository_is_created_again_with_its_grants() {
    let (mut h, ns, quay, repo) = steady("public-app", "private").await;
    let token = wait_delivered(&h, &ns, &repo).await;
    let since = Instant::now();
    quay.delete_repository(&repo).await.unwrap();
    let (note, elapsed) = wait_drift_event(&h, "was deleted on Quay", since).await;
    wait::until("repository back with both grants", T, || async {
        let s = h.emulator.snapshot();
        let full = format!("{ORG}/{repo}");
        let push = format!("{ORG}+{}", robot_short_name(&repo, RobotRole::Push, 0));
        let pull = format!("{ORG}+{}", robot_short_name(&repo, RobotRole::Pull, 0));
        (s.repository(ORG, &repo).is_some_and(|r| !r.public)
            && s.permission(&full, &push) == Some("write")
            && s.permission(&full, &pull) == Some("read"))
        .then_some(())
    })
    .await;
    h.stop_controller().await;
    assert_noticed_in_time("deleted repository", elapsed);
    assert!(note.contains(&repo), "{note}");
    // The robots survived: their tokens did not change.
    assert_eq!(wait_delivered(&h, &ns, &repo).await, token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_a_source_turned_private_makes_the_repository_private() {
    let (mut h, _ns, _quay, repo) = steady("public-app", "auto").await;
    assert!(h.emulator.snapshot().repository(ORG, &repo).unwrap().public);
    let since = Instant::now();
    h.git.set_public("public-app", false);
    wait::until("the image repository is private", T, || async {
        (!h.emulator.snapshot().repository(ORG, &repo)?.public).then_some(())
    })
    .await;
    let elapsed = since.elapsed();
    let c = wait::until("status says private", T, || async {
        let c = h.components().get("app").await.ok()?;
        (c.status.as_ref()?.visibility == Some(ResolvedVisibility::Private)).then_some(c)
    })
    .await;
    h.stop_controller().await;
    assert_noticed_in_time("source turned private", elapsed);
    assert!(quayside_testkit::component::is_ready(&c));
}

/// N Components at steady state over K heartbeats: two Quay API calls per
/// Component and heartbeat (the repository, its permissions), no registry
/// login, and the organization's robot listing at most once per quarter
/// heartbeat (shared by all Components); nothing that writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_verification_costs_at_most_two_calls_per_component_per_heartbeat() {
    const N: u64 = 3;
    const K: u64 = 4;
    let mut h = Harness::start().await;
    let ns = h.target_namespace("budget", true).await;
    h.create_environment("e", &ns, &[]).await;
    let mut cfg = h.config();
    cfg.heartbeat = HEARTBEAT;
    cfg.quay_verify_interval = HEARTBEAT;
    h.start_controller_with(cfg).await;
    for i in 0..N {
        h.create_component(&format!("c{i}"), &h.git.repo_url("public-app"), "private")
            .await;
    }
    for i in 0..N {
        h.wait_component_ready(&format!("c{i}"), T).await;
    }
    // Steady state: every Component verified at least once since provisioning.
    let first = h.emulator.snapshot().calls("get_repository_permissions");
    wait::until("every Component verified once", T, || async {
        (h.emulator.snapshot().calls("get_repository_permissions") >= first + N).then_some(())
    })
    .await;
    let before = h.emulator.snapshot();
    let started = Instant::now();
    let verified = before.calls("get_repository_permissions");
    wait::until("K heartbeats of verifications", T, || async {
        let now = h.emulator.snapshot().calls("get_repository_permissions");
        (now >= verified + N * K).then_some(())
    })
    .await;
    let after = h.emulator.snapshot();
    let elapsed = started.elapsed();
    h.stop_controller().await;
    let total: u64 = after.api_calls.values().sum::<u64>() - before.api_calls.values().sum::<u64>();
    let listings = after.calls("list_robots") - before.calls("list_robots");
    let per_component = total - listings;
    let verifications = after.calls("get_repository_permissions") - verified;
    let logins = after.registry_logins - before.registry_logins;
    // Heartbeats begun in the window: each Component verifies at most once per heartbeat.
    let heartbeats = (elapsed.as_secs_f64() / HEARTBEAT.as_secs_f64()).ceil() as u64;
    println!(
        "{N} Components over {elapsed:?} ({heartbeats} heartbeats begun): {per_component} \
         per-Component Quay API calls for {verifications} verifications ({:.2} each), \
         {listings} shared robot listings, {logins} registry logins; by endpoint: {:?}",
        per_component as f64 / verifications.max(1) as f64,
        diff(&before.api_calls, &after.api_calls)
    );
    assert!(
        per_component <= 2 * verifications,
        "{per_component} calls for {verifications} verifications"
    );
    assert!(
        verifications <= N * heartbeats,
        "{verifications} verifications of {N} Components in {heartbeats} heartbeats"
    );
    assert!(
        listings <= 4 * heartbeats + 1,
        "{listings} robot listings in {heartbeats} heartbeats (at most one per quarter heartbeat)"
    );
    assert_eq!(logins, 0, "no registry login when nothing drifted");
    let mutating = [
        "create_repository",
        "create_robot",
        "grant",
        "change_visibility",
    ];
    for m in mutating {
        assert_eq!(after.calls(m), before.calls(m), "no {m} at steady state");
    }
}

fn diff(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}
