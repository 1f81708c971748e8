//! An end-to-end fixture: a control plane (the shared one, or one of its
//! own), a workspace namespace, the Quay emulator, a real git server with a
//! side repository and source repositories, an age identity, and the
//! controller — in-process, or as the real `quayside run` process — scoped
//! to the workspace, so tests of one binary do not interfere.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, PostParams};
use secrecy::SecretString;

use quay_emulator::{Emulator, EmulatorConfig};
use quayside::api::{Component, Environment};
use quayside::controller::{self, Config, Context, DeliveryIdentity, Metrics};
use quayside::gitops::{DeliveryMode, GitAuth, SideRepoConfig};
use quayside::quay::{QuayClient, QuayConfig, RetryPolicy};
use quayside::render::KustomizeFlavor;
use quayside::seal::Identity;
use quayside::source::ProbeScope;

use crate::cluster::{self, ControlPlane};
use crate::git_server::{self, GitServer};
use crate::process::KillOnDrop;
use crate::{component, tools, wait};

pub const ORG: &str = "quayside-test";
pub const QUAY_TOKEN: &str = "quay-oauth-token-for-tests";
pub const SIDE_REPO: &str = "gitops";

/// Variations of the fixture; [`Harness::start`] takes the defaults.
#[derive(Default)]
pub struct HarnessBuilder {
    private_quota: Option<usize>,
    own_control_plane: bool,
}

impl HarnessBuilder {
    /// Private repositories the Quay organization may hold (default: no limit).
    pub fn private_quota(mut self, n: usize) -> Self {
        self.private_quota = Some(n);
        self
    }

    /// A control plane of its own instead of the shared one, with the CRDs
    /// installed: for a test that restarts the API server, which would
    /// disturb every other test of the binary.
    pub fn own_control_plane(mut self) -> Self {
        self.own_control_plane = true;
        self
    }

    pub async fn start(self) -> Harness {
        let cp = if self.own_control_plane {
            let cp = tokio::task::spawn_blocking(|| {
                let cp = ControlPlane::start();
                cp.install_crds();
                cp
            })
            .await
            .expect("start a control plane");
            Arc::new(cp)
        } else {
            cluster::shared_arc().clone()
        };
        let kube_config = cp
            .try_config()
            .await
            .expect("the control plane's kubeconfig");
        let client = Client::try_from(kube_config.clone()).expect("a client");
        let workspace = cluster::new_namespace(&client, "ws").await;
        // Onboarded as docs/operations.md says: the workspace's own
        // credentials are written as its delivery account too.
        cluster::grant_delivery(&client, &workspace, &workspace).await;
        let mut quay = EmulatorConfig::new(ORG, QUAY_TOKEN);
        quay.private_quota = self.private_quota;
        let emulator = Emulator::start("127.0.0.1:0".parse::<SocketAddr>().unwrap(), quay)
            .await
            .expect("start the Quay emulator");
        let git = GitServer::start(&["public-app"], &[SIDE_REPO, "private-app"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("quay-token"), QUAY_TOKEN).unwrap();
        Harness {
            cp,
            client,
            kube_config,
            workspace,
            emulator,
            git,
            identity: Identity::generate(),
            dir,
            controller: None,
            observed: None,
        }
    }
}

/// What an in-process controller is started with: [`Harness::controller_setup`]
/// gives the fixture's, for a test to change.
pub struct ControllerSetup {
    /// The client it acts through (e.g. an impersonating one).
    pub client: Client,
    pub config: Config,
    pub quay: QuayConfig,
}

pub struct Harness {
    pub cp: Arc<ControlPlane>,
    pub client: Client,
    /// The administrator's configuration `client` was built from.
    pub kube_config: kube::Config,
    pub workspace: String,
    pub emulator: Emulator,
    pub git: GitServer,
    pub identity: Identity,
    pub dir: tempfile::TempDir,
    controller: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Sender<bool>,
    )>,
    /// Metrics of the last controller started, for assertions.
    pub observed: Option<(Metrics, QuayClient)>,
}

