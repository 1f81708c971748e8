//! Watches on remote clusters (a second control plane): with a 24-hour
//! heartbeat, a pull Secret deleted or a link removed there heals in
//! seconds; the watch runs as the tenant's own namespace-scoped identity,
//! stops with the last Environment using it, and backs off from a cluster
//! that does not answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use quayside::controller::Metrics;
use quayside::controller::metrics::ReconcileLabels;
use quayside_testkit::harness::Harness;
use quayside_testkit::{cluster, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(60);
/// What "healed in seconds" may take on a loaded 2-CPU machine; the
/// heartbeat is 24 h, so only a watch can do it.
const HEAL: Duration = Duration::from_secs(20);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn metrics(h: &Harness) -> Metrics {
    h.observed.as_ref().expect("controller started").0.clone()
}

/// Environment passes so far (any result).
fn environment_passes(m: &Metrics) -> u64 {
    ["ok", "error", "retry"]
        .iter()
        .map(|result| {
            m.reconciles
                .get_or_create(&ReconcileLabels {
                    controller: "environment".into(),
                    result: result.to_string(),
                })
                .get()
        })
        .sum()
}

/// Wait until no Environment pass ran for 3 s: what follows is then
/// healed by the remote watch, not by a pass still running from setup.
async fn settled(m: &Metrics) {
    let quiet = Duration::from_secs(3);
    let mut seen = (environment_passes(m), Instant::now());
    wait::until("the Environment passes to settle", T, || {
        let now = environment_passes(m);
        if now != seen.0 {
            seen = (now, Instant::now());
        }
        let done = seen.1.elapsed() >= quiet;
        async move { done.then_some(()) }
    })
    .await;
}

/// A kubeconfig for `server` with the CA of `admin_kubeconfig` and `token`.
fn kubeconfig(admin_kubeconfig: &std::path::Path, server: &str, token: &str) -> String {
    let kc = Kubeconfig::read_from(admin_kubeconfig).expect("admin kubeconfig");
    let cluster = kc.clusters[0].cluster.as_ref().expect("a cluster");
    let ca = cluster
        .certificate_authority_data
        .as_deref()
        .expect("inline CA data");
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n\
         contexts:\n- name: t\n  context: {{cluster: c, user: u}}\n\
         clusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         users:\n- name: u\n  user:\n    token: {token}\n"
    )
}

/// What a remote namespace's owner grants a tenant: Secrets and
/// ServiceAccounts in `namespace` only, and reading that Namespace.
async fn grant_tenant(admin: &Client, namespace: &str, account: &str) {
    let pp = PostParams::default();
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tenant", "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["serviceaccounts"],
             "verbs": ["get", "list", "watch", "update"]},
        ]
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(&pp, &role)
        .await
        .unwrap();
    let subject =
        serde_json::json!([{"kind": "ServiceAccount", "name": account, "namespace": namespace}]);
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tenant", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": subject,
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), namespace)
        .create(&pp, &binding)
        .await
        .unwrap();
    let name = format!("tenant-{namespace}");
    let read_ns: ClusterRole = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"],
                   "resourceNames": [namespace], "verbs": ["get"]}]
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .create(&pp, &read_ns)
        .await
        .unwrap();
    let bind_ns: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subject,
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&pp, &bind_ns)
        .await
        .unwrap();
}

