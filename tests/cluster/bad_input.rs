//! Bad input, table-driven: each case is an object a person could write (or
//! a state of the world they could leave behind), and what they must see —
//! a condition with a reason and a message that says what to do, and a
//! Warning event. None of them crashes the controller, blocks the others, or
//! deletes anything that should stay. The table is in docs/reliability.md
//! ("Bad input").

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use quayside::api::{Component, Environment};
use quayside::seal::Identity;
use quayside_testkit::harness::{Harness, ORG, QUAY_TOKEN, SIDE_REPO};
use quayside_testkit::{ports, wait};
use secrecy::ExposeSecret;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn component_inputs() {
    // No private repository allowed: the plan-limit cases.
    let mut h = Harness::builder().private_quota(0).start().await;
    let target = h.target_namespace("bic", true).await;
    h.create_environment("env", &target, &[]).await;
    h.start_controller().await;
    let public = h.git.repo_url("public-app");
    h.create_component("good", &public, "public").await;
    h.create_component("flip", &public, "public").await;
    h.wait_component_ready("good", T).await;
    h.wait_component_ready("flip", T).await;
    let good_secret = h.target_secret(&target, "good").await.unwrap();

    let closed = ports::unused().unwrap();
    let long_image = format!("team/{}", "a".repeat(300));
    let with_password = public.replacen("http://", "http://someone:pa55word-in-url@", 1);
    let bad_ssh = format!("git@127.0.0.1:{closed}/nope.git");
    let unreachable = format!("http://127.0.0.1:{closed}/app.git");
    let missing = h.git.repo_url("does-not-exist");
    // (name, object, expectation, extra check on status.image)
    let cases: Vec<(&str, serde_json::Value, Expect, Option<String>)> = vec![
        (
            "img-symbols",
            component("img-symbols", &public, "public", Some("---/...")),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "InvalidName",
                says: &["no letters or digits", "set spec.image"],
            },
            None,
        ),
        (
            "img-upper",
            component("img-upper", &public, "public", Some("Team/My App")),
            READY,
            Some("/team/my-app".into()),
        ),
        (
            "img-underscores",
            component("img-underscores", &public, "public", Some("team/my__app")),
            READY,
            Some("/team/my_app".into()),
        ),
        (
            "img-too-long",
            component("img-too-long", &public, "public", Some(&long_image)),
            READY,
            None,
        ),
        (
            "img-dotdot",
            component("img-dotdot", &public, "public", Some("../../etc/app")),
            READY,
            Some(format!("{ORG}/etc/app")),
        ),
        (
            "url-not-url",
            component("url-not-url", "not a url", "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUrlInvalid",
                says: &["cannot be checked", "set spec.visibility explicitly"],
            },
            None,
        ),
        (
            "url-empty",
            component("url-empty", "", "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUrlInvalid",
                says: &["use an https:// clone URL"],
            },
            None,
        ),
        (
            "url-file",
            component("url-file", "file:///etc/passwd", "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUrlInvalid",
                says: &["not supported", "set spec.visibility explicitly"],
            },
            None,
        ),
        (
            "url-unreachable",
            component("url-unreachable", &unreachable, "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUnreachable",
                says: &["could not be reached", "set spec.visibility explicitly"],
            },
            None,
        ),
        (
            "url-ssh-unreachable",
            component("url-ssh-unreachable", &bad_ssh, "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUnreachable",
                says: &["could not be reached"],
            },
            None,
        ),
        (
            "url-missing-repo",
            component("url-missing-repo", &missing, "auto", None),
            // The server asks for credentials (as GitHub does for a missing
            // repository), so it looks private: here, over the quota.
            Expect {
                condition: "Ready",
                status: "False",
                reason: "QuayPlanLimit",
                says: &["no more private repositories"],
            },
            None,
        ),
        (
            "url-with-password",
            component("url-with-password", &with_password, "auto", None),
            READY,
            None,
        ),
        (
            "private-over-quota",
            component("private-over-quota", &public, "private", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "QuayPlanLimit",
                says: &[
                    "no more private repositories",
                    "set spec.visibility: public",
                ],
            },
            None,
        ),
    ];
    for (_, obj, _, _) in &cases {
        create_component_json(&h, obj.clone()).await;
    }
    // Annotation values other than "true": ignored, with an event.
    for (name, value) in [("ann-yes", "yes"), ("ann-upper", "TRUE")] {
        h.create_component(name, &public, "public").await;
        h.wait_component_ready(name, T).await;
        quayside_testkit::component::annotate_generate(&h.components(), name, value)
            .await
            .unwrap();
    }
    // Visibility public → private over the quota: 402 condition, spec kept,
    // the repository stays as it was and nothing is taken away.
    let patch = serde_json::json!({"spec": {"visibility": "private"}});
    h.components()
        .patch("flip", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    for (name, _, e, image) in &cases {
        let cond = component_condition(&h, name, e).await;
        check_message(name, &cond, e);
        if e.status == "False" {
            wait_event(&h, "Component", name, e.reason).await;
        }
        if let Some(suffix) = image {
            let c = h.components().get(name).await.unwrap();
            let img = c.status.unwrap().image.unwrap();
            assert!(img.ends_with(suffix.as_str()), "{name}: image {img}");
        }
    }
    // Too long: cut to Quay's 255 with a stable hash.
    let c = h.components().get("img-too-long").await.unwrap();
    let img = c.status.unwrap().image.unwrap();
    let repo = img.split_once(&format!("{ORG}/")).unwrap().1;
    assert!(repo.len() <= 255 && repo.starts_with("team/aaaa"), "{repo}");
    // The password in the source URL shows nowhere in status.
    let c = h.components().get("url-with-password").await.unwrap();
    assert!(
        !serde_json::to_string(&c.status)
            .unwrap()
            .contains("pa55word")
    );

    for name in ["ann-yes", "ann-upper"] {
        wait_event(&h, "Component", name, "InvalidAnnotation").await;
        let c = h.components().get(name).await.unwrap();
        assert_eq!(
            c.status.unwrap().credentials_generation,
            1,
            "{name}: not rotated"
        );
    }
    let flip = Expect {
        condition: "RepositoryReady",
        status: "False",
        reason: "QuayPlanLimit",
        says: &[
            "cannot be made private",
            "raise the plan limit or set spec.visibility: public",
        ],
    };
    let cond = component_condition(&h, "flip", &flip).await;
    check_message("flip", &cond, &flip);
    wait_event(&h, "Component", "flip", "QuayPlanLimit").await;
    let c = h.components().get("flip").await.unwrap();
    assert_eq!(
        serde_json::to_value(c.spec.visibility).unwrap(),
        "private",
        "spec kept as written"
    );
    let state = h.emulator.snapshot();
    let repo = state
        .repository(ORG, &format!("{}/flip", h.workspace))
        .unwrap();
    assert!(repo.public, "the repository keeps its visibility");
    assert!(
        h.target_secret(&target, "flip").await.is_some(),
        "flip's pull Secret is not taken away"
    );

    // Still serving: the good Component kept its Secret, and a Component
    // created after all the bad ones becomes Ready.
    let still = h.target_secret(&target, "good").await.unwrap();
    assert_eq!(
        still.metadata.uid, good_secret.metadata.uid,
        "not recreated"
    );
    h.create_component("late", &public, "public").await;
    h.wait_component_ready("late", T).await;
    h.wait_component_ready("good", T).await;
    eprintln!("FIGURES bad-input components: cases={}", cases.len() + 3);
    h.stop_controller().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environment_inputs() {
    let mut h = Harness::start().await;
    let good_ns = h.target_namespace("bie", true).await;
    let other_ns = h.target_namespace("bie2", false).await;
    let argo = Identity::generate();
    // A malformed sealed file already sits where Environment "pre" writes.
    push_file(
        &h,
        "environments/pre/secrets/app-pull.sops.yaml",
        "this: is [not a sealed file\n",
    )
    .await;
    h.create_environment("good", &good_ns, &[argo.to_recipient().to_string()])
        .await;
    h.create_environment("pre", &other_ns, &[]).await;
    h.start_controller().await;
    let public = h.git.repo_url("public-app");
    h.create_component("app", &public, "public").await;
    h.wait_component_ready("app", T).await;
    wait::until("good's sealed file", T, || async {
        read_side_file(&h, "environments/good/secrets/app-pull.sops.yaml")
    })
    .await;
    let good_secret = h.target_secret(&good_ns, "app").await.unwrap();

    secret_with(&h, "no-key", "config", "whatever").await;
    secret_with(&h, "garbage", "kubeconfig", ": : not yaml [").await;
    let closed = ports::unused().unwrap();
    let unreachable_kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{closed}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n"
    );
    secret_with(&h, "unreachable", "kubeconfig", &unreachable_kubeconfig).await;
    let ns = |n: &str| serde_json::json!({"namespace": n});
    let none = serde_json::json!({});
    let cases: Vec<(&str, serde_json::Value, Expect)> = vec![
        (
            "empty-target",
            environment("empty-target", ns(""), none.clone()),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "InvalidSpec",
                says: &["spec.target.namespace is empty", "set it to the namespace"],
            },
        ),
        (
            "missing-target",
            environment("missing-target", ns("no-such-namespace"), none.clone()),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "InvalidSpec",
                says: &[
                    "no-such-namespace does not exist",
                    "create it or fix spec.target.namespace",
                ],
            },
        ),
        (
            "bad-target-name",
            environment("bad-target-name", ns("Not A Namespace"), none.clone()),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "InvalidSpec",
                says: &["not a valid namespace name", "fix it"],
            },
        ),
        (
            "missing-kubeconfig",
            environment(
                "missing-kubeconfig",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "absent"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["absent", "does not exist", "create it"],
            },
        ),
        (
            "kubeconfig-no-key",
            environment(
                "kubeconfig-no-key",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "no-key"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["has no `kubeconfig` key"],
            },
        ),
        (
            "kubeconfig-garbage",
            environment(
                "kubeconfig-garbage",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "garbage"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["garbage", "malformed"],
            },
        ),
        (
            "kubeconfig-unreachable",
            environment(
                "kubeconfig-unreachable",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "unreachable"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["unreachable"],
            },
        ),
        (
            "recipient-invalid",
            environment(
                "recipient-invalid",
                ns(&other_ns),
                serde_json::json!({"recipients": ["age1notakey"]}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "InvalidSpec",
                says: &[
                    "spec.recipients[0] is not an age recipient",
                    "fix or remove it",
                ],
            },
        ),
        (
            "recipient-empty",
            environment(
                "recipient-empty",
                ns(&other_ns),
                serde_json::json!({"recipients": [argo.to_recipient().to_string(), ""]}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "InvalidSpec",
                says: &["spec.recipients[1]", "fix or remove it"],
            },
        ),
        (
            "recipient-ssh",
            environment(
                "recipient-ssh",
                ns(&other_ns),
                serde_json::json!({"recipients": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"]}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "InvalidSpec",
                says: &["must start with age1"],
            },
        ),
        (
            "sa-missing",
            environment(
                "sa-missing",
                ns(&other_ns),
                serde_json::json!({"serviceAccount": "nobody"}),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "InvalidSpec",
                says: &[
                    "ServiceAccount nobody does not exist",
                    "fix spec.serviceAccount",
                ],
            },
        ),
        (
            "path-escape",
            environment(
                "path-escape",
                ns(&other_ns),
                serde_json::json!({"sideRepo": {"path": "../outside"}}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "RenderFailed",
                says: &["must be a relative path without `.`, `..`, `.git`"],
            },
        ),
        (
            "path-git",
            environment(
                "path-git",
                ns(&other_ns),
                serde_json::json!({"sideRepo": {"path": ".git/hooks"}}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "RenderFailed",
                says: &["must be a relative path without `.`, `..`, `.git`"],
            },
        ),
        (
            "path-steals",
            environment(
                "path-steals",
                ns(&other_ns),
                serde_json::json!({"sideRepo": {"path": "environments/good"}}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "InvalidSpec",
                says: &["environments/good", "good", "choose a folder"],
            },
        ),
        (
            "path-parent",
            environment(
                "path-parent",
                ns(&other_ns),
                serde_json::json!({"sideRepo": {"path": "environments"}}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "InvalidSpec",
                says: &["overlaps", "choose a folder"],
            },
        ),
    ];
    for (_, obj, _) in &cases {
        create_environment_json(&h, obj.clone()).await;
    }
    for (name, _, e) in &cases {
        let cond = environment_condition(&h, name, e).await;
        check_message(name, &cond, e);
        if e.status == "False" {
            wait_event(&h, "Environment", name, e.reason).await;
        }
    }

    // The malformed sealed file was replaced by a valid one.
    let cond = environment_condition(&h, "pre", &READY).await;
    check_message("pre", &cond, &READY);
    let sealed = wait::until("pre's file rewritten", T, || async {
        read_side_file(&h, "environments/pre/secrets/app-pull.sops.yaml")
            .filter(|s| s.contains("sops:"))
    })
    .await;
    let opened = quayside::seal::open(&sealed, &h.identity).expect("a valid sealed file");
    let held = h.target_secret(&good_ns, "app").await.unwrap();
    let raw = std::str::from_utf8(&held.data.as_ref().unwrap()[".dockerconfigjson"].0).unwrap();
    let creds = quayside::credentials::RobotCredentials::from_docker_config_json(raw).unwrap();
    assert!(opened.expose_secret().contains(creds.token.expose_secret()));

    // Recipient list change: re-sealed for the new recipient only.
    let next = Identity::generate();
    let patch = serde_json::json!({"spec": {"recipients": [next.to_recipient().to_string()]}});
    h.environments()
        .patch("good", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let resealed = wait::until("good re-sealed for the new recipient", T, || async {
        let s = read_side_file(&h, "environments/good/secrets/app-pull.sops.yaml")?;
        quayside::seal::open(&s, &next).is_ok().then_some(s)
    })
    .await;
    assert!(
        quayside::seal::open(&resealed, &argo).is_err(),
        "the removed recipient can no longer open it"
    );

    // Nothing deleted that should stay: good's folder and Secret are intact,
    // its link is there, and "pre" got the Component too.
    assert!(read_side_file(&h, "environments/good/kustomization.yaml").is_some());
    let still = h.target_secret(&good_ns, "app").await.unwrap();
    assert_eq!(still.metadata.uid, good_secret.metadata.uid);
    assert!(
        h.image_pull_secrets(&good_ns, "deployer")
            .await
            .contains(&"app-pull".to_string())
    );
    assert!(h.target_secret(&other_ns, "app").await.is_some());
    // Still serving: a new Component reaches the good Environment, and its
    // status names the Environments that cannot take it.
    h.create_component("late", &public, "public").await;
    wait::until("late delivered to good", T, || async {
        h.target_secret(&good_ns, "late").await
    })
    .await;
    let waiting = Expect {
        condition: "Propagated",
        status: "False",
        reason: "Propagating",
        says: &["empty-target", "missing-target", "see their conditions"],
    };
    let cond = component_condition(&h, "late", &waiting).await;
    check_message("late", &cond, &waiting);
    eprintln!("FIGURES bad-input environments: cases={}", cases.len() + 2);
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quay_account_and_side_repo_problems() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("biq", true).await;
    h.create_environment("env", &target, &[]).await;
    let public = h.git.repo_url("public-app");

    // 1. A Quay organization that does not exist.
    let mut setup = h.controller_setup();
    setup.quay.organization = "no-such-org".into();
    h.start_controller_from(setup).await;
    h.create_component("app", &public, "public").await;
    let e = Expect {
        condition: "Ready",
        status: "False",
        reason: "QuayOrganizationNotFound",
        says: &["no-such-org", "check the configured organization"],
    };
    let cond = component_condition(&h, "app", &e).await;
    check_message("wrong org", &cond, &e);
    wait_event(&h, "Component", "app", e.reason).await;
    h.stop_controller().await;

    // 2. A revoked OAuth token (the mounted file now holds a dead one).
    h.start_controller().await;
    h.wait_component_ready("app", T).await;
    let token_file = h.dir.path().join("quay-token");
    std::fs::write(&token_file, "revoked-token").unwrap();
    h.request_rotation("app").await;
    h.create_component("app2", &public, "public").await;
    let e = Expect {
        condition: "Ready",
        status: "False",
        reason: "QuayUnauthorized",
        says: &["rejected the OAuth token", "put a valid token"],
    };
    let cond = component_condition(&h, "app2", &e).await;
    check_message("revoked token", &cond, &e);
    assert!(
        !cond.message.contains("revoked-token"),
        "no token in messages"
    );
    wait_event(&h, "Component", "app2", e.reason).await;
    wait_event(&h, "Component", "app", e.reason).await;
    // The rotation could not run: the existing credentials stay in place.
    let before = h.target_secret(&target, "app").await.unwrap();
    assert_eq!(h.emulator.snapshot().robots.len(), 2, "app's robots kept");
    // Fix the token: both converge (a touch wakes them before the requeue).
    std::fs::write(&token_file, QUAY_TOKEN).unwrap();
    for name in ["app", "app2"] {
        let touch = serde_json::json!({"metadata": {"labels": {"touched": "1"}}});
        h.components()
            .patch(name, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .unwrap();
    }
    h.wait_component_ready("app2", T).await;
    h.wait_rotated("app", 2, T).await;
    let after = h.target_secret(&target, "app").await.unwrap();
    assert!(before.data != after.data, "rotated once the token works");

    // 3. A protected side-repo branch: a pre-receive hook refuses pushes.
    let hook = h.git.repo_path(SIDE_REPO).join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let commits_before = h.side_repo_log().len();
    h.create_component("app3", &public, "public").await;
    let e = Expect {
        condition: "Committed",
        status: "False",
        reason: "SideRepoError",
        says: &[
            "rejected the push",
            "check branch protection",
            "pull-request delivery mode",
        ],
    };
    let cond = environment_condition(&h, "env", &e).await;
    check_message("protected branch", &cond, &e);
    wait_event(&h, "Environment", "env", e.reason).await;
    // Delivery to the cluster does not depend on git; nothing was rewritten.
    h.wait_component_ready("app3", T).await;
    assert_eq!(h.side_repo_log().len(), commits_before);
    // Unprotect: the kept commit lands.
    std::fs::remove_file(&hook).unwrap();
    wait::until("app3 committed once the branch accepts", T, || async {
        read_side_file(&h, "environments/env/secrets/app3-pull.sops.yaml")
    })
    .await;
    eprintln!("FIGURES bad-input quay/git: cases=4");
    h.stop_controller().await;
}
