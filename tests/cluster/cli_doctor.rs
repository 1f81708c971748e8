//! `quayside doctor`, run as the real binary with `quayside run`'s flags
//! against the control plane, the Quay emulator and the git server: all
//! checks pass for a good set-up, under the controller's own RBAC too
//! (`--as` its ServiceAccount), and each broken part gives its own FAIL
//! line and exit status 1: a Quay token without org:admin, a wrong
//! side-repo password, an identity without the controller's rights.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};
use quay_emulator::{Emulator, EmulatorConfig, TokenAccess};
use quayside_testkit::harness::{Harness, ORG, QUAY_TOKEN, SIDE_REPO};
use quayside_testkit::{cluster, git_server, wait};

use super::cli_status::{Ran, kubeconfig, quayside};

const T: Duration = Duration::from_secs(90);

/// What doctor is given: the fixture's configuration, or parts replaced.
struct Given<'a> {
    quay_url: String,
    token: &'a str,
    git_password: &'a str,
    /// The age identity file's content (default: the fixture's identity).
    age_key: Option<&'a str>,
}

fn good(h: &Harness) -> Given<'static> {
    Given {
        quay_url: h.emulator.api_url(),
        token: QUAY_TOKEN,
        git_password: git_server::PASSWORD,
        age_key: None,
    }
}

/// `quayside doctor` with `given`; `extra` flags come last.
async fn doctor(h: &Harness, given: Given<'_>, extra: &[&str]) -> Ran {
    let Given {
        quay_url,
        token,
        git_password,
        age_key,
    } = given;
    let quay_url = quay_url.as_str();
    let dir = h.dir.path();
    let identity = h.identity.to_secret_string();
    let key = age_key.unwrap_or(secrecy::ExposeSecret::expose_secret(&identity));
    std::fs::write(dir.join("doctor-age.key"), key).unwrap();
    std::fs::write(dir.join("doctor-token"), token).unwrap();
    std::fs::write(dir.join("doctor-git-password"), git_password).unwrap();
    let (kc, side) = (kubeconfig(h), h.git.repo_url(SIDE_REPO));
    let files = |name: &str| dir.join(name).display().to_string();
    let (age, tok, pw) = (
        files("doctor-age.key"),
        files("doctor-token"),
        files("doctor-git-password"),
    );
    let mut args = vec![
        "doctor",
        "--kubeconfig",
        &kc,
        "--quay-api-url",
        quay_url,
        "--quay-organization",
        ORG,
        "--quay-token-file",
        &tok,
        "--age-identity-file",
        &age,
        "--side-repo-url",
        &side,
        "--side-repo-username",
        git_server::USER,
        "--side-repo-password-file",
        &pw,
        "--leader-election-namespace",
        &h.workspace,
    ];
    args.extend_from_slice(extra);
    quayside(&args).await
}

fn line<'a>(ran: &'a Ran, what: &str) -> &'a str {
    ran.stdout
        .lines()
        .find(|l| {
            l.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{what}:")))
        })
        .unwrap_or_else(|| panic!("no `{what}` line:\n{}{}", ran.stdout, ran.stderr))
}

