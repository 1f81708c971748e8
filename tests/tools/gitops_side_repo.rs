//! The side-repository writer against a real git server on loopback
//! (`git http-backend` behind basic auth, with a pulls API in GitHub's shape).

use std::path::Path;
use std::process::Command;

use quayside::gitops::{
    CommitMessage, DeliveryMode, GitAuth, GitError, PassPlan, SideRepo, SideRepoConfig,
};
use quayside::render::RenderedFile;
use quayside_testkit::git_server::{GitServer, PASSWORD, USER};
use secrecy::SecretString;

fn auth(password: &str) -> GitAuth {
    GitAuth::Basic {
        username: USER.to_string(),
        password: SecretString::from(password.to_string()),
    }
}

fn config(url: String, workdir: &Path, auth: GitAuth) -> SideRepoConfig {
    SideRepoConfig {
        url,
        branch: "main".into(),
        auth,
        workdir: workdir.to_path_buf(),
        mode: DeliveryMode::Direct,
        author_name: "quayside".into(),
        author_email: "quayside@example.invalid".into(),
        max_push_attempts: 5,
    }
}

/// A folder `environments/<env>` with one file per component and a kustomization.
fn folder(env: &str, components: &[&str], tag: &str) -> (String, Vec<RenderedFile>) {
    let dir = format!("environments/{env}");
    let mut files = vec![RenderedFile {
        path: format!("{dir}/kustomization.yaml"),
        contents: format!("# {env} {components:?}\n").into_bytes(),
    }];
    for c in components {
        files.push(RenderedFile {
            path: format!("{dir}/secrets/{c}-pull.sops.yaml"),
            contents: format!("sealed {c} {tag}\n").into_bytes(),
        });
    }
    (dir, files)
}

fn plan(folders: Vec<(String, Vec<RenderedFile>)>, removed: &[&str], summary: &str) -> PassPlan {
    let environments = folders
        .iter()
        .map(|(d, _)| d.rsplit('/').next().unwrap().to_string())
        .chain(
            removed
                .iter()
                .map(|r| r.rsplit('/').next().unwrap().to_string()),
        )
        .collect();
    PassPlan {
        folders: folders.into_iter().collect(),
        removed_folders: removed.iter().map(|s| s.to_string()).collect(),
        removed_files: Vec::new(),
        message: CommitMessage {
            summary: summary.into(),
            body: "Why: a test pass.".into(),
            components: vec!["api".into()],
            environments,
            generation: Some(2),
        },
    }
}

/// Run git in `dir` (a bare repository on the server, or a clone) and return stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "someone")
        .env("GIT_AUTHOR_EMAIL", "someone@example.invalid")
        .env("GIT_COMMITTER_NAME", "someone")
        .env("GIT_COMMITTER_EMAIL", "someone@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn try_git(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

/// Another writer: clone with the CLI, add a file, push. Returns its commit.
fn foreign_push(server: &GitServer, repo: &str, path: &str, content: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("c");
    let ok = Command::new("git")
        .args(["clone", "--quiet", &server.authed_repo_url(repo)])
        .arg(&clone)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    git(&clone, &["checkout", "-q", "-B", "main"]);
    let file = clone.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, content).unwrap();
    git(&clone, &["add", path]);
    git(
        &clone,
        &["commit", "-q", "-m", &format!("someone else adds {path}")],
    );
    git(&clone, &["push", "-q", "origin", "main"]);
    git(&clone, &["rev-parse", "HEAD"]).trim().to_string()
}