async fn linked(sas: &Api<ServiceAccount>, name: &str) -> Vec<String> {
    sas.get(name)
        .await
        .unwrap()
        .image_pull_secrets
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_target_heals_in_seconds_and_its_watch_stops_with_the_last_environment() {
    let mut h = Harness::start().await;
    let remote = cluster::ControlPlane::start();
    let admin = remote.client().await;
    let target = cluster::new_namespace(&admin, "remote").await;
    cluster::create_service_account(&admin, &target, "deployer").await;
    // The tenant's identity there reaches its namespace only: a watch
    // across the cluster would be refused.
    let tenant = remote.service_account_config(&target, "tenant").await;
    grant_tenant(&admin, &target, "tenant").await;
    let token = tenant.auth_info.token.as_ref().unwrap().expose_secret();
    let server = tenant.cluster_url.to_string();
    let kc = kubeconfig(remote.kubeconfig(), server.trim_end_matches('/'), token);

    let mut cfg = h.config();
    cfg.heartbeat = DAY;
    h.start_controller_with(cfg).await;
    let m = metrics(&h);
    h.create_component("svc", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("svc", T).await;
    assert_eq!(m.remote_watches.get(), 0, "no remote Environment yet");
    h.create_remote_environment("far", &target, &kc).await;

    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &target);
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &target);
    wait::until("delivered and linked in the remote cluster", T, || async {
        let s = secrets.get_opt("svc-pull").await.unwrap();
        (s.is_some() && linked(&sas, "deployer").await == ["svc-pull"]).then_some(())
    })
    .await;
    wait::until("one remote watch pair", T, || async {
        (m.remote_watches.get() == 1).then_some(())
    })
    .await;
    let failures_before = m.remote_watch_failures.get();

    // The Secret deleted there: back within seconds, not a day.
    settled(&m).await;
    let woken = m.remote_watch_triggers.get();
    let start = Instant::now();
    cluster::delete_and_wait(&secrets, "svc-pull", T).await;
    wait::until("the remote Secret recreated by the watch", HEAL, || async {
        secrets.get_opt("svc-pull").await.unwrap()
    })
    .await;
    eprintln!("remote Secret deleted → recreated in {:?}", start.elapsed());
    assert!(m.remote_watch_triggers.get() > woken, "healed by the watch");

    // The link removed there: relinked within seconds.
    settled(&m).await;
    let woken = m.remote_watch_triggers.get();
    let start = Instant::now();
    let mut sa = sas.get("deployer").await.unwrap();
    sa.image_pull_secrets = Some(Vec::new());
    sas.replace("deployer", &PostParams::default(), &sa)
        .await
        .unwrap();
    wait::until("deployer relinked by the watch", HEAL, || async {
        (linked(&sas, "deployer").await == ["svc-pull"]).then_some(())
    })
    .await;
    eprintln!("remote link removed → relinked in {:?}", start.elapsed());
    assert!(
        m.remote_watch_triggers.get() > woken,
        "relinked by the watch"
    );
    assert_eq!(
        m.remote_watch_failures.get(),
        failures_before,
        "the namespace-scoped identity never had a watch refused"
    );

    // The last Environment using the cluster goes: so does its watch.
    cluster::delete_and_wait(&h.environments(), "far", T).await;
    wait::until("the remote watch stopped", T, || async {
        (m.remote_watches.get() == 0).then_some(())
    })
    .await;
    h.stop_controller().await;
    remote.stop();
}

/// Accepts TCP connections on loopback and drops them at once, counting:
/// a server that is there but never answers as Kubernetes.
async fn dead_end() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_remote_cluster_is_retried_with_backoff_not_in_a_loop() {
    let mut h = Harness::start().await;
    let (port, connections) = dead_end().await;
    let shared = cluster::shared();
    let kc = kubeconfig(
        shared.kubeconfig(),
        &format!("https://127.0.0.1:{port}"),
        "not-a-real-token",
    );
    let mut cfg = h.config();
    cfg.heartbeat = DAY;
    h.start_controller_with(cfg).await;
    let m = metrics(&h);
    h.create_remote_environment("gone", "apps", &kc).await;
    wait::until("the watch pair started", T, || async {
        (m.remote_watches.get() == 1).then_some(())
    })
    .await;
    wait::until("a first failed attempt", T, || async {
        (m.remote_watch_failures.get() >= 1).then_some(())
    })
    .await;
    // Two streams, each waiting 1 s doubling (drawn from the upper half of
    // each step): at most 5 attempts each in 12 s, one more each at the
    // window's edges under load. kube-runtime's own backoff made 32.
    let window = Duration::from_secs(12);
    let (failures, accepted) = (
        m.remote_watch_failures.get(),
        connections.load(Ordering::SeqCst),
    );
    let start = Instant::now();
    wait::until(
        "the window to pass",
        window + Duration::from_secs(1),
        || async { (start.elapsed() >= window).then_some(()) },
    )
    .await;
    let failures = m.remote_watch_failures.get() - failures;
    let accepted = connections.load(Ordering::SeqCst) - accepted;
    eprintln!("in {window:?}: {failures} failed watch attempts, {accepted} TCP connections in all");
    assert!(failures >= 2, "it keeps trying: {failures}");
    assert!(
        failures <= 12,
        "backs off: {failures} attempts in {window:?}"
    );
    // The Environment's own passes back off too; every connection counts.
    assert!(accepted <= 20, "{accepted} connections in {window:?}");
    assert_eq!(m.remote_watches.get(), 1, "still one pair, not one per try");
    h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beyond_the_limit_a_remote_target_is_left_to_the_heartbeat_and_said_so() {
    let mut h = Harness::start().await;
    let (port, _) = dead_end().await;
    let shared = cluster::shared();
    let server = format!("https://127.0.0.1:{port}");
    let mut cfg = h.config();
    cfg.heartbeat = DAY;
    cfg.remote_watch_limit = 1;
    h.start_controller_with(cfg).await;
    let m = metrics(&h);
    // Two identities: two pairs wanted, one allowed.
    let one = kubeconfig(shared.kubeconfig(), &server, "token-one");
    let two = kubeconfig(shared.kubeconfig(), &server, "token-two");
    h.create_remote_environment("one", "apps", &one).await;
    h.create_remote_environment("two", "apps", &two).await;
    wait::until("one pair running, one over the limit", T, || async {
        (m.remote_watches.get() == 1 && m.remote_watches_over_limit.get() == 1).then_some(())
    })
    .await;
    let events = wait::until("a RemoteWatchLimit event", T, || async {
        let list = Api::<Event>::namespaced(h.client.clone(), &h.workspace)
            .list(&Default::default())
            .await
            .unwrap();
        let notes: Vec<String> = list
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("RemoteWatchLimit"))
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter_map(|e| e.note)
            .collect();
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(
        events[0].contains("--remote-watch-limit"),
        "names the flag: {events:?}"
    );
    // One goes: the other gets its watch.
    cluster::delete_and_wait(&h.environments(), "one", T).await;
    wait::until("the waiting pair started", T, || async {
        (m.remote_watches.get() == 1 && m.remote_watches_over_limit.get() == 0).then_some(())
    })
    .await;
    h.stop_controller().await;
}

/// The attack: a tenant names, as its remote target, a namespace it
/// cannot read (here another tenant's namespace in this very cluster,
/// where the controller itself may read every Secret), hoping the
/// controller's watch reads it on its behalf. The watch runs as the
/// tenant's kubeconfig, so it is refused like any request of the tenant,
/// and a change there wakes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_reads_only_what_the_tenants_own_identity_can() {
    let mut h = Harness::start().await;
    let shared = cluster::shared();
    let victim = cluster::new_namespace(&h.client, "victim").await;
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), &victim);
    // A Secret there labelled as this very Environment's delivery.
    let planted: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "planted", "labels": quayside::vocabulary::target_labels(&h.workspace, "peek", "app")},
        "stringData": {"n": "0"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &planted)
        .await
        .unwrap();
    let outsider = cluster::new_namespace(&h.client, "outsider").await;
    let nobody = shared.service_account_config(&outsider, "nobody").await;
    let token = nobody.auth_info.token.as_ref().unwrap().expose_secret();
    let server = nobody.cluster_url.to_string();
    let kc = kubeconfig(shared.kubeconfig(), server.trim_end_matches('/'), token);

    let mut cfg = h.config();
    cfg.heartbeat = DAY;
    h.start_controller_with(cfg).await;
    let m = metrics(&h);
    h.create_remote_environment("peek", &victim, &kc).await;
    wait::until("both watches refused", T, || async {
        (m.remote_watches.get() == 1 && m.remote_watch_failures.get() >= 2).then_some(())
    })
    .await;
    let woken = m.remote_watch_triggers.get();
    let mut s = secrets.get("planted").await.unwrap();
    s.string_data = Some([("n".to_string(), "1".to_string())].into());
    secrets
        .replace("planted", &PostParams::default(), &s)
        .await
        .unwrap();
    // Nothing may arrive: give a watch that could read it ample time.
    let start = Instant::now();
    let window = Duration::from_secs(5);
    wait::until(
        "the window to pass",
        window + Duration::from_secs(1),
        || async { (start.elapsed() >= window).then_some(()) },
    )
    .await;
    assert_eq!(
        m.remote_watch_triggers.get(),
        woken,
        "a change the tenant cannot read woke its Environment"
    );
    h.stop_controller().await;
}