impl Harness {
    /// The fixture with its defaults.
    pub async fn start() -> Harness {
        Harness::builder().start().await
    }

    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    pub fn quay_config(&self) -> QuayConfig {
        QuayConfig {
            api_url: self.emulator.api_url(),
            organization: ORG.to_string(),
            token_file: self.dir.path().join("quay-token"),
            extra_ca: None,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                max_attempts: 6,
                base: Duration::from_millis(20),
                max_delay: Duration::from_millis(500),
            },
            // The emulator has no limit unless a test sets one (Faults).
            rate_limit: None,
        }
    }

    pub fn side_repo_workdir(&self) -> PathBuf {
        self.dir.path().join("side-repo")
    }

    pub fn config(&self) -> Config {
        Config {
            registry_host: self.emulator.registry_host(),
            side_repo: Some(SideRepoConfig {
                url: self.git.repo_url(SIDE_REPO),
                branch: "main".into(),
                auth: GitAuth::Basic {
                    username: git_server::USER.into(),
                    password: SecretString::from(git_server::PASSWORD.to_string()),
                },
                workdir: self.side_repo_workdir(),
                mode: DeliveryMode::Direct,
                author_name: "quayside".into(),
                author_email: "quayside@localhost".into(),
                max_push_attempts: 5,
            }),
            delivery_mode: quayside::api::DeliveryMode::Both,
            flavor: KustomizeFlavor::Ksops,
            identity: self.identity.clone(),
            heartbeat: Duration::from_secs(3600),
            quay_verify_interval: Duration::from_secs(3600),
            rotation_interval: None,
            cleanup_timeout: Duration::from_secs(30),
            // The test git servers are on loopback.
            source_scope: ProbeScope::AnyAddress,
            source_retry: RetryPolicy {
                max_attempts: 3,
                base: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
            },
            namespace: Some(self.workspace.clone()),
            delivery: Some(DeliveryIdentity {
                base: self.kube_config.clone(),
                default_account: cluster::DELIVERY_ACCOUNT.to_string(),
            }),
            side_repo_scope: Default::default(),
            // Tests rotate one Component several times in seconds.
            rotation_request_cooldown: Duration::ZERO,
            rotation_deadline: Some(Duration::from_secs(3600)),
            concurrency: 32,
            remote_watch_limit: 100,
        }
    }

    /// The fixture's client, configuration and Quay settings, for a test
    /// to change before [`Harness::start_controller_from`].
    pub fn controller_setup(&self) -> ControllerSetup {
        ControllerSetup {
            client: self.client.clone(),
            config: self.config(),
            quay: self.quay_config(),
        }
    }

    /// Start the controller in-process, as `setup` says; its metrics and
    /// Quay client are kept in [`Harness::observed`].
    pub async fn start_controller_from(&mut self, setup: ControllerSetup) {
        assert!(self.controller.is_none(), "controller already running");
        // `QUAYSIDE_TEST_LOG=quayside=debug`: the in-process controllers'
        // logs on stderr (every test's, interleaved; grep a namespace).
        if let Ok(filter) = std::env::var("QUAYSIDE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        let quay = QuayClient::new(setup.quay).expect("a Quay client");
        let metrics = Metrics::default();
        self.observed = Some((metrics.clone(), quay.clone()));
        let ctx = Arc::new(Context::new(setup.client, setup.config, quay, metrics));
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let handle = tokio::spawn(async move {
            controller::run(ctx, async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await;
        });
        self.controller = Some((handle, tx));
    }

    /// Start the controller in-process with `config`.
    pub async fn start_controller_with(&mut self, config: Config) {
        let mut setup = self.controller_setup();
        setup.config = config;
        self.start_controller_from(setup).await;
    }

    /// Start the controller in-process acting through `client` (e.g. an
    /// impersonating one, to run under the deploy/ RBAC).
    pub async fn start_controller_as(&mut self, client: Client, config: Config) {
        let mut setup = self.controller_setup();
        setup.client = client;
        setup.config = config;
        self.start_controller_from(setup).await;
    }

    pub async fn start_controller(&mut self) {
        let setup = self.controller_setup();
        self.start_controller_from(setup).await;
    }

    /// Stop the controller and wait for in-flight passes to finish.
    pub async fn stop_controller(&mut self) {
        if let Some((handle, tx)) = self.controller.take() {
            let _ = tx.send(true);
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("controller stops within 30s")
                .unwrap();
        }
    }

    /// A target namespace, with a `deployer` ServiceAccount or not, whose
    /// owner granted this workspace delivery.
    pub async fn target_namespace(&self, prefix: &str, with_deployer: bool) -> String {
        let ns = self.ungranted_namespace(prefix, with_deployer).await;
        cluster::grant_delivery(&self.client, &self.workspace, &ns).await;
        ns
    }

    /// A namespace whose owner granted this workspace nothing.
    pub async fn ungranted_namespace(&self, prefix: &str, with_deployer: bool) -> String {
        let ns = cluster::new_namespace(&self.client, prefix).await;
        if with_deployer {
            cluster::create_service_account(&self.client, &ns, "deployer").await;
        }
        ns
    }

    pub fn components(&self) -> Api<Component> {
        Api::namespaced(self.client.clone(), &self.workspace)
    }

    pub fn environments(&self) -> Api<Environment> {
        Api::namespaced(self.client.clone(), &self.workspace)
    }

    pub async fn create_component(&self, name: &str, source_url: &str, visibility: &str) {
        let c: Component = serde_json::from_value(serde_json::json!({
            "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
            "metadata": {"name": name},
            "spec": {"source": {"git": {"url": source_url}}, "visibility": visibility}
        }))
        .unwrap();
        self.components()
            .create(&PostParams::default(), &c)
            .await
            .unwrap();
    }

    pub async fn create_environment(&self, name: &str, target: &str, recipients: &[String]) {
        let e: Environment = serde_json::from_value(serde_json::json!({
            "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name},
            "spec": {"target": {"namespace": target}, "recipients": recipients}
        }))
        .unwrap();
        self.environments()
            .create(&PostParams::default(), &e)
            .await
            .unwrap();
    }

    /// An Environment delivering to `target` in another cluster: a Secret
    /// `<name>-cluster` holding `kubeconfig`, and the Environment naming it.
    pub async fn create_remote_environment(&self, name: &str, target: &str, kubeconfig: &str) {
        let secret_name = format!("{name}-cluster");
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": secret_name},
            "stringData": {"kubeconfig": kubeconfig}
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.client.clone(), &self.workspace)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let e: Environment = serde_json::from_value(serde_json::json!({
            "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name},
            "spec": {"target": {"namespace": target, "clusterCredentialsSecret": secret_name}}
        }))
        .unwrap();
        self.environments()
            .create(&PostParams::default(), &e)
            .await
            .unwrap();
    }

    /// Wait until a Component's Ready condition is True.
    pub async fn wait_component_ready(&self, name: &str, timeout: Duration) -> Component {
        let api = self.components();
        let last = std::sync::Mutex::new(None::<String>);
        let ready = tokio::time::timeout(
            timeout,
            wait::until(&format!("Component {name} Ready"), timeout * 2, || {
                let (api, last) = (api.clone(), &last);
                async move {
                    let c = api.get_opt(name).await.ok()??;
                    let status = c.status.as_ref().map(|s| (&s.conditions, &s.environments));
                    *last.lock().unwrap() = Some(format!("{status:?}"));
                    component::is_ready(&c).then_some(c)
                }
            }),
        )
        .await;
        // On time out, say what the status held: a bare "not Ready" is
        // not enough to tell a lost trigger from a failing step.
        ready.unwrap_or_else(|_| {
            panic!(
                "timed out after {timeout:?} waiting for Component {name} Ready; last status: {}",
                last.lock().unwrap().clone().unwrap_or_default()
            )
        })
    }

    /// Ask for an emergency rotation of Component `name`.
    pub async fn request_rotation(&self, name: &str) {
        component::request_rotation(&self.components(), name)
            .await
            .expect("annotate the Component");
    }

    /// Wait until Component `name` has rotated to at least `generation`
    /// (annotation removed); returns it then.
    pub async fn wait_rotated(&self, name: &str, generation: i64, timeout: Duration) -> Component {
        component::wait_rotated(&self.components(), name, generation, timeout).await
    }

    /// The pull Secret of `component` in `namespace`, if present.
    pub async fn target_secret(&self, namespace: &str, component: &str) -> Option<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(&format!("{component}-pull"))
            .await
            .unwrap()
    }

    pub async fn image_pull_secrets(&self, namespace: &str, sa: &str) -> Vec<String> {
        Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .get(sa)
            .await
            .unwrap()
            .image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    /// A fresh clone of the side repository (with `git`), for assertions;
    /// `None` while its branch does not exist yet.
    pub fn try_clone_side_repo(&self) -> Option<tempfile::TempDir> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("git")
            .args(["clone", "--quiet", "--branch", "main"])
            .arg(self.git.authed_repo_url(SIDE_REPO))
            .arg(dir.path().join("repo"))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        ok.then_some(dir)
    }

    /// A fresh clone of the side repository; it must exist.
    pub fn clone_side_repo(&self) -> tempfile::TempDir {
        self.try_clone_side_repo()
            .expect("clone the side repository")
    }

    /// `quayside run` for this fixture as a real process (side repository,
    /// emulator, workspace scope); set options, then take the command.
    pub fn controller_command(&self) -> ControllerCommand<'_> {
        ControllerCommand {
            h: self,
            crash_at: None,
            listen: "127.0.0.1:0".into(),
            side_repo: true,
            extra: Vec::new(),
            election: None,
            clock_offset: None,
            all_namespaces: false,
        }
    }

    /// `git log` subjects of the side repository's main branch, newest first.
    pub fn side_repo_log(&self) -> Vec<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.git.repo_path(SIDE_REPO))
            .args(["log", "--format=%H %s", "main"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }
}

