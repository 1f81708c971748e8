//! The YAML examples in docs/examples/ parse, and name the fields Argo CD and
//! Flux need to sync a side-repository folder.

use std::path::Path;

fn docs(name: &str) -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
        out.push(v);
    }
    out
}

#[test]
fn argocd_application_points_at_an_environment_folder() {
    let app = &docs("argocd-application.yaml")[0];
    assert_eq!(app["kind"], "Application");
    assert!(
        app["spec"]["source"]["path"]
            .as_str()
            .unwrap()
            .starts_with("environments/")
    );
}

#[test]
fn applicationset_generates_one_application_per_folder() {
    let set = &docs("argocd-applicationset.yaml")[0];
    assert_eq!(set["kind"], "ApplicationSet");
    assert_eq!(
        set["spec"]["generators"][0]["git"]["directories"][0]["path"],
        "environments/*/*"
    );
}

#[test]
fn flux_kustomization_decrypts_with_sops() {
    let all = docs("flux-kustomization.yaml");
    let k = all.iter().find(|d| d["kind"] == "Kustomization").unwrap();
    assert_eq!(k["spec"]["decryption"]["provider"], "sops");
}

#[test]
fn repo_server_patch_puts_ksops_on_path_and_mounts_the_age_key() {
    // KSOPS v4: kustomize looks the rendered generator's `exec: path: ksops`
    // up on $PATH, not at the legacy plugin path (tests/tools/argocd_kustomize.rs
    // builds rendered folders in this layout).
    let patch = &docs("argocd-repo-server-ksops.yaml")[0];
    let text = patch.to_string();
    assert!(text.contains("SOPS_AGE_KEY_FILE"));
    assert!(text.contains("\"/usr/local/bin/ksops\""));
    assert!(!text.contains("kustomize/plugin"), "the legacy plugin path");
    let cm = &docs("argocd-cm-ksops.yaml")[0];
    assert_eq!(
        cm["data"]["kustomize.buildOptions"],
        "--enable-alpha-plugins --enable-exec"
    );
}
