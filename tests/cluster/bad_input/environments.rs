//! Bad Environments: targets, cluster credentials, recipients and
//! side-repository paths, each next to a good Environment that keeps its
//! folder, Secret and link.

use kube::api::{Patch, PatchParams};
use quayside::seal::Identity;
use quayside_testkit::harness::Harness;
use quayside_testkit::{ports, wait};
use secrecy::ExposeSecret;

use super::{
    Expect, READY, T, check_message, component_condition, create_environment_json, environment,
    environment_condition, push_file, read_side_file, secret_with, wait_event,
};

/// A controller, a Component `app` delivered to a good Environment
/// (`good_ns`, with `deployer`, sealed also for `argo`), and a second
/// namespace (`other_ns`, only `default`) for the bad ones to target.
struct Fixture {
    h: Harness,
    good_ns: String,
    other_ns: String,
    argo: Identity,
    public: String,
    good_secret: k8s_openapi::api::core::v1::Secret,
}

/// The fixture; with `malformed_pre`, a malformed sealed file already sits
/// where Environment "pre" (targeting `other_ns`) writes.
async fn fixture(malformed_pre: bool) -> Fixture {
    let mut h = Harness::start().await;
    let good_ns = h.target_namespace("bie", true).await;
    let other_ns = h.target_namespace("bie2", false).await;
    let argo = Identity::generate();
    if malformed_pre {
        push_file(
            &h,
            &format!(
                "environments/{}/pre/secrets/app-pull.sops.yaml",
                h.workspace
            ),
            "this: is [not a sealed file\n",
        )
        .await;
    }
    h.create_environment("good", &good_ns, &[argo.to_recipient().to_string()])
        .await;
    if malformed_pre {
        h.create_environment("pre", &other_ns, &[]).await;
    }
    h.start_controller().await;
    let public = h.git.repo_url("public-app");
    h.create_component("app", &public, "public").await;
    h.wait_component_ready("app", T).await;
    wait::until("good's sealed file", T, || async {
        read_side_file(
            &h,
            &format!(
                "environments/{}/good/secrets/app-pull.sops.yaml",
                h.workspace
            ),
        )
    })
    .await;
    let good_secret = h.target_secret(&good_ns, "app").await.unwrap();
    Fixture {
        h,
        good_ns,
        other_ns,
        argo,
        public,
        good_secret,
    }
}

impl Fixture {
    /// Nothing deleted that should stay: good's folder and Secret are
    /// intact and its link is there; and a new Component, `late`, still
    /// reaches the good Environment.
    async fn assert_still_serving(&self) {
        let h = &self.h;
        assert!(
            read_side_file(
                h,
                &format!("environments/{}/good/kustomization.yaml", h.workspace)
            )
            .is_some()
        );
        let still = h.target_secret(&self.good_ns, "app").await.unwrap();
        assert_eq!(still.metadata.uid, self.good_secret.metadata.uid);
        assert!(
            h.image_pull_secrets(&self.good_ns, "deployer")
                .await
                .contains(&"app-pull".to_string())
        );
        h.create_component("late", &self.public, "public").await;
        wait::until("late delivered to good", T, || async {
            h.target_secret(&self.good_ns, "late").await
        })
        .await;
    }
}

