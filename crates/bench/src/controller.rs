//! `quayside-bench controller`: what the controller costs at scale — the
//! no-op heartbeat, rotation propagation, provisioning (free and behind
//! Quay.io's rate limit), memory at rest and start-up.
//!
//! Everything is real except Quay: a kube-apiserver with etcd (started by
//! `testcluster`), the Quay emulator in this process, a local bare git
//! repository as the side repository, and the controller run as its own
//! `quayside run` process (the `quayside` binary built next to this one,
//! or `--quayside`), so the CPU time, RSS and start-up measured are
//! the controller's alone (read from `/proc/<pid>` and its `/metrics`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use quay_emulator::{Emulator, EmulatorConfig, Faults};
use quayside::api::{Component, Environment};
use quayside::seal::Identity;
use quayside_testkit::cluster::{self, ControlPlane};
use quayside_testkit::git_server::{self, GitServer};
use quayside_testkit::{component, ports, scratch, tools};

mod replicas;

use crate::apiserver::{self, Closed, Own, Window};
use crate::targets;
use crate::tenancy::{ReadyWatch, Tenancy};

const ORG: &str = "bench";
const QUAY_TOKEN: &str = "bench-quay-oauth-token";
const GENERATION: &str = "quayside.dev/credentials-generation";
/// Counters unchanged this long: every triggered pass has finished.
const QUIET: Duration = Duration::from_secs(2);
/// How often the controller's counters are read while waiting for its
/// passes to settle.
const SETTLE_POLL: Duration = Duration::from_millis(250);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Tiny sizes (5 Components × 3 Environments, and 6 Components in 3
    /// workspaces × 2 Environments, also served by 2 sharded replicas; 3
    /// rotations over 3 Environments, 5 throttled Components): proves it
    /// runs; no targets.
    #[arg(long)]
    pub quick: bool,
    /// Components of the scale run (provisioning, start-up, memory, no-op
    /// heartbeat), over all workspaces.
    #[arg(long, default_value_t = 1000)]
    pub components: usize,
    /// Workspaces of the scale run: the Components are spread over them,
    /// and each has its own --environments Environments.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9999))]
    pub workspaces: u32,
    /// Environments of the scale run, per workspace (each delivering to a
    /// target namespace of its own).
    #[arg(long, default_value_t = 10)]
    pub environments: usize,
    /// Intermediate sizes (Components overall) on the way to --components
    /// (memory and start-up at each).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub steps: Vec<usize>,
    /// Start-ups (restarts of the controller) measured at the last size;
    /// each prints its own line, and more than one also their medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub restarts: u32,
    /// Environments of the rotation run (one Component).
    #[arg(long, default_value_t = 50)]
    pub rotation_environments: usize,
    /// Rotations per latency setting.
    #[arg(long, default_value_t = 20)]
    pub rotations: usize,
    /// Latencies (ms) injected into every Quay call during the rotation runs.
    #[arg(long, value_delimiter = ',', default_value = "0,50")]
    pub latencies_ms: Vec<u64>,
    /// Components provisioned behind a 5 req/s, burst 25 rate limit.
    #[arg(long, default_value_t = 100)]
    pub throttled_components: usize,
    /// Parts to run: scale, rotation, throttled.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = ["scale", "rotation", "throttled"],
        default_value = "scale,rotation,throttled"
    )]
    pub only: Vec<String>,
    /// Also write every figure as JSON to this file (for the plot).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The Go-built control-plane launcher.
    #[arg(long, default_value = ".cache/bin/testcluster")]
    pub testcluster: PathBuf,
    /// The controller binary to measure (default: `quayside` next to this program).
    #[arg(long)]
    pub quayside: Option<PathBuf>,
    /// Also serve the scale run's largest size (of several workspaces) with
    /// this many `quayside run --shards` replicas at once, and report each
    /// one's RSS at rest and no-op heartbeat CPU; 1: not.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub replicas: u32,
    /// `--shards` of the --replicas run.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,
    /// `--delivery-mode` of every controller measured (default: the
    /// controller's, `both`): `direct` leaves the side repository out, so
    /// a multi-tenant shape provisions without a commit per Environment.
    #[arg(long, value_parser = ["direct", "gitops", "both"])]
    pub delivery_mode: Option<String>,
    /// Give up on any one wait after this long.
    #[arg(long, default_value = "40m", value_parser = quayside::duration::parse)]
    pub timeout: Duration,
}

/// One scale run's platform: Components overall, workspaces, Environments each.
#[derive(Clone, Debug)]
struct Shape {
    tag: &'static str,
    components: usize,
    workspaces: usize,
    environments: usize,
    steps: Vec<usize>,
    /// Replicas and shards of the sharded run (replicas 1: none).
    replicas: (usize, u32),
    /// Start-ups measured at the last size.
    restarts: usize,
}

impl Shape {
    fn to_json(&self) -> Value {
        json!({
            "components": self.components, "workspaces": self.workspaces,
            "environments_per_workspace": self.environments,
            "environments": self.workspaces * self.environments,
            "target_secrets": self.components * self.environments,
        })
    }
}

