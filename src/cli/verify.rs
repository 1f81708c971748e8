//! quayside verify: check that a side-repo folder holds only sealed Secrets,
//! that they open for a given identity, and (`--history`) that no commit ever
//! held a plaintext Secret or the plaintext of a sealed value.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use quayside::seal::{self, Identity, scan::LeakScanner};
use secrecy::SecretString;

/// Check sealed Secrets in a folder, and optionally its git history.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The folder to check (a git work tree with `--history`).
    pub dir: PathBuf,
    /// An age identity file: also check every sealed file opens with it (MAC
    /// verified), and look for the plaintext of its values everywhere.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Scan every blob of every commit reachable from any ref.
    #[arg(long)]
    pub history: bool,
}

/// Files larger than this are searched for secret bytes but not parsed as YAML.
const MAX_YAML: usize = 4 << 20;

pub fn run(args: Args) -> anyhow::Result<()> {
    let identity = match &args.identity {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the identity file {}", p.display()))?;
            Some(Identity::parse(&text).with_context(|| format!("in {}", p.display()))?)
        }
        None => None,
    };
    let mut report = Report::default();
    let files =
        walk(&args.dir).with_context(|| format!("reading the folder {}", args.dir.display()))?;

    let mut opened = Vec::new();
    let mut sealed_count = 0;
    for (rel, bytes) in &files {
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        if is_sops_config(rel) {
            continue;
        }
        if is_sealed(rel) {
            sealed_count += 1;
            check_sealed(rel, text, identity.as_ref(), &mut report, &mut opened);
        } else if is_yaml(rel) && bytes.len() <= MAX_YAML {
            for path in seal::scan::plaintext_secret_leaves(text) {
                report.add(rel, format!("a Secret with a plaintext value at `{path}`"));
            }
        }
    }

    let history = if args.history {
        Some(History::read(&args.dir)?)
    } else {
        None
    };
    if let (Some(h), Some(id)) = (&history, &identity) {
        // Values rotated away long ago still must not be in any commit.
        for blob in h.blobs.values() {
            if blob.paths.iter().any(|p| is_sealed(&p.1))
                && let Ok(text) = std::str::from_utf8(&blob.bytes)
                && let Ok(plain) = seal::open(text, id)
            {
                opened.push(plain);
            }
        }
    }
    let scanner = LeakScanner::new(&opened);
    if !scanner.is_empty() {
        for (rel, bytes) in &files {
            if !is_sealed(rel) && scanner.leaks_in(bytes) {
                report.add(rel, "holds the plaintext of a sealed value".into());
            }
        }
    }
    if let Some(h) = &history {
        h.check(&scanner, &mut report);
    }

    let commits = history.as_ref().map(|h| h.commits).unwrap_or(0);
    if report.problems.is_empty() {
        println!(
            "ok: {sealed_count} sealed file(s) checked{}{}",
            if identity.is_some() {
                format!(
                    ", opened with the identity ({} value(s) searched for)",
                    scanner.len()
                )
            } else {
                String::new()
            },
            if args.history {
                format!(", {commits} commit(s) scanned")
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    eprintln!("quayside verify: problems in {}:", args.dir.display());
    for (place, problems) in &report.problems {
        for p in problems {
            eprintln!("  {place}: {p}");
        }
    }
    anyhow::bail!(
        "{} problem(s) found; seal the Secrets (quayside render) and, for history, rotate every exposed credential before rewriting history",
        report.problems.values().map(Vec::len).sum::<usize>()
    )
}

#[derive(Default)]
struct Report {
    /// Place (file, or commit and file) -> problems, in a stable order.
    problems: BTreeMap<String, Vec<String>>,
}

impl Report {
    fn add(&mut self, place: &str, problem: String) {
        let list = self.problems.entry(place.to_string()).or_default();
        if !list.contains(&problem) {
            list.push(problem);
        }
    }
}

fn check_sealed(
    rel: &str,
    text: &str,
    identity: Option<&Identity>,
    report: &mut Report,
    opened: &mut Vec<SecretString>,
) {
    match seal::inspect(text) {
        Err(e) => report.add(rel, format!("not a sealed file: {e}")),
        Ok(info) => {
            for path in &info.unsealed {
                report.add(rel, format!("`{path}` is not encrypted"));
            }
            if info.encrypted.is_empty() && info.unsealed.is_empty() {
                report.add(rel, "has no data/stringData values at all".into());
            }
        }
    }
    if let Some(id) = identity {
        match seal::open(text, id) {
            Ok(plain) => opened.push(plain),
            Err(e) => report.add(rel, format!("does not open with the identity: {e}")),
        }
    }
}

fn is_yaml(rel: &str) -> bool {
    rel.ends_with(".yaml") || rel.ends_with(".yml")
}

/// Every regular file under `dir` (skipping `.git`), as (relative path, bytes),
/// sorted by path.
fn walk(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    go(root, &path, out)?;
                }
            } else if kind.is_file() {
                let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every distinct blob reachable from any ref, with where it appears.
struct History {
    commits: usize,
    blobs: HashMap<git2::Oid, Blob>,
}

struct Blob {
    bytes: Vec<u8>,
    /// (commit short id and summary, path) for each place it appears.
    paths: Vec<(String, String)>,
}

impl History {
    fn read(dir: &Path) -> anyhow::Result<History> {
        let repo = git2::Repository::open(dir).with_context(|| {
            format!(
                "--history needs a git work tree; {} is not one",
                dir.display()
            )
        })?;
        let mut walk = repo.revwalk()?;
        walk.push_glob("refs/*")?;
        if repo.head().is_ok() {
            walk.push_head()?;
        }
        let mut commits = 0;
        let mut blobs: HashMap<git2::Oid, Blob> = HashMap::new();
        for oid in walk {
            let commit = repo.find_commit(oid?)?;
            commits += 1;
            let label = format!(
                "commit {} ({})",
                &commit.id().to_string()[..10],
                commit.summary().ok().flatten().unwrap_or("")
            );
            let mut entries = Vec::new();
            commit
                .tree()?
                .walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
                    if entry.kind() == Some(git2::ObjectType::Blob) {
                        let name = entry.name().unwrap_or("?");
                        entries.push((entry.id(), format!("{parent}{name}")));
                    }
                    git2::TreeWalkResult::Ok
                })?;
            for (id, path) in entries {
                let blob = match blobs.entry(id) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(Blob {
                        bytes: repo.find_blob(id)?.content().to_vec(),
                        paths: Vec::new(),
                    }),
                };
                blob.paths.push((label.clone(), path));
            }
        }
        Ok(History { commits, blobs })
    }

    fn check(&self, scanner: &LeakScanner, report: &mut Report) {
        for blob in self.blobs.values() {
            let mut problems = Vec::new();
            let yaml = blob.paths.iter().any(|(_, p)| is_yaml(p));
            if yaml
                && blob.bytes.len() <= MAX_YAML
                && let Ok(text) = std::str::from_utf8(&blob.bytes)
            {
                for path in seal::scan::plaintext_secret_leaves(text) {
                    problems.push(format!("a Secret with a plaintext value at `{path}`"));
                }
            }
            let sealed = blob.paths.iter().all(|(_, p)| is_sealed(p));
            if !sealed && scanner.leaks_in(&blob.bytes) {
                problems.push("holds the plaintext of a sealed value".into());
            }
            for (commit, path) in &blob.paths {
                for p in &problems {
                    report.add(&format!("{commit} {path}"), p.clone());
                }
            }
        }
    }
}

/// Whether a file is a sealed Secret by its name: `*.sops.yaml`, except
/// sops's own configuration (`.sops.yaml`, which holds no Secret).
fn is_sealed(rel: &str) -> bool {
    rel.ends_with(".sops.yaml") && !is_sops_config(rel)
}

/// sops's configuration file (creation rules, public keys): not a Secret.
fn is_sops_config(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name == ".sops.yaml" || name == ".sops.yml"
}
