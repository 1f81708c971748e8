//! Argo CD's health checks and the `rotate` action for quayside's kinds
//! (`deploy/argocd/quayside.dev/`), run by `.cache/bin/argo-lua` — gopher-lua
//! in Argo CD's sandbox — over the objects in `fixtures/argocd/`, which are
//! checked to be what quayside's API types read and its docs name. And
//! `deploy/argocd/argocd-cm.yaml`, generated from the Lua files
//! (`UPDATE_GOLDEN=1` rewrites it and the docs' copy), patched into an argocd-cm with
//! `kubectl patch --local` as `kubectl -n argocd patch configmap argocd-cm`
//! would, holds exactly those scripts, and so does docs/operations.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use quayside::api::{Component, Environment};
use quayside_testkit::tools;
use serde_json::Value;

const COMPONENT_HEALTH: &str = "quayside.dev/Component/health.lua";
const ENVIRONMENT_HEALTH: &str = "quayside.dev/Environment/health.lua";
const DISCOVERY: &str = "quayside.dev/Component/actions/discovery.lua";
const ROTATE: &str = "quayside.dev/Component/actions/rotate/action.lua";

/// An external tool's run, bounded: a hang fails the test.
fn run(cmd: &mut Command) -> Output {
    quayside_testkit::process::output_within(cmd, Duration::from_secs(120))
}

fn deploy(rel: &str) -> PathBuf {
    tools::root().join("deploy/argocd").join(rel)
}

fn fixture(name: &str) -> PathBuf {
    tools::root()
        .join("fixtures/argocd")
        .join(format!("{name}.yaml"))
}

