//! The Kubernetes API server refusing a write for good (422 here, from an
//! admission policy, as a label value it cannot take used to): the pass
//! stops with a condition quoting the server's message in plain words, and
//! no Quay call is repeated until something changes. Before, such a pass
//! was retried every few seconds, each time with its Quay calls again.

use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use quayside_testkit::harness::Harness;
use quayside_testkit::wait;

const T: Duration = Duration::from_secs(60);

/// A ValidatingAdmissionPolicy (and its binding) that refuses Secrets whose
/// name starts with `refused-` in `namespace`, with status 422.
async fn refuse_secrets(h: &Harness, namespace: &str) {
    let policy_ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
        ),
        "validatingadmissionpolicies",
    );
    let binding_ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
        ),
        "validatingadmissionpolicybindings",
    );
    let name = format!("refuse-{namespace}");
    let policy: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["secrets"]
            }]},
            "validations": [{
                "expression": "!object.metadata.name.startsWith('refused-')",
                "message": "Secrets named refused-* are not allowed in this namespace",
                "reason": "Invalid"
            }]
        }
    }))
    .unwrap();
    let binding: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": namespace
            }}}
        }
    }))
    .unwrap();
    Api::<DynamicObject>::all_with(h.client.clone(), &policy_ar)
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    Api::<DynamicObject>::all_with(h.client.clone(), &binding_ar)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_the_api_server_refuses_stops_without_repeating_quay_calls() {
    let mut h = Harness::start().await;
    refuse_secrets(&h, &h.workspace.clone()).await;
    // The policy takes effect once the API server has loaded it: probe with
    // a Secret of the refused name until it is refused.
    let secrets =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(h.client.clone(), &h.workspace);
    wait::until("the policy refuses Secrets", T, || async {
        let probe: k8s_openapi::api::core::v1::Secret =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "refused-probe"}}))
                .unwrap();
        match secrets.create(&PostParams::default(), &probe).await {
            Err(kube::Error::Api(e)) if e.code == 422 => Some(()),
            Ok(_) => {
                let _ = secrets.delete("refused-probe", &Default::default()).await;
                None
            }
            Err(_) => None,
        }
    })
    .await;
    h.start_controller().await;
    h.create_component("refused-app", &h.git.repo_url("public-app"), "public")
        .await;
    let refused = wait::until("the refusal in status", T, || async {
        let c = h.components().get("refused-app").await.ok()?;
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.status == "False" && c.reason == "KubernetesRefused")
    })
    .await;
    let calls = h.emulator.api_calls();
    // An observation window, not a synchronisation: the old classification
    // retried after 2, 4 and 8 s, each time with the Quay calls again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let later = h.emulator.api_calls();
    h.stop_controller().await;
    assert!(
        refused
            .message
            .contains("Secrets named refused-* are not allowed in this namespace")
            && refused.message.contains("422"),
        "the server's own words: {}",
        refused.message
    );
    assert!(
        !refused.message.contains("ErrorResponse"),
        "no debug dump: {}",
        refused.message
    );
    assert_eq!(later, calls, "no Quay call repeated while nothing changed");
}

/// Objects that exist before the controller starts race its first passes
/// (the finalizer patch tests a list a concurrent write just changed): a
/// fresh install must not count those as errors, or the alert on the
/// errors metric fires on every install.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_that_exist_before_start_count_no_errors() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("pre", true).await;
    h.create_environment("dev", &target, &[]).await;
    for i in 0..6 {
        h.create_component(&format!("pre-{i}"), &h.git.repo_url("public-app"), "public")
            .await;
    }
    h.start_controller().await;
    for i in 0..6 {
        h.wait_component_ready(&format!("pre-{i}"), T).await;
    }
    let (metrics, _) = h.observed.clone().unwrap();
    h.stop_controller().await;
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("quayside_reconcile_errors_total{"))
        .collect();
    assert!(
        errors.is_empty(),
        "errors counted on a fresh start: {errors:?}"
    );
}
