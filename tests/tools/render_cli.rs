//! `quayside render` end to end on `fixtures/render/`: the binary's output
//! matches the golden folders, the real `sops` decrypts it, earlier output
//! is re-sealed byte for byte, and stale files in owned folders are pruned.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quayside_testkit::tools;

fn fixtures() -> PathBuf {
    tools::root().join("fixtures/render")
}

fn render(out: &Path, extra: &[&str]) -> Output {
    let f = fixtures();
    Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("render")
        .arg("--components")
        .arg(f.join("components"))
        .arg("--environments")
        .arg(f.join("environments"))
        .arg("--credentials")
        .arg(f.join("credentials.yaml"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn with_identity(flavor: &str) -> Vec<String> {
    vec![
        "--identity".into(),
        fixtures().join("controller.agekey").display().to_string(),
        "--now".into(),
        "2026-01-02T03:04:05Z".into(),
        "--flavor".into(),
        flavor.into(),
    ]
}

fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out)
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf())
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for rel in files(from) {
        let dst = to.join(&rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&rel), dst).unwrap();
    }
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "quayside render failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn fresh_output_matches_golden_and_decrypts_with_sops() {
    let out = tempfile::tempdir().unwrap();
    let args = with_identity("ksops");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = render(out.path(), &args);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    for env in ["dev", "prod", "staging"] {
        assert!(stdout.contains(&format!("{env}: ")), "{stdout}");
    }
    let golden = fixtures().join("golden/ksops");
    assert_eq!(files(out.path()), files(&golden));
    for rel in files(out.path()) {
        let got = std::fs::read_to_string(out.path().join(&rel)).unwrap();
        if rel.to_string_lossy().ends_with(".sops.yaml") {
            assert!(
                !got.contains("FAKE-TOKEN"),
                "{rel:?} holds a token in clear"
            );
            // Fresh seal (new data key), readable by the real sops with the
            // Environment's decryptor key.
            let d = Command::new(tools::bin("sops"))
                .args(["--decrypt", "--input-type", "yaml", "--output-type", "yaml"])
                .arg(out.path().join(&rel))
                .env("SOPS_AGE_KEY_FILE", fixtures().join("argocd.agekey"))
                .output()
                .unwrap();
            assert!(
                d.status.success(),
                "sops: {}",
                String::from_utf8_lossy(&d.stderr)
            );
            let v: serde_json::Value = serde_norway::from_slice(&d.stdout).unwrap();
            assert_eq!(v["type"], "kubernetes.io/dockerconfigjson");
            assert!(
                v["stringData"][".dockerconfigjson"]
                    .as_str()
                    .unwrap()
                    .contains("FAKE-TOKEN-")
            );
        } else {
            let want = std::fs::read_to_string(golden.join(&rel)).unwrap();
            assert_eq!(got, want, "{rel:?}");
        }
    }
}

#[test]
fn rerun_over_earlier_output_is_byte_identical() {
    let out = tempfile::tempdir().unwrap();
    let golden = fixtures().join("golden/flux");
    copy_tree(&golden, out.path());
    // A stale Component's file inside an owned folder, and a file quayside does not own.
    std::fs::write(
        out.path()
            .join("environments/team-a/dev/secrets/old-pull.sops.yaml"),
        "stale",
    )
    .unwrap();
    std::fs::write(out.path().join("notes.txt"), "mine").unwrap();
    let args = with_identity("flux");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&render(out.path(), &args));
    assert!(
        !out.path()
            .join("environments/team-a/dev/secrets/old-pull.sops.yaml")
            .exists()
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("notes.txt")).unwrap(),
        "mine"
    );
    std::fs::remove_file(out.path().join("notes.txt")).unwrap();
    assert_eq!(files(out.path()), files(&golden));
    for rel in files(&golden) {
        assert_eq!(
            std::fs::read(out.path().join(&rel)).unwrap(),
            std::fs::read(golden.join(&rel)).unwrap(),
            "{rel:?} changed although nothing did"
        );
    }
}

#[test]
fn missing_credentials_fail_with_a_clear_message() {
    let out = tempfile::tempdir().unwrap();
    let creds = out.path().join("creds.yaml");
    std::fs::write(&creds, "web:\n  username: a+b\n  token: T\n").unwrap();
    let f = fixtures();
    let o = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("render")
        .arg("--components")
        .arg(f.join("components"))
        .arg("--environments")
        .arg(f.join("environments"))
        .arg("--credentials")
        .arg(&creds)
        .arg("--out")
        .arg(out.path().join("out"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no entry for Component team-a/api"), "{err}");
}