/// `quayside run` for a [`Harness`], as the real binary.
pub struct ControllerCommand<'a> {
    h: &'a Harness,
    crash_at: Option<String>,
    listen: String,
    side_repo: bool,
    extra: Vec<OsString>,
    /// (Lease namespace, identity, lease duration) when electing.
    election: Option<(String, String, Duration)>,
    /// Run under `faketime` with the wall clock this far off (e.g. "+15s").
    clock_offset: Option<String>,
    /// No `--watch-namespace`: every namespace.
    all_namespaces: bool,
}

impl ControllerCommand<'_> {
    /// Abort at this crash point (debug builds; `QUAYSIDE_CRASH_AT`).
    pub fn crash_at(mut self, point: &str) -> Self {
        self.crash_at = Some(point.to_string());
        self
    }

    /// Serve /metrics, /healthz and /readyz here (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.to_string();
        self
    }

    /// Take part in leader election on the Lease `quayside-leader` of
    /// `namespace`, as `identity`, with this lease duration.
    pub fn leader_election(mut self, namespace: &str, identity: &str, lease: Duration) -> Self {
        self.election = Some((namespace.to_string(), identity.to_string(), lease));
        self
    }

    /// Run with the process's wall clock `offset` off (`faketime`, e.g.
    /// "-15s"); its monotonic clock stays true, as on a skewed node.
    pub fn clock_offset(mut self, offset: &str) -> Self {
        self.clock_offset = Some(offset.to_string());
        self
    }

    /// Watch every namespace, not only the fixture's workspace: for a
    /// control plane of the test's own (a shared one holds other tests').
    pub fn all_namespaces(mut self) -> Self {
        self.all_namespaces = true;
        self
    }

    /// Deliver to clusters only: no side repository.
    pub fn without_side_repo(mut self) -> Self {
        self.side_repo = false;
        self
    }

    /// More arguments, after the fixture's.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// Start it; it is killed when the value is dropped.
    pub fn spawn(self) -> KillOnDrop {
        KillOnDrop(self.command().spawn().expect("spawn quayside run"))
    }

    /// The command; its output goes nowhere.
    pub fn command(self) -> Command {
        let h = self.h;
        let dir = h.dir.path();
        write_whole(
            &dir.join("age.key"),
            secrecy::ExposeSecret::expose_secret(&h.identity.to_secret_string()),
        );
        let quayside = tools::workspace_bin("quayside");
        let mut cmd = match &self.clock_offset {
            Some(offset) => {
                let mut c = Command::new(tools::bin("faketime"));
                c.args(["-f", offset])
                    .arg(&quayside)
                    .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
                c
            }
            None => Command::new(&quayside),
        };
        cmd.arg("run").arg("--kubeconfig").arg(h.cp.kubeconfig());
        if !self.all_namespaces {
            cmd.args(["--watch-namespace", &h.workspace]);
        }
        match &self.election {
            Some((namespace, identity, lease)) => {
                cmd.args(["--leader-election", "true"])
                    .args(["--leader-election-namespace", namespace])
                    .arg("--leader-election-lease-duration")
                    .arg(format!("{}ms", lease.as_millis()))
                    .env("POD_NAME", identity);
            }
            None => {
                cmd.args(["--leader-election", "false"]);
            }
        }
        cmd.args(["--listen", &self.listen])
            .args(["--quay-api-url", &h.emulator.api_url()])
            .args(["--quay-organization", ORG])
            .arg("--quay-token-file")
            .arg(dir.join("quay-token"))
            .args(["--registry-host", &h.emulator.registry_host()])
            .args(["--source-allow-internal", "true"])
            .arg("--age-identity-file")
            .arg(dir.join("age.key"));
        if self.side_repo {
            write_whole(&dir.join("git-password"), git_server::PASSWORD);
            cmd.args(["--side-repo-url", &h.git.repo_url(SIDE_REPO)])
                .args(["--side-repo-username", git_server::USER])
                .arg("--side-repo-password-file")
                .arg(dir.join("git-password"))
                .arg("--side-repo-workdir")
                .arg(dir.join("controller-clone"));
        }
        cmd.args(&self.extra)
            .env_remove("QUAYSIDE_CRASH_AT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(p) = &self.crash_at {
            cmd.env("QUAYSIDE_CRASH_AT", p);
        }
        cmd
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some((handle, tx)) = self.controller.take() {
            let _ = tx.send(true);
            handle.abort();
        }
    }
}

/// Write `path` whole, by a rename: a controller started just before may
/// be reading it, and must never see it truncated.
fn write_whole(path: &std::path::Path, text: &str) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{n}"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
