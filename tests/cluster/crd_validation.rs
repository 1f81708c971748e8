//! The CRDs refuse nonsense at the API server, in words a person can act
//! on, and read well in `kubectl explain` and `kubectl get`: each bad
//! object below is written as a tenant could write it and must be refused
//! with the field and what to write instead; a good object next to them is
//! accepted. (The controller checks the same fields again, for a cluster
//! where an older CRD is installed: tests/cluster/bad_input.)

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use quayside::api::{Component, Environment};
use quayside::seal::Identity;
use quayside_testkit::{cluster, wait};

const T: Duration = Duration::from_secs(60);

/// (what, kind, object, pieces the refusal must contain)
type Case = (&'static str, &'static str, serde_json::Value, Vec<String>);

fn env(name: &str, spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"metadata": {"name": name}, "spec": spec})
}

fn comp(name: &str, spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"metadata": {"name": name}, "spec": spec})
}

fn says(pieces: &[&str]) -> Vec<String> {
    pieces.iter().map(|s| s.to_string()).collect()
}

fn cases() -> Vec<Case> {
    let ns = |n: &str| serde_json::json!({"namespace": n});
    let src = serde_json::json!({"git": {"url": "https://git.example/app"}});
    let namespace = says(&["spec.target.namespace", "must be a namespace name"]);
    let recipient = |i: usize| {
        says(&[
            &format!("spec.recipients[{i}]"),
            "must be an age recipient",
            "age-keygen -y",
        ])
    };
    let path = says(&["spec.sideRepo.path", "must be a folder under environments/"]);
    let good = Identity::generate().to_recipient().to_string();
    let many: Vec<String> = (0..33).map(|_| good.clone()).collect();
    vec![
        (
            "empty target",
            "Environment",
            env("e1", serde_json::json!({"target": ns("")})),
            namespace.clone(),
        ),
        (
            "target with spaces",
            "Environment",
            env("e2", serde_json::json!({"target": ns("Not A Namespace")})),
            namespace.clone(),
        ),
        (
            "target with a dot",
            "Environment",
            env("e3", serde_json::json!({"target": ns("a.b")})),
            namespace,
        ),
        (
            "target too long",
            "Environment",
            env("e4", serde_json::json!({"target": ns(&"a".repeat(64))})),
            says(&["spec.target.namespace", "63"]),
        ),
        (
            "short recipient",
            "Environment",
            env(
                "r1",
                serde_json::json!({"target": ns("t"), "recipients": ["age1notakey"]}),
            ),
            recipient(0),
        ),
        (
            "empty recipient",
            "Environment",
            env(
                "r2",
                serde_json::json!({"target": ns("t"), "recipients": [good, ""]}),
            ),
            recipient(1),
        ),
        (
            "ssh recipient",
            "Environment",
            env(
                "r3",
                serde_json::json!({"target": ns("t"), "recipients": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"]}),
            ),
            recipient(0),
        ),
        (
            "upper-case recipient",
            "Environment",
            env(
                "r4",
                serde_json::json!({"target": ns("t"), "recipients": [good.to_uppercase()]}),
            ),
            recipient(0),
        ),
        (
            "33 recipients",
            "Environment",
            env(
                "r5",
                serde_json::json!({"target": ns("t"), "recipients": many}),
            ),
            says(&["spec.recipients", "32"]),
        ),
        (
            "path out of the repository",
            "Environment",
            env(
                "p1",
                serde_json::json!({"target": ns("t"), "sideRepo": {"path": "../outside"}}),
            ),
            path.clone(),
        ),
        (
            "path into .git",
            "Environment",
            env(
                "p2",
                serde_json::json!({"target": ns("t"), "sideRepo": {"path": ".git/hooks"}}),
            ),
            path.clone(),
        ),
        (
            "path with ..",
            "Environment",
            env(
                "p3",
                serde_json::json!({"target": ns("t"), "sideRepo": {"path": "environments/ws/../x"}}),
            ),
            path.clone(),
        ),
        (
            "path at the root",
            "Environment",
            env(
                "p4",
                serde_json::json!({"target": ns("t"), "sideRepo": {"path": "environments"}}),
            ),
            path.clone(),
        ),
        (
            "absolute path",
            "Environment",
            env(
                "p5",
                serde_json::json!({"target": ns("t"), "sideRepo": {"path": "/environments/ws/x"}}),
            ),
            path,
        ),
        (
            "delivery account as a user name",
            "Environment",
            env(
                "a1",
                serde_json::json!({"target": {"namespace": "t", "deliveryServiceAccount": "system:serviceaccount:team-b:quayside-delivery"}}),
            ),
            says(&["spec.target.deliveryServiceAccount", "not a user name"]),
        ),
        (
            "service account with spaces",
            "Environment",
            env(
                "a2",
                serde_json::json!({"target": ns("t"), "serviceAccount": "my deployer"}),
            ),
            says(&[
                "spec.serviceAccount",
                "must be the name of a ServiceAccount",
            ]),
        ),
        (
            "credentials Secret path",
            "Environment",
            env(
                "a3",
                serde_json::json!({"target": {"namespace": "t", "clusterCredentialsSecret": "../kubeconfig"}}),
            ),
            says(&[
                "spec.target.clusterCredentialsSecret",
                "must be the name of a Secret",
            ]),
        ),
        (
            "unknown visibility",
            "Component",
            comp(
                "c1",
                serde_json::json!({"source": src, "visibility": "secret"}),
            ),
            says(&["spec.visibility", "auto"]),
        ),
        (
            "source URL too long",
            "Component",
            comp(
                "c2",
                serde_json::json!({"source": {"git": {"url": format!("https://git.example/{}", "a".repeat(3000))}}}),
            ),
            says(&["spec.source.git.url", "2048"]),
        ),
        (
            "name too long",
            "Component",
            comp(&"c".repeat(241), serde_json::json!({"source": src})),
            says(&["metadata.name is longer than 240 characters"]),
        ),
    ]
}

fn api(client: &kube::Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("quayside.dev", "v1alpha1", kind);
    let plural = format!("{}s", kind.to_lowercase());
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, &plural),
    )
}

