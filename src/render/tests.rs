//! Unit tests of rendering; golden tests over `fixtures/render/` live in
//! `tests/render_golden.rs`.

use super::*;
use secrecy::ExposeSecret;

fn identity() -> Identity {
    Identity::generate()
}

fn env(id: &Identity) -> EnvironmentInput {
    EnvironmentInput {
        name: "dev".into(),
        workspace: "team".into(),
        target_namespace: "team-dev".into(),
        folder: "environments/dev/".into(),
        recipients: vec![id.to_recipient()],
        service_account: "deployer".into(),
    }
}

fn comp(name: &str, token: &str) -> ComponentInput {
    ComponentInput {
        name: name.into(),
        image: format!("quay.io/org/team/{name}"),
        generation: 2,
        pull: RobotCredentials {
            registry: "quay.io".into(),
            username: format!("org+team_{name}_pull"),
            token: SecretString::from(token.to_string()),
        },
    }
}

fn now() -> Timestamp {
    "2026-01-02T03:04:05Z".parse().unwrap()
}

#[test]
fn manifest_is_a_dockerconfigjson_secret_in_the_target_namespace() {
    let id = identity();
    let m = pull_secret_manifest(&env(&id), &comp("api", "TOK123"));
    let v: serde_json::Value = serde_norway::from_str(m.expose_secret()).unwrap();
    assert_eq!(v["kind"], "Secret");
    assert_eq!(v["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(v["metadata"]["name"], "api-pull");
    assert_eq!(v["metadata"]["namespace"], "team-dev");
    assert_eq!(
        v["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "quayside"
    );
    assert_eq!(v["metadata"]["labels"]["quayside.dev/component"], "api");
    assert_eq!(v["metadata"]["labels"]["quayside.dev/environment"], "dev");
    assert_eq!(v["metadata"]["labels"]["quayside.dev/workspace"], "team");
    assert_eq!(
        v["metadata"]["annotations"]["quayside.dev/credentials-generation"],
        "2"
    );
    let cfg = v["stringData"][".dockerconfigjson"].as_str().unwrap();
    let back = RobotCredentials::from_docker_config_json(cfg).unwrap();
    assert_eq!(back.token.expose_secret(), "TOK123");
    assert!(!format!("{m:?}").contains("TOK123"));
}

#[test]
fn folder_is_sorted_sealed_and_reseals_byte_for_byte() {
    let id = identity();
    let e = env(&id);
    let comps = [comp("web", "TOKEN-WEB-1"), comp("api", "TOKEN-API-1")];
    let files =
        render_environment(&e, &comps, &|_| None, &id, KustomizeFlavor::Ksops, now()).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "environments/dev/README.md",
            "environments/dev/kustomization.yaml",
            "environments/dev/secret-generator.yaml",
            "environments/dev/secrets/api-pull.sops.yaml",
            "environments/dev/secrets/web-pull.sops.yaml",
            "environments/dev/serviceaccount-link.yaml",
        ]
    );
    for f in &files {
        let text = String::from_utf8(f.contents.clone()).unwrap();
        assert!(!text.contains("TOKEN-"), "{} leaks a token", f.path);
        assert!(!format!("{f:?}").contains("TOKEN-"));
    }
    let sealed = String::from_utf8(files[3].contents.clone()).unwrap();
    let opened = seal::open(&sealed, &id).unwrap();
    let yaml = |s: &str| serde_norway::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(
        yaml(opened.expose_secret()),
        yaml(pull_secret_manifest(&e, &comps[1]).expose_secret())
    );

    // Re-render with the previous files and a later clock: identical bytes.
    let prev: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                String::from_utf8(f.contents.clone()).unwrap(),
            )
        })
        .collect();
    let later: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let again = render_environment(
        &e,
        &comps,
        &|p| prev.get(p).cloned(),
        &id,
        KustomizeFlavor::Ksops,
        later,
    )
    .unwrap();
    assert_eq!(again, files);

    // A rotation changes only that component's sealed file (and the README's generation).
    let mut rotated = comps.clone();
    rotated[1].pull.token = SecretString::from("TOKEN-API-2".to_string());
    rotated[1].generation = 3;
    let third = render_environment(
        &e,
        &rotated,
        &|p| prev.get(p).cloned(),
        &id,
        KustomizeFlavor::Ksops,
        later,
    )
    .unwrap();
    let changed: Vec<&str> = third
        .iter()
        .zip(&files)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.path.as_str())
        .collect();
    assert_eq!(
        changed,
        vec![
            "environments/dev/README.md",
            "environments/dev/secrets/api-pull.sops.yaml"
        ]
    );
}