type Case = (&'static str, serde_json::Value, Expect);

/// Create every case, then check each: its condition and message, and a
/// Warning event for a problem.
async fn check_cases(h: &Harness, cases: &[Case]) {
    for (_, obj, _) in cases {
        create_environment_json(h, obj.clone()).await;
    }
    for (name, _, e) in cases {
        let cond = environment_condition(h, name, e).await;
        check_message(name, &cond, e);
        if e.status == "False" {
            wait_event(h, "Environment", name, e.reason).await;
        }
    }
}

fn ns(n: &str) -> serde_json::Value {
    serde_json::json!({"namespace": n})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn targets() {
    let mut f = fixture(false).await;
    let (h, other_ns) = (&f.h, &f.other_ns);
    let none = serde_json::json!({});
    // An empty target or one that is no namespace name is refused by the
    // API server already (tests/cluster/crd_validation.rs).
    let cases: Vec<Case> = vec![
        (
            "missing-target",
            environment("missing-target", ns("no-such-namespace"), none.clone()),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "InvalidSpec",
                says: &[
                    "no-such-namespace does not exist",
                    "create it or fix spec.target.namespace",
                ],
            },
        ),
        (
            "sa-missing",
            environment(
                "sa-missing",
                ns(other_ns),
                serde_json::json!({"serviceAccount": "nobody"}),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "InvalidSpec",
                says: &[
                    "ServiceAccount nobody does not exist",
                    "fix spec.serviceAccount",
                ],
            },
        ),
    ];
    check_cases(h, &cases).await;
    f.assert_still_serving().await;
    // The new Component's status names the Environments that cannot take it.
    let waiting = Expect {
        condition: "Propagated",
        status: "False",
        reason: "Propagating",
        says: &["missing-target", "see their conditions"],
    };
    let cond = component_condition(&f.h, "late", &waiting).await;
    check_message("late", &cond, &waiting);
    eprintln!(
        "FIGURES bad-input environment targets: cases={}",
        cases.len()
    );
    f.h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_credentials() {
    let mut f = fixture(false).await;
    let (h, other_ns) = (&f.h, &f.other_ns);
    secret_with(h, "no-key", "config", "whatever").await;
    secret_with(h, "garbage", "kubeconfig", ": : not yaml [").await;
    let closed = ports::unused().unwrap();
    let unreachable_kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{closed}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n"
    );
    secret_with(h, "unreachable", "kubeconfig", &unreachable_kubeconfig).await;
    let none = serde_json::json!({});
    let cases: Vec<Case> = vec![
        (
            "missing-kubeconfig",
            environment(
                "missing-kubeconfig",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "absent"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["absent", "does not exist", "create it"],
            },
        ),
        (
            "kubeconfig-no-key",
            environment(
                "kubeconfig-no-key",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "no-key"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["has no `kubeconfig` key"],
            },
        ),
        (
            "kubeconfig-garbage",
            environment(
                "kubeconfig-garbage",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "garbage"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["garbage", "malformed"],
            },
        ),
        (
            "kubeconfig-unreachable",
            environment(
                "kubeconfig-unreachable",
                serde_json::json!({"namespace": other_ns, "clusterCredentialsSecret": "unreachable"}),
                none.clone(),
            ),
            Expect {
                condition: "Applied",
                status: "False",
                reason: "TargetClusterUnavailable",
                says: &["unreachable"],
            },
        ),
    ];
    check_cases(h, &cases).await;
    eprintln!(
        "FIGURES bad-input environment clusters: cases={}",
        cases.len()
    );
    f.assert_still_serving().await;
    f.h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recipients() {
    let mut f = fixture(false).await;
    let (h, other_ns, argo) = (&f.h, &f.other_ns, &f.argo);
    // A recipient of the wrong shape (empty, short, an SSH key) is refused
    // by the API server already (tests/cluster/crd_validation.rs); one of
    // the right shape whose checksum is wrong gets this far.
    let good = argo.to_recipient().to_string();
    let last = good.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &good[..good.len() - 1],
        if last == 'q' { 'p' } else { 'q' }
    );
    let cases: Vec<Case> = vec![(
        "recipient-checksum",
        environment(
            "recipient-checksum",
            ns(other_ns),
            serde_json::json!({"recipients": [good, flipped]}),
        ),
        Expect {
            condition: "Committed",
            status: "False",
            reason: "InvalidSpec",
            says: &[
                "spec.recipients[1] is not an age recipient",
                "fix or remove it",
            ],
        },
    )];
    check_cases(h, &cases).await;
    // Recipient list change: re-sealed for the new recipient only.
    let next = Identity::generate();
    let patch = serde_json::json!({"spec": {"recipients": [next.to_recipient().to_string()]}});
    h.environments()
        .patch("good", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let resealed = wait::until("good re-sealed for the new recipient", T, || async {
        let s = read_side_file(
            h,
            &format!(
                "environments/{}/good/secrets/app-pull.sops.yaml",
                h.workspace
            ),
        )?;
        quayside::seal::open(&s, &next).is_ok().then_some(s)
    })
    .await;
    assert!(
        quayside::seal::open(&resealed, argo).is_err(),
        "the removed recipient can no longer open it"
    );
    eprintln!(
        "FIGURES bad-input environment recipients: cases={}",
        cases.len() + 1
    );
    f.assert_still_serving().await;
    f.h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn side_repo_paths_and_a_malformed_sealed_file() {
    let mut f = fixture(true).await;
    let (h, other_ns) = (&f.h, &f.other_ns);
    let ws = h.workspace.clone();
    // Paths that leave environments/ or hold `.`, `..` or hidden parts are
    // refused by the API server already (tests/cluster/crd_validation.rs);
    // these are well-formed, and only the controller knows they are not
    // this workspace's to write.
    let cases: Vec<Case> = vec![
        (
            "path-other-workspace",
            environment(
                "path-other-workspace",
                ns(other_ns),
                serde_json::json!({"sideRepo": {"path": "environments/other-ws/prod"}}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "SideRepoPathRefused",
                says: &[
                    "spec.sideRepo.path \"environments/other-ws/prod\" is not inside environments/",
                    "path-other-workspace",
                ],
            },
        ),
        (
            "path-workspace-root",
            environment(
                "path-workspace-root",
                ns(other_ns),
                serde_json::json!({"sideRepo": {"path": format!("environments/{ws}")}}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "SideRepoPathRefused",
                says: &["is not inside environments/", "remove spec.sideRepo.path"],
            },
        ),
        (
            "path-steals",
            environment(
                "path-steals",
                ns(other_ns),
                serde_json::json!({"sideRepo": {"path": format!("environments/{ws}/good")}}),
            ),
            Expect {
                condition: "Committed",
                status: "False",
                reason: "InvalidSpec",
                says: &["/good", "good", "which is older", "choose a folder"],
            },
        ),
    ];
    check_cases(h, &cases).await;
    // The malformed sealed file was replaced by a valid one.
    let cond = environment_condition(h, "pre", &READY).await;
    check_message("pre", &cond, &READY);
    let sealed = wait::until("pre's file rewritten", T, || async {
        read_side_file(
            h,
            &format!(
                "environments/{}/pre/secrets/app-pull.sops.yaml",
                h.workspace
            ),
        )
        .filter(|s| s.contains("sops:"))
    })
    .await;
    let opened = quayside::seal::open(&sealed, &h.identity).expect("a valid sealed file");
    let held = h.target_secret(&f.good_ns, "app").await.unwrap();
    let raw = std::str::from_utf8(&held.data.as_ref().unwrap()[".dockerconfigjson"].0).unwrap();
    let creds = quayside::credentials::RobotCredentials::from_docker_config_json(raw).unwrap();
    assert!(opened.expose_secret().contains(creds.token.expose_secret()));
    // "pre" got the Component too.
    assert!(h.target_secret(other_ns, "app").await.is_some());
    eprintln!(
        "FIGURES bad-input environment paths: cases={}",
        cases.len() + 1
    );
    f.assert_still_serving().await;
    f.h.stop_controller().await;
}
