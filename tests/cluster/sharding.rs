//! Sharding (`--shards`): three `quayside run` processes split 60
//! workspaces (a Component and an Environment each) over 12 shard Leases.
//! All become Ready, each shard is served by one replica only, and a
//! replica killed with SIGKILL loses its shards to the others within the
//! lease (and a round of slack), which then serve its workspaces. Each
//! replica caches only its shards' objects (`quayside_cached_objects`),
//! and tenants' objects are stamped with their shard label, a wrong one a
//! tenant wrote included. A control plane of the test's own: the replicas
//! watch every namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use quayside::api::{Component, Environment};
use quayside::plan::shard::shard_of;
use quayside::vocabulary::{LABEL_SHARD, LABEL_SHARDING, member_lease_name, shard_lease_name};
use quayside_testkit::component;
use quayside_testkit::harness::Harness;
use quayside_testkit::process::KillOnDrop;
use quayside_testkit::{cluster, ports, wait};

const SHARDS: u32 = 12;
const WORKSPACES: usize = 60;
const LEASE: Duration = Duration::from_secs(4);
const T: Duration = Duration::from_secs(60);

struct Replica {
    name: &'static str,
    process: KillOnDrop,
    port: u16,
}

fn replica(h: &Harness, leases: &str, name: &'static str) -> Replica {
    let port = ports::unused().unwrap();
    let mut cmd = h
        .controller_command()
        .listen(&format!("127.0.0.1:{port}"))
        .leader_election(leases, name, LEASE)
        .all_namespaces()
        .without_side_repo()
        .args(["--shards", &SHARDS.to_string()])
        .args(["--impersonate", "false", "--quay-rate-limit", "0"])
        .command();
    // Its log kept in target/tmp, for a failure to explain itself.
    let log =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sharding-{name}.log"));
    let log = std::fs::File::create(log).unwrap();
    cmd.stdout(log)
        .env("RUST_LOG", "warn,quayside::shard=debug");
    let process = KillOnDrop(cmd.spawn().expect("spawn quayside run"));
    Replica {
        name,
        process,
        port,
    }
}

/// The replica's `/metrics`, or `None` while it does not answer.
async fn metrics(r: &Replica) -> Option<String> {
    let (code, body) = ports::http_get(&format!("http://127.0.0.1:{}/metrics", r.port)).await?;
    (code == 200).then_some(body)
}

fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Passes by shard, from `quayside_shard_passes_total{shard="…"}` (every
/// shard has a series; those without a pass are left out).
fn passes(body: &str) -> BTreeMap<u32, f64> {
    body.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("quayside_shard_passes_total{shard=\"")?;
            let (shard, count) = rest.split_once("\"} ")?;
            Some((shard.parse().ok()?, count.trim().parse().ok()?))
        })
        .filter(|(_, count): &(u32, f64)| *count > 0.0)
        .collect()
}

/// The cached kinds and how many objects each workspace has of them: a
/// Component, an Environment, the push and pull Secrets, a target Secret.
const CACHED: [(&str, usize); 4] = [
    ("component", 1),
    ("environment", 1),
    ("workspace_secret", 2),
    ("target_secret", 1),
];

/// Each replica caches exactly the objects of the workspaces of the shards
/// whose Leases it holds (and so, together, every object once).
async fn caches_follow_the_shards(
    client: &Client,
    lease_ns: &str,
    replicas: &[Replica],
    workspaces: &BTreeSet<String>,
) {
    wait::until(
        "each replica caches its shards' objects only",
        T,
        || async {
            let holders = holders(client, lease_ns).await;
            (holders.len() == SHARDS as usize).then_some(())?;
            for r in replicas {
                let body = metrics(r).await?;
                let mine = workspaces
                    .iter()
                    .filter(|w| {
                        holders.get(&shard_of(w, SHARDS)).map(String::as_str) == Some(r.name)
                    })
                    .count();
                for (kind, each) in CACHED {
                    let series = format!("quayside_cached_objects{{kind=\"{kind}\"}}");
                    (value(&body, &series)? == (mine * each) as f64).then_some(())?;
                }
            }
            Some(())
        },
    )
    .await;
    let mut line = Vec::new();
    for r in replicas {
        let body = metrics(r).await.expect("metrics");
        let c = value(&body, "quayside_cached_objects{kind=\"component\"}");
        line.push(format!("{}: {} Components", r.name, c.unwrap_or(-1.0)));
    }
    eprintln!("sharding: caches {}", line.join(", "));
}

