//! Operations: the `quayside run` process serves /healthz, /readyz and
//! /metrics; leader election lets one of two contenders act, and hands
//! over when the leader stops renewing.

use std::time::Duration;

use quayside::leader::{LeaderElector, LeaderError};
use quayside_testkit::harness::Harness;
use quayside_testkit::{cluster, ports, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_serves_health_readiness_and_metrics() {
    let h = Harness::start().await;
    let port = ports::unused().unwrap();
    let _c = h
        .controller_command()
        .listen(&format!("127.0.0.1:{port}"))
        .without_side_repo()
        .args(["--log-format", "json"])
        .spawn();
    let base = format!("http://127.0.0.1:{port}");
    wait::until("/readyz 200", Duration::from_secs(60), || async {
        let (code, _) = ports::http_get(&format!("{base}/readyz")).await?;
        (code == 200).then_some(())
    })
    .await;
    assert_eq!(
        ports::http_get(&format!("{base}/healthz")).await.unwrap().0,
        200
    );
    h.create_component("m", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("m", Duration::from_secs(60)).await;
    let (code, body) = ports::http_get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(code, 200);
    for metric in [
        "quayside_reconciles_total",
        "quayside_kube_writes_total",
        "quayside_quay_api_requests_total",
        "quayside_reconcile_duration_seconds_count{controller=\"component\"}",
        "quayside_component_rotated_timestamp_seconds{",
    ] {
        assert!(body.contains(metric), "{metric} missing:\n{body}");
    }
    let ns = h.workspace.as_str();
    assert!(
        body.contains(&format!(
            "quayside_object_ready{{kind=\"component\",namespace=\"{ns}\",name=\"m\"}} 1"
        )),
        "the Ready Component's gauge:\n{body}"
    );
    assert!(
        body.contains(&format!(
            "quayside_build_info{{version=\"{}\",commit=",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    // Every series is quayside's.
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("quayside_"), "{line}");
    }
    // A deleted Component is forgotten once its cleanup is done: an alert
    // on `quayside_object_ready == 0` must not fire for what is gone.
    let components: kube::Api<quayside::api::Component> =
        kube::Api::namespaced(h.client.clone(), ns);
    cluster::delete_and_wait(&components, "m", Duration::from_secs(60)).await;
    let series = format!("namespace=\"{ns}\",name=\"m\"");
    wait::until("m's series dropped", Duration::from_secs(30), || async {
        let (_, body) = ports::http_get(&format!("{base}/metrics")).await?;
        (!body.contains(&series)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_leader_at_a_time_and_takeover_after_expiry() {
    let cp = cluster::shared();
    let client = cp.client().await;
    let ns = cluster::new_namespace(&client, "lease").await;
    let lease = Duration::from_secs(2);
    let a = LeaderElector::new(client.clone(), &ns, "quayside-leader", "a", lease);
    let b = LeaderElector::new(client.clone(), &ns, "quayside-leader", "b", lease);
    assert!(a.try_acquire().await.unwrap(), "the first contender leads");
    assert!(!b.try_acquire().await.unwrap(), "the second waits");
    assert!(a.try_acquire().await.unwrap(), "the leader renews");
    // `a` stops renewing (crashed): `b` takes over once the lease expires.
    wait::until("b takes over", Duration::from_secs(20), || async {
        b.try_acquire().await.unwrap().then_some(())
    })
    .await;
    assert!(
        matches!(a.try_acquire().await, Err(LeaderError::Lost(..))),
        "the old leader learns it lost the lease and does not act again"
    );
    // A leader that stops on purpose releases: the other leads at once.
    b.release().await.unwrap();
    assert!(
        a.try_acquire().await.unwrap(),
        "a leads right after b released"
    );
}

/// The first lines of `quayside run`'s log until one contains `needle`.
fn log_until(mut cmd: std::process::Command, needle: &str) -> String {
    use std::io::{BufRead, BufReader};
    cmd.stdout(std::process::Stdio::piped());
    let mut child = quayside_testkit::process::KillOnDrop(cmd.spawn().unwrap());
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no log line with {needle:?} within 60 s:\n{seen}");
}

/// Issue 15: the Quay token is checked at start-up with one harmless call,
/// and the log says in one line whether every Component can work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_checks_the_quay_token_at_start_up() {
    let h = Harness::start().await;
    let good = log_until(
        h.controller_command().without_side_repo().command(),
        "Quay token check",
    );
    assert!(good.contains("the token administers its robots"), "{good}");
    // A token Quay does not know: said at once, in words a person can act on.
    std::fs::write(h.dir.path().join("quay-token"), "not-a-token-quay-knows").unwrap();
    let bad = log_until(
        h.controller_command().without_side_repo().command(),
        "Quay token check",
    );
    assert!(
        bad.contains("Quay token check failed") && bad.contains("unknown or expired"),
        "{bad}"
    );
    assert!(
        !bad.contains("not-a-token-quay-knows"),
        "the token is not logged"
    );
}