fn assert_verdict(ran: &Ran, what: &str, verdict: &str, says: &str) {
    let l = line(ran, what);
    assert!(
        l.starts_with(verdict) && l.contains(says),
        "{what}: wanted {verdict} saying {says:?}, got:\n{l}\n\n{}",
        ran.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_good_set_up_passes_every_check() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("doc", true).await;
    h.create_environment("dev", &target, &[]).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    h.stop_controller().await;
    let ran = doctor(&h, good(&h), &[]).await;
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    let recipient = h.identity.to_recipient().to_string();
    assert_verdict(&ran, "age key", "ok", &recipient);
    assert_verdict(&ran, "quay robots", "ok", "org:admin");
    assert_verdict(&ran, "quay repositories", "ok", "repo:read");
    assert_verdict(&ran, "quay repository creation", "skip", "not probed");
    assert_verdict(&ran, "side repository read", "ok", "1 sealed files");
    assert_verdict(&ran, "side repository write", "ok", "accepts a push");
    assert_verdict(&ran, "side repository forge", "skip", "direct mode");
    assert_verdict(&ran, "age key recipients", "ok", "every sealed file (1)");
    assert_verdict(&ran, "crds", "ok", "the same as this release's");
    assert_verdict(&ran, "rbac", "ok", "may do all");
    assert!(
        !ran.stdout.contains(git_server::PASSWORD) && !ran.stdout.contains(QUAY_TOKEN),
        "no secret printed"
    );
    eprintln!("{}", ran.stdout);
}

/// The controller's own RBAC, as deploy/rbac/ ships it, bound to a
/// ServiceAccount: doctor run `--as` it finds nothing missing; an account
/// without it gets the list of what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rbac_is_checked_for_the_controllers_account() {
    let h = Harness::start().await;
    let ws = h.workspace.clone();
    cluster::create_service_account(&h.client, &ws, "controller").await;
    let shipped: ClusterRole = first_doc(include_str!("../../deploy/rbac/clusterrole.yaml"));
    let name = format!("quayside-controller-{ws}");
    let role = ClusterRole {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..shipped
    };
    Api::<ClusterRole>::all(h.client.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "controller", "namespace": ws}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(h.client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let leader: Role = first_doc(include_str!("../../deploy/rbac/role.yaml"));
    let leader = Role {
        metadata: kube::api::ObjectMeta {
            name: Some("leader".into()),
            namespace: Some(ws.clone()),
            ..Default::default()
        },
        ..leader
    };
    Api::<Role>::namespaced(h.client.clone(), &ws)
        .create(&PostParams::default(), &leader)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "leader", "namespace": ws},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leader"},
        "subjects": [{"kind": "ServiceAccount", "name": "controller", "namespace": ws}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(h.client.clone(), &ws)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let controller = format!("system:serviceaccount:{ws}:controller");
    // The API server's authorizer sees new bindings a moment later: wait
    // until both take effect (the last rule of each, as the account).
    let acting = h.cp.impersonating_client(&controller, &[]).await;
    wait::until("the bindings take effect", T, || async {
        let leases =
            Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(acting.clone(), &ws);
        let components = Api::<quayside::api::Component>::all(acting.clone());
        let lp = kube::api::ListParams::default().limit(1);
        let lease = matches!(leases.get_opt("none").await, Ok(None));
        (lease && components.list(&lp).await.is_ok()).then_some(())
    })
    .await;
    let ran = doctor(&h, good(&h), &["--as", &controller]).await;
    Api::<ClusterRoleBinding>::all(h.client.clone())
        .delete(&name, &Default::default())
        .await
        .unwrap();
    Api::<ClusterRole>::all(h.client.clone())
        .delete(&name, &Default::default())
        .await
        .unwrap();
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    assert_verdict(&ran, "rbac", "ok", &format!("{controller} may do all"));
    // The controller may not read CRDs: served is what it can tell.
    assert_verdict(&ran, "crds", "ok", "are served");
    let nobody = format!("system:serviceaccount:{ws}:nobody");
    let ran = doctor(&h, good(&h), &["--as", &nobody]).await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert_verdict(
        &ran,
        "rbac",
        "FAIL",
        &format!("{nobody} may not get components.quayside.dev"),
    );
    for missing in [
        "impersonate serviceaccounts",
        "create events.events.k8s.io",
        &format!("update leases.coordination.k8s.io in {ws}"),
    ] {
        assert!(
            line(&ran, "rbac").contains(missing),
            "{missing}: {}",
            line(&ran, "rbac")
        );
    }
    assert_verdict(&ran, "crds", "FAIL", "cannot list Components");
    // The checks that need no Kubernetes still pass.
    assert_verdict(&ran, "quay robots", "ok", "org:admin");
}

fn first_doc<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    use serde::Deserialize;
    let doc = serde_norway::Deserializer::from_str(yaml).next().unwrap();
    let value = serde_json::Value::deserialize(doc).unwrap();
    serde_json::from_value(value).unwrap()
}

/// Each broken part: its own FAIL line, the others unaffected, exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_broken_part_fails_its_own_line() {
    let h = Harness::start().await;
    // A token of an org admin with only repo:read granted.
    let quay = EmulatorConfig::new(ORG, QUAY_TOKEN)
        .with_token("read-only-token", TokenAccess::read_scope_only());
    let weak = Emulator::start("127.0.0.1:0".parse::<SocketAddr>().unwrap(), quay)
        .await
        .unwrap();
    let ran = doctor(
        &h,
        Given {
            quay_url: weak.api_url(),
            token: "read-only-token",
            ..good(&h)
        },
        &[],
    )
    .await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert_verdict(&ran, "quay robots", "FAIL", "it needs org:admin");
    assert_verdict(&ran, "quay repositories", "ok", "repo:read");
    assert_verdict(&ran, "side repository write", "ok", "accepts a push");
    // A wrong side-repo password.
    let ran = doctor(
        &h,
        Given {
            git_password: "not-the-password",
            ..good(&h)
        },
        &[],
    )
    .await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert_verdict(
        &ran,
        "side repository read",
        "FAIL",
        "authentication to the side repository",
    );
    assert!(
        !ran.stdout.contains("not-the-password"),
        "the password is not printed"
    );
    assert_verdict(&ran, "quay robots", "ok", "org:admin");
    assert_verdict(&ran, "rbac", "ok", "may do all");
    // Pull-request mode: the forge's API with the right token, then a wrong one.
    let ran = pull_request_mode(&h, git_server::PASSWORD).await;
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    assert_verdict(
        &ran,
        "side repository forge",
        "ok",
        "lists the side repository's pull requests",
    );
    let ran = pull_request_mode(&h, "not-the-forge-token").await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert_verdict(
        &ran,
        "side repository forge",
        "FAIL",
        "list open pull requests",
    );
    assert_verdict(&ran, "side repository write", "ok", "accepts a push");
    assert!(
        !ran.stdout.contains("not-the-forge-token"),
        "the token is not printed"
    );
    // An age key file that holds something else.
    let ran = doctor(
        &h,
        Given {
            age_key: Some("hello"),
            ..good(&h)
        },
        &[],
    )
    .await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert_verdict(&ran, "age key", "FAIL", "holds no age identity");
}

/// doctor in pull-request mode against the git server's forge API, with
/// `token` in the forge token file.
async fn pull_request_mode(h: &Harness, token: &str) -> Ran {
    let api = format!("{}/api/v1", h.git.base_url());
    let file = h.dir.path().join("forge-token");
    std::fs::write(&file, token).unwrap();
    let file = file.display().to_string();
    let pr = [
        "--side-repo-mode",
        "pull-request",
        "--forge-api-url",
        &api,
        "--forge-repository",
        "team/gitops",
        "--forge-token-file",
        &file,
    ];
    doctor(h, good(h), &pr).await
}
