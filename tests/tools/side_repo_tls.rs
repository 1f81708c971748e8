//! The side-repository writer over HTTPS (`testcluster gitserver --tls-cert`,
//! a certificate from a CA made for the test): git (libgit2) and the
//! pull-request forge (reqwest) succeed when that CA is the extra CA
//! (`quayside run --extra-ca-file`), and without it fail at once with
//! `GitError::Untrusted`, a permanent error that names the flag.

use std::path::Path;

use quay_emulator::TestAuthority;
use quayside::gitops::{
    CommitMessage, DeliveryMode, GitAuth, GitError, PassPlan, SideRepo, SideRepoConfig,
};
use quayside::render::RenderedFile;
use quayside::tls::ExtraCa;
use quayside_testkit::git_server::{GitServer, PASSWORD, USER};
use secrecy::SecretString;

fn config(url: String, workdir: &Path) -> SideRepoConfig {
    SideRepoConfig {
        url,
        branch: "main".into(),
        auth: GitAuth::Basic {
            username: USER.to_string(),
            password: SecretString::from(PASSWORD.to_string()),
        },
        workdir: workdir.to_path_buf(),
        mode: DeliveryMode::Direct,
        author_name: "quayside".into(),
        author_email: "quayside@example.invalid".into(),
        max_push_attempts: 5,
    }
}

fn pull_request_mode(api_base: &str) -> DeliveryMode {
    DeliveryMode::PullRequest {
        api_url: format!("{api_base}/api/v1"),
        owner: "team".into(),
        repo: "side".into(),
        token: SecretString::from(PASSWORD.to_string()),
    }
}

fn plan(tag: &str) -> PassPlan {
    let dir = "environments/dev".to_string();
    let files = vec![RenderedFile {
        path: format!("{dir}/secrets/api-pull.sops.yaml"),
        contents: format!("sealed api {tag}\n").into_bytes(),
    }];
    PassPlan {
        folders: [(dir, files)].into_iter().collect(),
        message: CommitMessage {
            summary: format!("Deliver api to dev ({tag})"),
            body: "Why: a test pass.".into(),
            components: vec!["api".into()],
            environments: vec!["dev".into()],
            generation: Some(1),
        },
        ..PassPlan::default()
    }
}

/// A CA, a git server presenting a certificate it signed, and the CA's
/// certificate in a file as `--extra-ca-file` would name it.
struct Tls {
    server: GitServer,
    ca: ExtraCa,
    dir: tempfile::TempDir,
}

fn tls_server() -> Tls {
    let authority = TestAuthority::generate().unwrap();
    let server = GitServer::start_tls(&[], &["side"], authority.cert_pem(), authority.key_pem());
    assert!(
        server.base_url().starts_with("https://"),
        "{}",
        server.base_url()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, authority.ca_pem()).unwrap();
    Tls {
        server,
        ca: ExtraCa::load(&file).unwrap(),
        dir,
    }
}

fn assert_untrusted(err: &GitError, host_of: &str, names: &str) {
    let text = err.to_string();
    assert!(matches!(err, GitError::Untrusted { .. }), "{err:?}");
    assert!(!err.is_transient(), "{err:?}");
    assert!(text.contains(names), "{text}");
    let host = host_of.split_once("://").unwrap().1;
    assert!(text.contains(host), "names the server: {text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn git_over_https_pushes_with_the_extra_ca_and_is_untrusted_without_it() {
    let t = tls_server();
    let url = t.server.repo_url("side");

    let work = tempfile::tempdir().unwrap();
    let err = SideRepo::open(config(url.clone(), work.path())).unwrap_err();
    assert_untrusted(&err, t.server.base_url(), "--extra-ca-file");

    let other = t.dir.path().join("other-ca.pem");
    std::fs::write(&other, TestAuthority::generate().unwrap().ca_pem()).unwrap();
    let wrong = ExtraCa::load(&other).unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = SideRepo::open_trusting(config(url.clone(), work.path()), Some(wrong)).unwrap_err();
    assert_untrusted(&err, t.server.base_url(), "other-ca.pem");

    let work = tempfile::tempdir().unwrap();
    let mut repo = SideRepo::open_trusting(config(url, work.path()), Some(t.ca.clone())).unwrap();
    let out = repo.apply(&plan("g1")).unwrap();
    let commit = out.commit.expect("a commit");
    let on_server = std::process::Command::new("git")
        .arg("-C")
        .arg(t.server.repo_path("side"))
        .args(["rev-parse", "main"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&on_server.stdout).trim(), commit);
}

#[test]
fn the_forge_over_https_opens_a_pull_request_with_the_extra_ca_only() {
    // git over plain HTTP, so only the forge's TLS is in question.
    let git = GitServer::start(&[], &["side"]);
    let forge = tls_server();
    let work = tempfile::tempdir().unwrap();
    SideRepo::open(config(git.repo_url("side"), work.path()))
        .unwrap()
        .apply(&plan("base"))
        .unwrap();

    let mut cfg = config(git.repo_url("side"), work.path());
    cfg.mode = pull_request_mode(forge.server.base_url());
    let err = SideRepo::open(cfg.clone())
        .unwrap()
        .apply(&plan("g2"))
        .unwrap_err();
    assert_untrusted(&err, forge.server.base_url(), "--extra-ca-file");

    let mut repo = SideRepo::open_trusting(cfg, Some(forge.ca.clone())).unwrap();
    let out = repo.apply(&plan("g2")).unwrap();
    let url = out.pull_request.expect("a pull request");
    assert!(url.starts_with("https://"), "{url}");
    assert!(url.ends_with("/pulls/1"), "{url}");
}
