//! A real Flux in the loop: quayside commits an Environment's sealed pull
//! Secret to the side repository, and Flux's source-controller and
//! kustomize-controller — configured as a Flux user does, a GitRepository
//! with basic auth on the test git server and a Kustomization with SOPS age
//! decryption — fetch, decrypt and apply it in the target namespace.
//! Also the fixture `flux_rotation` builds on.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use quayside::api::Environment;
use quayside::controller::Config;
use quayside::render::KustomizeFlavor;
use quayside::seal::Identity;
use quayside_testkit::flux::{self, Flux, GitSync};
use quayside_testkit::git_server;
use quayside_testkit::harness::{Harness, SIDE_REPO};
use quayside_testkit::registry::creds_of;
use secrecy::ExposeSecret;

/// Bound on one Flux round: poll, fetch, decrypt, apply (2 s intervals),
/// generous for a loaded CI machine.
pub(crate) const FLUX_T: Duration = Duration::from_secs(180);
/// The Component every Flux test delivers.
pub(crate) const APP: &str = "app";

/// A workspace whose controller renders the Flux flavour, a running Flux
/// syncing each Environment's folder, and Component [`APP`] Ready.
pub(crate) struct FluxFixture {
    pub h: Harness,
    pub flux: Flux,
    /// (Environment, target namespace), one per Environment.
    pub environments: Vec<(String, String)>,
}

impl FluxFixture {
    /// `environments` Environments whose spec is the fixture's merged with
    /// `spec` (e.g. a delivery mode), each synced by its own Flux
    /// GitRepository + Kustomization, set up before the Component exists
    /// — the standing configuration a Flux user has.
    pub async fn start(environments: usize, spec: serde_json::Value) -> FluxFixture {
        FluxFixture::start_with(environments, spec, |_| {}).await
    }

    /// [`FluxFixture::start`], with the controller's configuration changed
    /// by `configure` (after the Flux flavour is set) — e.g. a cluster-wide
    /// default delivery mode.
    pub async fn start_with(
        environments: usize,
        spec: serde_json::Value,
        configure: impl FnOnce(&mut Config),
    ) -> FluxFixture {
        let mut h = Harness::start().await;
        let flux = Flux::start(&h.cp).await;
        let age = Identity::generate();
        let recipient = age.to_recipient().to_string();
        let mut envs = Vec::new();
        for i in 0..environments {
            let name = format!("env{i}");
            let target = h.target_namespace("fx", false).await;
            create_environment(&h, &name, &target, &recipient, &spec).await;
            flux.sync(&GitSync {
                name: &name,
                url: h.git.repo_url(SIDE_REPO),
                username: git_server::USER,
                password: git_server::PASSWORD,
                branch: "main",
                path: format!("./environments/{}/{name}", h.workspace),
                age: &age,
            })
            .await;
            envs.push((name, target));
        }
        let mut config = h.config();
        config.flavor = KustomizeFlavor::Flux;
        configure(&mut config);
        h.start_controller_with(config).await;
        h.create_component(APP, &h.git.repo_url("public-app"), "public")
            .await;
        h.wait_component_ready(APP, FLUX_T).await;
        FluxFixture {
            h,
            flux,
            environments: envs,
        }
    }

    /// The side repository's current head commit; empty while quayside has
    /// not pushed its first commit.
    pub fn head(&self) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.h.git.repo_path(SIDE_REPO))
            .args(["rev-parse", "--verify", "--quiet", "main"])
            .output()
            .expect("git rev-parse");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Whether `path` exists in the side repository's head.
    pub fn in_head(&self, path: &str) -> bool {
        Command::new("git")
            .arg("--git-dir")
            .arg(self.h.git.repo_path(SIDE_REPO))
            .args(["cat-file", "-e", &format!("main:{path}")])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("git cat-file")
            .success()
    }

    /// Wait until every Kustomization applied the side repository's head
    /// (followed as it moves); returns that head.
    pub async fn wait_all_applied(&self) -> String {
        for (name, _) in &self.environments {
            self.flux.wait_applied(name, || self.head(), FLUX_T).await;
        }
        let head = self.head();
        for (name, _) in &self.environments {
            self.flux.wait_applied(name, || head.clone(), FLUX_T).await;
        }
        head
    }

    /// The target namespaces.
    pub fn targets(&self) -> Vec<String> {
        self.environments.iter().map(|(_, t)| t.clone()).collect()
    }
}

