//! A real Kubernetes control plane (etcd + kube-apiserver) started by the
//! Go-built `testcluster` on loopback, the way envtest does: one shared per
//! test binary, more on demand, and one per controller benchmark.
//!
//! No process outlives its owner: `testcluster` watches its standard input,
//! which only this process holds, and stops both servers when it closes —
//! on a normal exit, a panic, or SIGKILL alike. Its servers carry a
//! parent-death signal as a second line of defence.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, CustomResourceExt};
use quayside::api::{Component, Environment};

use crate::{scratch, tools};

/// One running control plane; it stops when dropped.
pub struct ControlPlane {
    /// The folder `testcluster` works in, when this value owns it.
    _dir: Option<tempfile::TempDir>,
    kubeconfig: PathBuf,
    child: Mutex<Option<(Child, ChildStdin)>>,
    lines: Mutex<Receiver<String>>,
}

static SHARED: OnceLock<Arc<ControlPlane>> = OnceLock::new();

/// The control plane shared by every test of this binary, with the CRDs installed.
pub fn shared() -> &'static ControlPlane {
    shared_arc()
}

/// [`shared`], as the `Arc` a [`crate::harness::Harness`] holds.
pub fn shared_arc() -> &'static Arc<ControlPlane> {
    SHARED.get_or_init(|| {
        let cp = ControlPlane::start();
        cp.install_crds();
        Arc::new(cp)
    })
}

impl ControlPlane {
    /// Start a new, independent control plane in a fresh scratch folder,
    /// with `.cache/bin/testcluster` (for tests: panics on failure).
    pub fn start() -> ControlPlane {
        let dir = scratch::dir("quayside-cp-").expect("a scratch folder");
        let mut cp = ControlPlane::launch(&tools::bin("testcluster"), dir.path(), false)
            .unwrap_or_else(|e| panic!("{e:#}"));
        cp._dir = Some(dir);
        cp
    }

