//! Golden tests: `fixtures/render/` inputs rendered with a fixed identity and
//! clock must give exactly `fixtures/render/golden/<flavor>/`. Sealed files
//! are golden too: with the golden files as the previous content, re-sealing
//! reproduces them byte for byte (age encryption is randomised, so this is
//! how a sealed file can be golden). `UPDATE_GOLDEN=1` rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use quayside::api::{Component, Environment};
use quayside::credentials::RobotCredentials;
use quayside::render::{self, KustomizeFlavor, RenderedFile};
use quayside::seal::{self, Identity};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

fn fixtures() -> PathBuf {
    quayside_testkit::tools::root().join("fixtures/render")
}

fn manifests<T: for<'de> Deserialize<'de>>(dir: &str) -> Vec<T> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            out.push(T::deserialize(doc).unwrap());
        }
    }
    out
}

fn identity(name: &str) -> Identity {
    Identity::parse(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn now() -> Timestamp {
    "2026-01-02T03:04:05Z".parse().unwrap()
}

/// Render every fixture Environment; `previous` reads a golden file.
fn render_all(
    flavor: KustomizeFlavor,
    previous: &dyn Fn(&str) -> Option<String>,
) -> Vec<RenderedFile> {
    let controller = identity("controller.agekey");
    let creds: BTreeMap<String, BTreeMap<String, serde_norway::Value>> = serde_norway::from_str(
        &std::fs::read_to_string(fixtures().join("credentials.yaml")).unwrap(),
    )
    .unwrap();
    let components: Vec<Component> = manifests("components");
    let environments: Vec<Environment> = manifests("environments");
    let mut files = Vec::new();
    for env in &environments {
        let sa = env
            .spec
            .service_account
            .clone()
            .unwrap_or_else(|| "deployer".into());
        let input = render::environment_input(env, &[controller.to_recipient()], &sa).unwrap();
        let ws = input.workspace.clone();
        let comps: Vec<_> = components
            .iter()
            .filter(|c| c.metadata.namespace.as_deref() == Some(ws.as_str()))
            .map(|c| {
                let name = c.metadata.name.clone().unwrap();
                let e = creds
                    .get(&format!("{ws}/{name}"))
                    .or_else(|| creds.get(&name))
                    .unwrap();
                let s = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let pull = RobotCredentials {
                    registry: s("registry").unwrap_or_else(|| "quay.io".into()),
                    username: s("username").unwrap(),
                    token: SecretString::from(s("token").unwrap()),
                };
                let generation = e.get("generation").and_then(|v| v.as_i64()).unwrap_or(1);
                render::component_input(c, pull, generation).unwrap()
            })
            .collect();
        files.extend(
            render::render_environment(&input, &comps, previous, &controller, flavor, now())
                .unwrap(),
        );
    }
    files
}

fn golden_dir(flavor: KustomizeFlavor) -> PathBuf {
    fixtures().join("golden").join(match flavor {
        KustomizeFlavor::Ksops => "ksops",
        KustomizeFlavor::Flux => "flux",
    })
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, root, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().to_string());
        }
    }
}

fn check(flavor: KustomizeFlavor) {
    let golden = golden_dir(flavor);
    let read = |p: &str| std::fs::read_to_string(golden.join(p)).ok();
    let files = render_all(flavor, &read);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        for f in &files {
            let p = golden.join(&f.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &f.contents).unwrap();
        }
    }
    let mut on_disk = Vec::new();
    walk(&golden, &golden, &mut on_disk);
    on_disk.sort();
    let mut rendered: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    rendered.sort();
    assert_eq!(
        rendered, on_disk,
        "rendered file list differs from {golden:?} (UPDATE_GOLDEN=1 to accept)"
    );
    for f in &files {
        assert_eq!(
            String::from_utf8_lossy(&f.contents),
            read(&f.path).unwrap(),
            "{} differs from its golden file (UPDATE_GOLDEN=1 to accept)",
            f.path
        );
    }
}

#[test]
fn ksops_folders_match_golden() {
    check(KustomizeFlavor::Ksops);
}

#[test]
fn flux_folders_match_golden() {
    check(KustomizeFlavor::Flux);
}

#[test]
fn sealed_golden_files_open_to_the_expected_secrets() {
    let controller = identity("controller.agekey");
    let argocd = identity("argocd.agekey");
    let prod_only = identity("argocd-prod.agekey");
    let golden = golden_dir(KustomizeFlavor::Ksops);
    let expect = [
        (
            "environments/team-a/dev/secrets/api-pull.sops.yaml",
            "team-a-dev",
            "FAKE-TOKEN-api-0123456789",
            "3",
            "quay.io",
        ),
        (
            "environments/team-a/dev/secrets/web-pull.sops.yaml",
            "team-a-dev",
            "FAKE-TOKEN-web-0123456789",
            "1",
            "quay.io",
        ),
        (
            "clusters/prod/team-a/secrets/api-pull.sops.yaml",
            "team-a-prod",
            "FAKE-TOKEN-api-0123456789",
            "3",
            "quay.io",
        ),
        (
            "environments/team-b/staging/secrets/worker-pull.sops.yaml",
            "team-b-staging",
            "FAKE-TOKEN-worker-0123456789",
            "2",
            "registry.example:5000",
        ),
    ];
    for (path, ns, token, generation, registry) in expect {
        let sealed = std::fs::read_to_string(golden.join(path)).unwrap();
        assert!(!sealed.contains(token), "{path} holds the token in clear");
        let info = seal::inspect(&sealed).unwrap();
        assert!(info.all_sealed(), "{path}: {:?}", info.unsealed);
        assert!(info.recipients.contains(&controller.to_recipient()));
        for id in [&controller, &argocd] {
            let plain = seal::open(&sealed, id).unwrap();
            let v: serde_json::Value = serde_norway::from_str(plain.expose_secret()).unwrap();
            assert_eq!(v["type"], "kubernetes.io/dockerconfigjson");
            assert_eq!(v["metadata"]["namespace"], ns);
            assert_eq!(
                v["metadata"]["annotations"]["quayside.dev/credentials-generation"],
                generation
            );
            let creds = RobotCredentials::from_docker_config_json(
                v["stringData"][".dockerconfigjson"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(creds.token.expose_secret(), token);
            assert_eq!(creds.registry, registry);
        }
        // The prod-only decryptor opens prod, and nothing else.
        assert_eq!(
            seal::open(&sealed, &prod_only).is_ok(),
            path.starts_with("clusters/prod"),
            "{path}"
        );
    }
}