fn object(kind: &str, mut value: serde_json::Value) -> DynamicObject {
    value["apiVersion"] = "quayside.dev/v1alpha1".into();
    value["kind"] = kind.into();
    serde_json::from_value(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_are_refused_with_the_field_and_what_to_write() {
    let client = cluster::shared().client().await;
    let ns = cluster::new_namespace(&client, "crdv").await;
    let cases = cases();
    let mut wrong = Vec::new();
    for (what, kind, value, pieces) in &cases {
        match api(&client, &ns, kind)
            .create(&PostParams::default(), &object(kind, value.clone()))
            .await
        {
            Err(kube::Error::Api(e)) if e.code == 422 => {
                let missing: Vec<&String> = pieces
                    .iter()
                    .filter(|p| !e.message.contains(p.as_str()))
                    .collect();
                if !missing.is_empty() {
                    wrong.push(format!(
                        "{what}: refused, but the message lacks {missing:?}: {}",
                        e.message
                    ));
                }
            }
            Err(e) => wrong.push(format!("{what}: refused otherwise: {e}")),
            Ok(_) => wrong.push(format!("{what}: accepted")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The good objects next to them are accepted: every field set, validly.
    let good = Identity::generate().to_recipient().to_string();
    let e: Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "good"},
        "spec": {
            "target": {"namespace": "team-a-prod", "clusterCredentialsSecret": "prod.kubeconfig", "deliveryServiceAccount": "quayside-delivery"},
            "serviceAccount": "deployer",
            "recipients": [good],
            "sideRepo": {"path": format!("environments/{ns}/eu/prod_1.x")}
        }
    }))
    .unwrap();
    Api::<Environment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &e)
        .await
        .expect("a good Environment is accepted");
    let c: Component = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "c".repeat(240)},
        "spec": {"source": {"git": {"url": "https://git.example/app"}}, "visibility": "private", "image": format!("{ns}/app")}
    }))
    .unwrap();
    Api::<Component>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &c)
        .await
        .expect("a good Component is accepted");
    eprintln!("FIGURES crd validation: refused={} accepted=2", cases.len());
}

fn kubectl(args: &[&str]) -> (bool, String) {
    let out: std::process::Output = cluster::shared().kubectl().args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_and_get_read_well() {
    let client = cluster::shared().client().await;
    let ns = cluster::new_namespace(&client, "crdx").await;
    // (what to explain, what it must say)
    let reads = [
        (
            "component",
            "one image repository on Quay with a push and a pull robot",
        ),
        ("component.spec", "where its source lives"),
        (
            "component.spec.source",
            "Where the Component's source lives",
        ),
        (
            "component.spec.source.git.url",
            "Clone URL of the source repository",
        ),
        (
            "component.status.rotatedAt",
            "When the robot tokens were last rotated",
        ),
        ("component.status.environments.serviceAccount", "linked to"),
        ("component.status.conditions", "RepositoryReady"),
        ("environment", "every Component of the workspace"),
        ("environment.spec.recipients", "age-keygen -y"),
        (
            "environment.spec.target.namespace",
            "Namespace workloads are deployed to",
        ),
        ("environment.status.lastSync", "When a pass last changed"),
    ];
    for (path, wanted) in reads {
        // The API server publishes a new CRD's OpenAPI a moment after it is served.
        let text = wait::until(&format!("kubectl explain {path}"), T, || async move {
            let (ok, text) = tokio::task::spawn_blocking(move || kubectl(&["explain", path]))
                .await
                .unwrap();
            // kubectl wraps descriptions at its own width.
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            (ok && text.contains(wanted)).then_some(text)
        })
        .await;
        for leaked in ["Auto-generated", "time.Time", "marshaling"] {
            assert!(
                !text.contains(leaked),
                "kubectl explain {path} shows {leaked:?}:\n{text}"
            );
        }
    }
    // The Reason column: the Ready condition's reason, beside Ready.
    let c: Component = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "shown"},
        "spec": {"source": {"git": {"url": "https://git.example/app"}}}
    }))
    .unwrap();
    let api = Api::<Component>::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &c).await.unwrap();
    let status = serde_json::json!({"status": {"conditions": [{
        "type": "Ready", "status": "False", "reason": "QuayUnavailable",
        "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"
    }]}});
    api.patch_status("shown", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let (ok, text) =
        tokio::task::spawn_blocking(move || kubectl(&["get", "component", "shown", "-n", &ns]))
            .await
            .unwrap();
    assert!(ok, "{text}");
    // Columns are aligned; empty ones (no image yet) are blank.
    let mut lines = text.lines();
    let (header, row) = (
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    );
    let at = header
        .find("REASON")
        .unwrap_or_else(|| panic!("no REASON column:\n{text}"));
    assert!(header[..at].trim_end().ends_with("READY"), "{text}");
    let reason = row.get(at..).unwrap_or_default().split_whitespace().next();
    assert_eq!(reason, Some("QuayUnavailable"), "{text}");
    let crd = Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(client.clone())
        .get("environments.quayside.dev")
        .await
        .unwrap();
    let columns: Vec<String> = crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert!(
        columns.windows(2).any(|w| w == ["Ready", "Reason"]),
        "{columns:?}"
    );
}