/// Every Component and every Environment of the cluster (`None` when a
/// listing fails: the caller's wait tries again).
async fn components_and_environments(
    client: &Client,
) -> Option<(
    kube::core::ObjectList<Component>,
    kube::core::ObjectList<Environment>,
)> {
    let lp = ListParams::default();
    let cs = Api::<Component>::all(client.clone()).list(&lp).await.ok()?;
    let es = Api::<Environment>::all(client.clone())
        .list(&lp)
        .await
        .ok()?;
    Some((cs, es))
}

/// The shard label of every Component and Environment of `workspaces` is
/// its namespace's shard.
async fn all_stamped(client: &Client, workspaces: &BTreeSet<String>) {
    wait::until("every shard label right", T, || async {
        let (cs, es) = components_and_environments(client).await?;
        let labels = cs
            .items
            .iter()
            .map(|c| (c.namespace(), c.labels().get(LABEL_SHARD).cloned()))
            .chain(
                es.items
                    .iter()
                    .map(|e| (e.namespace(), e.labels().get(LABEL_SHARD).cloned())),
            );
        let mut right = 0;
        for (ns, label) in labels {
            let ns = ns?;
            (label == Some(shard_of(&ns, SHARDS).to_string())).then_some(())?;
            right += usize::from(workspaces.contains(&ns));
        }
        (right == 2 * workspaces.len()).then_some(())
    })
    .await;
}

/// Each shard Lease's holder (empty: none) and its count of holder changes.
async fn leases(client: &Client, ns: &str) -> BTreeMap<u32, (String, i32)> {
    let leases = Api::<Lease>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(LABEL_SHARDING))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    (0..SHARDS)
        .filter_map(|s| {
            let lease = leases
                .iter()
                .find(|l| l.name_any() == shard_lease_name(s))?;
            let spec = lease.spec.as_ref()?;
            let holder = spec.holder_identity.clone().unwrap_or_default();
            Some((s, (holder, spec.lease_transitions.unwrap_or(0))))
        })
        .collect()
}

/// Who holds each shard Lease (a non-empty holder).
async fn holders(client: &Client, ns: &str) -> BTreeMap<u32, String> {
    leases(client, ns)
        .await
        .into_iter()
        .filter(|(_, (h, _))| !h.is_empty())
        .map(|(s, (h, _))| (s, h))
        .collect()
}

/// How often each shard's Lease changed holder since `then`.
fn moved(
    then: &BTreeMap<u32, (String, i32)>,
    now: &BTreeMap<u32, (String, i32)>,
) -> BTreeMap<u32, i32> {
    then.iter()
        .map(|(s, (_, t))| (*s, now.get(s).map_or(0, |(_, n)| n - t)))
        .collect()
}

/// The replicas whose passes include `shard`.
fn servers<'a>(passes: &'a BTreeMap<&'static str, BTreeMap<u32, f64>>, shard: u32) -> Vec<&'a str> {
    passes
        .iter()
        .filter(|(_, p)| p.contains_key(&shard))
        .map(|(n, _)| *n)
        .collect()
}

/// A workspace: its namespace, a Component `app` and an Environment `dev`
/// delivering into the workspace itself. The first three workspaces'
/// tenants write shard labels of their own: another shard's, no shard's
/// and a number that is no shard.
async fn workspace(h: &Harness, i: usize) -> String {
    let ns = cluster::new_namespace(&h.client, &format!("shard{i}")).await;
    let wrong = (shard_of(&ns, SHARDS) + 1) % SHARDS;
    let labels = match i {
        0 => serde_json::json!({LABEL_SHARD: wrong.to_string()}),
        1 => serde_json::json!({LABEL_SHARD: "junk"}),
        2 => serde_json::json!({LABEL_SHARD: "999"}),
        _ => serde_json::json!({}),
    };
    let c: Component = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "app", "labels": labels},
        "spec": {"source": {"git": {"url": h.git.repo_url("public-app")}}, "visibility": "public"}
    }))
    .unwrap();
    let e: Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "dev", "labels": labels},
        "spec": {"target": {"namespace": ns}}
    }))
    .unwrap();
    let pp = PostParams::default();
    Api::<Component>::namespaced(h.client.clone(), &ns)
        .create(&pp, &c)
        .await
        .unwrap();
    Api::<Environment>::namespaced(h.client.clone(), &ns)
        .create(&pp, &e)
        .await
        .unwrap();
    ns
}