async fn create_environment(
    h: &Harness,
    name: &str,
    target: &str,
    recipient: &str,
    extra: &serde_json::Value,
) {
    let mut spec = serde_json::json!({
        "target": {"namespace": target},
        "recipients": [recipient],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let e: Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("an Environment");
    h.environments()
        .create(&PostParams::default(), &e)
        .await
        .expect("create the Environment");
}

/// Which field managers own fields of `s` (kube's `managedFields`).
fn managers(s: &Secret) -> Vec<String> {
    s.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flux_applies_what_quayside_commits() {
    let f = FluxFixture::start(1, serde_json::json!({})).await;
    let (env, target) = &f.environments[0];
    let head = f.wait_all_applied().await;

    // The Kustomization applied exactly the commit quayside pushed, and
    // lists the pull Secret in its inventory.
    let k = f.flux.kustomizations().get(env).await.unwrap();
    assert!(flux::is_ready(&k), "Kustomization {env} is Ready");
    let inventory = k.data["status"]["inventory"]["entries"].to_string();
    assert!(
        inventory.contains(&format!("{target}_{APP}-pull__Secret")),
        "the inventory lists the pull Secret: {inventory}"
    );
    let log = f.h.side_repo_log();
    assert!(
        log.first().is_some_and(|l| l.starts_with(&head)),
        "Flux applied the side repository's head {head}: {log:?}"
    );

    // The Secret in the target was applied by kustomize-controller (its
    // field manager and label), decrypted: Quay accepts the login.
    let secret =
        f.h.target_secret(target, APP)
            .await
            .expect("the pull Secret");
    assert!(
        managers(&secret).iter().any(|m| m == flux::APPLY_MANAGER),
        "kustomize-controller applied the Secret: {:?}",
        managers(&secret)
    );
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(flux::NAME_LABEL), Some(env));
    let creds = creds_of(&secret);
    assert!(
        f.h.emulator
            .accepts_login(&creds.username, creds.token.expose_secret()),
        "the Secret Flux applied holds a login Quay accepts"
    );
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );

    let file_there = format!(
        "environments/{}/{env}/secrets/{APP}-pull.sops.yaml",
        f.h.workspace
    );
    assert!(f.in_head(&file_there), "{file_there} is committed");

    // Removing the Component removes its file from git; Flux applies that
    // commit and drops the Secret from its inventory.
    f.h.components()
        .delete(APP, &Default::default())
        .await
        .expect("delete the Component");
    let file = format!(
        "environments/{}/{env}/secrets/{APP}-pull.sops.yaml",
        f.h.workspace
    );
    quayside_testkit::wait::until("the sealed file removed from git", FLUX_T, || async {
        (!f.in_head(&file)).then_some(())
    })
    .await;
    f.wait_all_applied().await;
    let k = f.flux.kustomizations().get(env).await.unwrap();
    let inventory = k.data["status"]["inventory"]["entries"].to_string();
    assert!(
        !inventory.contains(&format!("{APP}-pull")),
        "the inventory no longer lists the pull Secret: {inventory}"
    );
    assert!(f.h.target_secret(target, APP).await.is_none());
}

/// No Flux process outlives its fixture: stopping closes each supervisor's
/// pipe, the supervisor stops its controller, and both are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_controllers_stop_with_their_fixture() {
    let cp = quayside_testkit::cluster::shared_arc().clone();
    let mut flux = Flux::start(&cp).await;
    let pids = flux.pids();
    assert_eq!(
        pids.len(),
        4,
        "two supervisors and two controllers: {pids:?}"
    );
    let started = std::time::Instant::now();
    tokio::task::block_in_place(|| flux.stop());
    let alive: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(alive.is_empty(), "still running after stop: {alive:?}");
    eprintln!(
        "flux_controllers_stop_with_their_fixture: both stopped in {} ms",
        started.elapsed().as_millis()
    );
}