fn read_fixture(name: &str) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// `argo-lua MODE SCRIPT OBJECT`: the result as JSON, or the error text.
fn argo_lua(mode: &str, script: &Path, object: &Path) -> Result<Value, String> {
    let o = run(Command::new(tools::bin("argo-lua"))
        .arg(mode)
        .arg(script)
        .arg(object));
    if o.status.success() {
        Ok(serde_json::from_slice(&o.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn health(script: &str, name: &str) -> (String, String) {
    let v = argo_lua("health", &deploy(script), &fixture(name))
        .unwrap_or_else(|e| panic!("{script} on {name}: {e}"));
    (
        v["status"].as_str().unwrap().to_string(),
        v["message"].as_str().unwrap().to_string(),
    )
}

const COMPONENTS: &[&str] = &[
    "component-new",
    "component-stale-generation",
    "component-pending",
    "component-propagating",
    "component-rotating",
    "component-ready",
    "component-ready-rotation-refused",
    "component-ready-degraded",
    "component-rotate-in-git",
    "component-quay-unauthorized",
    "component-rotation-failed",
];
const ENVIRONMENTS: &[&str] = &[
    "environment-new",
    "environment-stale-generation",
    "environment-ready",
    "environment-not-granted",
    "environment-side-repo-error",
    "environment-awaiting-engine",
    "environment-awaiting-review",
];

#[test]
fn fixtures_are_objects_quayside_reads_with_documented_reasons() {
    let operations = std::fs::read_to_string(tools::root().join("docs/operations.md")).unwrap();
    for name in COMPONENTS.iter().chain(ENVIRONMENTS) {
        let v = read_fixture(name);
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        match v["kind"].as_str().unwrap() {
            "Component" => {
                let c: Component = serde_norway::from_str(&text)
                    .unwrap_or_else(|e| panic!("{name} is no Component: {e}"));
                assert!(name.starts_with("component-"));
                if let Some(s) = &c.status {
                    assert!(!s.conditions.is_empty(), "{name}");
                }
            }
            "Environment" => {
                let e: Environment = serde_norway::from_str(&text)
                    .unwrap_or_else(|e| panic!("{name} is no Environment: {e}"));
                assert!(name.starts_with("environment-"));
                if let Some(s) = &e.status {
                    assert!(!s.conditions.is_empty(), "{name}");
                }
            }
            other => panic!("{name}: unexpected kind {other}"),
        }
        for c in v["status"]["conditions"].as_array().into_iter().flatten() {
            let (kind, reason) = (c["type"].as_str().unwrap(), c["reason"].as_str().unwrap());
            assert!(
                operations.contains(&format!("`{kind}`")),
                "{name}: condition {kind} is not in docs/operations.md"
            );
            if reason != kind {
                assert!(
                    operations.contains(&format!("`{reason}`")),
                    "{name}: reason {reason} is not in docs/operations.md"
                );
            }
        }
    }
}

#[test]
fn component_health_follows_the_conditions() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "component-new",
            "Progressing",
            "Waiting for quayside to reconcile",
        ),
        (
            "component-stale-generation",
            "Progressing",
            "observe generation 3",
        ),
        (
            "component-pending",
            "Progressing",
            "Pending: robot credentials are not provisioned yet",
        ),
        (
            "component-propagating",
            "Progressing",
            "Propagating: waiting for Environment(s) prod to receive generation 3",
        ),
        (
            "component-rotating",
            "Progressing",
            "RotationInProgress: waiting for Environment(s) prod",
        ),
        (
            "component-ready",
            "Healthy",
            "generation 3 delivered to 2 Environment(s)",
        ),
        (
            "component-ready-rotation-refused",
            "Healthy",
            "; RotationRequestRefused: image.redhat.com/generate=\"true\" was set by field manager \"argocd-controller\"",
        ),
        (
            "component-ready-degraded",
            "Healthy",
            "; RotationStragglers: Environment(s) prod missed the rotation",
        ),
        (
            "component-rotate-in-git",
            "Healthy",
            "generation 3 delivered",
        ),
        (
            "component-quay-unauthorized",
            "Degraded",
            "QuayUnauthorized: Quay rejected the OAuth token",
        ),
        (
            "component-rotation-failed",
            "Degraded",
            "QuayUnavailable: rotating the robot tokens failed",
        ),
    ];
    assert_eq!(cases.len(), COMPONENTS.len(), "every fixture has a case");
    for (name, status, message) in cases {
        let (got, msg) = health(COMPONENT_HEALTH, name);
        assert_eq!(&got, status, "{name}: {msg}");
        assert!(msg.contains(message), "{name}: {msg:?} lacks {message:?}");
    }
}

#[test]
fn environment_health_follows_the_conditions() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "environment-new",
            "Progressing",
            "Waiting for quayside to reconcile",
        ),
        (
            "environment-stale-generation",
            "Progressing",
            "observe generation 2",
        ),
        (
            "environment-ready",
            "Healthy",
            "pull Secrets applied and linked to ServiceAccount deployer",
        ),
        (
            "environment-not-granted",
            "Degraded",
            "DeliveryNotGranted: quayside writes into namespace team-a-dev",
        ),
        (
            "environment-side-repo-error",
            "Degraded",
            "SideRepoError: pushing to the side repository failed",
        ),
        (
            "environment-awaiting-engine",
            "Progressing",
            "AwaitingEngine: committed; waiting for the GitOps engine to apply",
        ),
        (
            "environment-awaiting-review",
            "Progressing",
            "AwaitingReview: pull request https://git.example/platform/side-repo/pulls/7",
        ),
    ];
    assert_eq!(cases.len(), ENVIRONMENTS.len(), "every fixture has a case");
    for (name, status, message) in cases {
        let (got, msg) = health(ENVIRONMENT_HEALTH, name);
        assert_eq!(&got, status, "{name}: {msg}");
        assert!(msg.contains(message), "{name}: {msg:?} lacks {message:?}");
    }
}

/// Everything but `metadata.annotations`, to compare an object before and
/// after an action.
fn without_annotations(v: &Value) -> Value {
    let mut v = v.clone();
    v["metadata"].as_object_mut().unwrap().remove("annotations");
    v
}