fn files_on_main(bare: &Path) -> Vec<String> {
    git(bare, &["ls-tree", "-r", "--name-only", "main"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn first_pass_on_an_empty_remote_then_no_commit_when_nothing_changed() {
    let server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    assert_eq!(repo.read("environments/dev/kustomization.yaml"), None);

    let p = plan(
        vec![folder("dev", &["api", "web"], "g1")],
        &[],
        "Deliver api, web to dev",
    );
    let first = repo.apply(&p).unwrap();
    let commit = first.commit.clone().expect("a commit");
    assert_eq!(first.head, commit);
    let bare = server.repo_path("side");
    assert_eq!(git(&bare, &["rev-parse", "main"]).trim(), commit);
    assert_eq!(
        files_on_main(&bare),
        vec![
            "environments/dev/kustomization.yaml",
            "environments/dev/secrets/api-pull.sops.yaml",
            "environments/dev/secrets/web-pull.sops.yaml",
        ]
    );
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%B", "main"]).trim_end(),
        "Deliver api, web to dev\n\nWhy: a test pass.\n\n\
         Quayside-Component: api\nQuayside-Environment: dev\nQuayside-Generation: 2"
    );
    assert_eq!(
        git(
            &bare,
            &[
                "log",
                "-1",
                "--format=%(trailers:key=Quayside-Environment,valueonly)",
                "main"
            ]
        )
        .trim(),
        "dev"
    );
    assert_eq!(
        repo.read("environments/dev/secrets/api-pull.sops.yaml")
            .as_deref(),
        Some("sealed api g1\n")
    );

    // The same plan again, even after a fresh sync: nothing to commit.
    repo.sync().unwrap();
    let second = repo.apply(&p).unwrap();
    assert_eq!(second.commit, None);
    assert_eq!(second.head, commit);
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "1");
}

#[test]
fn prunes_removed_environments_and_components_but_nothing_it_does_not_own() {
    let server = GitServer::start(&[], &["side"]);
    let foreign = foreign_push(
        &server,
        "side",
        "apps/team/deployment.yaml",
        "kind: Deployment\n",
    );
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();

    repo.apply(&plan(
        vec![
            folder("dev", &["api", "web"], "g1"),
            folder("prod", &["api"], "g1"),
        ],
        &[],
        "Deliver to dev and prod",
    ))
    .unwrap();
    // A file someone else put inside an owned folder is pruned; one outside stays.
    let other = foreign_push(&server, "side", "environments/notes.md", "ours? no\n");
    repo.sync().unwrap();

    let out = repo
        .apply(&plan(
            vec![folder("dev", &["api"], "g1")],
            &["environments/prod"],
            "Remove web and prod",
        ))
        .unwrap();
    assert!(out.commit.is_some());
    let bare = server.repo_path("side");
    assert_eq!(
        files_on_main(&bare),
        vec![
            "apps/team/deployment.yaml",
            "environments/dev/kustomization.yaml",
            "environments/dev/secrets/api-pull.sops.yaml",
            "environments/notes.md",
        ]
    );
    assert!(try_git(
        &bare,
        &["merge-base", "--is-ancestor", &foreign, "main"]
    ));
    assert!(try_git(
        &bare,
        &["merge-base", "--is-ancestor", &other, "main"]
    ));
    assert_eq!(
        git(&bare, &["show", "main:apps/team/deployment.yaml"]),
        "kind: Deployment\n"
    );
}

#[test]
fn queued_passes_go_out_as_one_commit_and_each_knows_if_it_changed_anything() {
    let server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    repo.apply(&plan(
        vec![folder("dev", &["api"], "g1"), folder("old", &["api"], "g1")],
        &[],
        "First",
    ))
    .unwrap();
    let bare = server.repo_path("side");
    // dev rotates, prod and same are new, and a pass gives "old" up while
    // another takes it over (the give-up names no Environment).
    let mut give_up = plan(vec![], &[], "Give old up");
    give_up.removed_files = vec![
        "environments/old/kustomization.yaml".into(),
        "environments/old/secrets/api-pull.sops.yaml".into(),
    ];
    let plans = vec![
        plan(vec![folder("dev", &["api"], "g2")], &[], "Rotate dev"),
        plan(vec![folder("prod", &["api"], "g2")], &[], "Deliver prod"),
        plan(vec![folder("same", &[], "g1")], &[], "Deliver same"),
        plan(vec![folder("old", &["web"], "g1")], &[], "Take old over"),
        give_up,
    ];
    let done = repo.apply_all(&plans).unwrap();
    assert_eq!(done.changed, vec![true, true, true, true, true]);
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "2");
    assert_eq!(
        done.outcome.commit.as_deref(),
        Some(git(&bare, &["rev-parse", "main"]).trim())
    );
    assert_eq!(
        files_on_main(&bare),
        vec![
            "environments/dev/kustomization.yaml",
            "environments/dev/secrets/api-pull.sops.yaml",
            "environments/old/kustomization.yaml",
            "environments/old/secrets/web-pull.sops.yaml",
            "environments/prod/kustomization.yaml",
            "environments/prod/secrets/api-pull.sops.yaml",
            "environments/same/kustomization.yaml",
        ],
        "the removals of the group come before its writes"
    );
    let message = git(&bare, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.starts_with(
            "quayside: pull credentials of api in 4 Environments (5 passes in one commit)\n"
        ),
        "{message}"
    );
    assert!(
        message.contains("* Rotate dev\n") && message.contains("* Take old over\n"),
        "{message}"
    );
    assert!(
        message.contains("Quayside-Environment: prod\n"),
        "{message}"
    );

    // Again, with one pass that changes something: only it says so, and
    // only its message makes the commit's.
    repo.sync().unwrap();
    let again = repo
        .apply_all(&[
            plan(vec![folder("dev", &["api"], "g2")], &[], "Rotate dev"),
            plan(vec![folder("prod", &["api"], "g3")], &[], "Rotate prod"),
        ])
        .unwrap();
    assert_eq!(again.changed, vec![false, true]);
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "3");
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%s", "main"]).trim(),
        "Rotate prod"
    );

    // Two passes writing overlapping folders are never mixed in one commit.
    let crowded = repo.apply_all(&[
        plan(vec![folder("dev", &["api"], "g4")], &[], "Rotate dev"),
        plan(vec![folder("dev/inner", &["api"], "g4")], &[], "Nested"),
    ]);
    assert!(
        matches!(&crowded, Err(GitError::Crowded { folder }) if folder == "environments/dev/inner"),
        "{crowded:?}"
    );
    assert!(crowded.unwrap_err().is_transient());
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "3");
}

