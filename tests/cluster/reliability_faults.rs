//! Reliability under faults, end to end on the real control plane, the Quay
//! emulator and the real git server: Quay answering 5xx and 429 bursts for a
//! whole provisioning, a concurrent writer racing our ServiceAccount links,
//! the side repository down for a while, and another writer pushing to it
//! while we do.
//!
//! Sizes are small for CI; `QUAYSIDE_LONG=1` runs the long variants (their
//! last results are in docs/reliability.md).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{LocalObjectReference, ServiceAccount};
use kube::api::{Api, PostParams};
use quay_emulator::Faults;
use quayside::api::Component;
use quayside::controller::Metrics;
use quayside::quay::{QuayClient, RetryPolicy};
use quayside_testkit::component::is_ready;
use quayside_testkit::harness::{Harness, ORG, SIDE_REPO};
use quayside_testkit::{long, wait};

/// Component reconcile passes, successful or not.
fn component_passes(metrics: &Metrics) -> u64 {
    ["ok", "error"]
        .iter()
        .map(|r| {
            metrics
                .reconciles
                .get_or_create(&quayside::controller::metrics::ReconcileLabels {
                    controller: "component".into(),
                    result: (*r).into(),
                })
                .get()
        })
        .sum()
}

const ENDPOINTS: &[&str] = &[
    "create_repository",
    "get_repository",
    "change_visibility",
    "delete_repository",
    "get_robot",
    "create_robot",
    "regenerate_robot",
    "delete_robot",
    "grant",
    "revoke",
];

/// Most Quay calls one Component pass without a rotation can make: the
/// repository = 3 (create first, "exists", get, change visibility; or get,
/// create, get again); per robot, ensure = get, put, get again after
/// "Existing robot" = 3 (create-first is put + get = 2), so 6 for both; 2
/// grants. Rotation steps are not requested in this test.
const MAX_LOGICAL_CALLS_PER_PASS: u64 = 11;

/// 429 bursts per re-arm of the faults.
const BURST: u32 = 10;