#[test]
fn rotate_sets_a_new_rotate_value_and_nothing_else() {
    for name in ["component-ready", "component-ready-rotation-refused"] {
        let before = read_fixture(name);
        let after = argo_lua("action", &deploy(ROTATE), &fixture(name)).unwrap();
        // The result is still a Component quayside reads.
        let _: Component = serde_json::from_value(after.clone()).unwrap();
        assert_eq!(
            without_annotations(&after),
            without_annotations(&before),
            "{name}: the action changed more than an annotation"
        );
        let mut annotations = after["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .clone();
        let value = annotations
            .remove(quayside::vocabulary::ANNOTATION_ROTATE)
            .expect("quayside.dev/rotate is set");
        let value = value.as_str().unwrap();
        // argocd-<UTC time to the second>: distinct per request.
        let stamp = value.strip_prefix("argocd-").unwrap();
        let at: k8s_openapi::jiff::Timestamp = stamp.parse().unwrap();
        let age = k8s_openapi::jiff::Timestamp::now().duration_since(at);
        assert!(
            age.as_secs() >= 0 && age.as_secs() < 120,
            "{value} is not the time of the request"
        );
        let others = before["metadata"]["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(annotations, others, "{name}: other annotations kept");
        assert_ne!(
            Some(value),
            before["status"]["rotateHandled"].as_str(),
            "a value already handled would not rotate"
        );
    }
}

#[test]
fn rotate_is_offered_unless_git_owns_the_rotate_annotation() {
    let discover = |name: &str| argo_lua("discovery", &deploy(DISCOVERY), &fixture(name)).unwrap();
    for name in ["component-ready", "component-ready-rotation-refused"] {
        assert_eq!(
            discover(name),
            serde_json::json!([{"name": "rotate", "disabled": false}]),
            "{name}"
        );
    }
    // Argo CD's sync applied quayside.dev/rotate from git: a value set by the
    // action would be reverted by self-heal to git's, a second distinct
    // value, and rotate twice.
    assert_eq!(
        discover("component-rotate-in-git"),
        serde_json::json!([{"name": "rotate", "disabled": true}])
    );
}

#[test]
fn the_sandbox_is_argo_cds() {
    // What Argo CD does not load fails here too, so a script that passes
    // these tests does not fail in Argo CD for a missing library.
    let dir = tempfile::tempdir().unwrap();
    let object = fixture("component-ready");
    for (body, missing) in [
        (
            "return { status = string.format('%s', 'Healthy') }",
            "index a non-table object(nil) with key 'format'",
        ),
        (
            "return { status = io.read() }",
            "index a non-table object(nil) with key 'read'",
        ),
        (
            "os.execute('true') return {}",
            "attempt to call a non-function object",
        ),
        (
            "return { status = math.floor(1) }",
            "index a non-table object(nil) with key 'floor'",
        ),
    ] {
        let script = dir.path().join("s.lua");
        std::fs::write(&script, body).unwrap();
        let err = argo_lua("health", &script, &object).expect_err(body);
        assert!(err.contains(missing), "{body}: {err}");
    }
    let script = dir.path().join("ok.lua");
    std::fs::write(
        &script,
        "return { status = 'Healthy', message = obj.metadata.name .. ' ' .. tostring(obj.metadata.generation) .. ' ' .. os.date('!%Y') }",
    )
    .unwrap();
    let v = argo_lua("health", &script, &object).unwrap();
    assert_eq!(v["status"], "Healthy");
    let year = k8s_openapi::jiff::Timestamp::now()
        .to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC)
        .year();
    assert_eq!(
        v["message"],
        format!("api 2 {year}"),
        "integers stay integers"
    );
    // An invalid status is Unknown, as in Argo CD.
    std::fs::write(&script, "return { status = 'Fine' }").unwrap();
    assert_eq!(
        argo_lua("health", &script, &object).unwrap()["status"],
        "Unknown"
    );
}

/// The argocd-cm patch, generated from the Lua files.
fn argocd_cm() -> String {
    let read = |rel: &str| std::fs::read_to_string(deploy(rel)).unwrap();
    let indent = |text: &str, by: usize| -> String {
        text.lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_string()
                } else {
                    format!("{}{l}\n", " ".repeat(by))
                }
            })
            .collect()
    };
    let mut out = String::from(
        "# Generated from deploy/argocd/quayside.dev/ by tests/tools/argocd_lua.rs\n\
         # (UPDATE_GOLDEN=1 rewrites it): Argo CD health checks for Components and\n\
         # Environments and the Component action `rotate`. Merge it into argocd-cm:\n\
         #   kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm.yaml\n\
         data:\n",
    );
    out += "  resource.customizations.health.quayside.dev_Component: |\n";
    out += &indent(&read(COMPONENT_HEALTH), 4);
    out += "  resource.customizations.health.quayside.dev_Environment: |\n";
    out += &indent(&read(ENVIRONMENT_HEALTH), 4);
    out += "  resource.customizations.actions.quayside.dev_Component: |\n";
    out += "    discovery.lua: |\n";
    out += &indent(&read(DISCOVERY), 6);
    out += "    definitions:\n      - name: rotate\n        action.lua: |\n";
    out += &indent(&read(ROTATE), 10);
    out
}