#[test]
fn flux_flavor_lists_resources_and_has_no_generator() {
    let id = identity();
    let files = render_environment(
        &env(&id),
        &[comp("api", "T")],
        &|_| None,
        &id,
        KustomizeFlavor::Flux,
        now(),
    )
    .unwrap();
    assert!(
        !files
            .iter()
            .any(|f| f.path.ends_with("secret-generator.yaml"))
    );
    let k = files
        .iter()
        .find(|f| f.path.ends_with("kustomization.yaml"))
        .unwrap();
    let k = String::from_utf8(k.contents.clone()).unwrap();
    assert!(
        k.contains("resources:\n  - secrets/api-pull.sops.yaml\n"),
        "{k}"
    );
}

#[test]
fn empty_environment_renders_empty_lists() {
    let id = identity();
    let files = render_environment(
        &env(&id),
        &[],
        &|_| None,
        &id,
        KustomizeFlavor::Ksops,
        now(),
    )
    .unwrap();
    let g = files
        .iter()
        .find(|f| f.path.ends_with("secret-generator.yaml"))
        .unwrap();
    assert!(
        String::from_utf8(g.contents.clone())
            .unwrap()
            .contains("files: []\n")
    );
    let link = files
        .iter()
        .find(|f| f.path.ends_with("serviceaccount-link.yaml"))
        .unwrap();
    assert!(
        String::from_utf8(link.contents.clone())
            .unwrap()
            .contains("imagePullSecrets: []\n")
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let id = identity();
    let mut e = env(&id);
    e.recipients.clear();
    let err =
        render_environment(&e, &[], &|_| None, &id, KustomizeFlavor::Ksops, now()).unwrap_err();
    assert!(matches!(err, RenderError::NoRecipients { .. }), "{err}");

    let e = env(&id);
    let err = render_environment(
        &e,
        &[comp("api", "T"), comp("api", "U")],
        &|_| None,
        &id,
        KustomizeFlavor::Ksops,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, RenderError::DuplicateComponent { .. }),
        "{err}"
    );
    let err = render_environment(
        &e,
        &[comp("Bad Name", "T")],
        &|_| None,
        &id,
        KustomizeFlavor::Ksops,
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::InvalidName { .. }), "{err}");
    let mut e2 = env(&id);
    e2.folder = "../escape".into();
    let err =
        render_environment(&e2, &[], &|_| None, &id, KustomizeFlavor::Ksops, now()).unwrap_err();
    assert!(matches!(err, RenderError::InvalidFolder { .. }), "{err}");
}

#[test]
fn flavor_parses() {
    assert_eq!(
        "flux".parse::<KustomizeFlavor>().unwrap(),
        KustomizeFlavor::Flux
    );
    assert_eq!(
        "KSOPS".parse::<KustomizeFlavor>().unwrap(),
        KustomizeFlavor::Ksops
    );
    assert!("kustomize".parse::<KustomizeFlavor>().is_err());
}

#[test]
fn names_too_long_for_a_file_or_secret_and_dotted_namespaces_are_refused() {
    let id = identity();
    let none = |_: &str| None;
    // `<name>-pull.sops.yaml` must fit in a file name (255 bytes).
    let long = "c".repeat(241);
    let r = render_environment(
        &env(&id),
        &[comp(&long, "t")],
        &none,
        &id,
        KustomizeFlavor::Ksops,
        now(),
    );
    assert!(
        r.is_err(),
        "a {}-character Component name was rendered",
        long.len()
    );
    let ok = "c".repeat(240);
    render_environment(
        &env(&id),
        &[comp(&ok, "t")],
        &none,
        &id,
        KustomizeFlavor::Ksops,
        now(),
    )
    .expect("240 characters fit");
    // A namespace is a DNS label: no dots.
    let dotted = EnvironmentInput {
        target_namespace: "shop.staging".into(),
        ..env(&id)
    };
    let r = render_environment(&dotted, &[], &none, &id, KustomizeFlavor::Ksops, now());
    assert!(r.is_err(), "target namespace shop.staging was accepted");
}
