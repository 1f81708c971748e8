//! deploy/ installs on a real API server: `kubectl apply --dry-run=server`
//! of the whole kustomization (CRDs, RBAC, configuration, Deployment).

use std::process::Command;

use quayside_testkit::{cluster, tools};

#[test]
fn deploy_kustomization_applies_with_server_dry_run() {
    let cp = cluster::shared();
    let root = tools::root();
    // Dry-run does not create the namespace, so the namespaced objects need it first.
    let _ = cp
        .kubectl()
        .args(["create", "namespace", "quayside-system"])
        .output()
        .unwrap();
    let out = cp
        .kubectl()
        .args(["apply", "--dry-run=server", "-k"])
        .arg(root.join("deploy"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl apply --dry-run=server -k deploy failed:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in [
        "customresourcedefinition.apiextensions.k8s.io/components.quayside.dev",
        "clusterrole.rbac.authorization.k8s.io/quayside-controller",
        "role.rbac.authorization.k8s.io/quayside-leader-election",
        "deployment.apps/quayside-controller",
    ] {
        assert!(stdout.contains(kind), "{kind} missing from:\n{stdout}");
    }
    // No Secret value is committed: the credentials Secret is created out
    // of band, and the Deployment mounts it by name.
    assert!(
        !stdout.contains("secret/"),
        "deploy/ must not ship a Secret:\n{stdout}"
    );
    let built = cp
        .kubectl()
        .args(["kustomize"])
        .arg(root.join("deploy"))
        .output()
        .unwrap();
    let built = String::from_utf8_lossy(&built.stdout);
    assert!(built.contains("secretName: quayside-credentials"));
}

#[test]
fn the_dockerfile_builds_the_binary_as_non_root() {
    let text = std::fs::read_to_string(tools::root().join("Dockerfile")).unwrap();
    assert!(text.contains("--bin quayside"));
    assert!(
        text.contains("USER 65532"),
        "runtime image runs as non-root"
    );
    let status = Command::new(tools::bin("kubectl"))
        .args(["kustomize"])
        .arg(tools::root().join("deploy"))
        .output()
        .unwrap();
    let built = String::from_utf8_lossy(&status.stdout);
    assert!(built.contains("runAsNonRoot: true"));
    assert!(built.contains("readOnlyRootFilesystem: true"));
}
