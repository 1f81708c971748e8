//! A real Flux against a testkit control plane: source-controller and
//! kustomize-controller (v1.9.6, built from their Go modules by
//! `scripts/setup`, CRDs copied from the same modules), configured the way
//! a Flux user syncs a SOPS-sealed folder of a git repository — a
//! GitRepository with a basic-auth Secret, and a Kustomization with
//! `decryption: {provider: sops, secretRef: …}` naming an age-key Secret.
//!
//! Each [`Flux`] runs its own pair of controllers watching only its own
//! namespace (`--watch-all-namespaces=false`, `RUNTIME_NAMESPACE`), so
//! tests sharing one control plane do not reconcile each other's objects.
//! Leader election is off, metrics and health listen on free loopback
//! ports, and source-controller serves its artifacts from a scratch folder
//! on loopback. Every controller runs under `flux-supervise`, which stops
//! it when the pipe this process holds closes (even on SIGKILL of the test)
//! and gives it a parent-death signal: no controller outlives its test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use secrecy::ExposeSecret;

use quayside::seal::Identity;

use crate::cluster::{self, ControlPlane, ignore_conflict};
use crate::{ports, scratch, tools};

/// Flux's source API (GitRepository).
pub const SOURCE_API: (&str, &str) = ("source.toolkit.fluxcd.io", "v1");
/// Flux's kustomize API (Kustomization).
pub const KUSTOMIZE_API: (&str, &str) = ("kustomize.toolkit.fluxcd.io", "v1");
/// The annotation that asks a Flux object to reconcile now (`flux reconcile`).
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// The field manager kustomize-controller applies with.
pub const APPLY_MANAGER: &str = "kustomize-controller";
/// The label kustomize-controller puts on what a Kustomization applied.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";

/// How often the GitRepository polls and the Kustomization re-applies:
/// the shortest interval that still leaves the controllers idle most of
/// the time on a loaded CI machine.
pub const INTERVAL: &str = "2s";

/// A running Flux (source-controller + kustomize-controller) for one
/// namespace; both controllers stop when it is dropped.
pub struct Flux {
    /// The namespace its objects live in and its controllers watch.
    pub namespace: String,
    client: Client,
    dir: tempfile::TempDir,
    controllers: Vec<Supervised>,
}

/// What a Flux user writes to sync one folder of a git repository with
/// SOPS age decryption ([`Flux::sync`]).
pub struct GitSync<'a> {
    /// Name of the GitRepository and the Kustomization (and the prefix of
    /// their Secrets).
    pub name: &'a str,
    /// Clone URL (http on loopback).
    pub url: String,
    pub username: &'a str,
    pub password: &'a str,
    pub branch: &'a str,
    /// Folder in the repository, e.g. `./environments/ws/dev`.
    pub path: String,
    /// The age identity Flux decrypts with (one of the folder's recipients).
    pub age: &'a Identity,
}

impl Flux {
    /// Install Flux's CRDs on `cp` (once; later calls find them) and start
    /// both controllers for a new namespace; returns when both are ready.
    pub async fn start(cp: &ControlPlane) -> Flux {
        let client = cp.client().await;
        install_crds(&client)
            .await
            .unwrap_or_else(|e| panic!("installing Flux's CRDs: {e:#}"));
        let namespace = cluster::new_namespace(&client, "flux").await;
        let dir = scratch::dir("quayside-flux-").expect("a scratch folder");
        let mut flux = Flux {
            namespace,
            client,
            dir,
            controllers: Vec::new(),
        };
        let storage = flux.dir.path().join("artifacts");
        std::fs::create_dir_all(&storage).expect("the artifact folder");
        let storage_addr = format!("127.0.0.1:{}", ports::unused().expect("a port"));
        let source_args: Vec<String> = vec![
            format!("--storage-path={}", storage.display()),
            format!("--storage-addr={storage_addr}"),
            format!("--storage-adv-addr={storage_addr}"),
            "--concurrent=2".into(),
        ];
        flux.spawn("source-controller", source_args, cp.kubeconfig())
            .await;
        let kustomize_args: Vec<String> = vec![
            "--concurrent=2".into(),
            "--requeue-dependency=2s".into(),
            "--no-remote-bases=true".into(),
        ];
        flux.spawn("kustomize-controller", kustomize_args, cp.kubeconfig())
            .await;
        flux
    }