#[test]
fn a_concurrent_push_is_redone_on_top_never_forced() {
    let server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    repo.apply(&plan(vec![folder("dev", &["api"], "g1")], &[], "First"))
        .unwrap();
    repo.sync().unwrap();

    // Someone pushes between our fetch and our push.
    let theirs = foreign_push(&server, "side", "README.md", "hello\n");
    let out = repo
        .apply(&plan(
            vec![folder("dev", &["api"], "g2")],
            &[],
            "Rotate api",
        ))
        .unwrap();
    let ours = out.commit.expect("our commit");
    let bare = server.repo_path("side");
    assert_eq!(git(&bare, &["rev-parse", "main"]).trim(), ours);
    assert!(
        try_git(&bare, &["merge-base", "--is-ancestor", &theirs, "main"]),
        "their commit must stay"
    );
    assert_eq!(git(&bare, &["show", "main:README.md"]), "hello\n");
    assert_eq!(
        git(
            &bare,
            &["show", "main:environments/dev/secrets/api-pull.sops.yaml"]
        ),
        "sealed api g2\n"
    );
    // One commit for our pass on top of theirs, with our message.
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "3");
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%s", "main"]).trim(),
        "Rotate api"
    );
    assert_eq!(git(&bare, &["rev-parse", "main~1"]).trim(), theirs);
}