pub async fn run(mut a: Args) -> anyhow::Result<()> {
    let mut shapes = Vec::new();
    if a.quick {
        a.components = 5;
        a.workspaces = 1;
        a.environments = 3;
        a.steps = vec![];
        a.rotation_environments = 3;
        a.rotations = 3;
        a.throttled_components = 5;
        // The sharded run too, over the tiny multi-tenant shape.
        a.replicas = a.replicas.max(2);
        // The multi-tenant shape, tiny. It runs first: its controller
        // watches every namespace, so no other part's objects may exist yet.
        shapes.push(Shape {
            tag: "tenants",
            components: 6,
            workspaces: 3,
            environments: 2,
            steps: vec![],
            replicas: (a.replicas as usize, a.shards),
            restarts: 1,
        });
    }
    shapes.push(Shape {
        tag: if a.workspaces > 1 { "tenants" } else { "scale" },
        components: a.components,
        workspaces: a.workspaces as usize,
        environments: a.environments,
        steps: a.steps.clone(),
        replicas: (a.replicas as usize, a.shards),
        restarts: a.restarts as usize,
    });
    let scratch = scratch::dir("quayside-bench-controller-")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "quayside-bench controller: {cores} CPU(s); kube-apiserver+etcd, Quay emulator, side repo served over HTTP by git http-backend; controller = `quayside run` process"
    );
    let load0 = apiserver::loadavg();
    let cp = ControlPlane::launch(&a.testcluster, &scratch.path().join("cluster"), true)?;
    let exe = match &a.quayside {
        Some(p) => p.clone(),
        None => tools::try_workspace_bin("quayside")
            .map_err(|e| anyhow::anyhow!("{e}; or give --quayside"))?,
    };
    let mut b = Bench::new(&cp, scratch.path(), exe, a.timeout).await?;
    if let Some(mode) = &a.delivery_mode {
        b.common = vec!["--delivery-mode".into(), mode.clone()];
    }
    cluster::install_crds(&b.client).await?;

    let mut report = json!({
        "cores": cores, "quick": a.quick, "loadavg_start": load0,
        "delivery_mode": a.delivery_mode,
    });
    if a.only.iter().any(|o| o == "scale") {
        let last = shapes.len() - 1;
        for (i, shape) in shapes.iter().enumerate() {
            let key = if i == last {
                "scale"
            } else {
                "scale_workspaces"
            };
            report[key] = b.scale(shape).await?;
        }
    }
    if a.only.iter().any(|o| o == "rotation") {
        report["rotation"] = b.rotation(&a).await?;
    }
    if a.only.iter().any(|o| o == "throttled") {
        report["throttled"] = b.throttled(&a).await?;
    }
    report["loadavg_end"] = json!(apiserver::loadavg());
    let rows = targets::rows(&report);
    targets::print(&report, &rows);
    report["targets"] = json!(rows);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    drop(b);
    drop(cp);
    Ok(())
}

/// A running `quayside run`.
struct Proc {
    child: Child,
    url: String,
    started: Instant,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            // The log lives in the scratch folder, which is removed as this
            // error unwinds: quote its end here.
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            bail!("the controller exited ({status}); the end of its log:\n{tail}");
        }
        Ok(())
    }

    /// SIGTERM, then wait for in-flight passes to finish (killed after 60 s).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (VmRSS, VmHWM) in MB (10^6 bytes) from /proc/<pid>/status.
fn rss_mb(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} missing"))?;
        let kb: f64 = line.split_whitespace().nth(1).context("value")?.parse()?;
        Ok(kb * 1024.0 / 1e6)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The controller's counters, read from its `/metrics`.
#[derive(Clone, Debug, Default)]
struct Scrape {
    /// `quayside_cached_objects` by kind.
    cached: BTreeMap<String, f64>,
    kube_writes: f64,
    git_commits: f64,
    reconciled_ok: BTreeMap<String, f64>,
    errors: BTreeMap<String, f64>,
    quay_outcomes: BTreeMap<String, f64>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut s = Scrape::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match key.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (key, ""),
            };
            let labels: BTreeMap<&str, &str> = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            let label = |k: &str| labels.get(k).copied().unwrap_or_default().to_string();
            match name {
                "quayside_kube_writes_total" => s.kube_writes = value,
                "quayside_cached_objects" => {
                    s.cached.insert(label("kind"), value);
                }
                "quayside_git_commits_total" => s.git_commits = value,
                "quayside_reconciles_total" if label("result") == "ok" => {
                    *s.reconciled_ok.entry(label("controller")).or_default() += value;
                }
                "quayside_reconcile_errors_total" => {
                    let k = format!("{}/{}", label("controller"), label("reason"));
                    *s.errors.entry(k).or_default() += value;
                }
                "quayside_quay_api_requests_total" => {
                    *s.quay_outcomes.entry(label("outcome")).or_default() += value;
                }
                _ => {}
            }
        }
        s
    }

    fn ok(&self, controller: &str) -> f64 {
        self.reconciled_ok.get(controller).copied().unwrap_or(0.0)
    }

    fn quay_total(&self) -> f64 {
        self.quay_outcomes.values().sum()
    }
}

struct Bench {
    client: Client,
    /// The bench's own API requests, counted as its client sends them.
    own: Own,
    kubeconfig: PathBuf,
    dir: PathBuf,
    exe: PathBuf,
    http: reqwest::Client,
    identity_file: PathBuf,
    token_file: PathBuf,
    /// The Argo CD-like decryptor every Environment also seals to.
    argo: String,
    timeout: Duration,
    spawned: Mutex<usize>,
    /// Flags every controller measured gets (`--delivery-mode`).
    common: Vec<String>,
    /// Serves the side repositories over HTTP, as a forge would: a local
    /// path would make libgit2 build each clone's pack on the
    /// controller's side (a third of a start-up's CPU, measured).
    git: GitServer,
    /// The git server's password, for `--side-repo-password-file`.
    git_password_file: PathBuf,
}

/// How a measured controller is started beyond the common flags.
#[derive(Default)]
struct Launch {
    heartbeat: Option<Duration>,
    /// Its client-side Quay rate limit (requests/s, burst); `None`: none.
    limit: Option<(f64, u32)>,
    extra: Vec<String>,
}