/// 30% 5xx, and a burst of 429s with Retry-After.
fn quay_faults() -> Faults {
    Faults {
        error_5xx_fraction: 0.3,
        burst_429: BURST,
        retry_after_secs: Some(1),
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provisioning_under_quay_5xx_and_429_bursts_converges_within_the_retry_bound() {
    let n: usize = if long() { 100 } else { 20 };
    let mut h = Harness::start().await;
    let target = h.target_namespace("flt", true).await;
    h.create_environment("prod", &target, &[]).await;

    // A patient client.
    let retry = RetryPolicy {
        max_attempts: 12,
        base: Duration::from_millis(10),
        max_delay: Duration::from_secs(1),
    };
    let mut setup = h.controller_setup();
    setup.quay.retry = retry.clone();
    h.emulator.set_faults(quay_faults());
    h.start_controller_from(setup).await;
    let (metrics, quay) = h.observed.clone().unwrap();

    let url = h.git.repo_url("public-app");
    let names: Vec<String> = (0..n).map(|i| format!("app-{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        let vis = if i % 2 == 0 { "public" } else { "private" };
        h.create_component(name, &url, vis).await;
    }

    let (ready, bursts) = wait_ready_under_bursts(&h, &quay, n).await;
    h.emulator.set_faults(Faults::default());
    let passes = component_passes(&metrics);
    h.stop_controller().await;

    assert_quay_state(&h, &ready, n);
    let figures = assert_call_bounds(&h, &quay, n, passes, &retry);
    eprintln!(
        "FIGURES quay-faults: components={n} {figures} bursts={bursts} component_passes={passes}"
    );
}

/// Wait until all `n` Components are Ready, re-arming a burst of 429s
/// whenever the previous one is used up (and two seconds have passed):
/// throttling comes back again and again, but never covers every call, as
/// Quay's limiter lets some through. Returns them and the bursts armed.
async fn wait_ready_under_bursts(
    h: &Harness,
    quay: &QuayClient,
    n: usize,
) -> (Vec<Component>, u32) {
    let bursts = std::cell::Cell::new(1u32);
    let armed = std::cell::Cell::new(Instant::now());
    let timeout = Duration::from_secs(if long() { 600 } else { 180 });
    // Diagnostics only: just before the deadline, print what is not Ready.
    let watchdog = {
        let api = h.components();
        tokio::spawn(async move {
            tokio::time::sleep(timeout.saturating_sub(Duration::from_secs(5))).await;
            for c in api.list(&Default::default()).await.unwrap().items {
                if !is_ready(&c) {
                    eprintln!(
                        "NOT READY {:?}: {:?}",
                        c.metadata.name,
                        c.status.map(|s| s.conditions)
                    );
                }
            }
        })
    };
    let ready: Vec<Component> = wait::until("every Component Ready under faults", timeout, || {
        let throttled: u64 = ENDPOINTS
            .iter()
            .map(|e| quay.metrics().calls(e, "throttled"))
            .sum();
        if throttled >= u64::from(bursts.get() * BURST)
            && armed.get().elapsed() > Duration::from_secs(2)
        {
            h.emulator.set_faults(quay_faults());
            bursts.set(bursts.get() + 1);
            armed.set(Instant::now());
        }
        let api = h.components();
        async move {
            let list = api.list(&Default::default()).await.ok()?;
            (list.items.len() == n && list.items.iter().all(is_ready)).then_some(list.items)
        }
    })
    .await;
    watchdog.abort();
    (ready, bursts.get())
}

/// Quay's state: one repository and exactly two robots per Component, the
/// right permissions, nothing else.
fn assert_quay_state(h: &Harness, ready: &[Component], n: usize) {
    let state = h.emulator.snapshot();
    assert_eq!(state.repositories.len(), n, "one repository per Component");
    let mut expected_robots = BTreeSet::new();
    for c in ready {
        let s = c.status.as_ref().unwrap();
        let name = c.metadata.name.clone().unwrap();
        let repo_name = format!("{}/{name}", h.workspace);
        let repo = state
            .repository(ORG, &repo_name)
            .unwrap_or_else(|| panic!("repository {repo_name}"));
        let i: usize = name.trim_start_matches("app-").parse().unwrap();
        assert_eq!(repo.public, i.is_multiple_of(2), "visibility of {name}");
        let push = s.push_robot.clone().unwrap();
        let pull = s.pull_robot.clone().unwrap();
        let full = format!("{ORG}/{repo_name}");
        assert_eq!(state.permission(&full, &push), Some("write"), "{push}");
        assert_eq!(state.permission(&full, &pull), Some("read"), "{pull}");
        assert!(expected_robots.insert(push));
        assert!(expected_robots.insert(pull));
    }
    let actual: Vec<String> = state.robots.iter().map(|r| r.name.clone()).collect();
    let actual_set: BTreeSet<String> = actual.iter().cloned().collect();
    assert_eq!(actual.len(), 2 * n, "exactly two robots per Component");
    assert_eq!(actual_set.len(), actual.len(), "no duplicate robot");
    assert_eq!(actual_set, expected_robots, "no leaked robot");
    assert_eq!(state.permissions.len(), 2 * n, "no stray permission");
}

/// Every HTTP call the emulator saw is one the client counted, and the
/// calls stay within the retry bound. Returns the figures, for the log.
fn assert_call_bounds(
    h: &Harness,
    quay: &QuayClient,
    n: usize,
    passes: u64,
    retry: &RetryPolicy,
) -> String {
    let server_calls = h.emulator.api_calls();
    let m = quay.metrics();
    assert_eq!(server_calls, m.total_calls(), "no uncounted call");
    let sum = |outcome: &'static str| ENDPOINTS.iter().map(|e| m.calls(e, outcome)).sum::<u64>();
    let throttled = sum("throttled");
    let server_errors = sum("server_error");
    let retries: u64 = ENDPOINTS.iter().map(|e| m.retries(e)).sum();
    let logical = server_calls - retries;
    // Every pass that reaches Quay starts with get_repository, or with
    // create_repository when the Component has no stored login yet (then a
    // "repository exists" answer adds a get_repository): between one and two
    // of these per pass that reached Quay.
    let logical_of = |endpoint: &'static str| {
        [
            "ok",
            "client_error",
            "throttled",
            "server_error",
            "network_error",
        ]
        .iter()
        .map(|o| m.calls(endpoint, o))
        .sum::<u64>()
            - m.retries(endpoint)
    };
    let starts = logical_of("get_repository") + logical_of("create_repository");
    assert!(throttled > 0, "429 bursts were injected");
    assert!(server_errors > 0, "5xx were injected");
    // The bound: each pass makes at most MAX_LOGICAL_CALLS_PER_PASS calls,
    // each sent at most max_attempts times.
    assert!(starts >= n as u64 && starts <= 2 * passes);
    // At most one pass per start (a bound, not a count).
    let quay_passes = starts;
    let logical_bound = quay_passes * MAX_LOGICAL_CALLS_PER_PASS;
    let call_bound = logical_bound * u64::from(retry.max_attempts);
    assert!(
        logical >= 5 * n as u64,
        "at least the 5 calls of a fresh provisioning per Component"
    );
    assert!(
        logical <= logical_bound,
        "{logical} logical calls > bound {logical_bound} ({quay_passes} passes reaching Quay)"
    );
    assert!(
        server_calls <= call_bound,
        "{server_calls} HTTP calls > bound {call_bound}"
    );
    assert!(retries <= logical * u64::from(retry.max_attempts - 1));
    format!(
        "http_calls={server_calls} logical_calls={logical} retries={retries} \
         injected_429={throttled} injected_5xx={server_errors} quay_passes={quay_passes} \
         logical_bound={logical_bound} http_bound={call_bound}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_account_links_survive_a_concurrent_writer() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("sa409", true).await;
    h.create_environment("prod", &target, &[]).await;
    h.start_controller().await;

    // Another writer keeps adding its own entries to `deployer`, with the
    // resourceVersion as precondition, as a well-behaved tool does.
    let stop = Arc::new(AtomicBool::new(false));
    let conflicts = Arc::new(AtomicU64::new(0));
    let writer = {
        let sas: Api<ServiceAccount> = Api::namespaced(h.client.clone(), &target);
        let stop = stop.clone();
        let conflicts = conflicts.clone();
        tokio::spawn(async move {
            let mut written = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::SeqCst) {
                let mut sa = sas.get("deployer").await.unwrap();
                let entry = format!("theirs-{k}");
                sa.image_pull_secrets
                    .get_or_insert_with(Vec::new)
                    .push(LocalObjectReference {
                        name: entry.clone(),
                    });
                match sas.replace("deployer", &PostParams::default(), &sa).await {
                    Ok(_) => {
                        written.push(entry);
                        k += 1;
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        conflicts.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("writer: {e}"),
                }
                // As fast as the API server takes it: the most contention.
                tokio::task::yield_now().await;
            }
            written
        })
    };

    let url = h.git.repo_url("public-app");
    let n = if long() { 30 } else { 8 };
    for i in 0..n {
        h.create_component(&format!("c{i}"), &url, "public").await;
    }
    for i in 0..n {
        h.wait_component_ready(&format!("c{i}"), Duration::from_secs(120))
            .await;
    }
    stop.store(true, Ordering::SeqCst);
    let theirs = writer.await.unwrap();
    // One more pass must not remove anything either: wait until ours are linked.
    let links = wait::until("our links and theirs", Duration::from_secs(60), || async {
        let links = h.image_pull_secrets(&target, "deployer").await;
        (0..n)
            .all(|i| links.contains(&format!("c{i}-pull")))
            .then_some(links)
    })
    .await;
    assert!(!theirs.is_empty());
    for t in &theirs {
        assert!(links.contains(t), "their entry {t} was lost");
    }
    let set: BTreeSet<&String> = links.iter().collect();
    assert_eq!(set.len(), links.len(), "no duplicate entry");
    eprintln!(
        "FIGURES sa-conflicts: components={n} their_writes={} their_409s={}",
        theirs.len(),
        conflicts.load(Ordering::SeqCst)
    );
    h.stop_controller().await;
}

/// Run git with `args` in `dir` (async: the emulator shares this runtime).
async fn git(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .unwrap()
}

async fn git_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = git(dir, args).await;
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn sealed_files_present(h: &Harness, env: &str, components: &[String]) -> bool {
    let Some(dir) = h.try_clone_side_repo() else {
        return false;
    };
    let root = dir.path().join("repo");
    components.iter().all(|c| {
        root.join(format!(
            "environments/{}/{env}/secrets/{c}-pull.sops.yaml",
            h.workspace
        ))
        .exists()
    })
}

/// A controller with a side repository whose ref updates are all recorded
/// (to prove no push ever rewound the branch), one Environment, and a first
/// Component committed. Returns the fixture and its public source URL.
async fn side_repo_fixture() -> (Harness, String) {
    let mut h = Harness::start().await;
    git_ok(
        &h.git.repo_path(SIDE_REPO),
        &["config", "core.logAllRefUpdates", "always"],
    )
    .await;
    let target = h.target_namespace("gitflt", true).await;
    h.create_environment("prod", &target, &[]).await;
    let mut cfg = h.config();
    // Heartbeat short so a pass is retried soon after an outage.
    cfg.heartbeat = Duration::from_secs(5);
    h.start_controller_with(cfg).await;
    let url = h.git.repo_url("public-app");
    h.create_component("c0", &url, "public").await;
    h.wait_component_ready("c0", Duration::from_secs(60)).await;
    wait::until("c0 committed", Duration::from_secs(60), || async {
        sealed_files_present(&h, "prod", &["c0".into()]).then_some(())
    })
    .await;
    (h, url)
}

/// No force-push: every update of main (in the reflog) moved it forward.
/// Returns the number of updates.
async fn assert_main_only_moved_forward(h: &Harness) -> usize {
    let bare = h.git.repo_path(SIDE_REPO);
    let reflog = git_ok(&bare, &["reflog", "show", "--format=%H", "refs/heads/main"]).await;
    let tips: Vec<&str> = reflog.lines().collect();
    for pair in tips.windows(2) {
        let (newer, older) = (pair[0], pair[1]);
        let ok = git(&bare, &["merge-base", "--is-ancestor", older, newer])
            .await
            .status
            .success();
        assert!(
            ok,
            "main moved from {older} to {newer} without descending from it"
        );
    }
    tips.len()
}

fn quayside_commits(h: &Harness) -> usize {
    h.side_repo_log()
        .iter()
        .filter(|l| l.contains("quayside:"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn side_repo_outage_loses_no_commit() {
    let (mut h, url) = side_repo_fixture().await;
    // The git server goes down while Components are created.
    h.git.stop();
    let during: Vec<String> = (1..=3).map(|i| format!("c{i}")).collect();
    for c in &during {
        h.create_component(c, &url, "public").await;
    }
    for c in &during {
        // Delivery to the cluster does not wait for git.
        h.wait_component_ready(c, Duration::from_secs(60)).await;
    }
    let envs = h.environments();
    let cond = wait::until(
        "Committed=False while git is down",
        Duration::from_secs(60),
        || async {
            let e = envs.get("prod").await.ok()?;
            e.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Committed" && c.status == "False")
        },
    )
    .await;
    assert_eq!(cond.reason, "SideRepoError");
    assert!(
        cond.message.contains("unreachable") && cond.message.contains("will retry"),
        "{}",
        cond.message
    );
    h.git.restart();
    let mut all: Vec<String> = vec!["c0".into()];
    all.extend(during.iter().cloned());
    wait::until(
        "commits land after the outage",
        Duration::from_secs(90),
        || async { sealed_files_present(&h, "prod", &all).then_some(()) },
    )
    .await;
    h.stop_controller().await;
    let ref_updates = assert_main_only_moved_forward(&h).await;
    assert!(
        ref_updates >= 2,
        "c0's commit, then the ones after the outage"
    );
    eprintln!(
        "FIGURES git-outage: outage_components={} quayside_commits={} ref_updates={ref_updates}",
        during.len(),
        quayside_commits(&h)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_racing_writer_on_the_side_repo_loses_no_commit() {
    let (mut h, url) = side_repo_fixture().await;
    // Another writer pushes to the same branch while we commit.
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("other");
    let out = tokio::process::Command::new("git")
        .args(["clone", "--quiet", "--branch", "main"])
        .arg(h.git.authed_repo_url(SIDE_REPO))
        .arg(&clone)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    git_ok(&clone, &["config", "user.name", "other"]).await;
    git_ok(&clone, &["config", "user.email", "other@localhost"]).await;
    let k = if long() { 60 } else { 15 };
    let writer = tokio::spawn(other_writer(clone, k));
    let racing: Vec<String> = (4..=if long() { 20 } else { 8 })
        .map(|i| format!("c{i}"))
        .collect();
    for c in &racing {
        h.create_component(c, &url, "public").await;
    }
    let (subjects, rejected) = writer.await.unwrap();
    let mut all: Vec<String> = vec!["c0".into()];
    all.extend(racing.iter().cloned());
    wait::until(
        "every Component's sealed file on main",
        Duration::from_secs(120),
        || async { sealed_files_present(&h, "prod", &all).then_some(()) },
    )
    .await;
    h.stop_controller().await;

    // Both writers' changes are in main's history and tree.
    let bare = h.git.repo_path(SIDE_REPO);
    let log = git_ok(&bare, &["log", "--format=%s", "main"]).await;
    for s in &subjects {
        assert!(log.lines().any(|l| l == s), "lost commit {s:?}");
    }
    let tree = git_ok(&bare, &["ls-tree", "-r", "--name-only", "main"]).await;
    for i in 0..k {
        assert!(tree.contains(&format!("other/file-{i}.txt")));
    }
    let ref_updates = assert_main_only_moved_forward(&h).await;
    assert!(ref_updates > subjects.len(), "reflog recorded the pushes");
    eprintln!(
        "FIGURES git-race: racing_components={} other_writer_commits={} \
         other_writer_rejections={rejected} quayside_commits={} ref_updates={ref_updates}",
        racing.len(),
        subjects.len(),
        quayside_commits(&h)
    );
}

/// `k` commits by another writer in `clone`, each pushed (after a rebase
/// when rejected, at most 50 tries). Returns their subjects and the
/// rejections.
async fn other_writer(clone: std::path::PathBuf, k: usize) -> (Vec<String>, usize) {
    let mut subjects = Vec::new();
    let mut rejected = 0;
    for i in 0..k {
        std::fs::create_dir_all(clone.join("other")).unwrap();
        std::fs::write(clone.join(format!("other/file-{i}.txt")), format!("{i}\n")).unwrap();
        git_ok(&clone, &["add", "-A"]).await;
        let subject = format!("other writer change {i}");
        git_ok(&clone, &["commit", "--quiet", "-m", &subject]).await;
        let mut pushed = false;
        for _ in 0..50 {
            if git(&clone, &["push", "--quiet", "origin", "main"])
                .await
                .status
                .success()
            {
                pushed = true;
                break;
            }
            rejected += 1;
            git_ok(&clone, &["pull", "--quiet", "--rebase", "origin", "main"]).await;
        }
        assert!(
            pushed,
            "the other writer could not push change {i} in 50 tries"
        );
        subjects.push(subject);
        tokio::time::sleep(Duration::from_millis(30)).await; // pacing
    }
    (subjects, rejected)
}