    /// Start `testcluster` (the binary at `testcluster`) working in `dir`,
    /// and wait for it to be ready. `quiet` drops its log instead of
    /// passing it on to this process's standard error.
    pub fn launch(testcluster: &Path, dir: &Path, quiet: bool) -> anyhow::Result<ControlPlane> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut child = Command::new(testcluster)
            .arg("start")
            .arg("--dir")
            .arg(dir)
            .arg("--watch-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (run scripts/setup to build it)",
                    testcluster.display()
                )
            })?;
        let stdin = child.stdin.take().context("testcluster's stdin")?;
        let stdout = child.stdout.take().context("testcluster's stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let cp = ControlPlane {
            kubeconfig: dir.join("kubeconfig"),
            _dir: None,
            child: Mutex::new(Some((child, stdin))),
            lines: Mutex::new(rx),
        };
        cp.wait_for_line("READY", Duration::from_secs(120))?;
        Ok(cp)
    }

    fn wait_for_line(&self, prefix: &str, timeout: Duration) -> anyhow::Result<()> {
        let rx = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(()),
                Ok(_) => continue,
                Err(e) => bail!("the control plane did not print {prefix} within {timeout:?}: {e}"),
            }
        }
    }

    /// Path of an admin kubeconfig for this control plane.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs client bound to the caller's runtime (for tests: panics).
    pub async fn client(&self) -> Client {
        self.try_client()
            .await
            .expect("a client for the control plane")
    }

    /// A kube-rs client bound to the caller's runtime.
    pub async fn try_client(&self) -> anyhow::Result<Client> {
        Ok(Client::try_from(self.try_config().await?)?)
    }

    /// The administrator's client configuration.
    pub async fn try_config(&self) -> anyhow::Result<Config> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)
    }

    /// The client configuration of ServiceAccount `namespace/name` itself,
    /// with a token the API server issued for it (TokenRequest): unlike
    /// impersonation, it can impersonate in turn only as its RBAC allows.
    pub async fn service_account_config(&self, namespace: &str, name: &str) -> Config {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        let admin = self.try_config().await.expect("admin configuration");
        let client = Client::try_from(admin.clone()).expect("admin client");
        let _ = ensure_namespace(&client, namespace).await;
        ignore_conflict(try_create_service_account(&client, namespace, name).await)
            .expect("create the ServiceAccount");
        let request: TokenRequest = serde_json::from_value(serde_json::json!({
            "spec": {"audiences": [], "expirationSeconds": 3600}
        }))
        .expect("a TokenRequest");
        let issued = Api::<ServiceAccount>::namespaced(client, namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .expect("a token for the ServiceAccount");
        let token = issued.status.expect("an issued token").token;
        let mut config = admin;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        };
        config
    }

    /// A client that acts as `user` (with `groups`) through impersonation,
    /// so a test runs under exactly the RBAC that user has.
    pub async fn impersonating_client(&self, user: &str, groups: &[&str]) -> Client {
        let mut kc = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        for a in kc.auth_infos.iter_mut() {
            if let Some(info) = a.auth_info.as_mut() {
                info.impersonate = Some(user.to_string());
                info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
            }
        }
        let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
        Client::try_from(cfg).expect("client")
    }

    /// `kubectl` against this control plane.
    pub fn kubectl(&self) -> Command {
        let mut c = Command::new(tools::bin("kubectl"));
        c.arg("--kubeconfig").arg(&self.kubeconfig);
        c
    }

    /// Install quayside's CRDs and wait until they are served, from code
    /// without a runtime or inside one (for tests: panics on failure).
    pub fn install_crds(&self) {
        // A runtime of its own on a thread of its own: the caller may be a
        // runtime's worker, where blocking on another runtime panics.
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(async {
                    let client = self.try_client().await?;
                    install_crds(&client).await
                })
            })
            .join()
            .expect("the CRD installer thread")
        })
        .unwrap_or_else(|e| panic!("installing the CRDs: {e:#}"));
    }

    /// Stop and start the API server on the same etcd (state survives).
    pub fn restart_apiserver(&self) {
        let pid = self.child.lock().unwrap().as_ref().expect("running").0.id();
        let ok = Command::new("kill")
            .args(["-USR1", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "signal testcluster");
        self.wait_for_line("RESTARTED", Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Stop the control plane now and wait for its processes to exit.
    pub fn stop(&self) {
        let taken = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Create quayside's CRDs from the Rust types (ignoring ones that exist)
/// and wait until both kinds are served.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [Component::crd(), Environment::crd()] {
        ignore_conflict(api.create(&PostParams::default(), &crd).await)?;
    }
    // The ClusterRole a namespace's owner binds for a workspace, as shipped.
    // And the one that lets a workspace wake a GitOps engine's objects.
    for text in [
        include_str!("../../../deploy/rbac/delivery.yaml"),
        include_str!("../../../deploy/rbac/wake.yaml"),
    ] {
        let role: ClusterRole = serde_norway::from_str(text)?;
        ignore_conflict(
            Api::<ClusterRole>::all(client.clone())
                .create(&PostParams::default(), &role)
                .await,
        )?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let components = Api::<Component>::all(client.clone())
            .list(&ListParams::default().limit(1))
            .await;
        let environments = Api::<Environment>::all(client.clone())
            .list(&ListParams::default().limit(1))
            .await;
        if components.is_ok() && environments.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the CRDs were not served within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Create a namespace with a unique name and its `default` ServiceAccount
/// (there is no controller-manager to create it).
pub async fn new_namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", random_suffix());
    ensure_namespace(client, &name)
        .await
        .expect("create namespace");
    name
}

/// Create namespace `name` and its `default` ServiceAccount, unless they exist.
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<(), kube::Error> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}
    }))
    .expect("a Namespace");
    ignore_conflict(
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await,
    )?;
    ignore_conflict(try_create_service_account(client, name, "default").await)
}

/// What a namespace's owner does to let `workspace` deliver there: bind
/// the `quayside-delivery` ClusterRole to the workspace's delivery account.
pub async fn grant_delivery(client: &Client, workspace: &str, namespace: &str) {
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("quayside-delivery-{workspace}"), "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": quayside::plan::grant::DELIVERY_CLUSTER_ROLE,
        },
        "subjects": [{"kind": "ServiceAccount", "name": DELIVERY_ACCOUNT, "namespace": workspace}],
    }))
    .expect("a RoleBinding");
    ignore_conflict(
        Api::<RoleBinding>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &binding)
            .await,
    )
    .expect("grant delivery");
}

/// The controller's default delivery ServiceAccount.
pub const DELIVERY_ACCOUNT: &str = "quayside-delivery";

/// Create a ServiceAccount (e.g. `deployer`) in a namespace.
pub async fn create_service_account(client: &Client, namespace: &str, name: &str) {
    try_create_service_account(client, namespace, name)
        .await
        .expect("create service account");
}

async fn try_create_service_account(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<ServiceAccount, kube::Error> {
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": namespace}
    }))
    .expect("a ServiceAccount");
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await
}

/// Delete `name` and wait until it is gone (its finalizers ran).
pub async fn delete_and_wait<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.delete(name, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
    crate::wait::until(&format!("{name} is gone"), timeout, || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
}

/// `Ok` for a result that is `Ok` or "already exists" (409).
pub fn ignore_conflict<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn random_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}{:x}", t & 0xfffff, n)
}