/// A kubeconfig Secret rewritten with another identity: the Environment's
/// next pass moves it to a pair of its own, and the old pair, used by no
/// one now, stops (still one running, and the new one is the one failing
/// against a server that does not answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changed_credentials_move_the_environment_to_a_pair_of_their_own() {
    let mut h = Harness::start().await;
    let shared = cluster::shared();
    let target = cluster::new_namespace(&h.client, "moving").await;
    let tenant = shared.service_account_config(&target, "tenant").await;
    grant_tenant(&h.client, &target, "tenant").await;
    let token = tenant.auth_info.token.as_ref().unwrap().expose_secret();
    let server = tenant.cluster_url.to_string();
    let working = kubeconfig(shared.kubeconfig(), server.trim_end_matches('/'), token);
    let mut cfg = h.config();
    cfg.heartbeat = DAY;
    h.start_controller_with(cfg).await;
    let m = metrics(&h);
    h.create_remote_environment("moving", &target, &working)
        .await;
    wait::until("a pair on the working identity", T, || async {
        (m.remote_watches.get() == 1).then_some(())
    })
    .await;
    settled(&m).await;
    assert_eq!(m.remote_watch_failures.get(), 0, "the working pair fails");

    let (port, _) = dead_end().await;
    let moved = kubeconfig(
        shared.kubeconfig(),
        &format!("https://127.0.0.1:{port}"),
        "another-token",
    );
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), &h.workspace);
    let mut s = secrets.get("moving-cluster").await.unwrap();
    s.string_data = Some([("kubeconfig".to_string(), moved)].into());
    secrets
        .replace("moving-cluster", &PostParams::default(), &s)
        .await
        .unwrap();
    // Anything that runs a pass will do; the heartbeat is a day away.
    let patch = serde_json::json!({"metadata": {"annotations": {"test/touch": "1"}}});
    h.environments()
        .patch(
            "moving",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    wait::until("the new pair failing, the old one stopped", T, || async {
        (m.remote_watch_failures.get() > 0 && m.remote_watches.get() == 1).then_some(())
    })
    .await;
    h.stop_controller().await;
}
