//! The Argo CD scripts of `deploy/argocd/` over live objects of a real
//! controller run, as Argo CD would read them from the API server (run by
//! `.cache/bin/argo-lua`, gopher-lua in Argo CD's sandbox): Progressing
//! before the controller has looked, Healthy once Ready, Degraded with
//! the grant command for an Environment whose target was never granted.
//! The `rotate` action's result, sent as Argo CD sends it (a JSON merge
//! patch from the live object to the returned one), rotates the tokens
//! once; once Argo CD's sync owns `quayside.dev/rotate`, the action is
//! offered disabled. The fixtures of `tests/tools/argocd_lua.rs` cover
//! every outcome; this checks the scripts against what the API server
//! really serves (managedFields, integer generations, status shapes).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use quayside::api::ROTATE_ANNOTATION;
use quayside_testkit::harness::Harness;
use quayside_testkit::{component, tools, wait};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

/// An external tool's run, bounded: a hang fails the test.
fn run(cmd: &mut Command) -> Output {
    quayside_testkit::process::output_within(cmd, Duration::from_secs(120))
}

fn script(rel: &str) -> std::path::PathBuf {
    tools::root().join("deploy/argocd/quayside.dev").join(rel)
}

/// `argo-lua MODE SCRIPT` over `object`, written to a file as Argo CD's
/// cache holds it.
fn argo_lua(mode: &str, script: &Path, object: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("object.json");
    std::fs::write(&file, serde_json::to_vec(object).unwrap()).unwrap();
    let o = run(Command::new(tools::bin("argo-lua"))
        .arg(mode)
        .arg(script)
        .arg(&file));
    assert!(
        o.status.success(),
        "argo-lua {mode} {script:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn health(kind: &str, object: &Value) -> (String, String) {
    let v = argo_lua("health", &script(&format!("{kind}/health.lua")), object);
    (
        v["status"].as_str().unwrap().into(),
        v["message"].as_str().unwrap().into(),
    )
}

/// RFC 7386 merge patch turning `from` into `to`: what Argo CD's server
/// sends for an action that returns the changed object.
fn merge_patch(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in b {
                match a.get(k) {
                    Some(old) if old == v => {}
                    Some(old) => {
                        patch.insert(k.clone(), merge_patch(old, v));
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => to.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn argo_cd_health_and_rotate_over_a_live_controller() {
    let mut h = Harness::start().await;
    let components = h.components();
    let environments = h.environments();
    let ns = h.target_namespace("argo", false).await;
    h.create_environment("env", &ns, &[]).await;
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;

    // Before the controller has looked: Progressing, never Healthy.
    // As Argo CD holds it: the API server's JSON, in which a cleared field
    // is absent (our types serialise some as null to clear them by patch).
    let live = without_nulls(serde_json::to_value(components.get("svc").await.unwrap()).unwrap());
    assert_eq!(health("Component", &live).0, "Progressing");
    let live = serde_json::to_value(environments.get("env").await.unwrap()).unwrap();
    assert_eq!(health("Environment", &live).0, "Progressing");

    h.start_controller().await;
    let c = h.wait_component_ready("svc", T).await;
    let (status, message) = health("Component", &serde_json::to_value(&c).unwrap());
    assert_eq!(status, "Healthy", "{message}");
    assert!(message.contains("delivered to"), "{message}");

    let env = wait::until("Environment env Ready", T, || async {
        let e = environments.get("env").await.ok()?;
        let ready = e.status.as_ref()?.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.observed_generation == e.metadata.generation
        });
        ready.then_some(e)
    })
    .await;
    let (status, message) = health("Environment", &serde_json::to_value(&env).unwrap());
    assert_eq!(status, "Healthy", "{message}");

    // The rotate action, as Argo CD's server runs it.
    // As Argo CD holds it: the API server's JSON, in which a cleared field
    // is absent (our types serialise some as null to clear them by patch).
    let live = without_nulls(serde_json::to_value(components.get("svc").await.unwrap()).unwrap());
    let offered = argo_lua(
        "discovery",
        &script("Component/actions/discovery.lua"),
        &live,
    );
    assert_eq!(
        offered,
        serde_json::json!([{"name": "rotate", "disabled": false}])
    );
    let changed = argo_lua(
        "action",
        &script("Component/actions/rotate/action.lua"),
        &live,
    );
    let patch = merge_patch(&live, &changed);
    let value = changed["metadata"]["annotations"][ROTATE_ANNOTATION]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        patch,
        serde_json::json!({"metadata": {"annotations": {ROTATE_ANNOTATION: value}}}),
        "the action changes one annotation"
    );
    let generation = component::generation(&c);
    components
        .patch("svc", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let rotated = wait::until("the rotate value handled", T, || async {
        let c = components.get("svc").await.ok()?;
        let handled = c.status.as_ref()?.rotate_handled.as_deref() == Some(value.as_str());
        (handled && component::is_ready(&c)).then_some(c)
    })
    .await;
    assert_eq!(
        component::generation(&rotated),
        generation + 1,
        "one rotation"
    );
    let (status, _) = health("Component", &serde_json::to_value(&rotated).unwrap());
    assert_eq!(status, "Healthy");

    // Argo CD's sync takes the annotation over from git (server-side apply
    // as argocd-controller): the action is no longer offered.
    let from_git = serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "svc", "annotations": {ROTATE_ANNOTATION: "from-git-1"}},
    });
    components
        .patch(
            "svc",
            &PatchParams::apply("argocd-controller").force(),
            &Patch::Apply(&from_git),
        )
        .await
        .unwrap();
    // As Argo CD holds it: the API server's JSON, in which a cleared field
    // is absent (our types serialise some as null to clear them by patch).
    let live = without_nulls(serde_json::to_value(components.get("svc").await.unwrap()).unwrap());
    let offered = argo_lua(
        "discovery",
        &script("Component/actions/discovery.lua"),
        &live,
    );
    assert_eq!(
        offered,
        serde_json::json!([{"name": "rotate", "disabled": true}])
    );
    // Last, as it keeps the Component from Ready: an Environment whose
    // target namespace's owner never granted the workspace.
    let ungranted = h.ungranted_namespace("argo-no", false).await;
    h.create_environment("blocked", &ungranted, &[]).await;
    let blocked = wait::until("Environment blocked refused", T, || async {
        let e = environments.get("blocked").await.ok()?;
        let refused =
            e.status.as_ref()?.conditions.iter().any(|c| {
                c.type_ == "Ready" && c.status == "False" && c.reason == "DeliveryNotGranted"
            });
        refused.then_some(e)
    })
    .await;
    let (status, message) = health("Environment", &serde_json::to_value(&blocked).unwrap());
    assert_eq!(status, "Degraded", "{message}");
    assert!(
        message.starts_with("DeliveryNotGranted: ")
            && message.contains("kubectl create rolebinding"),
        "{message}"
    );

    h.stop_controller().await;
}

/// `v` with every null member removed, as the API server returns objects.
fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(without_nulls).collect())
        }
        other => other,
    }
}