fn ready(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Wait until every Component and Environment of `workspaces` is Ready.
async fn all_ready(client: &Client, workspaces: &BTreeSet<String>, timeout: Duration) {
    wait::until("every workspace Ready", timeout, || async {
        let (cs, es) = components_and_environments(client).await?;
        let ready_in = |ns: Option<String>, ok: bool| ok.then_some(ns).flatten();
        let c: BTreeSet<String> = cs
            .items
            .into_iter()
            .filter_map(|c| ready_in(c.namespace(), component::is_ready(&c)))
            .collect();
        let e: BTreeSet<String> = es
            .items
            .into_iter()
            .filter_map(|e| {
                let ok = e.status.as_ref().is_some_and(|s| ready(&s.conditions));
                ready_in(e.namespace(), ok)
            })
            .collect();
        (workspaces.is_subset(&c) && workspaces.is_subset(&e)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_split_the_workspaces_and_take_over_a_killed_ones_shards() {
    let started = Instant::now();
    let h = Harness::builder().own_control_plane().start().await;
    let lease_ns = cluster::new_namespace(&h.client, "shard-leases").await;
    let mut replicas = vec![
        replica(&h, &lease_ns, "a"),
        replica(&h, &lease_ns, "b"),
        replica(&h, &lease_ns, "c"),
    ];
    // Each takes its fair share, 12 / 3, before any workspace exists.
    wait::until("each replica holds 4 shards", T, || async {
        for r in &replicas {
            let held = value(&metrics(r).await?, "quayside_shards_held")?;
            (held == 4.0).then_some(())?;
        }
        Some(())
    })
    .await;
    let at_split = leases(&h.client, &lease_ns).await;
    let split = holders(&h.client, &lease_ns).await;
    assert_eq!(split.len(), SHARDS as usize, "{split:?}");

    let workspaces: BTreeSet<String> =
        futures::future::join_all((0..WORKSPACES).map(|i| workspace(&h, i)))
            .await
            .into_iter()
            .collect();
    all_ready(&h.client, &workspaces, Duration::from_secs(80)).await;
    let ready_after = started.elapsed();
    all_stamped(&h.client, &workspaces).await;
    caches_follow_the_shards(&h.client, &lease_ns, &replicas, &workspaces).await;

    // Every shard's passes came from one replica, its Lease's holder; a
    // shard whose holder changed meanwhile (renewals slower than the renew
    // deadline on a loaded machine) from at most one more each change.
    let mut before = BTreeMap::new();
    for r in &replicas {
        before.insert(r.name, passes(&metrics(r).await.expect("metrics")));
    }
    let at_kill = leases(&h.client, &lease_ns).await;
    let moves = moved(&at_split, &at_kill);
    let used: BTreeSet<u32> = workspaces.iter().map(|w| shard_of(w, SHARDS)).collect();
    for shard in &used {
        let by = servers(&before, *shard);
        if moves[shard] == 0 {
            assert_eq!(by, vec![split[shard].as_str()], "shard {shard}");
        } else {
            eprintln!(
                "sharding: shard {shard} changed holder {} times",
                moves[shard]
            );
            assert!(by.len() as i32 <= 1 + moves[shard], "shard {shard}: {by:?}");
        }
    }

    // SIGKILL a: no release, its Leases must expire.
    let a = replicas.remove(0);
    let mut a_process = a.process;
    let a_shards: BTreeSet<u32> = at_kill
        .iter()
        .filter(|(_, (holder, _))| holder.as_str() == "a")
        .map(|(s, _)| *s)
        .collect();
    a_process.0.kill().unwrap();
    let killed = Instant::now();
    wait::until("a's shards taken by b and c", T, || async {
        let now = holders(&h.client, &lease_ns).await;
        a_shards
            .iter()
            .all(|s| now.get(s).is_some_and(|holder| holder != "a"))
            .then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!(
        "sharding: {WORKSPACES} workspaces Ready {ready_after:?} after start; \
         a's {} shards taken over in {takeover:?} (lease {LEASE:?})",
        a_shards.len()
    );
    // The survivors count a as a member until its membership expires, and
    // its shards until theirs do: one lease, then a round or two.
    assert!(
        takeover < LEASE + Duration::from_secs(5),
        "a's shards taken within the lease and a bounded slack: {takeover:?}"
    );

    // A change in one of a's workspaces is handled by a survivor.
    let ws = workspaces
        .iter()
        .find(|w| a_shards.contains(&shard_of(w, SHARDS)))
        .expect("a served some workspace");
    let components = Api::<Component>::namespaced(h.client.clone(), ws);
    let generation = component::generation(&components.get("app").await.unwrap());
    component::request_rotation(&components, "app")
        .await
        .unwrap();
    component::wait_rotated(&components, "app", generation + 1, T).await;
    // The survivors' watches now select a's shards too.
    caches_follow_the_shards(&h.client, &lease_ns, &replicas, &workspaces).await;

    // No shard had two servers: b's and c's shards only their holder's
    // passes, each of a's shards one survivor's after the kill.
    let mut after = BTreeMap::new();
    for r in &replicas {
        after.insert(r.name, passes(&metrics(r).await.expect("metrics")));
    }
    let moves = moved(&at_split, &leases(&h.client, &lease_ns).await);
    for shard in 0..SHARDS {
        let by = servers(&after, shard);
        let holder = at_kill[&shard].0.as_str();
        if a_shards.contains(&shard) {
            // a is not among them: each survivor came by a change of holder.
            assert!(
                by.len() as i32 <= moves[&shard],
                "a's shard {shard}: {by:?}"
            );
        } else if used.contains(&shard) && moves[&shard] == 0 {
            assert_eq!(by, vec![holder], "shard {shard}");
        } else {
            assert!(
                by.len() as i32 <= 1 + moves[&shard],
                "shard {shard}: {by:?}"
            );
        }
    }
    let survivor = shard_of(ws, SHARDS);
    assert!(
        after.values().any(|p| p.contains_key(&survivor)),
        "a survivor served the rotated workspace's shard"
    );
    let wall = started.elapsed();
    eprintln!("sharding: test wall time {wall:?}");
}

/// A replica scoped to the fixture's workspace (the shared control plane
/// holds other tests' objects), with `shards` shards.
fn scoped_replica(
    h: &Harness,
    lease_ns: &str,
    name: &'static str,
    lease: Duration,
    shards: u32,
) -> Replica {
    let port = ports::unused().unwrap();
    let process = h
        .controller_command()
        .listen(&format!("127.0.0.1:{port}"))
        .leader_election(lease_ns, name, lease)
        .without_side_repo()
        .args(["--shards", &shards.to_string()])
        .spawn();
    Replica {
        name,
        process,
        port,
    }
}

/// Held shards of a replica, once it answers.
async fn held(r: &Replica) -> Option<f64> {
    value(&metrics(r).await?, "quayside_shards_held")
}

fn sigterm(r: &Replica) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &r.process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {}", r.name);
}

/// A replica stopped with SIGTERM finishes, releases its shards and its
/// membership: the other holds every shard at its next rounds, well
/// before the (default, 15 s) lease could expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_stopped_with_sigterm_hands_its_shards_over_at_once() {
    let h = Harness::start().await;
    let lease_ns = cluster::new_namespace(&h.client, "shard-term").await;
    let lease = Duration::from_secs(15);
    let a = scoped_replica(&h, &lease_ns, "a", lease, 4);
    let b = scoped_replica(&h, &lease_ns, "b", lease, 4);
    wait::until("a and b hold 2 shards each", T, || async {
        for r in [&a, &b] {
            (value(&metrics(r).await?, "quayside_shards_held")? == 2.0).then_some(())?;
        }
        Some(())
    })
    .await;
    sigterm(&a);
    let t0 = Instant::now();
    wait::until("b holds all 4 shards", T, || async {
        (value(&metrics(&b).await?, "quayside_shards_held")? == 4.0).then_some(())
    })
    .await;
    let handover = t0.elapsed();
    eprintln!("sharding: shards handed over {handover:?} after SIGTERM (lease {lease:?})");
    assert!(
        handover < Duration::from_secs(6),
        "released, not expired: {handover:?}"
    );
    let members = Api::<Lease>::namespaced(h.client.clone(), &lease_ns);
    assert!(
        members
            .get_opt(&member_lease_name("a"))
            .await
            .unwrap()
            .is_none(),
        "a stopped: its membership is gone"
    );
}

/// Two shard counts map a namespace to different shards, so replicas of
/// different `--shards` (a changed count mid-rollout) would serve one
/// workspace twice: the newcomer serves nothing while a replica of the
/// other count holds shards, and takes over once it has left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_of_another_shard_count_stands_aside() {
    let h = Harness::start().await;
    let lease_ns = cluster::new_namespace(&h.client, "shard-count").await;
    let lease = Duration::from_secs(2);
    let old = scoped_replica(&h, &lease_ns, "old", lease, 4);
    wait::until("old holds all 4 shards", T, || async {
        (held(&old).await? == 4.0).then_some(())
    })
    .await;
    let new = scoped_replica(&h, &lease_ns, "new", lease, 6);
    // Its first read done: it counts itself as the only member of its kind.
    wait::until("new has read the Leases", T, || async {
        let members = value(&metrics(&new).await?, "quayside_shard_members")?;
        (members == 1.0).then_some(())
    })
    .await;
    // Two leases of watching (ten rounds each): nobody moves. Judged by
    // the Leases (a renewal slowed by load pauses serving, not holding).
    let until = Instant::now() + lease * 2;
    while Instant::now() < until {
        if let Some(n) = held(&new).await {
            assert_eq!(n, 0.0, "new serves beside old");
        }
        let now = holders(&h.client, &lease_ns).await;
        assert!(
            !now.values().any(|h| h == "new"),
            "new holds a shard: {now:?}"
        );
        let olds = now.values().filter(|h| *h == "old").count();
        assert_eq!(olds, 4, "old gave shards up to new: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(&old);
    wait::until("new holds all 6 shards", T, || async {
        (held(&new).await? == 6.0).then_some(())
    })
    .await;
}

/// A workspace served before `--shards` — its Component, Environment and
/// Secrets written without the shard label, so no sharded watch selects
/// them — is taken over by a sharded replica: the Component and the
/// Environment are stamped, the workspace Secrets and the target Secret
/// written again with the label, and the replica caches all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_written_before_sharding_get_their_shard_label() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("shard-old", false).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.create_environment("dev", &target, &[]).await;
    h.wait_component_ready("app", T).await;
    wait::until("the target Secret delivered", T, || async {
        h.target_secret(&target, "app").await.map(|_| ())
    })
    .await;
    h.stop_controller().await;
    let secrets = Api::<Secret>::namespaced(h.client.clone(), &h.workspace);
    let push = secrets.get("app-image-push").await.unwrap();
    assert!(!push.labels().contains_key(LABEL_SHARD), "no label before");

    let lease_ns = cluster::new_namespace(&h.client, "shard-old-leases").await;
    let r = scoped_replica(&h, &lease_ns, "a", Duration::from_secs(2), 4);
    let want = shard_of(&h.workspace, 4).to_string();
    wait::until("every object labelled with its shard", T, || async {
        let labels = [
            h.components().get("app").await.ok()?.labels().clone(),
            h.environments().get("dev").await.ok()?.labels().clone(),
            secrets.get("app-image-push").await.ok()?.labels().clone(),
            secrets.get("app-image-pull").await.ok()?.labels().clone(),
            h.target_secret(&target, "app").await?.labels().clone(),
        ];
        labels
            .iter()
            .all(|l| l.get(LABEL_SHARD) == Some(&want))
            .then_some(())
    })
    .await;
    wait::until("the replica caches them", T, || async {
        let body = metrics(&r).await?;
        let cached = |kind: &str| {
            value(
                &body,
                &format!("quayside_cached_objects{{kind=\"{kind}\"}}"),
            )
        };
        // Scoped to the workspace but for target Secrets (cluster-wide):
        // only this test's replica writes shard labels on this plane.
        let exact = cached("component")? == 1.0
            && cached("environment")? == 1.0
            && cached("workspace_secret")? == 2.0
            && cached("target_secret")? >= 1.0;
        exact.then_some(())
    })
    .await;
    h.wait_component_ready("app", T).await;
}