impl Bench {
    async fn new(
        cp: &ControlPlane,
        dir: &Path,
        exe: PathBuf,
        timeout: Duration,
    ) -> anyhow::Result<Bench> {
        let (client, own) = apiserver::counting_client(cp.try_config().await?)?;
        let identity = Identity::generate();
        let identity_file = dir.join("age-identity");
        std::fs::write(&identity_file, identity.to_secret_string().expose_secret())?;
        let token_file = dir.join("quay-token");
        std::fs::write(&token_file, QUAY_TOKEN)?;
        let git_password_file = dir.join("git-password");
        std::fs::write(&git_password_file, git_server::PASSWORD)?;
        Ok(Bench {
            client,
            own,
            kubeconfig: cp.kubeconfig().to_path_buf(),
            dir: dir.to_path_buf(),
            exe,
            http: reqwest::Client::new(),
            identity_file,
            token_file,
            argo: Identity::generate().to_recipient().to_string(),
            timeout,
            spawned: Mutex::new(0),
            common: Vec::new(),
            git: GitServer::start(&[], &[]),
            git_password_file,
        })
    }

    async fn emulator(&self, faults: Faults) -> anyhow::Result<Emulator> {
        let mut cfg = EmulatorConfig::new(ORG, QUAY_TOKEN);
        cfg.faults = faults;
        Ok(Emulator::start("127.0.0.1:0".parse()?, cfg).await?)
    }

    /// `workspaces` workspaces with `envs` Environments each, and a fresh side repo.
    async fn tenancy(&self, tag: &str, workspaces: usize, envs: usize) -> anyhow::Result<Tenancy> {
        let name = format!("side-{tag}");
        self.git.add_repo(&name);
        tokio::spawn(keep_packed(self.git.repo_path(&name)));
        let t = Tenancy::new(tag, workspaces, envs, self.git.repo_url(&name));
        let t0 = Instant::now();
        t.create(&self.client, &self.argo).await?;
        if !t.single() {
            println!(
                "  created {} workspaces, {} Environments and {} target namespaces in {:.1} s",
                t.workspaces.len(),
                t.environments(),
                t.environments(),
                t0.elapsed().as_secs_f64()
            );
        }
        Ok(t)
    }

    async fn window(&self) -> anyhow::Result<Window> {
        Window::open(&self.client, &self.own).await
    }

    async fn close(&self, w: Window) -> anyhow::Result<Closed> {
        w.close(&self.client, &self.own).await
    }