#[test]
fn wrong_password_is_an_auth_error_and_the_work_is_pushed_once_fixed() {
    // Public: anonymous fetch works, only the push needs the credentials.
    let server = GitServer::start(&["side"], &[]);
    let work = tempfile::tempdir().unwrap();
    let wrong = "not-the-password-9f8e7d";
    let cfg = config(server.repo_url("side"), work.path(), auth(wrong));
    assert!(!format!("{cfg:?}").contains(wrong));
    let mut repo = SideRepo::open(cfg).unwrap();
    let p = plan(
        vec![folder("dev", &["api"], "g1")],
        &[],
        "Deliver api to dev",
    );
    let err = repo.apply(&p).unwrap_err();
    assert!(matches!(err, GitError::Auth { .. }), "{err:?}");
    assert!(!err.is_transient());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(
        shown.contains("credentials") || shown.contains("authentication"),
        "{shown}"
    );
    let bare = server.repo_path("side");
    assert!(
        !try_git(&bare, &["rev-parse", "--verify", "main"]),
        "nothing was pushed"
    );
    drop(repo);

    // A restart with the right password: the kept commit is pushed, no
    // new one is needed.
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    assert_eq!(
        repo.read("environments/dev/secrets/api-pull.sops.yaml")
            .as_deref(),
        Some("sealed api g1\n"),
        "the unpushed pass is still there"
    );
    let out = repo.apply(&p).unwrap();
    assert!(out.commit.is_some());
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%s", "main"]).trim(),
        "Deliver api to dev"
    );
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "1");
}

#[test]
fn server_down_is_transient_and_the_next_pass_succeeds() {
    let mut server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    server.stop();
    let p = plan(
        vec![folder("dev", &["api"], "g1")],
        &[],
        "Deliver api to dev",
    );
    let err = repo.apply(&p).unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(matches!(err, GitError::Unreachable { .. }), "{err:?}");
    assert!(repo.sync().unwrap_err().is_transient());

    server.restart();
    repo.sync().unwrap();
    let out = repo.apply(&p).unwrap();
    let bare = server.repo_path("side");
    assert_eq!(
        git(&bare, &["rev-parse", "main"]).trim(),
        out.commit.unwrap()
    );
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "1");
}

fn open_pulls(server: &GitServer) -> Vec<serde_json::Value> {
    let url = format!(
        "{}/api/v1/repos/team/side/pulls?state=open",
        server.base_url()
    );
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .header("Authorization", format!("token {PASSWORD}"))
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    resp.json().unwrap()
}

#[test]
fn pull_request_mode_opens_one_pull_request_and_updates_it() {
    let server = GitServer::start(&[], &["side"]);
    let base = foreign_push(&server, "side", "README.md", "side repo\n");
    let work = tempfile::tempdir().unwrap();
    let token = "s3cret-test-password";
    assert_eq!(token, PASSWORD);
    let mut cfg = config(server.repo_url("side"), work.path(), auth(PASSWORD));
    cfg.mode = DeliveryMode::PullRequest {
        api_url: format!("{}/api/v1", server.base_url()),
        owner: "team".into(),
        repo: "side".into(),
        token: SecretString::from(PASSWORD.to_string()),
    };
    let mut repo = SideRepo::open(cfg).unwrap();

    let first = repo
        .apply(&plan(
            vec![folder("dev", &["api"], "g1")],
            &[],
            "Deliver api to dev",
        ))
        .unwrap();
    let url = first.pull_request.clone().expect("a pull request");
    assert!(url.ends_with("/pulls/1"), "{url}");
    let pulls = open_pulls(&server);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["head"]["ref"], "quayside/update-main");
    assert_eq!(pulls[0]["base"]["ref"], "main");
    let body = pulls[0]["body"].as_str().unwrap();
    assert!(
        body.contains("added: `environments/dev/secrets/api-pull.sops.yaml`"),
        "{body}"
    );
    assert!(body.contains("`dev`"), "{body}");
    let bare = server.repo_path("side");
    assert_eq!(
        git(&bare, &["rev-parse", "main"]).trim(),
        base,
        "the target branch is untouched"
    );
    assert_eq!(
        git(&bare, &["rev-parse", "quayside/update-main"]).trim(),
        first.head
    );

    // A second pass: same branch, same pull request, body updated.
    let second = repo
        .apply(&plan(
            vec![
                folder("dev", &["api", "web"], "g1"),
                folder("prod", &["api"], "g1"),
            ],
            &[],
            "Add web and prod",
        ))
        .unwrap();
    assert_eq!(second.pull_request.as_deref(), Some(url.as_str()));
    let pulls = open_pulls(&server);
    assert_eq!(pulls.len(), 1, "still exactly one open pull request");
    let body = pulls[0]["body"].as_str().unwrap();
    assert!(
        body.contains("added: `environments/prod/secrets/api-pull.sops.yaml`"),
        "{body}"
    );
    assert!(
        body.contains("added: `environments/dev/secrets/web-pull.sops.yaml`"),
        "{body}"
    );
    assert!(
        body.contains("Add web and prod") && body.contains("Deliver api to dev"),
        "{body}"
    );
    assert!(pulls[0]["title"].as_str().unwrap().contains("dev, prod"));
    assert!(try_git(
        &bare,
        &[
            "merge-base",
            "--is-ancestor",
            &first.head,
            "quayside/update-main"
        ]
    ));
    assert!(!body.contains(token));

    // Nothing new: no push, the same pull request.
    let third = repo
        .apply(&plan(
            vec![
                folder("dev", &["api", "web"], "g1"),
                folder("prod", &["api"], "g1"),
            ],
            &[],
            "Again",
        ))
        .unwrap();
    assert_eq!(third.commit, None);
    assert_eq!(third.head, second.head);
    assert_eq!(open_pulls(&server).len(), 1);
}

