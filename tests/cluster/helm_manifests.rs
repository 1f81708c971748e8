//! The Helm chart's manifests, deploy/monitoring and install.yaml meet a
//! real API server: `kubectl apply --dry-run=server` of `helm template`
//! (CRDs included) for the default, multi-tenant and single-tenant values,
//! with the Prometheus Operator's CRDs installed so ServiceMonitor and
//! PrometheusRule are validated against their real schemas.

use std::io::Write;
use std::process::{Command, Stdio};

use quayside_testkit::{cluster, tools};

/// The monitoring.coreos.com CRDs scripts/setup copied from the operator's
/// Go module, applied once and Established.
fn install_monitoring_crds(cp: &cluster::ControlPlane) {
    let dir = tools::root().join(".cache/crds");
    for kind in ["servicemonitors", "prometheusrules"] {
        let file = dir.join(format!("monitoring.coreos.com_{kind}.yaml"));
        assert!(
            file.exists(),
            "{} is missing: run scripts/setup",
            file.display()
        );
        let out = cp
            .kubectl()
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cp
        .kubectl()
        .args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Dry-run does not create the namespace, so the namespaced objects need it first.
    let _ = cp
        .kubectl()
        .args(["create", "namespace", "quayside-system"])
        .output();
}

fn helm_template(values: &[&str]) -> String {
    let out = Command::new(tools::bin("helm"))
        .args([
            "template",
            "quayside",
            "deploy/helm/quayside",
            "--namespace",
            "quayside-system",
            "--include-crds",
        ])
        .args(values)
        .current_dir(tools::root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `kubectl apply --dry-run=server -f -` of `manifests`, whatever it answers.
fn try_dry_run(cp: &cluster::ControlPlane, manifests: &str) -> std::process::Output {
    let mut child = cp
        .kubectl()
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifests.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `kubectl apply --dry-run=server -f -` of `manifests`, which must be
/// accepted whole; its output.
fn dry_run(cp: &cluster::ControlPlane, what: &str, manifests: &str) -> String {
    let out = try_dry_run(cp, manifests);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: the API server refused:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One line per object: none skipped.
    let objects =
        manifests.matches("\nkind: ").count() + usize::from(manifests.starts_with("kind: "));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("(server dry run)"))
            .count(),
        objects,
        "{what}:\n{stdout}"
    );
    stdout
}

#[test]
fn the_chart_renders_what_the_api_server_accepts() {
    let cp = cluster::shared();
    install_monitoring_crds(cp);
    let defaults = dry_run(cp, "default values", &helm_template(&[]));
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/components.quayside.dev",
        "deployment.apps/quayside-controller",
        "configmap/quayside-config",
    ] {
        assert!(defaults.contains(object), "{object} missing:\n{defaults}");
    }
    assert!(
        !defaults.contains("servicemonitor"),
        "monitoring is off by default"
    );
    let multi = dry_run(
        cp,
        "multi-tenant values",
        &helm_template(&["-f", "deploy/helm/examples/multi-tenant.yaml"]),
    );
    for object in [
        "servicemonitor.monitoring.coreos.com/quayside",
        "prometheusrule.monitoring.coreos.com/quayside",
        "configmap/quayside-dashboard",
        "service/quayside-metrics",
    ] {
        assert!(multi.contains(object), "{object} missing:\n{multi}");
    }
    let single = dry_run(
        cp,
        "single tenant",
        &helm_template(&["--set", "tenancy.impersonate=false"]),
    );
    assert!(single.contains(
        "clusterrolebinding.rbac.authorization.k8s.io/quayside-controller-single-tenant"
    ));
}

#[test]
fn deploy_monitoring_and_install_yaml_apply_with_server_dry_run() {
    let cp = cluster::shared();
    install_monitoring_crds(cp);
    let root = tools::root();
    let monitoring = Command::new(tools::bin("kubectl"))
        .args(["kustomize"])
        .arg(root.join("deploy/monitoring"))
        .output()
        .unwrap();
    let out = dry_run(
        cp,
        "deploy/monitoring",
        &String::from_utf8_lossy(&monitoring.stdout),
    );
    assert!(
        out.contains("prometheusrule.monitoring.coreos.com/quayside"),
        "{out}"
    );
    let install = std::fs::read_to_string(root.join("install.yaml")).unwrap();
    let out = dry_run(cp, "install.yaml", &install);
    assert!(out.contains("deployment.apps/quayside-controller"), "{out}");
}

/// The API server checks PrometheusRule's schema: a rule without `expr`
/// is refused, so the dry runs above do prove something.
#[test]
fn a_broken_prometheus_rule_is_refused() {
    let cp = cluster::shared();
    install_monitoring_crds(cp);
    let broken = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: broken, namespace: quayside-system}\nspec:\n  groups:\n    - name: g\n      rules:\n        - alert: A\n";
    let out = try_dry_run(cp, broken);
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expr"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
