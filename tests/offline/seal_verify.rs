//! `quayside verify`, run as the real binary: clean folders pass; plaintext
//! Secrets, files the identity cannot open, and plaintext in old commits fail
//! with the offending file or commit named.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::jiff::Timestamp;
use quayside::seal::{self, Identity};
use secrecy::{ExposeSecret, SecretString};

const TOKEN: &str = "QUAYROBOTTOKEN-4f3e2d1c0b9a8877";

fn manifest(name: &str) -> String {
    let cfg = format!(
        r#"{{"auths":{{"quay.io":{{"auth":"{}","password":"{TOKEN}","username":"org+{name}"}}}}}}"#,
        STANDARD.encode(format!("org+{name}:{TOKEN}"))
    );
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-pull\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{cfg}'\n"
    )
}

fn sealed(name: &str, id: &Identity) -> String {
    seal::seal(
        &SecretString::from(manifest(name)),
        &[id.to_recipient()],
        None,
        None,
        Timestamp::UNIX_EPOCH,
    )
    .unwrap()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn key_file(dir: &Path, id: &Identity) -> std::path::PathBuf {
    let p = dir.join("key.txt");
    std::fs::write(&p, id.to_secret_string().expose_secret()).unwrap();
    p
}

fn verify(dir: &Path, extra: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("verify")
        .arg(dir)
        .args(extra)
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

/// A side-repo folder as quayside writes it: sealed Secrets plus plain files.
fn clean_folder(dir: &Path, id: &Identity) {
    write(
        dir,
        "environments/dev/secrets/web-pull.sops.yaml",
        &sealed("web", id),
    );
    write(
        dir,
        "environments/dev/secrets/api-pull.sops.yaml",
        &sealed("api", id),
    );
    write(
        dir,
        "environments/dev/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
    );
    write(
        dir,
        "environments/dev/README.md",
        "robot org+web is linked\n",
    );
}

fn commit_all(repo: &git2::Repository, message: &str) {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("test", "test@example.com").unwrap();
    let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap();
}

#[test]
fn a_clean_folder_passes_with_and_without_the_identity() {
    let (tmp, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = Identity::generate();
    clean_folder(tmp.path(), &id);
    let out = verify(tmp.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("2 sealed file(s) checked"),
        "{}",
        text(&out)
    );
    let key = key_file(keys.path(), &id);
    let out = verify(tmp.path(), &["--identity".as_ref(), key.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_plaintext_secret_fails_and_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let id = Identity::generate();
    clean_folder(tmp.path(), &id);
    write(
        tmp.path(),
        "environments/dev/secrets/leak.yaml",
        &manifest("leak"),
    );
    write(
        tmp.path(),
        "environments/dev/secrets/half.sops.yaml",
        &sealed("half", &id).replacen(
            "stringData:\n",
            "stringData:\n    extra: plaintext-password-here\n",
            1,
        ),
    );
    let out = verify(tmp.path(), &[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("environments/dev/secrets/leak.yaml: a Secret with a plaintext value at `stringData:.dockerconfigjson`"),
        "{t}"
    );
    assert!(
        t.contains("half.sops.yaml: `stringData:extra` is not encrypted"),
        "{t}"
    );
    assert!(
        !t.contains(TOKEN),
        "the report must not repeat the secret: {t}"
    );
}

#[test]
fn files_the_identity_cannot_open_fail() {
    let (tmp, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (id, other) = (Identity::generate(), Identity::generate());
    clean_folder(tmp.path(), &id);
    write(
        tmp.path(),
        "environments/prod/secrets/web-pull.sops.yaml",
        &sealed("web", &other),
    );
    let key = key_file(keys.path(), &id);
    let out = verify(tmp.path(), &["--identity".as_ref(), key.as_os_str()]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("environments/prod/secrets/web-pull.sops.yaml: does not open with the identity"),
        "{t}"
    );
    assert!(!t.contains("environments/dev/secrets"), "{t}");
}

#[test]
fn history_with_an_old_plaintext_commit_fails_and_names_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let id = Identity::generate();
    let repo = git2::Repository::init(tmp.path()).unwrap();
    write(
        tmp.path(),
        "environments/dev/secrets/web.yaml",
        &manifest("web"),
    );
    commit_all(&repo, "oops: plaintext secret");
    std::fs::remove_file(tmp.path().join("environments/dev/secrets/web.yaml")).unwrap();
    clean_folder(tmp.path(), &id);
    commit_all(&repo, "seal it");

    // The work tree is clean now...
    let out = verify(tmp.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    // ...but history is not.
    let out = verify(tmp.path(), &["--history".as_ref()]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("(oops: plaintext secret) environments/dev/secrets/web.yaml: a Secret with a plaintext value"), "{t}");
    assert!(!t.contains("(seal it)"), "{t}");
}

#[test]
fn history_with_a_token_outside_any_secret_fails_with_the_identity() {
    let (tmp, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = Identity::generate();
    let repo = git2::Repository::init(tmp.path()).unwrap();
    clean_folder(tmp.path(), &id);
    commit_all(&repo, "sealed");
    let key = key_file(keys.path(), &id);
    let with_id = ["--history".as_ref(), "--identity".as_ref(), key.as_os_str()];
    let out = verify(tmp.path(), &with_id);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 commit(s) scanned"), "{}", text(&out));

    // A debugging note pasted the token, base64-encoded, into a README.
    write(
        tmp.path(),
        "notes.md",
        &format!("login with {}\n", STANDARD.encode(TOKEN)),
    );
    commit_all(&repo, "notes");
    std::fs::remove_file(tmp.path().join("notes.md")).unwrap();
    commit_all(&repo, "drop notes");
    let out = verify(tmp.path(), &with_id);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("(notes) notes.md: holds the plaintext of a sealed value"),
        "{t}"
    );
    assert!(
        !t.contains(TOKEN) && !t.contains(&STANDARD.encode(TOKEN)),
        "{t}"
    );
    // Without the identity the values are unknown, and nothing else is wrong.
    let out = verify(tmp.path(), &["--history".as_ref()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn history_outside_a_git_repository_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = verify(tmp.path(), &["--history".as_ref()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("needs a git work tree"),
        "{}",
        text(&out)
    );
}
