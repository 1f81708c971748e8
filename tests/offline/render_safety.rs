//! `quayside render` and `verify` on what a side repository really holds:
//! colliding folders are refused before anything is written, a folder is
//! written completely or not at all, and sops's own `.sops.yaml` is not a
//! Secret.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    quayside_testkit::tools::root().join("fixtures/render")
}

const RECIPIENT: &str = "age1zd96lktpa6d5eet5yyckpd9ncyf7atv9eu9jax2pw9gez0kv6gfqdph9lx";

fn environment(name: &str, folder: Option<&str>) -> String {
    let side_repo = folder
        .map(|f| format!("  sideRepo:\n    path: {f}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: quayside.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: {name}\n  namespace: team-a\nspec:\n  target:\n    namespace: team-a-{name}\n  recipients:\n    - {RECIPIENT}\n{side_repo}---\n"
    )
}

/// Render the fixture Components for `environments` (one manifest stream).
fn render(dir: &Path, environments: &str) -> Output {
    let envs = dir.join("environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(envs.join("envs.yaml"), environments).unwrap();
    let f = fixtures();
    Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("render")
        .arg("--components")
        .arg(f.join("components"))
        .arg("--environments")
        .arg(&envs)
        .arg("--credentials")
        .arg(f.join("credentials.yaml"))
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn colliding_folders_are_refused_before_anything_is_written() {
    for (what, second) in [
        ("the same folder", "environments/team-a/dev"),
        ("a folder inside another", "environments/team-a/dev/eu"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let envs = environment("dev", None) + &environment("prod", Some(second));
        let out = render(tmp.path(), &envs);
        assert!(!out.status.success(), "{what}: rendered\n{}", text(&out));
        assert!(text(&out).contains("overlaps"), "{what}: {}", text(&out));
        assert!(
            !tmp.path().join("out").exists(),
            "{what}: something was written"
        );
    }
}

#[test]
fn a_folder_is_written_completely_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    // Where a sealed file must go, the previous output has a folder: the
    // old writer failed half-way, leaving the new kustomization pointing
    // at files it never wrote.
    let blocked = tmp
        .path()
        .join("out/environments/team-a/dev/secrets/web-pull.sops.yaml");
    std::fs::create_dir_all(blocked.join("stray")).unwrap();
    let out = render(tmp.path(), &environment("dev", None));
    assert!(out.status.success(), "{}", text(&out));
    let dir = tmp.path().join("out/environments/team-a/dev");
    assert!(
        blocked.is_file(),
        "the sealed file replaced the stray folder"
    );
    assert!(dir.join("secrets/api-pull.sops.yaml").is_file());
    assert!(dir.join("kustomization.yaml").is_file());
    // Nothing of the staging folder is left next to it.
    let siblings: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(siblings, vec!["dev".to_string()]);
}

#[test]
fn verify_ignores_the_sops_configuration_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(tmp.path(), &environment("dev", None));
    assert!(out.status.success(), "{}", text(&out));
    let root = tmp.path().join("out");
    let config =
        format!("creation_rules:\n  - path_regex: .*\\.sops\\.yaml$\n    age: {RECIPIENT}\n");
    std::fs::write(root.join(".sops.yaml"), &config).unwrap();
    std::fs::write(root.join("environments/.sops.yml"), &config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("verify")
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("2 sealed file(s) checked"),
        "{}",
        text(&out)
    );
}
