//! Bad input, table-driven: each case is an object a person could write (or
//! a state of the world they could leave behind), and what they must see —
//! a condition with a reason and a message that says what to do, and a
//! Warning event. None of them crashes the controller, blocks the others, or
//! deletes anything that should stay. The table is in docs/reliability.md
//! ("Bad input"); one test per kind of input, each with a well-formed
//! object next to the bad ones that must keep being served.

mod accounts;
mod components;
mod environments;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, PostParams};
use quayside::api::{Component, Environment};
use quayside_testkit::harness::{Harness, SIDE_REPO};
use quayside_testkit::wait;

const T: Duration = Duration::from_secs(90);

/// What a case must produce.
struct Expect {
    /// Condition type that carries the problem.
    condition: &'static str,
    /// "True" for inputs quayside accepts (sanitised or ignored).
    status: &'static str,
    reason: &'static str,
    /// Pieces the message must contain: what is wrong and what to do.
    says: &'static [&'static str],
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Wait for the expected condition; on timeout, say what was there instead.
async fn wait_condition<F, Fut>(what: String, e: &Expect, mut conditions: F) -> Condition
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Vec<Condition>>>,
{
    let deadline = std::time::Instant::now() + T;
    let mut last = None;
    loop {
        if let Some(conds) = conditions().await
            && let Some(c) = find(&conds, e.condition)
        {
            if c.status == e.status && c.reason == e.reason {
                return c.clone();
            }
            last = Some(c.clone());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: wanted {} {} {}, last seen {last:?}",
            e.condition,
            e.status,
            e.reason
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn component_condition(h: &Harness, name: &str, e: &Expect) -> Condition {
    let api = h.components();
    wait_condition(format!("Component {name}"), e, || {
        let api = api.clone();
        async move { Some(api.get(name).await.ok()?.status?.conditions) }
    })
    .await
}

async fn environment_condition(h: &Harness, name: &str, e: &Expect) -> Condition {
    let api = h.environments();
    wait_condition(format!("Environment {name}"), e, || {
        let api = api.clone();
        async move { Some(api.get(name).await.ok()?.status?.conditions) }
    })
    .await
}

fn check_message(what: &str, cond: &Condition, e: &Expect) {
    for piece in e.says {
        assert!(
            cond.message.contains(piece),
            "{what}: message {:?} lacks {piece:?}",
            cond.message
        );
    }
}

/// A Warning event with `reason` about `kind`/`name` in the workspace.
async fn wait_event(h: &Harness, kind: &str, name: &str, reason: &str) {
    let api: Api<Event> = Api::namespaced(h.client.clone(), &h.workspace);
    wait::until(&format!("event {reason} on {kind} {name}"), T, || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|ev| {
                    ev.type_.as_deref() == Some("Warning")
                        && ev.reason.as_deref() == Some(reason)
                        && ev.regarding.as_ref().is_some_and(|r| {
                            r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name)
                        })
                })
                .then_some(())
        }
    })
    .await;
}

async fn create_component_json(h: &Harness, value: serde_json::Value) {
    let mut value = value;
    value["apiVersion"] = "quayside.dev/v1alpha1".into();
    value["kind"] = "Component".into();
    let c: Component = serde_json::from_value(value).unwrap();
    h.components()
        .create(&PostParams::default(), &c)
        .await
        .unwrap();
}

async fn create_environment_json(h: &Harness, value: serde_json::Value) {
    let mut value = value;
    value["apiVersion"] = "quayside.dev/v1alpha1".into();
    value["kind"] = "Environment".into();
    let e: Environment = serde_json::from_value(value).unwrap();
    h.environments()
        .create(&PostParams::default(), &e)
        .await
        .unwrap();
}

fn component(name: &str, url: &str, visibility: &str, image: Option<&str>) -> serde_json::Value {
    let mut spec = serde_json::json!({"source": {"git": {"url": url}}, "visibility": visibility});
    if let Some(i) = image {
        spec["image"] = i.into();
    }
    serde_json::json!({"metadata": {"name": name}, "spec": spec})
}

const READY: Expect = Expect {
    condition: "Ready",
    status: "True",
    reason: "Ready",
    says: &[],
};

async fn secret_with(h: &Harness, name: &str, key: &str, value: &str) {
    let s: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "stringData": {key: value}
    }))
    .unwrap();
    Api::<Secret>::namespaced(h.client.clone(), &h.workspace)
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
}

fn environment(
    name: &str,
    target: serde_json::Value,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut spec = serde_json::json!({"target": target});
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            spec[k] = v;
        }
    }
    serde_json::json!({"metadata": {"name": name}, "spec": spec})
}

/// Push `content` at `path` on the side repository's main branch (as a
/// person or another tool would), creating the branch if needed.
async fn push_file(h: &Harness, path: &str, content: &str) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    let run = |args: Vec<String>| {
        let repo = repo.clone();
        async move {
            let out = tokio::process::Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(&args)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    std::fs::create_dir_all(&repo).unwrap();
    run(vec![
        "init".into(),
        "--quiet".into(),
        "--initial-branch=main".into(),
    ])
    .await;
    run(vec!["config".into(), "user.name".into(), "someone".into()]).await;
    run(vec![
        "config".into(),
        "user.email".into(),
        "someone@localhost".into(),
    ])
    .await;
    let url = h.git.authed_repo_url(SIDE_REPO);
    run(vec!["remote".into(), "add".into(), "origin".into(), url]).await;
    // Fetch whatever is there (the branch may not exist yet).
    let _ = tokio::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["pull", "--quiet", "origin", "main"])
        .output()
        .await
        .unwrap();
    let file = repo.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, content).unwrap();
    run(vec!["add".into(), "-A".into()]).await;
    run(vec![
        "commit".into(),
        "--quiet".into(),
        "-m".into(),
        format!("someone writes {path}"),
    ])
    .await;
    run(vec![
        "push".into(),
        "--quiet".into(),
        "origin".into(),
        "main".into(),
    ])
    .await;
}

fn read_side_file(h: &Harness, path: &str) -> Option<String> {
    let dir = h.try_clone_side_repo()?;
    std::fs::read_to_string(dir.path().join("repo").join(path)).ok()
}
