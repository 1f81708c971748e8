//! A real Kubernetes control plane (etcd + kube-apiserver) per test binary,
//! started by the Go-built `testcluster` on loopback, the way envtest does.
//!
//! No process outlives the test binary: `testcluster` watches its standard
//! input, which only this process holds, and stops both servers when it
//! closes — on a normal exit, a panic, or SIGKILL alike. Its servers carry a
//! parent-death signal as a second line of defence.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::tools;

/// One running control plane.
pub struct ControlPlane {
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    child: Mutex<Option<(Child, ChildStdin)>>,
    lines: Mutex<Receiver<String>>,
}

static SHARED: OnceLock<ControlPlane> = OnceLock::new();

/// The control plane shared by every test of this binary, with the CRDs installed.
pub fn shared() -> &'static ControlPlane {
    SHARED.get_or_init(|| {
        let cp = ControlPlane::start();
        cp.install_crds();
        cp
    })
}

impl ControlPlane {
    /// Start a new, independent control plane (for multi-cluster tests).
    /// It stops when dropped.
    pub fn start() -> ControlPlane {
        let dir = tempfile::Builder::new()
            .prefix("quayside-cp-")
            .tempdir()
            .expect("temp dir");
        let mut child = Command::new(tools::bin("testcluster"))
            .arg("start")
            .arg("--dir")
            .arg(dir.path())
            .arg("--watch-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn testcluster");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let cp = ControlPlane {
            kubeconfig: dir.path().join("kubeconfig"),
            _dir: dir,
            child: Mutex::new(Some((child, stdin))),
            lines: Mutex::new(rx),
        };
        cp.expect_line("READY", Duration::from_secs(120));
        cp
    }

    fn expect_line(&self, prefix: &str, timeout: Duration) {
        let rx = self.lines.lock().unwrap();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => continue,
                Err(e) => panic!("control plane did not print {prefix} within {timeout:?}: {e}"),
            }
        }
    }

    /// Path of an admin kubeconfig for this control plane.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs client bound to the caller's runtime.
    pub async fn client(&self) -> Client {
        let kc = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
        Client::try_from(cfg).expect("client")
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

    /// Install quayside's CRDs, generated from the Rust types, and wait until
    /// they are served.
    pub fn install_crds(&self) {
        let mut apply = self
            .kubectl()
            .args(["apply", "--server-side", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("kubectl apply");
        apply
            .stdin
            .take()
            .unwrap()
            .write_all(quayside::api::crds_yaml().as_bytes())
            .unwrap();
        assert!(apply.wait().unwrap().success(), "installing CRDs failed");
        let status = self
            .kubectl()
            .args([
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/components.quayside.dev",
                "crd/environments.quayside.dev",
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "CRDs not established");
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
        self.expect_line("RESTARTED", Duration::from_secs(120));
    }

    /// Stop the control plane now and wait for its processes to exit.
    pub fn stop(&self) {
        if let Some((mut child, stdin)) = self.child.lock().unwrap().take() {
            drop(stdin);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
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

/// Create a namespace with a unique name and its `default` ServiceAccount
/// (there is no controller-manager to create it).
pub async fn new_namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", random_suffix());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    create_service_account(client, &name, "default").await;
    name
}

/// Create a ServiceAccount (e.g. `deployer`) in a namespace.
pub async fn create_service_account(client: &Client, namespace: &str, name: &str) {
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": namespace}
    }))
    .unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create service account");
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