    /// Wait until `n` Components of `t` are Ready, as `watch` sees them.
    async fn wait_ready(
        &self,
        watch: &ReadyWatch,
        n: usize,
        proc: &mut Proc,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut last_print = Instant::now();
        loop {
            let notified = watch.wake.notified();
            let ready = watch.count();
            if ready >= n {
                return Ok(());
            }
            proc.check_alive()?;
            if Instant::now() > deadline {
                bail!("only {ready}/{n} Components Ready after {:?}", self.timeout);
            }
            if last_print.elapsed() > Duration::from_secs(30) {
                eprintln!("    … {ready}/{n} Ready");
                last_print = Instant::now();
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    /// `quayside run` against `emu` for tenancy `t`. One workspace is
    /// watched alone (`--watch-namespace`), as before; several: every namespace.
    fn spawn(&self, emu: &Emulator, t: &Tenancy, l: Launch) -> anyhow::Result<Proc> {
        let n = {
            let mut g = self.spawned.lock().unwrap_or_else(|p| p.into_inner());
            *g += 1;
            *g
        };
        let port = ports::unused()?;
        let log = self.dir.join(format!("controller-{n}.log"));
        let heartbeat = l.heartbeat.unwrap_or(Duration::from_secs(86400));
        let started = Instant::now();
        let mut cmd = Command::new(&self.exe);
        cmd.arg("run")
            .args(["--quay-api-url", &emu.api_url()])
            .args(["--quay-organization", ORG])
            .arg("--quay-token-file")
            .arg(&self.token_file)
            .args(["--registry-host", &emu.registry_host()])
            // The bench's git server is on loopback.
            .args(["--source-allow-internal", "true"])
            .args(["--side-repo-url", &t.side_repo])
            .args(["--side-repo-username", git_server::USER])
            .arg("--side-repo-password-file")
            .arg(&self.git_password_file)
            // A fresh clone each start, as a new pod would have.
            .arg("--side-repo-workdir")
            .arg(self.dir.join(format!("workdir-{n}")))
            .arg("--age-identity-file")
            .arg(&self.identity_file)
            .args(["--heartbeat", &format!("{}ms", heartbeat.as_millis())])
            .args(["--rotation-interval", "0"])
            // Rotations are measured back to back: no storm guard.
            .args(["--rotation-request-cooldown", "0"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--leader-election", "false"])
            .args([
                "--quay-rate-limit",
                &l.limit.map_or(0.0, |l| l.0).to_string(),
            ])
            .args(["--quay-burst", &l.limit.map_or(1, |l| l.1).to_string()])
            .args(&self.common)
            .args(&l.extra);
        if t.single() {
            cmd.args(["--watch-namespace", t.ns()]);
        }
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting `quayside run`")?;
        Ok(Proc {
            child,
            url: format!("http://127.0.0.1:{port}"),
            started,
            log,
        })
    }

    /// Whether the measured controller offers `--quay-verify-interval`
    /// (the Quay verification on its own clock, issue 15).
    fn offers_verify_interval(&self) -> bool {
        Command::new(&self.exe)
            .args(["run", "--help"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--quay-verify-interval"))
    }

    /// The controller's CPU for one read of its /metrics (ms), from 20
    /// in a row at rest.
    async fn scrape_cost(&self, p: &Proc) -> anyhow::Result<f64> {
        const READS: u32 = 20;
        let pid = p.pid().to_string();
        let before = crate::procfs::cpu_seconds(&pid)?;
        for _ in 0..READS {
            self.scrape(p).await?;
        }
        let after = crate::procfs::cpu_seconds(&pid)?;
        Ok((after - before) * 1000.0 / f64::from(READS))
    }

    async fn scrape(&self, p: &Proc) -> anyhow::Result<Scrape> {
        let text = self
            .http
            .get(format!("{}/metrics", p.url))
            .timeout(Duration::from_secs(10))
            .send()
            .await?
            .text()
            .await?;
        Ok(Scrape::parse(&text))
    }

    /// Seconds from process start to `/readyz` answering 200.
    async fn wait_readyz(&self, p: &mut Proc) -> anyhow::Result<f64> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ok = self
                .http
                .get(format!("{}/readyz", p.url))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(p.started.elapsed().as_secs_f64());
            }
            p.check_alive()?;
            if Instant::now() > deadline {
                bail!("/readyz did not answer 200 within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Wait until at least `c` Component and `e` Environment passes have
    /// succeeded since `base`, then until the counters stay still for
    /// [`QUIET`]. Returns the time of the last change (since `since`) and
    /// the scrape then.
    async fn wait_passes(
        &self,
        p: &mut Proc,
        base: &Scrape,
        c: f64,
        e: f64,
        since: Instant,
        every: Duration,
    ) -> anyhow::Result<(f64, Scrape)> {
        let (at, s, _) = self
            .wait_passes_until(p, base, (c, e), since, every, None)
            .await?;
        Ok((at, s))
    }

    /// [`Bench::wait_passes`], but once the passes are reached and `cap`
    /// has passed, returns at once even if the counters still move (then
    /// with the scrape and time of now, and `false`: it never went quiet).
    async fn wait_passes_until(
        &self,
        p: &mut Proc,
        base: &Scrape,
        (c, e): (f64, f64),
        since: Instant,
        every: Duration,
        cap: Option<Instant>,
    ) -> anyhow::Result<(f64, Scrape, bool)> {
        let deadline = Instant::now() + self.timeout;
        let mut last: Option<(Scrape, Instant)> = None;
        loop {
            let s = self.scrape(p).await.unwrap_or_default();
            let reached = s.ok("component") - base.ok("component") >= c
                && s.ok("environment") - base.ok("environment") >= e;
            let changed = last.as_ref().is_none_or(|(l, _)| {
                l.ok("component") != s.ok("component")
                    || l.ok("environment") != s.ok("environment")
                    || l.kube_writes != s.kube_writes
            });
            if reached && cap.is_some_and(|cap| Instant::now() >= cap) {
                return Ok((since.elapsed().as_secs_f64(), s, !changed));
            }
            if changed {
                last = Some((s, Instant::now()));
            } else if reached
                && let Some((l, at)) = &last
                && at.elapsed() >= QUIET
            {
                return Ok((at.duration_since(since).as_secs_f64(), l.clone(), true));
            }
            p.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "the controller did not finish its passes within {:?}",
                    self.timeout
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Provisioning in steps, then at each step a restart (start-up, RSS at
    /// rest), and at the last a no-op heartbeat pass.
    async fn scale(&self, shape: &Shape) -> anyhow::Result<Value> {
        let emu = self.emulator(Faults::default()).await?;
        let mut sizes: Vec<usize> = shape
            .steps
            .iter()
            .copied()
            .filter(|s| *s > 0 && *s < shape.components)
            .collect();
        sizes.push(shape.components);
        sizes.sort_unstable();
        sizes.dedup();
        println!(
            "\n## scale: {} Components in {} workspace(s) × {} Environments (steps {sizes:?})",
            shape.components, shape.workspaces, shape.environments
        );
        let t = self
            .tenancy(shape.tag, shape.workspaces, shape.environments)
            .await?;
        let mut proc = Some(self.spawn(&emu, &t, Launch::default())?);
        if let Some(p) = proc.as_mut() {
            self.wait_readyz(p).await?;
        }
        let mut have = 0;
        let mut steps = Vec::new();
        let mut failed = None;
        for &n in &sizes {
            match self.step(&emu, &t, have, n, &mut proc).await {
                Ok(v) => steps.push(v),
                Err(e) => {
                    // Keep what was measured; say where and why it stopped.
                    println!("  stopped at {n} Components: {e:#}");
                    failed = Some(json!({"components": n, "error": format!("{e:#}")}));
                    break;
                }
            }
            have = n;
        }
        // More restarts at the last size: start-up and RSS vary with the
        // machine's load, so one sample says little.
        let mut again = Vec::new();
        if failed.is_none() && have > 0 {
            for _ in 1..shape.restarts {
                again.push(self.restart(&emu, &t, have, &mut proc).await?);
            }
        }
        if let Some(p) = proc.take() {
            p.stop();
        }
        let mut out = json!({"shape": shape.to_json(), "steps": steps, "failed": failed});
        if let Some(last) = steps.last().filter(|_| !again.is_empty()) {
            let all: Vec<&Value> = std::iter::once(last).chain(&again).collect();
            let median = |k: &str| {
                let mut v: Vec<f64> = all.iter().filter_map(|r| r[k].as_f64()).collect();
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or_default()
            };
            println!(
                "  {} start-ups with {have} Components: median all re-verified {:.2} s, RSS at rest {:.1} MB",
                all.len(),
                median("reverified_s"),
                median("rss_mb")
            );
            out["restarts"] = json!(again);
        }
        let Some(last) = steps.last().cloned() else {
            return Ok(out);
        };
        out["idle"] = self
            .idle(if shape.components < 50 { 3 } else { 10 })
            .await?;
        out["heartbeat"] = self.noop_heartbeat(&emu, &t, &last).await?;
        if shape.replicas.0 > 1 && shape.workspaces > 1 {
            out["replicas"] = self.sharded(&emu, &t, &last, shape.replicas).await?;
        }
        Ok(out)
    }

    /// The API server's own requests with no controller running and the
    /// bench idle, over `secs` seconds: the background of every window.
    async fn idle(&self, secs: u64) -> anyhow::Result<Value> {
        let w = self.window().await?;
        // A measured duration, not a wait for anything.
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let c = self.close(w).await?;
        println!("  API server alone for {secs} s: {}", c.line());
        Ok(json!({"seconds": secs, "window": c.to_json()}))
    }

    /// The no-op heartbeat at the largest size that settled (`last`).
    async fn noop_heartbeat(
        &self,
        emu: &Emulator,
        t: &Tenancy,
        last: &Value,
    ) -> anyhow::Result<Value> {
        // A controller whose heartbeat comes after its start-up pass has
        // settled, measured from the settled state to the end of the second
        // pass. The bench makes no API request in between: it reads only
        // the controller's and the API server's /metrics.
        let settle = last["reverified_s"].as_f64().unwrap_or(10.0);
        let heartbeat = Duration::from_secs_f64((3.0 * settle + 5.0).max(15.0));
        let components = last["components"].as_u64().unwrap_or_default();
        let (n, envs) = (components as f64, t.environments() as f64);
        // Quay verification on its own (daily) clock, when the controller
        // has that flag: this window then measures the heartbeat alone.
        let verify = self.offers_verify_interval().then_some("24h");
        let extra = verify
            .map(|v| vec!["--quay-verify-interval".to_string(), v.to_string()])
            .unwrap_or_default();
        let mut p = self.spawn(
            emu,
            t,
            Launch {
                heartbeat: Some(heartbeat),
                extra,
                ..Launch::default()
            },
        )?;
        let started = p.started;
        self.wait_readyz(&mut p).await?;
        let (_, s1) = self
            .wait_passes(&mut p, &Scrape::default(), n, envs, started, SETTLE_POLL)
            .await?;
        let scrape_ms = self.scrape_cost(&p).await?;
        // Every scrape encodes a series per object; at 16,000 objects
        // four a second cost the controller more CPU than its heartbeat
        // (the 15.18 s measured on 7 December was mostly the bench's own
        // scrapes). A Prometheus scrapes every 15 to 60 s: the window is
        // polled every 5 s, and a scrape's cost is reported beside it.
        let every = match components > 200 {
            true => Duration::from_secs(5),
            false => SETTLE_POLL,
        };
        let w = self.window().await?;
        let cpu1 = crate::procfs::cpu_seconds(&p.pid().to_string())?;
        let calls1 = emu.api_calls();
        let t1 = Instant::now();
        // Every object's heartbeat fires within `heartbeat` of its start-up
        // pass; its second not before twice that. A controller whose
        // heartbeat passes write (and so re-trigger passes) never goes
        // quiet: the window then ends at the cap, and says so.
        let cap = started + 2 * heartbeat;
        let (pass_end, s2, quiet) = self
            .wait_passes_until(&mut p, &s1, (n, envs), started, every, Some(cap))
            .await?;
        let cpu2 = crate::procfs::cpu_seconds(&p.pid().to_string())?;
        let calls2 = emu.api_calls();
        let window = self.close(w).await?;
        let (rss, hwm) = rss_mb(p.pid())?;
        let beat_at = heartbeat.as_secs_f64();
        let hb = json!({
            "components": components, "environments": t.environments(),
            "heartbeat_s": beat_at, "quay_verify_interval": verify,
            "went_quiet": quiet,
            "kube_writes": s2.kube_writes - s1.kube_writes,
            "git_commits": s2.git_commits - s1.git_commits,
            "quay_calls": calls2 - calls1,
            "list_requests": window.others().get("LIST", None),
            "cpu_s": cpu2 - cpu1,
            "window_s": t1.elapsed().as_secs_f64(),
            // When the heartbeat pass settled, counted from when it could first fire.
            "pass_s": (pass_end - beat_at).max(0.0),
            "component_passes": s2.ok("component") - s1.ok("component"),
            "environment_passes": s2.ok("environment") - s1.ok("environment"),
            "rss_mb": rss, "peak_rss_mb": hwm,
            "poll_s": every.as_secs_f64(), "scrape_cpu_ms": scrape_ms,
            "window": window.to_json(),
        });
        print_heartbeat(&hb, verify, &window.line());
        p.stop();
        Ok(hb)
    }

    /// One size: provision up to `n`, restart (start-up, first pass, RSS at rest).
    async fn step(
        &self,
        emu: &Emulator,
        t: &Tenancy,
        have: usize,
        n: usize,
        proc: &mut Option<Proc>,
    ) -> anyhow::Result<Value> {
        let every = Duration::from_millis(if n > 200 { 1000 } else { 100 });
        let calls0 = emu.api_calls();
        let by0 = emu.snapshot().api_calls;
        let w = self.window().await?;
        let t0 = Instant::now();
        let watch = ReadyWatch::start(&self.client, t);
        t.create_components(&self.client, have..n).await?;
        let created_s = t0.elapsed().as_secs_f64();
        let p = proc.as_mut().context("no controller running")?;
        self.wait_ready(&watch, n, p).await?;
        let provision_s = t0.elapsed().as_secs_f64();
        // The watch ends inside this window, so the API server counts it here.
        drop(watch);
        // Ready comes before the last status updates (delivery records of
        // every Environment): wait until the passes stop, so the restart
        // below starts from a settled state.
        let (settled_s, _) = self
            .wait_passes(p, &Scrape::default(), 0.0, 0.0, t0, every)
            .await?;
        let provisioning = self.close(w).await?;
        let calls = emu.api_calls() - calls0;
        let per = calls as f64 / (n - have) as f64;
        let by = calls_delta(&by0, &emu.snapshot().api_calls);
        println!(
            "  provisioning {} new Components (to {n}): {provision_s:.1} s to all Ready, settled at {settled_s:.1} s (creates took {created_s:.1} s), {calls} Quay calls = {per:.2}/Component {by:?}\n    {}",
            n - have,
            provisioning.line()
        );
        let mut out = self.restart(emu, t, n, proc).await?;
        let fields = json!({
            "components": n, "workspaces": t.workspaces.len(),
            "environments": t.environments(), "new_components": n - have,
            "provision_s": provision_s, "settled_s": settled_s,
            "quay_calls_per_component": per, "quay_calls_by_endpoint": by,
            "provisioning_window": provisioning.to_json(),
        });
        for (k, v) in fields.as_object().into_iter().flatten() {
            out[k] = v.clone();
        }
        Ok(out)
    }

    /// Stop the controller and start a new one over the `n` Components:
    /// start-up, the first pass, RSS at rest.
    async fn restart(
        &self,
        emu: &Emulator,
        t: &Tenancy,
        n: usize,
        proc: &mut Option<Proc>,
    ) -> anyhow::Result<Value> {
        let before = self.statuses(t).await?;
        if let Some(p) = proc.take() {
            p.stop();
        }

        // Restart: start-up and the first pass, then RSS at rest. The bench
        // makes no API request until it ends.
        let calls0 = emu.api_calls();
        let w = self.window().await?;
        let p = proc.insert(self.spawn(emu, t, Launch::default())?);
        let readyz_s = self.wait_readyz(p).await?;
        let started = p.started;
        let (reverified_s, s) = self
            .wait_passes(
                p,
                &Scrape::default(),
                n as f64,
                t.environments() as f64,
                started,
                Duration::from_millis(100),
            )
            .await?;
        let startup = self.close(w).await?;
        let cpu = crate::procfs::cpu_seconds(&p.pid().to_string())?;
        let (rss, hwm) = rss_mb(p.pid())?;
        let startup_calls = emu.api_calls() - calls0;
        println!(
            "  start-up with {n} Components: /readyz {readyz_s:.2} s, all re-verified {reverified_s:.2} s; CPU {cpu:.2} s; writes {} commits {} Quay calls {startup_calls}; RSS at rest {rss:.1} MB (peak {hwm:.1} MB)\n    {}",
            s.kube_writes,
            s.git_commits,
            startup.line()
        );
        let changed = status_changes(&before, &self.statuses(t).await?);
        if !changed.is_empty() {
            println!("    status fields the start-up pass rewrote (objects affected): {changed:?}");
        }
        Ok(json!({
            "readyz_s": readyz_s, "reverified_s": reverified_s, "startup_cpu_s": cpu,
            "startup_kube_writes": s.kube_writes, "startup_git_commits": s.git_commits,
            "startup_quay_calls": startup_calls, "startup_status_changes": changed,
            "rss_mb": rss, "peak_rss_mb": hwm, "startup_window": startup.to_json(),
        }))
    }

    /// Status of every Component and Environment of `t`, by kind/namespace/name
    /// (two cluster-wide LISTs, however many workspaces).
    async fn statuses(&self, t: &Tenancy) -> anyhow::Result<BTreeMap<String, Value>> {
        let mut out = BTreeMap::new();
        let lp = ListParams::default();
        for c in Api::<Component>::all(self.client.clone())
            .list(&lp)
            .await?
            .items
        {
            let ns = c.namespace().unwrap_or_default();
            if t.contains(&ns) {
                let key = format!("Component/{ns}/{}", c.name_any());
                out.insert(key, serde_json::to_value(&c.status)?);
            }
        }
        for e in Api::<Environment>::all(self.client.clone())
            .list(&lp)
            .await?
            .items
        {
            let ns = e.namespace().unwrap_or_default();
            if t.contains(&ns) {
                let key = format!("Environment/{ns}/{}", e.name_any());
                out.insert(key, serde_json::to_value(&e.status)?);
            }
        }
        Ok(out)
    }

    /// Emergency rotations of one Component delivered to many Environments.
    async fn rotation(&self, a: &Args) -> anyhow::Result<Value> {
        let envs = a.rotation_environments;
        println!(
            "\n## rotation: 1 Component × {envs} Environments, {} rotations per latency",
            a.rotations
        );
        let emu = self.emulator(Faults::default()).await?;
        let t = self.tenancy("rotation", 1, envs).await?;
        let mut proc = self.spawn(&emu, &t, Launch::default())?;
        self.wait_readyz(&mut proc).await?;
        let watch = ReadyWatch::start(&self.client, &t);
        t.create_components(&self.client, 0..1).await?;
        self.wait_ready(&watch, 1, &mut proc).await?;
        drop(watch);
        let (_, name) = t.component(0);

        // Target Secrets' generations, kept current by a watch; its first
        // LIST is over before the first window opens.
        let (watch, seen, wake) = self.watch_generations(t.ns().to_string(), &name);
        self.wait_seen(&seen, &wake, envs).await?;
        let components: Api<Component> = Api::namespaced(self.client.clone(), t.ns());
        let mut runs = Vec::new();
        for &lat in &a.latencies_ms {
            emu.set_faults(Faults {
                latency: Duration::from_millis(lat),
                ..Faults::default()
            });
            let mut times = Vec::new();
            let mut windows = Vec::new();
            let calls0 = emu.api_calls();
            for _ in 0..a.rotations {
                let g = component::generation(&components.get(&name).await?);
                let w = self.window().await?;
                let t0 = Instant::now();
                component::request_rotation(&components, &name).await?;
                let deadline = t0 + Duration::from_secs(300);
                loop {
                    let notified = wake.notified();
                    let done = {
                        let m = seen.lock().unwrap_or_else(|p| p.into_inner());
                        m.len() >= envs && m.values().all(|v| *v > g)
                    };
                    if done {
                        break;
                    }
                    proc.check_alive()?;
                    if Instant::now() > deadline {
                        bail!("rotation not propagated to {envs} Environments within 300 s");
                    }
                    let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
                }
                times.push(t0.elapsed().as_secs_f64());
                // Let the rotation finish (annotation removed, Ready) before the next.
                wait_rotation_finished(&components, &name, g).await?;
                windows.push(self.close(w).await?);
                self.check_tokens(&t, &name).await?;
            }
            let calls = emu.api_calls() - calls0;
            let summed = Closed::sum(&windows);
            let (p50, p95) = (percentile(&times, 0.50), percentile(&times, 0.95));
            println!(
                "  latency {lat} ms: p50 {p50:.3} s, p95 {p95:.3} s, max {:.3} s over {} rotations; {:.1} Quay calls per rotation\n    summed over the rotations: {}",
                percentile(&times, 1.0),
                times.len(),
                calls as f64 / times.len().max(1) as f64,
                summed.line()
            );
            runs.push(json!({
                "latency_ms": lat, "rotations": times.len(), "p50_s": p50, "p95_s": p95,
                "max_s": percentile(&times, 1.0), "times_s": times,
                "quay_calls_per_rotation": calls as f64 / a.rotations.max(1) as f64,
                "window": summed.to_json(),
            }));
        }
        watch.abort();
        proc.stop();
        Ok(json!({"environments": envs, "runs": runs}))
    }

    /// Wait until the generations watch has seen `n` target Secrets.
    async fn wait_seen(
        &self,
        seen: &Generations,
        wake: &tokio::sync::Notify,
        n: usize,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let notified = wake.notified();
            if seen.lock().unwrap_or_else(|p| p.into_inner()).len() >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the watch did not see {n} target Secrets within 300 s");
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// Per target namespace, the credentials generation of Component
    /// `name`'s pull Secret, kept current by a watch; `Notify` wakes on each change.
    fn watch_generations(
        &self,
        ns: String,
        name: &str,
    ) -> (
        tokio::task::JoinHandle<()>,
        Generations,
        Arc<tokio::sync::Notify>,
    ) {
        let seen: Generations = Arc::default();
        let wake = Arc::new(tokio::sync::Notify::new());
        let api: Api<Secret> = Api::all(self.client.clone());
        let cfg = watcher::Config::default().labels(&format!(
            "quayside.dev/component={name},quayside.dev/workspace={ns}"
        ));
        let (record, notify) = (seen.clone(), wake.clone());
        let watch = tokio::spawn(async move {
            let mut stream = watcher(api, cfg).applied_objects().boxed();
            while let Some(item) = stream.next().await {
                if let Ok(s) = item {
                    let g = s
                        .annotations()
                        .get(GENERATION)
                        .and_then(|g| g.parse().ok())
                        .unwrap_or(0);
                    record
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(s.namespace().unwrap_or_default(), g);
                    notify.notify_waiters();
                }
            }
        });
        (watch, seen, wake)
    }

    /// Every target Secret holds exactly the workspace's current pull token.
    async fn check_tokens(&self, t: &Tenancy, name: &str) -> anyhow::Result<()> {
        let want = Api::<Secret>::namespaced(self.client.clone(), t.ns())
            .get(&format!("{name}-image-pull"))
            .await?
            .data
            .unwrap_or_default();
        let targets = Api::<Secret>::all(self.client.clone())
            .list(&ListParams::default().labels(&format!(
                "quayside.dev/component={name},quayside.dev/workspace={}",
                t.ns()
            )))
            .await?;
        let stale = targets
            .items
            .iter()
            .filter(|s| s.data.as_ref() != Some(&want))
            .count();
        if stale > 0 {
            bail!("{stale} target Secret(s) do not hold the workspace's current pull token");
        }
        Ok(())
    }

    /// Provisioning behind Quay.io's rate limit (5 req/s, burst 25).
    async fn throttled(&self, a: &Args) -> anyhow::Result<Value> {
        let n = a.throttled_components;
        let (rate, burst) = (5.0, 25u32);
        println!(
            "\n## throttled provisioning: {n} Components, 1 Environment, Quay limited to {rate} req/s burst {burst}"
        );
        let emu = self
            .emulator(Faults {
                rate_limit: Some((rate, burst)),
                ..Faults::default()
            })
            .await?;
        let t = self.tenancy("throttled", 1, 1).await?;
        let limited = Launch {
            limit: Some((rate, burst)),
            ..Launch::default()
        };
        let mut proc = self.spawn(&emu, &t, limited)?;
        self.wait_readyz(&mut proc).await?;
        let w = self.window().await?;
        let watch = ReadyWatch::start(&self.client, &t);
        let t0 = Instant::now();
        t.create_components(&self.client, 0..n).await?;
        self.wait_ready(&watch, n, &mut proc).await?;
        let total_s = t0.elapsed().as_secs_f64();
        let all_ready = watch.count() >= n;
        drop(watch);
        let window = self.close(w).await?;
        let s = self.scrape(&proc).await?;
        let throttled = s.quay_outcomes.get("throttled").copied().unwrap_or(0.0);
        let passed = s.quay_total() - throttled;
        let bound_s = ((passed - f64::from(burst)) / rate).max(0.0);
        let quay_errors: f64 = s
            .errors
            .iter()
            .filter(|(k, _)| {
                k.to_lowercase().contains("quay")
                    || k.contains("throttl")
                    || k.contains("RateLimit")
            })
            .map(|(_, v)| v)
            .sum();
        println!(
            "  {total_s:.1} s to all Ready; {passed} calls passed the limiter ({:.2}/Component), {throttled} answered 429; bound (calls − {burst})/{rate} = {bound_s:.1} s; ratio {:.2}; reconcile errors {:?}",
            passed / n as f64,
            total_s / bound_s,
            s.errors
        );
        proc.stop();
        Ok(json!({
            "components": n, "rate": rate, "burst": burst, "total_s": total_s,
            "calls_passed": passed, "throttled_answers": throttled,
            "calls_per_component": passed / n as f64,
            "bound_s": bound_s, "ratio": total_s / bound_s,
            "errors": s.errors, "quay_error_passes": quay_errors, "all_ready": all_ready,
            "emulator_calls": emu.api_calls(), "window": window.to_json(),
        }))
    }
}

/// Which status fields differ between two snapshots (paths with array
/// indices dropped), and in how many objects.
fn status_changes(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> BTreeMap<String, usize> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut std::collections::BTreeSet<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys()) {
                    let null = Value::Null;
                    walk(
                        &format!("{path}.{k}"),
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, j) in x.iter().zip(y) {
                    walk(&format!("{path}[]"), i, j, out);
                }
            }
            _ if a != b => {
                out.insert(path.to_string());
            }
            _ => {}
        }
    }
    let mut counts = BTreeMap::new();
    for (k, a) in before {
        let kind = k.split('/').next().unwrap_or_default();
        let mut paths = std::collections::BTreeSet::new();
        walk(kind, a, after.get(k).unwrap_or(&Value::Null), &mut paths);
        for p in paths {
            *counts.entry(p).or_default() += 1;
        }
    }
    counts
}

/// Calls per endpoint made between two emulator snapshots.
fn calls_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Nearest-rank percentile of `xs` (`q` in 0..=1).
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// Per target namespace, the generation its pull Secret holds.
type Generations = Arc<Mutex<BTreeMap<String, i64>>>;

/// Wait until the rotation past generation `g` of Component `name` is done:
/// annotation removed, generation recorded, Ready.
async fn wait_rotation_finished(
    components: &Api<Component>,
    name: &str,
    g: i64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let c = components.get(name).await?;
        if !component::rotation_pending(&c)
            && component::generation(&c) > g
            && component::is_ready(&c)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("rotation did not finish within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Packs the bare side repository may gather before the bench merges them.
const REMOTE_MAX_PACKS: usize = 32;

/// What a forge does for the side repository: merge its packs once they pile
/// up (every push leaves one, and nothing else collects them), so a long
/// run's pushes do not slow down on thousands of packs a real remote would
/// never hold. `-k` keeps what no ref reaches yet: a push writes its pack
/// before it moves the branch, and a repack between the two must not drop
/// the new objects (without it, passes failed with "object not found").
/// `-n`: no `info/refs`, which nothing here serves. Ends when the
/// repository is gone.
async fn keep_packed(bare: PathBuf) {
    let packs = bare.join("objects").join("pack");
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Ok(entries) = std::fs::read_dir(&packs) else {
            return;
        };
        let count = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count();
        if count > REMOTE_MAX_PACKS {
            let _ = tokio::process::Command::new("git")
                .arg("-C")
                .arg(&bare)
                .args(["repack", "-a", "-d", "-k", "-q", "-n"])
                .status()
                .await;
        }
    }
}

/// The no-op heartbeat's summary line, from its JSON figures.
fn print_heartbeat(hb: &Value, verify: Option<&str>, window: &str) {
    let f = |k: &str| hb[k].as_f64().unwrap_or_default();
    let quiet = match hb["went_quiet"].as_bool().unwrap_or(true) {
        true => "",
        false => "; never went quiet: cut at twice the heartbeat",
    };
    println!(
        "  no-op heartbeat ({} Component + {} Environment passes{quiet}): kube writes {}, Quay calls {}, git commits {}, CPU {:.2} s over a {:.1} s window (heartbeat {:.0} s, --quay-verify-interval {}; /metrics read every {:.2} s, {:.1} ms CPU each)\n    {window}",
        hb["component_passes"],
        hb["environment_passes"],
        hb["kube_writes"],
        hb["quay_calls"],
        hb["git_commits"],
        f("cpu_s"),
        f("window_s"),
        f("heartbeat_s"),
        verify.unwrap_or("not offered"),
        f("poll_s"),
        f("scrape_cpu_ms"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_controllers_metrics() {
        let text = "# HELP x\nquayside_kube_writes_total 7\nquayside_git_commits_total 2\n\
            quayside_reconciles_total{controller=\"component\",result=\"ok\"} 10\n\
            quayside_reconciles_total{controller=\"component\",result=\"error\"} 3\n\
            quayside_reconcile_errors_total{controller=\"component\",reason=\"QuayUnavailable\"} 3\n\
            quayside_quay_api_requests_total{endpoint=\"create_robot\",outcome=\"throttled\"} 4\n\
            quayside_quay_api_requests_total{endpoint=\"create_robot\",outcome=\"ok\"} 5\n# EOF\n";
        let s = Scrape::parse(text);
        assert_eq!(s.kube_writes, 7.0);
        assert_eq!(s.git_commits, 2.0);
        assert_eq!(s.ok("component"), 10.0);
        assert_eq!(s.errors["component/QuayUnavailable"], 3.0);
        assert_eq!(s.quay_outcomes["throttled"], 4.0);
        assert_eq!(s.quay_total(), 9.0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.5), 10.0);
        assert_eq!(percentile(&xs, 0.95), 19.0);
        assert_eq!(percentile(&xs, 1.0), 20.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