    /// Start controller `name` under `flux-supervise` with `args` plus the
    /// common ones, and wait until its readiness probe answers.
    async fn spawn(&mut self, name: &'static str, args: Vec<String>, kubeconfig: &Path) {
        let health = ports::unused().expect("a port");
        let metrics = ports::unused().expect("a port");
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(tools::bin("flux-supervise"))
            .args(["--grace", "10s", "--"])
            .arg(tools::bin(name))
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .args([
                "--enable-leader-election=false",
                "--watch-all-namespaces=false",
                "--log-encoding=console",
            ])
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUNTIME_NAMESPACE", &self.namespace)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(File::create(&log).expect("a log file")))
            .stderr(Stdio::from(
                File::create(log.with_extension("err")).expect("a log file"),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} (run scripts/setup to build it): {e}"));
        let mut s = Supervised::new(name, child, log);
        let url = format!("http://127.0.0.1:{health}/readyz");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((200, _)) = ports::http_get(&url).await {
                break;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!(
                    "{name} exited ({status}) before it was ready:\n{}",
                    s.tail(40)
                );
            }
            if Instant::now() > deadline {
                panic!("{name} was not ready within 120 s:\n{}", s.tail(40));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.controllers.push(s);
    }

    /// Create, in Flux's namespace, what a Flux user writes: a basic-auth
    /// Secret and a GitRepository for the repository, an age-key Secret,
    /// and a Kustomization of `path` decrypting with it.
    pub async fn sync(&self, s: &GitSync<'_>) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let identity = s.age.to_secret_string();
        for (suffix, data) in [
            (
                "git",
                serde_json::json!({"username": s.username, "password": s.password}),
            ),
            // kustomize-controller imports every key ending in `.agekey`.
            (
                "age",
                serde_json::json!({"age.agekey": identity.expose_secret()}),
            ),
        ] {
            let secret: Secret = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("{}-{suffix}", s.name)},
                "stringData": data,
            }))
            .expect("a Secret");
            secrets
                .create(&Default::default(), &secret)
                .await
                .unwrap_or_else(|e| panic!("creating the {suffix} Secret: {e}"));
        }
        let repository = serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": s.name, "namespace": self.namespace},
            "spec": {
                "url": s.url,
                "interval": INTERVAL,
                "timeout": "20s",
                "ref": {"branch": s.branch},
                "secretRef": {"name": format!("{}-git", s.name)},
            },
        });
        let kustomization = serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": s.name, "namespace": self.namespace},
            "spec": {
                "interval": INTERVAL,
                "retryInterval": INTERVAL,
                "timeout": "30s",
                "sourceRef": {"kind": "GitRepository", "name": s.name},
                "path": s.path,
                "prune": true,
                "decryption": {
                    "provider": "sops",
                    "secretRef": {"name": format!("{}-age", s.name)},
                },
            },
        });
        for (api, obj) in [
            (self.repositories(), repository),
            (self.kustomizations(), kustomization),
        ] {
            let obj: DynamicObject = serde_json::from_value(obj).expect("a Flux object");
            api.create(&Default::default(), &obj)
                .await
                .unwrap_or_else(|e| panic!("creating a Flux object: {e}"));
        }
    }

    /// The GitRepositories of Flux's namespace.
    pub fn repositories(&self) -> Api<DynamicObject> {
        self.api(SOURCE_API, "GitRepository", "gitrepositories")
    }

    /// The Kustomizations of Flux's namespace.
    pub fn kustomizations(&self) -> Api<DynamicObject> {
        self.api(KUSTOMIZE_API, "Kustomization", "kustomizations")
    }

    fn api(&self, (group, version): (&str, &str), kind: &str, plural: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
    }

    /// Wait until Kustomization `name` is Ready having applied the commit
    /// `head()` names (a full hash, read again at every look, so a branch
    /// that moves on is followed; empty while there is none yet); returns
    /// the revision. On a timeout,
    /// panics with the objects' conditions and the controllers' last log
    /// lines.
    pub async fn wait_applied(
        &self,
        name: &str,
        head: impl Fn() -> String,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let commit = head();
            if let Ok(k) = self.kustomizations().get(name).await {
                let applied = k.data["status"]["lastAppliedRevision"]
                    .as_str()
                    .unwrap_or("");
                if !commit.is_empty() && applied.ends_with(&commit) && is_ready(&k) {
                    return applied.to_string();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "Kustomization {name} did not apply {commit} within {timeout:?}\n{}",
                    self.diagnosis(name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ask the GitRepository and the Kustomization `name` to reconcile now,
    /// as `flux reconcile` does (the annotation both controllers watch).
    pub async fn request_reconcile(&self, name: &str) {
        let now = format!("{:?}", std::time::SystemTime::now());
        let patch = serde_json::json!({"metadata": {"annotations": {REQUESTED_AT: now}}});
        for api in [self.repositories(), self.kustomizations()] {
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap_or_else(|e| panic!("annotating {name}: {e}"));
        }
    }

    /// The conditions of `name`'s GitRepository and Kustomization and the
    /// last lines of both controllers' logs, for a failure message.
    pub async fn diagnosis(&self, name: &str) -> String {
        let mut out = String::new();
        for (kind, api) in [
            ("GitRepository", self.repositories()),
            ("Kustomization", self.kustomizations()),
        ] {
            let status = match api.get(name).await {
                Ok(o) => o.data["status"].to_string(),
                Err(e) => format!("unreadable: {e}"),
            };
            out.push_str(&format!("{kind} {name} status: {status}\n"));
        }
        for c in &self.controllers {
            out.push_str(&format!("--- {} (last lines)\n{}\n", c.name, c.tail(25)));
        }
        out
    }

    /// The process ids of every supervisor and the controller each runs
    /// (from `/proc/PID/task/PID/children`), for tests that prove none
    /// outlives its fixture.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for c in &self.controllers {
            let pid = c.child.id();
            pids.push(pid);
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        pids
    }

    /// Stop both controllers now (bounded), as dropping does.
    pub fn stop(&mut self) {
        for c in &mut self.controllers {
            c.stop();
        }
    }
}

/// Whether a Flux object's Ready condition is True.
pub fn is_ready(o: &DynamicObject) -> bool {
    o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The folder `scripts/setup` copied Flux's CRDs into.
pub fn crd_dir() -> PathBuf {
    tools::root().join(".cache/flux/crds")
}

/// Create Flux's CRDs (all source kinds, which source-controller watches,
/// and Kustomization), ignoring ones that exist, and wait until served.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = crd_dir();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {} (run scripts/setup)", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    entries.sort();
    anyhow::ensure!(!entries.is_empty(), "no CRDs in {}", dir.display());
    for path in &entries {
        let text = std::fs::read_to_string(path)?;
        let crd: CustomResourceDefinition =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        ignore_conflict(api.create(&Default::default(), &crd).await)?;
    }
    let probe = |(group, version): (&str, &str), kind: &str, plural: &str| {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        Api::<DynamicObject>::all_with(client.clone(), &resource)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let repos = probe(SOURCE_API, "GitRepository", "gitrepositories")
            .list(&ListParams::default().limit(1))
            .await;
        let kusts = probe(KUSTOMIZE_API, "Kustomization", "kustomizations")
            .list(&ListParams::default().limit(1))
            .await;
        if repos.is_ok() && kusts.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "Flux's CRDs were not served within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One controller under `flux-supervise`, holding the pipe it watches.
struct Supervised {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Supervised {
    fn new(name: &'static str, mut child: Child, log: PathBuf) -> Supervised {
        let stdin = child.stdin.take();
        Supervised {
            name,
            child,
            stdin,
            log,
        }
    }

    /// The last `n` lines of its output (standard error, where the
    /// controllers log, then standard output).
    fn tail(&self, n: usize) -> String {
        let mut out = String::new();
        for path in [self.log.with_extension("err"), self.log.clone()] {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&lines[lines.len().saturating_sub(n)..].join("\n"));
        }
        out
    }

    /// Close the pipe (the supervisor then sends SIGTERM, and SIGKILL after
    /// its grace), wait a bounded time, and kill the supervisor as a last
    /// resort (its parent-death signal takes the controller along).
    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
