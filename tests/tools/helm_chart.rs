//! The Helm chart (deploy/helm/quayside) with the real `helm`: it lints,
//! its default values render exactly the objects `kubectl kustomize
//! deploy/` builds (less the Namespace, which `helm install
//! --create-namespace` makes), its monitoring objects are deploy/monitoring's,
//! and install.yaml is the current `kubectl kustomize deploy/`. The
//! rendered manifests meet the API server in tests/cluster/helm_manifests.rs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use quayside_testkit::tools;
use serde::Deserialize;
use serde_json::Value;

const CHART: &str = "deploy/helm/quayside";
const MULTI_TENANT: &str = "deploy/helm/examples/multi-tenant.yaml";

/// Run a tool from the repository root; panic with its output on failure.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tools::bin(tool))
        .args(args)
        .current_dir(tools::root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `helm template` of the chart with `args` (values), CRDs included.
pub fn helm_template(args: &[&str]) -> String {
    let mut all = vec![
        "template",
        "quayside",
        CHART,
        "--namespace",
        "quayside-system",
        "--include-crds",
    ];
    all.extend_from_slice(args);
    run("helm", &all)
}

/// The objects of a multi-document YAML stream by `Kind/name`.
fn objects(yaml: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc).unwrap();
        if v.is_null() {
            continue;
        }
        let key = format!(
            "{}/{}",
            v["kind"].as_str().unwrap(),
            v["metadata"]["name"].as_str().unwrap()
        );
        assert!(out.insert(key.clone(), v).is_none(), "{key} twice");
    }
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(tools::root().join(path)).unwrap()
}

#[test]
fn the_chart_lints_strictly_with_default_and_multi_tenant_values() {
    run("helm", &["lint", "--strict", CHART]);
    run("helm", &["lint", "--strict", CHART, "-f", MULTI_TENANT]);
}

#[test]
fn default_values_render_what_kustomize_builds() {
    let chart = objects(&helm_template(&[]));
    let mut kustomize = objects(&run("kubectl", &["kustomize", "deploy"]));
    // The one documented difference: Helm's release namespace.
    assert!(kustomize.remove("Namespace/quayside-system").is_some());
    let names = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&chart), names(&kustomize));
    for (key, want) in &kustomize {
        assert_eq!(
            &chart[key], want,
            "{key} differs between the chart and deploy/"
        );
    }
}

#[test]
fn shards_set_the_shard_count_and_replicas_and_default_to_none() {
    let chart = objects(&helm_template(&[
        "--set",
        "shards=12",
        "--set",
        "replicas=3",
    ]));
    let config = &chart["ConfigMap/quayside-config"]["data"];
    assert_eq!(config["QUAYSIDE_SHARDS"], "12");
    assert_eq!(
        chart["Deployment/quayside-controller"]["spec"]["replicas"],
        3
    );
    let default = objects(&helm_template(&[]));
    assert!(default["ConfigMap/quayside-config"]["data"]["QUAYSIDE_SHARDS"].is_null());
    // Sharding lists the Leases and deletes a dead replica's membership.
    let verbs = &chart["Role/quayside-leader-election"]["rules"][0]["verbs"];
    for verb in ["get", "list", "create", "update", "delete"] {
        let has = verbs.as_array().unwrap().iter().any(|v| v == verb);
        assert!(has, "{verb} missing: {verbs:?}");
    }
}

#[test]
fn single_tenant_values_bind_the_delivery_role_like_deploy_rbac() {
    let chart = objects(&helm_template(&["--set", "tenancy.impersonate=false"]));
    let want = objects(&read("deploy/rbac/single-tenant.yaml"));
    let key = "ClusterRoleBinding/quayside-controller-single-tenant";
    assert_eq!(chart[key], want[key]);
    assert_eq!(
        chart["ConfigMap/quayside-config"]["data"]["QUAYSIDE_IMPERSONATE"],
        "false"
    );
    let default = objects(&helm_template(&[]));
    assert!(
        !default.contains_key(key),
        "impersonation on: no cluster-wide write grant"
    );
}

#[test]
fn multi_tenant_values_ship_deploy_monitoring_and_the_dashboard() {
    let chart = objects(&helm_template(&["-f", MULTI_TENANT]));
    let monitoring = objects(&run("kubectl", &["kustomize", "deploy/monitoring"]));
    for key in [
        "Service/quayside-metrics",
        "ServiceMonitor/quayside",
        "PrometheusRule/quayside",
    ] {
        let mut got = chart[key].clone();
        // The values add the label kube-prometheus-stack selects by.
        if let Some(labels) = got["metadata"]["labels"].as_object_mut() {
            labels.remove("release");
        }
        assert_eq!(got, monitoring[key], "{key} differs from deploy/monitoring");
    }
    let dashboard = &chart["ConfigMap/quayside-dashboard"]["data"]["quayside.json"];
    let dashboard: Value = serde_json::from_str(dashboard.as_str().unwrap()).unwrap();
    let want: Value = serde_json::from_str(&read("deploy/monitoring/dashboard.json")).unwrap();
    assert_eq!(dashboard, want);
    let config = &chart["ConfigMap/quayside-config"]["data"];
    assert_eq!(config["QUAYSIDE_SIDE_REPO_MODE"], "pull-request");
    assert_eq!(config["QUAYSIDE_CONCURRENCY"], "16");
    let container =
        &chart["Deployment/quayside-controller"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "registry.example.com/platform/quayside:0.1.0"
    );
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "QUAYSIDE_FORGE_TOKEN_FILE"));
}

#[test]
fn the_image_tag_defaults_to_the_app_version() {
    let chart = objects(&helm_template(&[]));
    let container =
        &chart["Deployment/quayside-controller"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("quay.io/quayside/quayside:{}", env!("CARGO_PKG_VERSION"))
    );
}

/// install.yaml is `kubectl kustomize deploy/` under a three-line header.
#[test]
fn install_yaml_is_the_current_kustomization() {
    let committed = read("install.yaml");
    let body: String = committed
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .flat_map(|l| [l, "\n"])
        .collect();
    assert!(
        body == run("kubectl", &["kustomize", "deploy"]),
        "install.yaml is out of date; regenerate it with scripts/release-manifests"
    );
    assert!(committed.starts_with(&format!("# quayside {}:", env!("CARGO_PKG_VERSION"))));
    assert!(Path::new(&tools::root().join("scripts/release-manifests")).exists());
}
