//! Rendered folders against the real tools: `kubectl kustomize` builds the
//! Flux-flavoured folders, and the KSOPS folder's Secrets, decrypted by the
//! real `sops`, are accepted by a real API server (`apply --dry-run=server`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::jiff::Timestamp;
use quayside::credentials::RobotCredentials;
use quayside::render::{self, ComponentInput, EnvironmentInput, KustomizeFlavor};
use quayside::seal::Identity;
use quayside_testkit::{cluster, tools};
use secrecy::SecretString;

fn fixtures() -> PathBuf {
    tools::root().join("fixtures/render")
}

fn identity(name: &str) -> Identity {
    Identity::parse(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

#[test]
fn kubectl_kustomize_builds_every_flux_folder() {
    let golden = fixtures().join("golden/flux");
    for (folder, secrets) in [
        ("environments/team-a/dev", 2),
        ("clusters/prod/team-a", 2),
        ("environments/team-b/staging", 1),
    ] {
        let out = Command::new(tools::bin("kubectl"))
            .arg("kustomize")
            .arg(golden.join(folder))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{folder}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let built = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            built.matches("kind: Secret").count(),
            secrets,
            "{folder}:\n{built}"
        );
        assert_eq!(
            built.matches("\nsops:").count(),
            secrets,
            "sealed as built:\n{built}"
        );
        assert!(!built.contains("FAKE-TOKEN"), "{folder} builds plaintext");
    }
}

fn write_files(root: &Path, files: &[render::RenderedFile]) {
    for f in files {
        let p = root.join(&f.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &f.contents).unwrap();
    }
}

#[tokio::test]
async fn ksops_secrets_decrypt_with_sops_and_apply_to_a_real_api_server() {
    let cp = cluster::shared();
    let client = cp.client().await;
    let ns = cluster::new_namespace(&client, "render").await;

    let controller = identity("controller.agekey");
    let env = EnvironmentInput {
        name: "dev".into(),
        workspace: "team-a".into(),
        target_namespace: ns.clone(),
        folder: "environments/dev".into(),
        recipients: vec![
            controller.to_recipient(),
            identity("argocd.agekey").to_recipient(),
        ],
        service_account: "default".into(),
    };
    let comps: Vec<ComponentInput> = ["api", "web"]
        .iter()
        .enumerate()
        .map(|(i, n)| ComponentInput {
            name: n.to_string(),
            image: format!("quay.io/acme/team-a/{n}"),
            generation: i as i64 + 1,
            pull: RobotCredentials {
                registry: "quay.io".into(),
                username: format!("acme+team-a_{n}_pull"),
                token: SecretString::from(format!("FAKE-TOKEN-{n}")),
            },
        })
        .collect();
    let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
    let files = render::render_environment(
        &env,
        &comps,
        &|_| None,
        &controller,
        KustomizeFlavor::Ksops,
        now,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &files);
    let folder = dir.path().join("environments/dev");

    // The files KSOPS would decrypt are the ones the generator lists.
    let generator: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(folder.join("secret-generator.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(generator["kind"], "ksops");
    assert_eq!(
        generator["metadata"]["annotations"]["config.kubernetes.io/function"],
        "exec:\n  path: ksops\n"
    );
    let listed: Vec<String> = generator["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed,
        vec![
            "./secrets/api-pull.sops.yaml",
            "./secrets/web-pull.sops.yaml"
        ]
    );

    for file in listed {
        let decrypted = Command::new(tools::bin("sops"))
            .args(["--decrypt", "--input-type", "yaml", "--output-type", "yaml"])
            .arg(folder.join(&file))
            .env("SOPS_AGE_KEY_FILE", fixtures().join("argocd.agekey"))
            .output()
            .unwrap();
        assert!(
            decrypted.status.success(),
            "sops {file}: {}",
            String::from_utf8_lossy(&decrypted.stderr)
        );
        let mut apply = cp
            .kubectl()
            .args(["apply", "--dry-run=server", "-o", "name", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        apply
            .stdin
            .take()
            .unwrap()
            .write_all(&decrypted.stdout)
            .unwrap();
        let out = apply.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "apply {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = file
            .trim_start_matches("./secrets/")
            .trim_end_matches(".sops.yaml");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("secret/{name}")
        );
    }
}
