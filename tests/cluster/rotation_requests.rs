//! GitOps-safe rotation requests: `quayside.dev/rotate: <value>` rotates
//! once per distinct value and stays, and the ADR's
//! `image.redhat.com/generate: "true"` re-applied by a GitOps engine right
//! after a rotation is refused (naming the engine) instead of revoking the
//! tokens again and again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use quayside::api::{Component, GENERATE_ANNOTATION, ROTATE_ANNOTATION};
use quayside_testkit::harness::Harness;
use quayside_testkit::registry::creds_of;
use quayside_testkit::{component, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(60);
/// The field manager a GitOps engine applies with (Argo CD's server-side apply).
const ENGINE: &str = "argocd-controller";

/// Server-side apply `annotations` on Component `name` as the GitOps
/// engine does on every sync: the engine owns exactly these keys.
async fn engine_applies(api: &Api<Component>, name: &str, annotations: serde_json::Value) {
    let patch = serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "annotations": annotations},
    });
    api.patch(
        name,
        &PatchParams::apply(ENGINE).force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("the engine's apply");
}

fn rotate_handled(c: &Component) -> Option<&str> {
    c.status.as_ref()?.rotate_handled.as_deref()
}

fn annotation<'a>(c: &'a Component, key: &str) -> Option<&'a str> {
    c.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn request_condition(c: &Component) -> Option<&Condition> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "RotationRequest")
}

/// A ready Component `svc` delivered to one Environment, with a
/// controller already running; its target namespace.
async fn ready_component(h: &Harness) -> String {
    let ns = h.target_namespace("rq", false).await;
    h.create_environment("env", &ns, &[]).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("svc", T).await;
    ns
}

/// Wait until `svc` handled `value`, or rotated past `generation` (a bug
/// the caller's assertions then name).
async fn wait_handled(api: &Api<Component>, value: &str, generation: i64) -> Component {
    wait::until(&format!("rotate value {value:?} handled"), T, || async {
        let c = api.get("svc").await.ok()?;
        let done = rotate_handled(&c) == Some(value) && component::is_ready(&c);
        (done || component::generation(&c) > generation).then_some(c)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotate_value_rotates_once_per_value_and_stays() {
    let mut h = Harness::start().await;
    h.start_controller().await;
    let ns = ready_component(&h).await;
    let api = h.components();
    let before = creds_of(&h.target_secret(&ns, "svc").await.unwrap());

    engine_applies(&api, "svc", serde_json::json!({ROTATE_ANNOTATION: "first"})).await;
    let c = wait_handled(&api, "first", 2).await;
    assert_eq!(component::generation(&c), 2, "one rotation for one value");
    assert_eq!(rotate_handled(&c), Some("first"));
    assert_eq!(
        annotation(&c, ROTATE_ANNOTATION),
        Some("first"),
        "the controller never removes the value annotation"
    );
    let after = creds_of(&h.target_secret(&ns, "svc").await.unwrap());
    assert!(
        after.token.expose_secret() != before.token.expose_secret(),
        "expected a different token (values not printed)"
    );

    // The engine syncs again (same value) and something else wakes the
    // Component: nothing to do for a value already handled.
    engine_applies(&api, "svc", serde_json::json!({ROTATE_ANNOTATION: "first"})).await;
    let poke = serde_json::json!({"metadata": {"annotations": {"example.com/poke": "1"}}});
    api.patch("svc", &PatchParams::default(), &Patch::Merge(&poke))
        .await
        .unwrap();

    // A new value rotates once more: generation 3 exactly, so the first
    // value did not rotate a second time meanwhile.
    engine_applies(
        &api,
        "svc",
        serde_json::json!({ROTATE_ANNOTATION: "second"}),
    )
    .await;
    let c = wait_handled(&api, "second", 3).await;
    assert_eq!(
        component::generation(&c),
        3,
        "one rotation per distinct value"
    );
    assert_eq!(annotation(&c, ROTATE_ANNOTATION), Some("second"));
    let s = h.target_secret(&ns, "svc").await.unwrap();
    assert_eq!(
        s.metadata.annotations.as_ref().unwrap()["quayside.dev/credentials-generation"],
        "3"
    );
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gitops_engine_reapplying_generate_does_not_rotate_again() {
    let h = Harness::start().await;
    // The controller as deployed, its storm guard set by the flag.
    let _controller = h
        .controller_command()
        .args(["--rotation-request-cooldown", "10m"])
        .spawn();
    let ns = ready_component(&h).await;
    let api = h.components();

    // Committed to git and applied by the engine: obeyed once (no rotation
    // completed recently), and removed by the controller as the ADR says.
    engine_applies(
        &api,
        "svc",
        serde_json::json!({GENERATE_ANNOTATION: "true"}),
    )
    .await;
    h.wait_rotated("svc", 2, T).await;
    let rotated = creds_of(&h.target_secret(&ns, "svc").await.unwrap());

    // Self-heal puts it straight back.
    engine_applies(
        &api,
        "svc",
        serde_json::json!({GENERATE_ANNOTATION: "true"}),
    )
    .await;
    let c = wait::until("the re-applied annotation is judged", T, || async {
        let c = api.get("svc").await.ok()?;
        (request_condition(&c).is_some() || component::generation(&c) > 2).then_some(c)
    })
    .await;
    assert_eq!(
        component::generation(&c),
        2,
        "the re-applied annotation must not rotate again"
    );
    let cond = request_condition(&c).unwrap();
    assert_eq!(cond.status, "False");
    assert_eq!(cond.reason, "RotationRequestRefused");
    assert!(
        cond.message.contains(ENGINE),
        "names the writer: {}",
        cond.message
    );
    assert!(
        cond.message.contains(ROTATE_ANNOTATION),
        "says how to rotate on purpose: {}",
        cond.message
    );
    assert_eq!(
        annotation(&c, GENERATE_ANNOTATION),
        Some("true"),
        "a refused annotation is left to its owner"
    );
    let held = creds_of(&h.target_secret(&ns, "svc").await.unwrap());
    assert!(
        held.token.expose_secret() == rotated.token.expose_secret(),
        "the delivered token is unchanged (values not printed)"
    );

    // Rotating on purpose still works while the refused annotation stays,
    // and the refusal stays too.
    engine_applies(
        &api,
        "svc",
        serde_json::json!({GENERATE_ANNOTATION: "true", ROTATE_ANNOTATION: "on-purpose"}),
    )
    .await;
    let c = wait_handled(&api, "on-purpose", 3).await;
    assert_eq!(component::generation(&c), 3);
    assert_eq!(annotation(&c, GENERATE_ANNOTATION), Some("true"));
    assert_eq!(
        request_condition(&c).map(|c| c.reason.as_str()),
        Some("RotationRequestRefused")
    );

    // Taken out of git: the refusal is cleared, nothing rotates.
    engine_applies(
        &api,
        "svc",
        serde_json::json!({ROTATE_ANNOTATION: "on-purpose"}),
    )
    .await;
    let c = wait::until("the refusal is cleared", T, || async {
        let c = api.get("svc").await.ok()?;
        request_condition(&c).is_none().then_some(c)
    })
    .await;
    assert_eq!(component::generation(&c), 3);
}