/// Recursively drop the CRD's validation rules, patterns and size limits:
/// a CRD as a release before them installed it.
fn without_validation(v: &mut serde_json::Value) {
    if let Some(m) = v.as_object_mut() {
        for key in ["x-kubernetes-validations", "maxLength", "maxItems"] {
            m.remove(key);
        }
        for child in m.values_mut() {
            without_validation(child);
        }
    } else if let Some(a) = v.as_array_mut() {
        a.iter_mut().for_each(without_validation);
    }
}

/// An upgrade: objects stored under a CRD without the rules keep working
/// when the new CRD arrives. The API server ratchets (a field that does
/// not change is not judged again), so the controller can still write
/// their status and finalizers and report the problem in a condition;
/// only a change to the bad field is refused. On a control plane of its
/// own, since it replaces the CRD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_stored_before_the_rules_can_still_be_written() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    let cp = tokio::task::spawn_blocking(cluster::ControlPlane::start)
        .await
        .unwrap();
    let client = cp.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut old = serde_json::to_value(Environment::crd()).unwrap();
    without_validation(&mut old);
    let old: CustomResourceDefinition = serde_json::from_value(old).unwrap();
    crds.create(&PostParams::default(), &old).await.unwrap();
    let ns = cluster::new_namespace(&client, "upg").await;
    let envs: Api<Environment> = Api::namespaced(client.clone(), &ns);
    let bad: Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "old"},
        "spec": {"target": {"namespace": "Not A Namespace"}, "recipients": ["age1notakey"]}
    }))
    .unwrap();
    wait::until("the old CRD served", T, || async {
        envs.create(&PostParams::default(), &bad).await.ok()
    })
    .await;
    // The new CRD, in place of the old one.
    let mut new = Environment::crd();
    new.metadata.resource_version = crds
        .get("environments.quayside.dev")
        .await
        .unwrap()
        .metadata
        .resource_version;
    crds.replace("environments.quayside.dev", &PostParams::default(), &new)
        .await
        .unwrap();
    let mut probe = bad.clone();
    probe.metadata.name = Some("probe".into());
    wait::until("the new rules in force", T, || async {
        match envs.create(&PostParams::default(), &probe).await {
            Err(kube::Error::Api(e)) if e.code == 422 => Some(()),
            Ok(_) => {
                let _ = envs.delete("probe", &Default::default()).await;
                None
            }
            Err(_) => None,
        }
    })
    .await;
    // What the controller writes: a finalizer, then status.
    let finalizer =
        serde_json::json!({"metadata": {"finalizers": [quayside::vocabulary::FINALIZER]}});
    envs.patch("old", &PatchParams::default(), &Patch::Merge(&finalizer))
        .await
        .expect("a finalizer on an old object");
    let status = serde_json::json!({"status": {"conditions": [{
        "type": "Ready", "status": "False", "reason": "InvalidSpec",
        "message": "spec.target.namespace is not a valid namespace name", "lastTransitionTime": "2026-01-01T00:00:00Z"
    }]}});
    envs.patch_status("old", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status of an old object");
    // Changing the bad field to another bad value is judged, and refused.
    let worse = serde_json::json!({"spec": {"recipients": ["age1stillnotakey"]}});
    match envs
        .patch("old", &PatchParams::default(), &Patch::Merge(&worse))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 422 => assert!(
            e.message.contains("must be an age recipient"),
            "{}",
            e.message
        ),
        other => panic!("a changed bad field was not refused: {other:?}"),
    }
    // Taking the finalizer away (the controller's cleanup) works too.
    let none = serde_json::json!({"metadata": {"finalizers": null}});
    envs.patch("old", &PatchParams::default(), &Patch::Merge(&none))
        .await
        .expect("remove the finalizer");
    cp.stop();
}
