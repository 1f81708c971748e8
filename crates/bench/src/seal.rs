//! `quayside-bench seal`: seal+render throughput. For N Secrets (N/10
//! Components × 10 Environments) it times `render_environment` for every
//! Environment plus one side-repo commit of everything, pushed to a local
//! bare repository, next to `sops --encrypt` run once per file on the same
//! plaintexts (one process per file, as a person or a script would).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};

use quayside::credentials::RobotCredentials;
use quayside::gitops::{CommitMessage, DeliveryMode, GitAuth, PassPlan, SideRepo, SideRepoConfig};
use quayside::render::{self, ComponentInput, EnvironmentInput, KustomizeFlavor};
use quayside::seal::{Identity, Recipient};
use quayside_testkit::scratch;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Numbers of Secrets to render, seal and commit (N/10 Components × 10 Environments).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub sizes: Vec<usize>,
    /// Numbers of files to encrypt with `sops`, one process each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub sops_sizes: Vec<usize>,
    /// A short run: 100 Secrets, sops on 20.
    #[arg(long)]
    pub quick: bool,
    /// The `sops` binary (default: `sops` on PATH, else `.cache/bin/sops`).
    #[arg(long)]
    pub sops: Option<PathBuf>,
    /// Render Environments on this many threads (default: the CPU count).
    #[arg(long)]
    pub threads: Option<usize>,
}

const ENVIRONMENTS: usize = 10;

struct Ours {
    n: usize,
    render: Duration,
    commit: Duration,
    /// CPU time of the process over both phases (all threads), when known:
    /// steadier than wall time on a busy machine.
    cpu: Option<Duration>,
}

/// User+system CPU time of this process so far.
fn process_cpu() -> Option<Duration> {
    super::procfs::cpu_seconds("self")
        .ok()
        .map(Duration::from_secs_f64)
}