#[test]
fn a_hook_rejection_is_a_clear_permanent_error() {
    let server = GitServer::start(&[], &["side"]);
    let hook = server.repo_path("side").join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    let err = repo
        .apply(&plan(vec![folder("dev", &["api"], "g1")], &[], "Deliver"))
        .unwrap_err();
    assert!(matches!(err, GitError::Rejected { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("refs/heads/main"), "{err}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));
}

#[test]
fn a_wrong_forge_token_is_a_forge_error_without_the_token() {
    let server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let bad = "bad-forge-token-5c4b3a";
    let mut cfg = config(server.repo_url("side"), work.path(), auth(PASSWORD));
    cfg.mode = DeliveryMode::PullRequest {
        api_url: format!("{}/api/v1", server.base_url()),
        owner: "team".into(),
        repo: "side".into(),
        token: SecretString::from(bad.to_string()),
    };
    assert!(!format!("{cfg:?}").contains(bad));
    let mut repo = SideRepo::open(cfg).unwrap();
    let err = repo
        .apply(&plan(vec![folder("dev", &["api"], "g1")], &[], "Deliver"))
        .unwrap_err();
    match &err {
        GitError::Forge { status, .. } => assert_eq!(*status, Some(401)),
        other => panic!("expected a forge error, got {other:?}"),
    }
    assert!(!err.is_transient());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(bad), "{shown}");
    assert!(shown.contains("token"), "{shown}");
}

/// Processes (git http-backend and the git commands under it) started for
/// the git server rooted at `root`, found by their CGI environment.
fn cgi_processes(root: &Path) -> Vec<u32> {
    let needle = format!("GIT_PROJECT_ROOT={}", root.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

fn basic_auth() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
}

// Regression: git-http-backend promised a body that never comes reads its
// empty stdin in a busy loop forever; one such orphan burnt a CPU for half
// an hour of test runs. The server now buffers the whole body first.
#[test]
fn a_push_body_cut_short_is_refused_before_any_git_process_starts() {
    use std::io::{Read, Write};
    let server = GitServer::start(&[], &["side"]);
    let root = server.repo_path("side").parent().unwrap().to_path_buf();
    let mut conn =
        std::net::TcpStream::connect(server.base_url().trim_start_matches("http://")).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "POST /side.git/git-receive-pack HTTP/1.1\r\nHost: test\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/x-git-receive-pack-request\r\nContent-Length: 3007\r\n\r\n0000",
        basic_auth()
    )
    .unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(cgi_processes(&root), Vec::<u32>::new());
}

// The git server killed (as the outage tests do) while a CGI program still
// reads its request: `testcluster cgi-exec`, which the server runs every CGI
// program through, makes the kernel kill the program with its parent.
#[test]
fn a_cgi_program_dies_with_the_git_server_that_started_it() {
    let testcluster = quayside_testkit::tools::bin("testcluster");
    let mut parent = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} cgi-exec /bin/sleep 300 & echo $!; wait",
            testcluster.display()
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(parent.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let child: u32 = line.trim().parse().unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    quayside_testkit::wait::until_blocking(
        "cgi-exec to become sleep",
        std::time::Duration::from_secs(10),
        || {
            std::fs::read_to_string(format!("/proc/{child}/cmdline"))
                .is_ok_and(|c| c.starts_with("/bin/sleep"))
                .then_some(())
        },
    );
    parent.kill().unwrap();
    parent.wait().unwrap();
    quayside_testkit::wait::until_blocking(
        "the CGI program to die with its parent",
        std::time::Duration::from_secs(10),
        || (!alive(child)).then_some(()),
    );
}

/// A pass stores what it wrote and nothing else: libgit2's mempack dump
/// packed each new commit with its whole tree, so every commit stored a
/// copy of the whole side repository (72 % of the controller's CPU over
/// 6,000 Environment folders).
#[test]
fn a_pass_stores_only_the_objects_it_wrote() {
    let (_server, work, mut repo) = with_folders(40);
    let before = pack_objects(work.path());
    let one = plan(vec![folder("env7", &["api", "web"], "g2")], &[], "one");
    assert!(repo.apply(&one).unwrap().commit.is_some());
    let stored = pack_objects(work.path()) - before;
    // The commit, the root, `environments`, env7 and its `secrets` trees,
    // and the two changed files: 7. With the whole tree it was 89.
    assert!(stored <= 7, "the pass stored {stored} objects");
    assert_eq!(
        repo.read("environments/env3/secrets/web-pull.sops.yaml")
            .as_deref(),
        Some("sealed web g1\n")
    );
}

/// A working repository whose first pass wrote `n` Environment folders
/// (`env0`…, each with `api` and `web` at generation `g1`) and pushed them.
fn with_folders(n: usize) -> (GitServer, tempfile::TempDir, SideRepo) {
    let server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    let many: Vec<_> = (0..n)
        .map(|i| folder(&format!("env{i}"), &["api", "web"], "g1"))
        .collect();
    let first = repo.apply(&plan(many, &[], "many")).unwrap();
    assert!(first.commit.is_some());
    (server, work, repo)
}

/// Objects in the working repository's packs, by their indexes.
fn pack_objects(workdir: &Path) -> usize {
    let dir = workdir.join("objects").join("pack");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .map(|idx| {
            let out = Command::new("git")
                .arg("show-index")
                .stdin(std::fs::File::open(&idx).unwrap())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).lines().count()
        })
        .sum()
}

/// Every pass stores a pack; past `SideRepo::MAX_PACKS` they are merged
/// into one, and nothing reachable is lost (each pass slowed down as
/// packs piled up: one per commit).
#[test]
fn packs_are_merged_once_they_pile_up_and_nothing_is_lost() {
    let server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    let passes = SideRepo::MAX_PACKS + 8;
    let mut most = 0;
    for i in 0..passes {
        let tag = format!("g{i}");
        let p = plan(
            vec![folder(&format!("env{i}"), &["api"], &tag)],
            &[],
            "pass",
        );
        assert!(repo.apply(&p).unwrap().commit.is_some());
        most = most.max(repo.pack_count());
    }
    assert!(
        most <= SideRepo::MAX_PACKS + 1,
        "packs were never merged: {most} after {passes} passes"
    );
    assert!(repo.pack_count() < passes, "{} packs", repo.pack_count());
    // Everything is still there, in the working repository and pushed.
    for i in 0..passes {
        let path = format!("environments/env{i}/secrets/api-pull.sops.yaml");
        assert_eq!(
            repo.read(&path).as_deref(),
            Some(format!("sealed api g{i}\n").as_str())
        );
    }
    let bare = server.repo_path("side");
    assert_eq!(files_on_main(&bare).len(), passes * 2);
    let next = plan(vec![folder("late", &["api"], "g")], &[], "after the merge");
    assert!(repo.apply(&next).unwrap().commit.is_some());
    assert!(
        try_git(work.path(), &["fsck", "--no-dangling"]),
        "the working repository is whole"
    );
    // The merged packs are gone from the disk and from this process's
    // memory: a pack file still mapped after its removal keeps its pages
    // (and its disk space) for the life of the process, and on a busy
    // platform that grew to gigabytes of RSS.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let workdir = work.path().display().to_string();
    let stale: Vec<&str> = maps
        .lines()
        .filter(|l| l.contains(&workdir) && l.ends_with("(deleted)"))
        .collect();
    assert!(stale.is_empty(), "removed packs still mapped: {stale:#?}");
}

/// A group that changes nothing, with every commit pushed (a no-op
/// heartbeat), answers from the references alone: it opened a second
/// handle on the repository, read the tip's commit and tree, rewrote the
/// branch reference and counted the packs, every group.
#[test]
fn a_group_that_changes_nothing_reads_only_the_references() {
    let server = GitServer::start(&[], &["side"]);
    let work = tempfile::tempdir().unwrap();
    let mut repo =
        SideRepo::open(config(server.repo_url("side"), work.path(), auth(PASSWORD))).unwrap();
    let first = plan(vec![folder("env1", &["api"], "g1")], &[], "first");
    let pushed = repo.apply(&first).unwrap();
    assert!(pushed.commit.is_some());
    // Without its objects the repository can only answer from references.
    let packs = work.path().join("objects/pack");
    let aside = tempfile::tempdir().unwrap();
    let moved = aside.path().join("pack");
    std::fs::rename(&packs, &moved).unwrap();
    std::fs::create_dir(&packs).unwrap();

    let done = repo.apply_all(&[PassPlan::default(), PassPlan::default()]);
    std::fs::remove_dir(&packs).unwrap();
    std::fs::rename(&moved, &packs).unwrap();
    let done = done.unwrap();
    assert_eq!(done.outcome.commit, None);
    assert_eq!(done.outcome.head, pushed.head);
    assert_eq!(done.changed, vec![false, false]);
    // With its objects back, the same plan again changes nothing.
    assert_eq!(repo.apply(&first).unwrap().commit, None);
}

/// Between bursts the working repository lets go of its mapped packs:
/// libgit2 keeps a pack's pages mapped while the handle that read them
/// lives, and they counted in the controller's RSS at rest.
#[test]
fn released_memory_leaves_no_pack_mapped() {
    let (_server, work, mut repo) = with_folders(20);
    let packs = work.path().join("objects").join("pack");
    let mapped = || {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let dir = packs.canonicalize().unwrap();
        maps.lines()
            .filter(|l| l.contains(&*dir.to_string_lossy()) && l.ends_with(".pack"))
            .count()
    };
    assert_eq!(
        repo.read("environments/env3/secrets/web-pull.sops.yaml")
            .as_deref(),
        Some("sealed web g1\n")
    );
    assert!(mapped() > 0, "reading maps the pack");
    repo.release_memory();
    assert_eq!(mapped(), 0, "a pack still mapped after the release");
    // And the repository reads as before.
    assert_eq!(
        repo.read("environments/env3/secrets/web-pull.sops.yaml")
            .as_deref(),
        Some("sealed web g1\n")
    );
}
