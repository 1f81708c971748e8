//! Two `quayside run` processes on the real control plane, as the shipped
//! two-replica Deployment runs them: both report ready, one acts; a leader
//! killed with SIGKILL is replaced within the lease; one stopped with
//! SIGTERM hands over at once; and a node whose wall clock is off by more
//! than a lease never makes two leaders. Figures go to docs/reliability.md.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use quayside_testkit::harness::Harness;
use quayside_testkit::process::KillOnDrop;
use quayside_testkit::{cluster, ports, wait};

const T: Duration = Duration::from_secs(60);

struct Replica {
    name: &'static str,
    process: KillOnDrop,
    port: u16,
}

fn replica(
    h: &Harness,
    ns: &str,
    name: &'static str,
    lease: Duration,
    offset: Option<&str>,
) -> Replica {
    let port = ports::unused().unwrap();
    let mut cmd = h
        .controller_command()
        .listen(&format!("127.0.0.1:{port}"))
        .leader_election(ns, name, lease);
    if let Some(o) = offset {
        cmd = cmd.clock_offset(o);
    }
    Replica {
        name,
        process: cmd.spawn(),
        port,
    }
}

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    ports::http_get(&format!("http://127.0.0.1:{port}{path}")).await
}

async fn ready(r: &Replica) {
    wait::until(&format!("{} /readyz 200", r.name), T, || async {
        (get(r.port, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
}

/// `quayside_kube_writes_total` of a replica.
async fn writes(r: &Replica) -> f64 {
    let (_, body) = get(r.port, "/metrics").await.expect("metrics");
    body.lines()
        .find(|l| l.starts_with("quayside_kube_writes_total"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

async fn holder(h: &Harness, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(h.client.clone(), ns)
        .get_opt("quayside-leader")
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

async fn wait_holder(h: &Harness, ns: &str, name: &str) -> Duration {
    let t0 = Instant::now();
    wait::until(&format!("{name} holds the lease"), T, || async {
        (holder(h, ns).await.as_deref() == Some(name)).then_some(())
    })
    .await;
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_replicas_are_ready_and_a_killed_leader_is_replaced_within_the_lease() {
    let h = Harness::start().await;
    let ns = cluster::new_namespace(&h.client, "ha-kill").await;
    let lease = Duration::from_secs(4);
    let mut a = replica(&h, &ns, "a", lease, None);
    wait_holder(&h, &ns, "a").await;
    let b = replica(&h, &ns, "b", lease, None);
    // Readiness does not wait for leadership: a rollout can finish.
    ready(&a).await;
    ready(&b).await;
    h.create_component("one", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("one", T).await;
    a.process.0.kill().unwrap();
    let takeover = wait_holder(&h, &ns, "b").await;
    eprintln!("takeover after SIGKILL of the leader: {takeover:?} (lease {lease:?})");
    assert!(
        takeover < lease + Duration::from_secs(3),
        "the standby leads within the lease (and a retry): {takeover:?}"
    );
    h.create_component("two", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("two", T).await;
    assert!(writes(&b).await > 0.0, "the new leader acts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_stopped_with_sigterm_hands_over_in_about_a_second() {
    let h = Harness::start().await;
    let ns = cluster::new_namespace(&h.client, "ha-term").await;
    // The default lease: a handover this fast is the release, not expiry.
    let lease = Duration::from_secs(15);
    let a = replica(&h, &ns, "a", lease, None);
    wait_holder(&h, &ns, "a").await;
    let b = replica(&h, &ns, "b", lease, None);
    ready(&b).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &a.process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let handover = wait_holder(&h, &ns, "b").await;
    eprintln!("handover after SIGTERM of the leader: {handover:?} (lease {lease:?})");
    assert!(
        handover < Duration::from_secs(5),
        "released, not expired: {handover:?}"
    );
}

/// The leader's node runs its wall clock a lease and a half behind: every
/// renewTime it writes looks expired to a standby that compares it with
/// its own clock. Judged by locally observed renewals, it never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_skewed_clock_never_makes_two_leaders() {
    let h = Harness::start().await;
    let ns = cluster::new_namespace(&h.client, "ha-skew").await;
    let lease = Duration::from_secs(2);
    let a = replica(&h, &ns, "a", lease, Some("-3s"));
    wait_holder(&h, &ns, "a").await;
    let b = replica(&h, &ns, "b", lease, None);
    ready(&b).await;
    h.create_component("skewed", &h.git.repo_url("public-app"), "public")
        .await;
    // Five leases of watching: the holder never changes.
    let until = Instant::now() + lease * 5;
    while Instant::now() < until {
        let now = holder(&h, &ns).await;
        assert_eq!(now.as_deref(), Some("a"), "a second leader appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.wait_component_ready("skewed", T).await;
    assert!(writes(&a).await > 0.0, "the leader acted");
    assert_eq!(writes(&b).await, 0.0, "the standby never wrote");
}