pub fn run(mut a: Args) -> anyhow::Result<()> {
    if a.quick {
        a.sizes = vec![100];
        a.sops_sizes = vec![20];
    }
    if a.sizes.iter().any(|n| *n < ENVIRONMENTS) {
        bail!("every size must be at least {ENVIRONMENTS} (N/10 Components × 10 Environments)");
    }
    let threads = a
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let controller = Identity::generate();
    let decryptor = Identity::generate();
    let recipients = vec![controller.to_recipient(), decryptor.to_recipient()];
    let now = Timestamp::now();
    let sops = find_sops(a.sops.as_deref());

    println!(
        "quayside-bench seal: {} CPU(s), {threads} render thread(s), 2 age recipients per Secret, load average {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    );
    let mut ours = Vec::new();
    for &n in &a.sizes {
        let r = run_ours(n, &controller, &recipients, now, threads)?;
        eprintln!(
            "  ours N={n}: render+seal {:.0} ms, commit+push {:.0} ms",
            ms(r.render),
            ms(r.commit)
        );
        ours.push(r);
    }

    let mut sops_runs: BTreeMap<usize, Duration> = BTreeMap::new();
    match &sops {
        Some(bin) => {
            for &m in &a.sops_sizes {
                let d = run_sops(bin, m, &recipients)?;
                eprintln!(
                    "  sops M={m}: {:.0} ms ({:.1} ms per file)",
                    ms(d),
                    ms(d) / m as f64
                );
                sops_runs.insert(m, d);
            }
        }
        None => eprintln!("  sops not found (give --sops PATH): no comparison"),
    }

    println!();
    println!(
        "| N Secrets | ours total ms | render+seal ms | commit+push ms | ours CPU ms | ours per Secret µs | sops per Secret ms (files run) | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &ours {
        let total = r.render + r.commit;
        let per_us = total.as_secs_f64() * 1e6 / r.n as f64;
        // sops at the same N when measured, else at the largest N measured.
        let sops_ref = sops_runs
            .get(&r.n)
            .map(|d| (r.n, *d))
            .or_else(|| sops_runs.iter().next_back().map(|(m, d)| (*m, *d)));
        let (sops_col, ratio) = match sops_ref {
            Some((m, d)) => {
                let per_ms = ms(d) / m as f64;
                (
                    format!("{per_ms:.2} ({m})"),
                    format!("{:.0}×", per_ms * 1000.0 / per_us),
                )
            }
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {:.1} | {} | {} |",
            r.n,
            ms(total),
            ms(r.render),
            ms(r.commit),
            r.cpu
                .map(|c| format!("{:.0}", ms(c)))
                .unwrap_or_else(|| "-".into()),
            per_us,
            sops_col,
            ratio
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn component(i: usize) -> ComponentInput {
    let name = format!("component-{i:05}");
    ComponentInput {
        image: format!("quay.io/bench/team/{name}"),
        generation: 1,
        pull: RobotCredentials {
            registry: "quay.io".into(),
            username: format!("bench+team_{}_pull", name.replace('-', "_")),
            token: SecretString::from(format!("BENCH{i:05}{}", "X".repeat(58))),
        },
        name,
    }
}

fn environment(e: usize, recipients: &[Recipient]) -> EnvironmentInput {
    EnvironmentInput {
        name: format!("env-{e:02}"),
        workspace: "team".into(),
        target_namespace: format!("team-env-{e:02}"),
        folder: format!("environments/env-{e:02}"),
        recipients: recipients.to_vec(),
        service_account: "deployer".into(),
    }
}

fn run_ours(
    n: usize,
    controller: &Identity,
    recipients: &[Recipient],
    now: Timestamp,
    threads: usize,
) -> anyhow::Result<Ours> {
    let components: Vec<ComponentInput> = (0..n / ENVIRONMENTS).map(component).collect();
    let envs: Vec<EnvironmentInput> = (0..ENVIRONMENTS)
        .map(|e| environment(e, recipients))
        .collect();
    let tmp = scratch::dir("quayside-bench-")?;
    let bare = tmp.path().join("side.git");
    git2::Repository::init_bare(&bare)?;
    let mut repo = SideRepo::open(SideRepoConfig {
        url: bare.display().to_string(),
        branch: "main".into(),
        auth: GitAuth::None,
        workdir: tmp.path().join("work"),
        mode: DeliveryMode::Direct,
        author_name: "quayside-bench".into(),
        author_email: "bench@quayside.invalid".into(),
        max_push_attempts: 3,
    })?;

    let cpu_start = process_cpu();
    let start = Instant::now();
    // Environments are independent: render them on `threads` threads, as
    // the controller may.
    let chunk = envs.len().div_ceil(threads);
    let rendered: Vec<Vec<render::RenderedFile>> = std::thread::scope(|s| {
        let handles: Vec<_> = envs
            .chunks(chunk)
            .map(|part| {
                let components = &components;
                s.spawn(move || {
                    part.iter()
                        .map(|env| {
                            render::render_environment(
                                env,
                                components,
                                &|_| None,
                                controller,
                                KustomizeFlavor::Ksops,
                                now,
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("render thread"))
            .collect::<Result<Vec<_>, _>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    let render_time = start.elapsed();

    let start = Instant::now();
    let plan = PassPlan {
        folders: envs
            .iter()
            .zip(rendered)
            .map(|(e, files)| (e.folder.clone(), files))
            .collect(),
        removed_folders: vec![],
        removed_files: vec![],
        message: CommitMessage {
            summary: format!("Deliver {} pull Secrets", n),
            body: "quayside-bench seal".into(),
            components: vec![],
            environments: envs.iter().map(|e| e.name.clone()).collect(),
            generation: Some(1),
        },
    };
    let outcome = repo.apply(&plan)?;
    let commit_time = start.elapsed();
    let cpu = process_cpu()
        .zip(cpu_start)
        .map(|(end, begin)| end.saturating_sub(begin));
    if outcome.commit.is_none() {
        bail!("the benchmark pass made no commit");
    }
    let secrets = git_count(&bare, ".sops.yaml")?;
    if secrets != n / ENVIRONMENTS * ENVIRONMENTS {
        bail!("expected {n} sealed files in the pushed commit, found {secrets}");
    }
    Ok(Ours {
        n: secrets,
        render: render_time,
        commit: commit_time,
        cpu,
    })
}

/// Files with `suffix` in the tip of `main` of the bare repository.
fn git_count(bare: &Path, suffix: &str) -> anyhow::Result<usize> {
    let repo = git2::Repository::open_bare(bare)?;
    let tree = repo.find_reference("refs/heads/main")?.peel_to_tree()?;
    let mut count = 0;
    tree.walk(git2::TreeWalkMode::PreOrder, |_, e| {
        if e.name().is_ok_and(|n| n.ends_with(suffix)) {
            count += 1;
        }
        git2::TreeWalkResult::Ok
    })?;
    Ok(count)
}

fn find_sops(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("sops"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let local = PathBuf::from(".cache/bin/sops");
        local.is_file().then_some(local)
    })
}

/// `sops --encrypt` on `m` plaintext Secrets, one process per file.
fn run_sops(bin: &Path, m: usize, recipients: &[Recipient]) -> anyhow::Result<Duration> {
    let tmp = scratch::dir("quayside-bench-sops-")?;
    let env = environment(0, recipients);
    let mut inputs = Vec::with_capacity(m);
    for i in 0..m {
        let p = tmp.path().join(format!("secret-{i:05}.yaml"));
        let plain = render::pull_secret_manifest(&env, &component(i));
        std::fs::write(&p, plain.expose_secret())?;
        inputs.push(p);
    }
    let age = recipients
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let start = Instant::now();
    for p in &inputs {
        let out = Command::new(bin)
            .args([
                "--encrypt",
                "--age",
                &age,
                "--encrypted-regex",
                "^(data|stringData)$",
            ])
            .args(["--input-type", "yaml", "--output-type", "yaml"])
            .arg(p)
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        if !out.status.success() {
            bail!("sops failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::fs::write(p.with_extension("sops.yaml"), out.stdout)?;
    }
    Ok(start.elapsed())
}
