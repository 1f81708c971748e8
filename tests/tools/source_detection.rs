//! Private-source detection against a real git server on loopback
//! (`git http-backend` behind basic auth): a public repository reads as
//! public, a private one as private, and an address nobody listens on is
//! reported unreachable after the retries, never guessed.

use std::process::Command;
use std::time::Duration;

use quayside::quay::RetryPolicy;
use quayside::source::{ProbeScope, SourceError, SourceVisibility, detect_visibility};

/// The test git server is on loopback.
const ANY: ProbeScope = ProbeScope::AnyAddress;
use quayside_testkit::git_server::{GitServer, PASSWORD};

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

/// Push one commit so ls-remote has a ref to list.
fn push_initial_commit(server: &GitServer, repo: &str) {
    let work = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(work.path())
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    git(&["commit", "--quiet", "--allow-empty", "-m", "initial"]);
    git(&["push", "--quiet", &server.authed_repo_url(repo), "main"]);
}

#[tokio::test]
async fn public_and_private_repositories_are_told_apart() {
    let server = GitServer::start(&["public-repo"], &["private-repo"]);
    push_initial_commit(&server, "public-repo");
    push_initial_commit(&server, "private-repo");

    let public = detect_visibility(&server.repo_url("public-repo"), &retry(), ANY).await;
    assert_eq!(public, Ok(SourceVisibility::Public));

    let private = detect_visibility(&server.repo_url("private-repo"), &retry(), ANY).await;
    assert_eq!(private, Ok(SourceVisibility::Private));

    // Credentials in the URL are stripped: the check is anonymous, so it still says private.
    let with_creds =
        detect_visibility(&server.authed_repo_url("private-repo"), &retry(), ANY).await;
    assert_eq!(with_creds, Ok(SourceVisibility::Private));
}

#[tokio::test]
async fn an_unreachable_host_is_reported_not_guessed() {
    // A loopback port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/some-repo.git");
    let err = detect_visibility(&url, &retry(), ANY).await.unwrap_err();
    match &err {
        SourceError::Unreachable { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(err.reason(), "SourceUnreachable");
    assert!(err.to_string().contains("not guessed"), "{err}");
}

#[tokio::test]
async fn a_server_down_then_up_is_unreachable_then_answers() {
    let mut server = GitServer::start(&["public-repo"], &[]);
    push_initial_commit(&server, "public-repo");
    let url = server.repo_url("public-repo");
    server.stop();
    let err = detect_visibility(&url, &retry(), ANY).await.unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
    server.restart();
    assert_eq!(
        detect_visibility(&url, &retry(), ANY).await,
        Ok(SourceVisibility::Public)
    );
    assert!(!format!("{err:?} {err}").contains(PASSWORD));
}

/// Like GitHub, the server challenges for a repository it does not show
/// anonymously, existing or not: that reads as private, the safe side.
#[tokio::test]
async fn a_repository_hidden_from_anonymous_readers_reads_private() {
    let server = GitServer::start(&["public-repo"], &[]);
    let r = detect_visibility(&server.repo_url("no-such-repo"), &retry(), ANY).await;
    assert_eq!(r, Ok(SourceVisibility::Private));
}

#[tokio::test]
async fn local_paths_and_unknown_schemes_are_refused() {
    for url in [
        "file:///etc/passwd",
        "/srv/git/app.git",
        "ftp://host/app.git",
    ] {
        let err = detect_visibility(url, &retry(), ANY).await.unwrap_err();
        assert!(
            matches!(err, SourceError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
        assert!(!err.is_transient());
    }
}