#[test]
fn the_argocd_cm_patch_holds_exactly_the_lua_files() {
    let path = deploy("argocd-cm.yaml");
    let want = argocd_cm();
    let docs_path = tools::root().join("docs/operations.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &want).unwrap();
        // The snippet in the docs: the yaml block that starts like the patch.
        let docs = std::fs::read_to_string(&docs_path).unwrap();
        let start = docs
            .find("```yaml\n# Generated from deploy/argocd/")
            .expect("docs/operations.md has the argocd-cm snippet")
            + "```yaml\n".len();
        let end = start + docs[start..].find("```\n").unwrap();
        std::fs::write(
            &docs_path,
            format!("{}{want}{}", &docs[..start], &docs[end..]),
        )
        .unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        want,
        "deploy/argocd/argocd-cm.yaml is stale (UPDATE_GOLDEN=1 to regenerate)"
    );
    // Applied to an installed argocd-cm, as the documented command does.
    let root = tools::root();
    let o = run(Command::new(tools::bin("kubectl"))
        .args(["patch", "--local", "-o", "json", "-f"])
        .arg(root.join("fixtures/argocd/argocd-cm.yaml"))
        .arg("--patch-file")
        .arg(&path)
        .env("KUBECONFIG", root.join("fixtures/argocd/no-kubeconfig")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cm: Value = serde_json::from_slice(&o.stdout).unwrap();
    let data = &cm["data"];
    assert_eq!(
        data["url"], "https://argocd.example",
        "merged, not replaced"
    );
    let read = |rel: &str| std::fs::read_to_string(deploy(rel)).unwrap();
    assert_eq!(
        data["resource.customizations.health.quayside.dev_Component"],
        read(COMPONENT_HEALTH)
    );
    assert_eq!(
        data["resource.customizations.health.quayside.dev_Environment"],
        read(ENVIRONMENT_HEALTH)
    );
    // Argo CD parses the actions value as YAML of its own.
    let actions: Value = serde_norway::from_str(
        data["resource.customizations.actions.quayside.dev_Component"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(actions["discovery.lua"], read(DISCOVERY));
    assert_eq!(actions["definitions"][0]["name"], "rotate");
    assert_eq!(actions["definitions"][0]["action.lua"], read(ROTATE));

    // docs/operations.md shows the same snippet.
    let docs = std::fs::read_to_string(&docs_path).unwrap();
    assert!(
        docs.contains(&format!("```yaml\n{want}```\n")),
        "docs/operations.md's argocd-cm snippet differs from deploy/argocd/argocd-cm.yaml (UPDATE_GOLDEN=1 to regenerate)"
    );
}
